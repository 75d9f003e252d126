package stream

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// lagSplit emits n records one at a time; it does not implement Lagger,
// laggingSplit does (10 more than the records it has not emitted).
type lagSplit struct {
	id   string
	n    int64
	done atomic.Int64
	stop *atomic.Bool
}

func (l *lagSplit) ID() string { return l.id }

func (l *lagSplit) Read(_ context.Context, dst []int64) (int, error) {
	if d := l.done.Load(); d < l.n {
		dst[0] = d
		l.done.Add(1)
		return 1, nil
	}
	if l.stop.Load() {
		return 0, io.EOF
	}
	time.Sleep(time.Millisecond) // pacing, not synchronisation
	return 0, nil
}

func (l *lagSplit) Position() []byte  { return nil }
func (l *lagSplit) Seek([]byte) error { return nil }

type laggingSplit struct{ *lagSplit }

func (l laggingSplit) Lag() int64 { return l.n - l.done.Load() + 10 } // +10: not a zero value

var _ Lagger = laggingSplit{}

type lagSource struct{ splits []Split[int64] }

func (s lagSource) Splits(context.Context, int) ([]Split[int64], error) { return s.splits, nil }

// TestMetricsSourceLag: source subtasks report their split's ID and, for a
// Lagger, its lag; other subtasks and other splits report -1.
func TestMetricsSourceLag(t *testing.T) {
	var stop atomic.Bool
	a := &lagSplit{id: "a", n: 5, stop: &stop}
	b := &lagSplit{id: "b", n: 3, stop: &stop}
	env := New(WithParallelism(1))
	s := FromSource(env, "src", lagSource{[]Split[int64]{laggingSplit{a}, b}}, WatermarkStrategy[int64]{})
	To(Map(s, func(v int64) int64 { return v + 1 }, Name("inc")), SinkFunc[int64](func(context.Context, []int64) error { return nil }), Name("sink"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := env.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until both splits were read to their end.
	for a.done.Load() < a.n || b.done.Load() < b.n {
		select {
		case <-ctx.Done():
			t.Fatal("splits not read before the deadline")
		case <-time.After(time.Millisecond):
		}
	}
	got := map[string]int64{}
	for _, m := range job.Metrics() {
		switch {
		case m.Operator == "src":
			got[m.Split] = m.Lag
		case m.Split != "" || m.Lag != -1:
			t.Errorf("%s/%d: split %q lag %d, want none", m.Operator, m.Subtask, m.Split, m.Lag)
		}
	}
	if len(got) != 2 || got["a"] != 10 || got["b"] != -1 {
		t.Fatalf("source lags %v, want a:10 b:-1", got)
	}
	stop.Store(true)
	if err := job.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
