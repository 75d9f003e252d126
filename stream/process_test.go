package stream_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

type summary struct {
	Key      int
	Count    int64
	Distinct int
	ListSum  int64
	FiredAt  int64
	WM       int64
}

// countingFunc keeps a count (ValueState), the distinct values (MapState)
// and all values (ListState) per key, and reports them from an event-time
// timer; a second timer is registered and deleted, and must never fire.
type countingFunc struct {
	count *state.Value[int, int64]
	seen  *state.Map[int, int64, bool]
	all   *state.List[int, int64]
}

func (f *countingFunc) ProcessElement(ctx *stream.KeyedContext[int, summary], e event) {
	n, _ := f.count.Get()
	f.count.Set(n + 1)
	f.seen.Put(e.Value, true)
	f.all.Add(e.Value)
	ctx.RegisterEventTimer(1_000_000)
	ctx.RegisterEventTimer(500_000)
	ctx.DeleteEventTimer(500_000)
}

func (f *countingFunc) OnTimer(ctx *stream.KeyedContext[int, summary], t stream.Timer) {
	n, _ := f.count.Get()
	var sum int64
	for _, v := range f.all.Values() {
		sum += v
	}
	ctx.Emit(summary{Key: ctx.Key(), Count: n, Distinct: f.seen.Len(), ListSum: sum, FiredAt: t.Time, WM: ctx.Watermark()})
	f.count.Clear()
	f.seen.Clear()
	f.all.Clear()
}

func TestKeyedProcessStateAndEventTimers(t *testing.T) {
	r := newRand(t)
	for p := 1; p <= 3; p++ {
		parts := genEvents(r, 1+r.IntN(3), 300, 10, 5)
		env := stream.New(stream.WithParallelism(p), stream.WithBatchSize(1+r.IntN(50)))
		src := stream.FromSource(env, "events", &stream.SliceSource[event]{Parts: parts},
			stream.BoundedOutOfOrderness(func(e event) int64 { return e.TS }, 5*time.Millisecond))
		out := stream.Collect(stream.KeyedProcess(stream.KeyBy(src, func(e event) int { return e.Key }),
			func(ctx *stream.KeyedContext[int, summary]) (stream.KeyedProcessFunc[int, event, summary], error) {
				var f countingFunc
				var err error
				if f.count, err = state.NewValue[int, int64](ctx.State(), "count"); err != nil {
					return nil, err
				}
				if f.seen, err = state.NewMap[int, int64, bool](ctx.State(), "seen"); err != nil {
					return nil, err
				}
				if f.all, err = state.NewList[int, int64](ctx.State(), "all"); err != nil {
					return nil, err
				}
				return &f, nil
			}, stream.Name("counter")))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := map[int]summary{}
		distinct := map[int]map[int64]bool{}
		for _, part := range parts {
			for _, e := range part {
				s := want[e.Key]
				s.Key = e.Key
				s.Count++
				s.ListSum += e.Value
				s.FiredAt = 1_000_000
				if distinct[e.Key] == nil {
					distinct[e.Key] = map[int64]bool{}
				}
				distinct[e.Key][e.Value] = true
				want[e.Key] = s
			}
		}
		for k, s := range want {
			s.Distinct = len(distinct[k])
			want[k] = s
		}
		got := map[int]summary{}
		for _, s := range out.Values() {
			if _, dup := got[s.Key]; dup {
				t.Fatalf("p=%d: key %d reported twice", p, s.Key)
			}
			if s.WM < s.FiredAt {
				t.Fatalf("p=%d: timer %d fired at watermark %d", p, s.FiredAt, s.WM)
			}
			s.WM = 0
			got[s.Key] = s
		}
		if !maps.Equal(got, want) {
			t.Fatalf("p=%d: got %v\nwant %v", p, got, want)
		}
	}
}

// pollSplit is an unbounded split that yields its records and then polls
// for more forever, returning (0, nil) like a live source with no data.
type pollSplit[T any] struct {
	id   string
	vals []T
	off  int
	poll time.Duration
}

func (s *pollSplit[T]) ID() string { return s.id }
func (s *pollSplit[T]) Read(ctx context.Context, dst []T) (int, error) {
	if s.off < len(s.vals) {
		n := copy(dst, s.vals[s.off:])
		s.off += n
		return n, nil
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(s.poll):
		return 0, nil
	}
}
func (s *pollSplit[T]) Position() []byte  { return nil }
func (s *pollSplit[T]) Seek([]byte) error { return nil }

type pollSource[T any] struct{ parts [][]T }

func (p pollSource[T]) Splits(context.Context, int) ([]stream.Split[T], error) {
	var out []stream.Split[T]
	for i, part := range p.parts {
		out = append(out, &pollSplit[T]{id: string(rune('a' + i)), vals: part, poll: 2 * time.Millisecond})
	}
	return out, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestKeyedProcessProcessingTimers(t *testing.T) {
	env := stream.New(stream.WithParallelism(2))
	src := stream.FromSource(env, "live", pollSource[int]{parts: [][]int{{1, 2, 3}}}, stream.WatermarkStrategy[int]{})
	out := stream.Collect(stream.KeyedProcess(stream.KeyBy(src, func(v int) int { return v }),
		func(*stream.KeyedContext[int, int]) (stream.KeyedProcessFunc[int, int, int], error) {
			return stream.KeyedProcessFuncs[int, int, int]{
				Element: func(ctx *stream.KeyedContext[int, int], v int) {
					ctx.RegisterProcessingTimer(ctx.ProcessingTime() + 5)
				},
				Timer: func(ctx *stream.KeyedContext[int, int], tm stream.Timer) {
					if tm.Domain != stream.ProcessingTime {
						panic("wrong domain")
					}
					ctx.Emit(ctx.Key() * 10)
				},
			}, nil
		}))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "processing-time timers", func() bool { return out.Len() == 3 })
	job.Cancel()
	if err := job.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job returned %v", err)
	}
	got := out.Values()
	sort.Ints(got)
	if !slices.Equal(got, []int{10, 20, 30}) {
		t.Fatalf("got %v", got)
	}
}
