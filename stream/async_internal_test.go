package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	rt "github.com/sluicehq/sluice/internal/runtime"
	"github.com/sluicehq/sluice/state/codec"
)

// The tests in this file drive one AsyncMap subtask directly, as its task
// loop would, with a fake service whose calls return only when the test
// releases them: the order in which answers come is the test's choice,
// so the checks are exact and need no timing.

type asyncEv struct {
	kind byte // r record, w watermark, i idle, b barrier, e end
	v    int
	wm   int64
}

// evRecorder is a collector that records what an operator emits.
type evRecorder struct{ evs []asyncEv }

func (r *evRecorder) push(vals []int, _ []int64) {
	for _, v := range vals {
		r.evs = append(r.evs, asyncEv{kind: 'r', v: v})
	}
}
func (r *evRecorder) watermark(wm int64) { r.evs = append(r.evs, asyncEv{kind: 'w', wm: wm}) }
func (r *evRecorder) idle()              { r.evs = append(r.evs, asyncEv{kind: 'i'}) }
func (r *evRecorder) barrier(uint64)     { r.evs = append(r.evs, asyncEv{kind: 'b'}) }
func (r *evRecorder) end()               { r.evs = append(r.evs, asyncEv{kind: 'e'}) }

type asyncFixture struct {
	t       *testing.T
	o       *asyncOp[int, int]
	rec     *evRecorder
	started chan int
	release []chan struct{}
	// fail[v] makes the call of record v fail (permanently).
	fail    []bool
	running map[int]bool // started, not released
}

// newAsyncFixture makes an operator for records 0..n-1; the service
// answers 10*v.
func newAsyncFixture(t *testing.T, cfg asyncConfig, n int) *asyncFixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tk := &task{name: "async", ctx: ctx, done: ctx.Done(), stats: rt.NewTaskStats(), job: &Job{}}
	nd := &node{name: "async", par: 1}
	f := &asyncFixture{t: t, rec: &evRecorder{}, started: make(chan int, n), release: make([]chan struct{}, n), fail: make([]bool, n), running: map[int]bool{}}
	for i := range f.release {
		f.release[i] = make(chan struct{})
	}
	call := func(ctx context.Context, ins []int) ([]int, error) {
		out := make([]int, len(ins))
		for i, v := range ins {
			f.started <- v
			out[i] = 10 * v
		}
		var err error
		for _, v := range ins {
			select {
			case <-f.release[v]:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.fail[v] {
				err = Permanent(fmt.Errorf("record %d refused", v))
			}
		}
		return out, err
	}
	if cfg.concurrency == 0 {
		cfg.concurrency = 3
	}
	if cfg.batchSize == 0 {
		cfg.batchSize = 1
	}
	if cfg.capacity == 0 {
		cfg.capacity = 5
	}
	cfg.backoff, cfg.maxBackoff = time.Millisecond, time.Millisecond
	o := &asyncOp[int, int]{opBase: opBase{name: "async", t: tk, cnt: &rt.Counters{}, node: nd, pos: -1}, cfg: cfg, call: call,
		em: &Emitter[int]{out: f.rec, size: 3}}
	bc := &buildCtx{job: tk.job, n: nd, t: tk}
	o.init(bc, -1, nil)
	f.o = o
	return f
}

// collect notes the calls that started until every call in flight has.
func (f *asyncFixture) collect() {
	for len(f.running) < f.o.inflight {
		v := <-f.started
		f.running[v] = true
	}
}

// releaseOne answers one call in flight (of one record), chosen by rnd,
// and lets the operator take the answer.
func (f *asyncFixture) releaseOne(rnd *rand.Rand) {
	f.collect()
	keys := make([]int, 0, len(f.running))
	for v := range f.running {
		keys = append(keys, v)
	}
	slices.Sort(keys)
	v := keys[rnd.IntN(len(keys))]
	delete(f.running, v)
	close(f.release[v])
	f.o.await()
}

// finish answers everything and ends the input.
func (f *asyncFixture) finish() {
	for v := range f.running {
		close(f.release[v])
	}
	f.running = map[int]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := range f.started {
			close(f.release[v])
		}
	}()
	f.o.end()
	close(f.started)
	<-done
}

// TestAsyncOrderProperty pushes random records, watermarks and idleness
// into one subtask and answers its calls in random order: in ordered mode
// the output is the input order; in both modes every record comes out
// once and exactly the records that came before a watermark come out
// before it; the queue never exceeds its capacity nor the calls the
// concurrency.
func TestAsyncOrderProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 19))
	iters := 300
	if testing.Short() {
		iters = 60
	}
	reordered := 0
	for it := range iters {
		unordered := it%2 == 1
		const n = 80
		cfg := asyncConfig{unordered: unordered, concurrency: 1 + rnd.IntN(4), capacity: 0}
		cfg.capacity = cfg.concurrency + rnd.IntN(5)
		f := newAsyncFixture(t, cfg, n)
		var in []asyncEv
		next, ts, wm := 0, int64(0), int64(0)
		for next < n {
			switch k := rnd.IntN(10); {
			case k < 5:
				if f.o.queued < cfg.capacity {
					ts += int64(rnd.IntN(5))
					f.o.push([]int{next}, []int64{ts})
					in = append(in, asyncEv{kind: 'r', v: next})
					next++
				} else {
					f.releaseOne(rnd)
				}
			case k < 7:
				wm += 1 + int64(rnd.IntN(4))
				f.o.watermark(wm)
				in = append(in, asyncEv{kind: 'w', wm: wm})
			case k < 8:
				f.o.idle()
				in = append(in, asyncEv{kind: 'i'})
			default:
				if f.o.inflight > 0 {
					f.releaseOne(rnd)
				} else {
					f.o.poll()
				}
			}
		}
		wm++
		f.o.watermark(wm)
		in = append(in, asyncEv{kind: 'w', wm: wm})
		f.finish()
		out := f.rec.evs
		if out[len(out)-1].kind != 'e' {
			t.Fatalf("iteration %d: output does not end with end-of-input: %v", it, out[len(out)-1])
		}
		var outRecs, inRecs []int
		before := func(evs []asyncEv, w int64) (map[int]bool, bool) {
			set := map[int]bool{}
			for _, e := range evs {
				if e.kind == 'w' && e.wm == w {
					return set, true
				}
				if e.kind == 'r' {
					set[e.v] = true
				}
			}
			return set, false
		}
		for _, e := range in {
			if e.kind == 'r' {
				inRecs = append(inRecs, e.v)
			}
		}
		lastWm := int64(-1)
		for _, e := range out {
			switch e.kind {
			case 'r':
				if e.v%10 != 0 {
					t.Fatalf("iteration %d: output %d is not an answer", it, e.v)
				}
				outRecs = append(outRecs, e.v/10)
			case 'w':
				if e.wm <= lastWm {
					t.Fatalf("iteration %d: watermark %d after %d", it, e.wm, lastWm)
				}
				lastWm = e.wm
				// Output records carry 10*v; compare the inputs.
				var outBefore []asyncEv
				for _, o := range out {
					if o.kind == 'w' && o.wm == e.wm {
						break
					}
					if o.kind == 'r' {
						outBefore = append(outBefore, asyncEv{kind: 'r', v: o.v / 10})
					}
				}
				outBefore = append(outBefore, asyncEv{kind: 'w', wm: e.wm})
				got, _ := before(outBefore, e.wm)
				want, ok := before(in, e.wm)
				if !ok {
					t.Fatalf("iteration %d: output watermark %d was never input", it, e.wm)
				}
				if len(got) != len(want) {
					t.Fatalf("iteration %d: %d records before watermark %d in the output, %d in the input", it, len(got), e.wm, len(want))
				}
				for v := range want {
					if !got[v] {
						t.Fatalf("iteration %d: record %d crossed watermark %d", it, v, e.wm)
					}
				}
			}
		}
		if lastWm != wm {
			t.Fatalf("iteration %d: last watermark out %d, want %d", it, lastWm, wm)
		}
		sorted := slices.Clone(outRecs)
		slices.Sort(sorted)
		if !slices.Equal(sorted, inRecs) {
			t.Fatalf("iteration %d: output records %v are not the input's %v", it, sorted, inRecs)
		}
		if !unordered && !slices.Equal(outRecs, inRecs) {
			t.Fatalf("iteration %d: ordered output %v differs from the input order", it, outRecs)
		}
		if unordered && !slices.Equal(outRecs, inRecs) {
			reordered++
		}
		if q, c := f.o.stats.maxQueued.Load(), f.o.stats.maxInFlight.Load(); q > int64(cfg.capacity) || c > int64(cfg.concurrency) {
			t.Fatalf("iteration %d: max queued %d (capacity %d), max in flight %d (concurrency %d)", it, q, cfg.capacity, c, cfg.concurrency)
		}
	}
	if reordered == 0 {
		t.Fatal("unordered mode never emitted out of input order: the test does not exercise it")
	}
}

// TestAsyncBarrierSnapshot: a barrier passes while calls are in flight,
// and the snapshot taken holds exactly the records not emitted yet, in
// queue order; decoding it gives them back.
func TestAsyncBarrierSnapshot(t *testing.T) {
	for _, unordered := range []bool{false, true} {
		f := newAsyncFixture(t, asyncConfig{unordered: unordered, concurrency: 2, capacity: 4}, 10)
		f.o.codec = codec.MustFor[int]()
		f.o.push([]int{0, 1, 2}, []int64{5, 6, 7})
		f.collect()
		// Answer record 1 only: unordered emits it, ordered holds it.
		delete(f.running, 1)
		close(f.release[1])
		f.o.await()
		var b []byte
		for _, s := range f.o.segs {
			for _, e := range s.recs {
				if !e.emitted {
					b = append(b, byte(e.in))
				}
			}
		}
		want := []byte{0, 1, 2}
		if unordered {
			want = []byte{0, 2}
		}
		if !slices.Equal(b, want) {
			t.Fatalf("unordered=%v: queue holds %v, want %v", unordered, b, want)
		}
		enc := encodeAsyncForTest(f.o)
		es, err := decodeAsyncSnapshot[int, int](enc, f.o.codec.Decode)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, e := range es {
			got = append(got, byte(e.in))
			if e.ts != int64(e.in)+5 {
				t.Fatalf("record %d restored with time %d", e.in, e.ts)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("unordered=%v: snapshot holds %v, want %v", unordered, got, want)
		}
		f.o.barrier(1) // no checkpointing: forwarded at once
		if last := f.rec.evs[len(f.rec.evs)-1]; last.kind != 'b' {
			t.Fatalf("barrier not forwarded while calls are in flight: last event %v", last)
		}
		f.finish()
	}
}

// encodeAsyncForTest encodes the queue as snapshot does.
func encodeAsyncForTest(o *asyncOp[int, int]) []byte {
	b := []byte{asyncSnapVersion}
	b = appendUvarintForTest(b, uint64(o.queued))
	for _, s := range o.segs {
		for _, e := range s.recs {
			if !e.emitted {
				b = appendVarintForTest(b, e.ts)
				b = o.codec.Append(b, e.in)
			}
		}
	}
	return b
}

func appendUvarintForTest(b []byte, v uint64) []byte { return codec.AppendUvarint(b, v) }
func appendVarintForTest(b []byte, v int64) []byte   { return codec.AppendInt64(b, v) }

// TestAsyncFailuresToSideOutput: with a failure output, a record whose
// call fails permanently goes there, in its place in the order; without,
// it fails the operator with an error naming the record.
func TestAsyncFailures(t *testing.T) {
	f := newAsyncFixture(t, asyncConfig{concurrency: 2, capacity: 4}, 4)
	f.fail[1] = true
	fails := &failRecorder{}
	f.o.fails = &Emitter[AsyncFailure[int]]{out: fails, size: 4}
	f.o.push([]int{0, 1, 2}, []int64{1, 2, 3})
	f.finish()
	if len(fails.vals) != 1 || fails.vals[0].In != 1 || !IsPermanent(fails.vals[0].Err) || fails.vals[0].Time != 2 {
		t.Fatalf("failures %+v, want record 1", fails.vals)
	}
	var got []int
	for _, e := range f.rec.evs {
		if e.kind == 'r' {
			got = append(got, e.v)
		}
	}
	if !slices.Equal(got, []int{0, 20}) {
		t.Fatalf("output %v, want [0 20]", got)
	}
	if f.o.stats.failed.Load() != 1 {
		t.Fatalf("failed counter %d", f.o.stats.failed.Load())
	}

	f = newAsyncFixture(t, asyncConfig{concurrency: 2, capacity: 4}, 4)
	f.fail[0] = true
	f.o.push([]int{0}, []int64{1})
	f.collect()
	close(f.release[0])
	delete(f.running, 0)
	var oe *OperatorError
	func() {
		defer func() {
			p := recover()
			err, _ := p.(error)
			if !errors.As(err, &oe) {
				t.Fatalf("panic %v, want an OperatorError", p)
			}
		}()
		f.o.await()
	}()
	if !IsPermanent(oe.Err) || oe.Position == "" {
		t.Fatalf("error %v (position %q)", oe, oe.Position)
	}
}

type failRecorder struct{ vals []AsyncFailure[int] }

func (r *failRecorder) push(vals []AsyncFailure[int], _ []int64) { r.vals = append(r.vals, vals...) }
func (r *failRecorder) watermark(int64)                          {}
func (r *failRecorder) idle()                                    {}
func (r *failRecorder) barrier(uint64)                           {}
func (r *failRecorder) end()                                     {}

// TestAsyncBatching: records go in calls of batch size; a partial batch
// waits for more input until the queue is full or the input ends.
func TestAsyncBatching(t *testing.T) {
	f := newAsyncFixture(t, asyncConfig{concurrency: 2, capacity: 8, batchSize: 3, linger: time.Hour}, 10)
	f.o.push([]int{0, 1}, []int64{0, 0})
	if f.o.inflight != 0 {
		t.Fatalf("a batch of 2 of 3 went before its linger: %d calls", f.o.inflight)
	}
	f.o.push([]int{2, 3}, []int64{0, 0})
	if f.o.inflight != 1 || len(f.o.waiting) != 1 {
		t.Fatalf("%d calls, %d waiting; want one full batch sent and 1 waiting", f.o.inflight, len(f.o.waiting))
	}
	f.finish()
	var got []int
	for _, e := range f.rec.evs {
		if e.kind == 'r' {
			got = append(got, e.v)
		}
	}
	if !slices.Equal(got, []int{0, 10, 20, 30}) {
		t.Fatalf("output %v", got)
	}
	if c := f.o.stats.calls.Load(); c != 2 {
		t.Fatalf("%d calls for 4 records in batches of 3, want 2", c)
	}
}

// FuzzAsyncSnapshot: decoding any bytes as an AsyncMap snapshot returns
// an error or records that survive an encode and decode unchanged.
func FuzzAsyncSnapshot(f *testing.F) {
	c := codec.MustFor[string]()
	enc := func(vals []string, ts []int64) []byte {
		b := []byte{asyncSnapVersion}
		b = codec.AppendUvarint(b, uint64(len(vals)))
		for i, v := range vals {
			b = codec.AppendInt64(b, ts[i])
			b = c.Append(b, v)
		}
		return b
	}
	f.Add(enc(nil, nil))
	f.Add(enc([]string{"a", "bc"}, []int64{-5, 1 << 40}))
	f.Add([]byte{1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeAsyncSnapshot[string, int](b, c.Decode)
		if err != nil {
			return
		}
		vals := make([]string, len(es))
		ts := make([]int64, len(es))
		for i, e := range es {
			vals[i], ts[i] = e.in, e.ts
		}
		again, err := decodeAsyncSnapshot[string, int](enc(vals, ts), c.Decode)
		if err != nil {
			t.Fatalf("re-encoded snapshot of %x does not decode: %v", b, err)
		}
		for i, e := range again {
			if e.in != vals[i] || e.ts != ts[i] {
				t.Fatalf("record %d: %q@%d became %q@%d", i, vals[i], ts[i], e.in, e.ts)
			}
		}
		if len(again) != len(es) {
			t.Fatalf("%d records became %d", len(es), len(again))
		}
	})
}
