package exec_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// gatedSplit returns before, then waits for gate to close (polling every
// 10 ms, as an unbounded split with no data would, so the runtime keeps
// servicing it), then returns after and ends. before is consumed as it
// is read. It lets a test send a row
// once the job has shown, by its output, that the watermark passed it.
type gatedSplit struct {
	before, after []ev
	gate          <-chan struct{}
	phase         int // 0: reading before; 1: waiting for gate; 2: reading after
}

func (g *gatedSplit) ID() string        { return "gated" }
func (g *gatedSplit) Position() []byte  { return nil }
func (g *gatedSplit) Seek([]byte) error { return nil }

func (g *gatedSplit) Read(ctx context.Context, dst []ev) (int, error) {
	if g.phase == 1 {
		select {
		case <-g.gate:
			g.phase, g.before = 2, g.after
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
			return 0, nil
		}
	}
	if len(g.before) == 0 {
		if g.phase == 2 {
			return 0, io.EOF
		}
		g.phase = 1
		return 0, nil
	}
	n := copy(dst, g.before)
	g.before = g.before[n:]
	return n, nil
}

type gatedSource struct{ split *gatedSplit }

func (s gatedSource) Splits(context.Context, int) ([]stream.Split[ev], error) {
	return []stream.Split[ev]{s.split}, nil
}

func gated(env *stream.Env, name string, before, after []ev, gate <-chan struct{}) stream.Stream[exec.Change] {
	s := stream.FromSource(env, name, gatedSource{&gatedSplit{before: before, after: after, gate: gate}}, stream.WatermarkStrategy[ev]{
		Timestamp: func(e ev) int64 { return e.Ts },
	})
	return stream.Map(s, func(e ev) exec.Change { return e.C }, stream.Name(name+"-change"), stream.Parallelism(1))
}

func kv(k int64, v string, ts int64) ev {
	return ev{C: exec.Change{Vals: []row.Value{row.Int(k), row.String(v)}}, Ts: ts}
}

// collectUntil runs the job; when the output first holds a record whose
// stamped form is trigger, it closes gate. It returns the stamped output.
func collectUntil(t *testing.T, env *stream.Env, s stream.Stream[exec.Change], trigger string, gate chan struct{}) map[string]int {
	t.Helper()
	var once sync.Once
	c := stream.Collect(stream.FlatMap(s, func(v exec.Change, e *stream.Emitter[out]) {
		if stampStr(v.Vals, e.Timestamp()) == trigger {
			once.Do(func() { close(gate) })
		}
		e.Emit(out{C: v, Ts: e.Timestamp()})
	}, stream.Name("stamp"), stream.Parallelism(1)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	return stamped(c.Values())
}

// TestIntervalJoinLateRowOnPreservedSide: a row that arrives after the
// watermark has passed the last time it could match is, on the preserved
// side of an outer interval join, emitted null-padded at once, as Flink's
// TimeIntervalJoin does (it was dropped).
func TestIntervalJoinLateRowOnPreservedSide(t *testing.T) {
	for _, kind := range []exec.JoinKind{exec.JoinLeft, exec.JoinRight, exec.JoinFull} {
		t.Run(kind.String(), func(t *testing.T) {
			gate := make(chan struct{})
			env := stream.New(stream.WithParallelism(1))
			// The late row c (ts 50) is sent once the padded output of a
			// (ts 100) shows the watermark is past 100; bounds [0, 0].
			rows := []ev{kv(1, "a", 100), kv(2, "b", 200)}
			late := []ev{kv(3, "c", 50)}
			var l, r stream.Stream[exec.Change]
			var pad func(v []row.Value) []row.Value
			if kind == exec.JoinRight {
				l, r = source(env, "l", nil, 0), gated(env, "r", rows, late, gate)
				pad = func(v []row.Value) []row.Value { return cat(nil, v, 2, 2) }
			} else {
				l, r = gated(env, "l", rows, late, gate), source(env, "r", nil, 0)
				pad = func(v []row.Value) []row.Value { return cat(v, nil, 2, 2) }
			}
			trigger := stampStr(pad(rows[0].C.Vals), 100)
			got := collectUntil(t, env, exec.IntervalJoin(l, r, []int{0}, []int{0}, kind, 0, 0, nil, 2, 2, exec.JoinConfig{Name: "j"}), trigger, gate)
			want := map[string]int{trigger: 1, stampStr(pad(rows[1].C.Vals), 200): 1, stampStr(pad(late[0].C.Vals), 50): 1}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestIntervalJoinRowBehindWatermarkStillMatches: a row behind the
// watermark whose interval is still open (left: wm < ts+upper) joins the
// other side's buffered rows and is kept, as in Flink; it was dropped as
// late.
func TestIntervalJoinRowBehindWatermarkStillMatches(t *testing.T) {
	gate := make(chan struct{})
	env := stream.New(stream.WithParallelism(1))
	// Bounds [0, 50]. Watermarks: left 199, right 299, the join's 199,
	// reached after d (ts 210, open until 210) is buffered. a's padded
	// output (timer at 150) opens the gate; then c (ts 180: behind 199
	// but open until 230) must pair with d. The left's watermark stays
	// at 199 until c has passed, so d is still buffered then.
	l := gated(env, "l", []ev{kv(1, "a", 100), kv(2, "b", 200)}, []ev{kv(3, "c", 180)}, gate)
	r := gated(env, "r", []ev{kv(9, "z", 300), kv(3, "d", 210)}, nil, gate)
	trigger := stampStr(cat(kv(1, "a", 0).C.Vals, nil, 2, 2), 100)
	got := collectUntil(t, env, exec.IntervalJoin(l, r, []int{0}, []int{0}, exec.JoinLeft, 0, msDur(50), nil, 2, 2, exec.JoinConfig{Name: "j"}), trigger, gate)
	want := map[string]int{
		trigger: 1,
		stampStr(cat(kv(2, "b", 0).C.Vals, nil, 2, 2), 200):                  1,
		stampStr(cat(kv(3, "c", 0).C.Vals, kv(3, "d", 0).C.Vals, 2, 2), 210): 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
