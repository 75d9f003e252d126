package stream

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

// pollSplit returns nothing for its first empty reads, each "waiting"
// wait on the fake clock (as a split blocked on a socket would), then one
// batch of records that take work to read, then io.EOF. From its second
// read on it records the status the job reports for its subtask.
type pollSplit struct {
	clk      *fakeClock
	empty    int
	wait     time.Duration
	work     time.Duration
	reads    int
	jobc     <-chan *Job
	job      *Job
	statuses []string
}

func (s *pollSplit) ID() string        { return "poll" }
func (s *pollSplit) Position() []byte  { return nil }
func (s *pollSplit) Seek([]byte) error { return nil }
func (s *pollSplit) Splits(context.Context, int) ([]Split[int], error) {
	return []Split[int]{s}, nil
}

func (s *pollSplit) Read(_ context.Context, dst []int) (int, error) {
	if s.job == nil {
		s.job = <-s.jobc
	}
	s.reads++
	if s.reads > 1 {
		for _, m := range s.job.Metrics() {
			if m.Operator == "src" {
				s.statuses = append(s.statuses, m.Status)
			}
		}
	}
	switch {
	case s.reads <= s.empty:
		s.clk.advance(s.wait)
		return 0, nil
	case s.reads == s.empty+1:
		s.clk.advance(s.work)
		for i := range dst[:4] {
			dst[i] = i
		}
		return 4, nil
	}
	return 0, io.EOF
}

// TestSourceWaitingForDataIsIdle: a source whose reads return nothing
// is waiting, not working. On a fake clock that moves only inside Read,
// the source's task is idle exactly for the empty reads and busy exactly
// for the read that brought records, and shows idle between empty reads.
func TestSourceWaitingForDataIsIdle(t *testing.T) {
	clk := newFakeClock()
	jobc := make(chan *Job, 1)
	sp := &pollSplit{clk: clk, empty: 50, wait: 100 * time.Millisecond, work: 3 * time.Millisecond, jobc: jobc}
	env := New(WithParallelism(1), WithBatchSize(8), withClock(clk))
	out := Collect(FromSource[int](env, "src", sp, WatermarkStrategy[int]{}), Name("out"))
	j, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jobc <- j
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 4 {
		t.Fatalf("sink got %d records, want 4", out.Len())
	}
	var src *SubtaskMetrics
	ms := j.Metrics()
	for i := range ms {
		if ms[i].Operator == "src" {
			src = &ms[i]
		}
	}
	if src == nil {
		t.Fatalf("no metrics for the source in %+v", ms)
	}
	if want := 50 * 100 * time.Millisecond; src.Idle != want {
		t.Errorf("source idle %v, want %v (the empty reads)", src.Idle, want)
	}
	if want := 3 * time.Millisecond; src.Busy != want {
		t.Errorf("source busy %v, want %v (the read with records)", src.Busy, want)
	}
	// Statuses seen during reads 2..: idle after every empty read, busy
	// during the read after the one that brought records.
	want := make([]string, 0, 51)
	for range 49 {
		want = append(want, "idle")
	}
	want = append(want, "idle", "busy")
	if fmt.Sprint(sp.statuses) != fmt.Sprint(want) {
		t.Errorf("statuses during reads %v, want %v", sp.statuses, want)
	}
}
