package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	statepebble "github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/window"
)

type cev struct {
	I   int64 // global index
	Key string
	Ts  int64
	V   int64
}

type cres struct {
	Key   string
	Start int64
	Sum   int64
}

const cwin = 100 // tumbling window size (ms)

// genEvents makes splits of events with increasing timestamps per split.
func genEvents(seed int64, splits, perSplit, keys int) [][]cev {
	rnd := rand.New(rand.NewSource(seed))
	out := make([][]cev, splits)
	i := int64(0)
	for s := range splits {
		ts := int64(0)
		for range perSplit {
			ts += int64(rnd.Intn(3))
			out[s] = append(out[s], cev{I: i, Key: fmt.Sprintf("k%d", rnd.Intn(keys)), Ts: ts, V: int64(rnd.Intn(100))})
			i++
		}
	}
	return out
}

func oracle(data [][]cev) []cres {
	sums := map[cres]int64{}
	for _, s := range data {
		for _, e := range s {
			sums[cres{Key: e.Key, Start: e.Ts - e.Ts%cwin}] += e.V
		}
	}
	var out []cres
	for k, v := range sums {
		k.Sum = v
		out = append(out, k)
	}
	sortRes(out)
	return out
}

func sortRes(r []cres) {
	slices.SortFunc(r, func(a, b cres) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return int(a.Sum - b.Sum)
	})
}

// pacedSource reads its splits a few records at a time; a split does not
// read past limit (when set) until the limit is raised.
type pacedSource struct {
	data  [][]cev
	chunk int
	pace  time.Duration
	limit *atomic.Int64
	// parked counts splits that reached the limit.
	parked *atomic.Int64
	// firstRead, when set, gets the time (Unix ns) of the first read.
	firstRead *atomic.Int64
	// holdAt, with release set, holds every split at that index until
	// release reports true.
	holdAt  int
	release func() bool
}

func (s *pacedSource) Splits(context.Context, int) ([]Split[cev], error) {
	out := make([]Split[cev], len(s.data))
	for i := range s.data {
		out[i] = &pacedSplit{s: s, id: fmt.Sprintf("p%d", i), data: s.data[i]}
	}
	return out, nil
}

type pacedSplit struct {
	s      *pacedSource
	id     string
	data   []cev
	pos    int
	parked bool
}

func (p *pacedSplit) ID() string { return p.id }

func (p *pacedSplit) Read(_ context.Context, dst []cev) (int, error) {
	if p.s.firstRead != nil && p.s.firstRead.Load() == 0 {
		p.s.firstRead.CompareAndSwap(0, time.Now().UnixNano())
	}
	end := len(p.data)
	if p.s.limit != nil {
		if l := int(p.s.limit.Load()); l < end {
			end = l
		}
	}
	if p.s.release != nil && p.pos >= p.s.holdAt && !p.s.release() {
		time.Sleep(200 * time.Microsecond) // pacing, not synchronisation
		return 0, nil
	}
	if p.pos >= end {
		if p.pos >= len(p.data) {
			return 0, io.EOF
		}
		if !p.parked && p.s.parked != nil {
			p.parked = true
			p.s.parked.Add(1)
		}
		time.Sleep(200 * time.Microsecond) // pacing, not synchronisation
		return 0, nil
	}
	n := copy(dst[:min(len(dst), p.s.chunk)], p.data[p.pos:end])
	p.pos += n
	time.Sleep(p.s.pace) // pacing: let checkpoints happen mid-input
	if p.pos >= len(p.data) {
		return n, io.EOF
	}
	return n, nil
}

func (p *pacedSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.pos)) }

func (p *pacedSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("%w: %d bytes", ErrBadPosition, len(pos))
	}
	p.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

// txStore is the outside world of a transactional sink: staged and
// committed transactions survive restarts (like files on disk).
type txStore struct {
	mu        sync.Mutex
	staged    map[string][]cres
	committed map[string][]cres
	runs      atomic.Int64
}

func newTxStore() *txStore {
	return &txStore{staged: map[string][]cres{}, committed: map[string][]cres{}}
}

// hasCommitted reports whether some checkpoint committed a transaction.
func (s *txStore) hasCommitted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.committed) > 0
}

func (s *txStore) results() []cres {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cres
	for _, rs := range s.committed {
		out = append(out, rs...)
	}
	sortRes(out)
	return out
}

type txSink struct{ st *txStore }

func (s txSink) Open(_ context.Context, info SubtaskInfo) (SinkWriter[Windowed[string, int64]], error) {
	return &txWriter{st: s.st, sub: info.Index, run: s.st.runs.Add(1)}, nil
}

type txWriter struct {
	st  *txStore
	sub int
	run int64
	seq int
	buf []cres
}

func (w *txWriter) Write(_ context.Context, rs []Windowed[string, int64]) error {
	for _, r := range rs {
		w.buf = append(w.buf, cres{Key: r.Key, Start: r.Window.Start, Sum: r.Value})
	}
	return nil
}

func (w *txWriter) Close(context.Context) error { return nil }

func (w *txWriter) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	w.seq++
	name := fmt.Sprintf("%d/%d/%d/%d", w.sub, w.run, id, w.seq)
	w.st.mu.Lock()
	w.st.staged[name] = w.buf
	w.st.mu.Unlock()
	w.buf = nil
	return checkpoint.Transaction(name), nil
}

func (w *txWriter) Commit(_ context.Context, tx checkpoint.Transaction) error {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	return w.st.commit(string(tx))
}

func (s *txStore) commit(name string) error {
	if rs, ok := s.staged[name]; ok {
		s.committed[name] = rs
		delete(s.staged, name)
		return nil
	}
	if _, ok := s.committed[name]; ok {
		return nil // idempotent
	}
	return fmt.Errorf("unknown transaction %s", name)
}

func (w *txWriter) Abort(_ context.Context, tx checkpoint.Transaction) error {
	w.st.mu.Lock()
	delete(w.st.staged, string(tx))
	w.st.mu.Unlock()
	return nil
}

func (w *txWriter) Recover(_ context.Context, txs []checkpoint.Transaction) error {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	for _, tx := range txs {
		if err := w.st.commit(string(tx)); err != nil {
			return err
		}
	}
	// Abort what this subtask staged in earlier runs and no checkpoint
	// named.
	for name := range w.st.staged {
		if strings.HasPrefix(name, fmt.Sprintf("%d/", w.sub)) && !strings.HasPrefix(name, fmt.Sprintf("%d/%d/", w.sub, w.run)) {
			delete(w.st.staged, name)
		}
	}
	return nil
}

// buildAgg builds source -> map(f) -> keyBy -> tumbling sum -> sink.
func buildAgg(env *Env, src Source[cev], f func(cev) cev, st *txStore) {
	s := FromSource(env, "events", src, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	buildAggTo(Map(s, f, Name("maybe-panic")), txSink{st})
}

func buildAggTo(s Stream[cev], sink Sink[Windowed[string, int64]]) {
	w := Window(KeyBy(s, func(e cev) string { return e.Key }), window.Tumbling(cwin*time.Millisecond))
	To(Aggregate(w, Sum(func(e cev) int64 { return e.V }), Name("sum")), sink, Name("sink"))
}

// cgap is the session gap (ms) of the session variants of the tests.
const cgap = 6

// buildSessionAgg is buildAgg with session windows of gap cgap.
func buildSessionAgg(env *Env, src Source[cev], f func(cev) cev, st *txStore) {
	s := Map(FromSource(env, "events", src, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }}), f, Name("maybe-panic"))
	w := Window(KeyBy(s, func(e cev) string { return e.Key }), window.Session(cgap*time.Millisecond))
	To(Aggregate(w, Sum(func(e cev) int64 { return e.V }), Name("sum")), txSink{st}, Name("sink"))
}

// sessionOracle is oracle for sessions of gap cgap (a result's Start is
// its session's start).
func sessionOracle(data [][]cev) []cres {
	byKey := map[string][]cev{}
	for _, s := range data {
		for _, e := range s {
			byKey[e.Key] = append(byKey[e.Key], e)
		}
	}
	var out []cres
	for k, evs := range byKey {
		slices.SortFunc(evs, func(a, b cev) int { return int(a.Ts - b.Ts) })
		cur := cres{Key: k, Start: evs[0].Ts}
		for i, e := range evs {
			if i > 0 && e.Ts-evs[i-1].Ts >= cgap {
				out = append(out, cur)
				cur = cres{Key: k, Start: e.Ts}
			}
			cur.Sum += e.V
		}
		out = append(out, cur)
	}
	sortRes(out)
	return out
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sameResults(t *testing.T, got, want []cres) {
	t.Helper()
	if len(got) != len(want) {
		g := map[cres]int{}
		for _, r := range got {
			g[r]++
		}
		var diff []string
		for _, r := range want {
			if g[r] == 0 {
				diff = append(diff, fmt.Sprintf("missing %+v", r))
			}
			g[r]--
		}
		for r, n := range g {
			if n != 0 {
				diff = append(diff, fmt.Sprintf("extra %+v x%d", r, n))
			}
		}
		slices.Sort(diff)
		if len(diff) > 20 {
			diff = diff[:20]
		}
		t.Fatalf("%d results, want %d: %s", len(got), len(want), strings.Join(diff, "; "))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("result %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestRecoverFromPanicExactlyOnce: a map panics once at a random record;
// the job restarts from its last checkpoint and the committed output is
// exactly the oracle's.
func TestRecoverFromPanicExactlyOnce(t *testing.T) {
	for _, backend := range []string{"memory", "pebble", "session-memory", "session-pebble"} {
		for seed := range int64(3) {
			t.Run(fmt.Sprint(backend, "-", seed), func(t *testing.T) { testRecoverFromPanic(t, backend, seed) })
		}
	}
}

// pebbleOpt is the Pebble state backend of the tests, with a small cache
// and memtable.
func pebbleOpt(t *testing.T) Option {
	return WithStateBackend(statepebble.Factory(statepebble.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 256 << 10}))
}

func testRecoverFromPanic(t *testing.T, backend string, seed int64) {
	{
		{
			data := genEvents(seed, 3, 1500, 20)
			// A record in the second half of a split; the splits wait at
			// record 700 for a completed checkpoint, so that the restart
			// restores one.
			rnd := rand.New(rand.NewSource(seed))
			panicAt := data[rnd.Intn(3)][750+rnd.Intn(750)].I
			var fired atomic.Bool
			st := newTxStore()
			var logs bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
			opts := []Option{WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
				WithCheckpointing(t.TempDir(), 10*time.Millisecond), WithRestartPolicy(3, time.Millisecond), WithLogger(logger)}
			if strings.HasSuffix(backend, "pebble") {
				opts = append(opts, pebbleOpt(t))
			}
			env := New(opts...)
			build, want := buildAgg, oracle(data)
			if strings.HasPrefix(backend, "session") {
				build, want = buildSessionAgg, sessionOracle(data)
			}
			build(env, &pacedSource{data: data, chunk: 10, pace: 500 * time.Microsecond, holdAt: 700, release: st.hasCommitted}, func(e cev) cev {
				if e.I == panicAt && fired.CompareAndSwap(false, true) {
					panic("injected failure")
				}
				return e
			}, st)
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !fired.Load() {
				t.Fatal("the failure was not injected")
			}
			mu.Lock()
			l := logs.String()
			mu.Unlock()
			if !strings.Contains(l, "restarting") || !strings.Contains(l, "restoring checkpoint") {
				t.Fatalf("no restart logged: %s", l)
			}
			sameResults(t, st.results(), want)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestRescaleFromSavepoint takes a savepoint at parallelism 2 half-way
// through the input and finishes the job at parallelism 1 and 4: the
// committed output is exact.
func TestRescaleFromSavepoint(t *testing.T) {
	data := genEvents(7, 4, 1000, 30)
	for _, c := range []struct {
		op  string
		par int
	}{{"window", 1}, {"window", 4}, {"keyed-process", 1}, {"keyed-process", 3}, {"window-pebble", 1}, {"window-pebble", 3}, {"keyed-process-pebble", 1}, {"keyed-process-pebble", 3},
		{"session", 3}, {"session-pebble", 1}, {"session-pebble", 4}} {
		par := c.par
		want := oracle(data)
		if strings.HasPrefix(c.op, "session") {
			want = sessionOracle(data)
		}
		build := func(env *Env, src Source[cev], st *txStore) {
			if strings.HasPrefix(c.op, "session") {
				buildSessionAgg(env, src, func(e cev) cev { return e }, st)
				return
			}
			if strings.HasPrefix(c.op, "window") {
				buildAgg(env, src, func(e cev) cev { return e }, st)
				return
			}
			s := FromSource(env, "events", src, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
			buildKeyedAggTo(Map(s, func(e cev) cev { return e }, Name("maybe-panic")), txSink{st})
		}
		t.Run(fmt.Sprintf("%s-%d", c.op, par), func(t *testing.T) {
			dir := t.TempDir()
			st := newTxStore()
			limit := &atomic.Int64{}
			limit.Store(500)
			parked := &atomic.Int64{}
			var pb []Option
			if strings.HasSuffix(c.op, "-pebble") {
				pb = append(pb, pebbleOpt(t))
			}
			env := New(append(pb, WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
				WithCheckpointing(dir, time.Hour), WithLogger(quietLog()))...)
			build(env, &pacedSource{data: data, chunk: 10, limit: limit, parked: parked}, st)
			job, err := env.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for parked.Load() < 4 {
				if time.Now().After(deadline) {
					t.Fatal("sources did not reach the half")
				}
				time.Sleep(time.Millisecond)
			}
			path, err := job.StopWithSavepoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Wait(); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.op, "keyed") && strings.HasSuffix(c.op, "-pebble") {
				// The window state went to Pebble: the savepoint holds the
				// operator's .winkv files.
				var winkv int
				_ = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, _ error) error {
					if strings.HasSuffix(p, ".winkv") {
						winkv++
					}
					return nil
				})
				if winkv == 0 {
					t.Fatal("no .winkv file in the savepoint: the windows did not use the Pebble backend")
				}
			}
			half := len(st.results())
			if half == 0 || half >= len(want) {
				t.Fatalf("%d results after the savepoint, want some of %d", half, len(want))
			}
			env2 := New(append(pb, WithParallelism(par), WithBatchSize(16), WithMaxParallelism(16),
				WithCheckpointing(dir, 5*time.Millisecond), WithRestoreFrom(path), WithLogger(quietLog()))...)
			build(env2, &pacedSource{data: data, chunk: 50}, st)
			if err := env2.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameResults(t, st.results(), want)
		})
	}
}

// TestKeyedProcessRecoverExactlyOnce: the same aggregation written as a
// KeyedProcess with map state and event-time timers survives a panic and
// a restart from its checkpoint with exact output.
func TestKeyedProcessRecoverExactlyOnce(t *testing.T) {
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) { testKeyedProcessRecover(t, backend) })
	}
}

func testKeyedProcessRecover(t *testing.T, backend string) {
	data := genEvents(11, 3, 1500, 20)
	rnd := rand.New(rand.NewSource(11))
	panicAt := data[rnd.Intn(3)][750+rnd.Intn(750)].I
	var fired atomic.Bool
	st := newTxStore()
	opts := []Option{WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
		WithCheckpointing(t.TempDir(), 10*time.Millisecond), WithRestartPolicy(3, time.Millisecond), WithLogger(quietLog())}
	if backend == "pebble" {
		opts = append(opts, WithStateBackend(statepebble.Factory(statepebble.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 256 << 10})))
	}
	env := New(opts...)
	src := FromSource(env, "events", &pacedSource{data: data, chunk: 10, pace: 500 * time.Microsecond, holdAt: 700, release: st.hasCommitted},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	m := Map(src, func(e cev) cev {
		if e.I == panicAt && fired.CompareAndSwap(false, true) {
			panic("injected failure")
		}
		return e
	})
	buildKeyedAggTo(m, txSink{st})
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !fired.Load() {
		t.Fatal("the failure was not injected")
	}
	sameResults(t, st.results(), oracle(data))
}

// buildKeyedAggTo is buildAggTo written as a KeyedProcess with map state
// and event-time timers.
func buildKeyedAggTo(m Stream[cev], sink Sink[Windowed[string, int64]]) {
	out := KeyedProcess(KeyBy(m, func(e cev) string { return e.Key }), func(ctx *KeyedContext[string, Windowed[string, int64]]) (KeyedProcessFunc[string, cev, Windowed[string, int64]], error) {
		sums, err := state.NewMap[string, int64, int64](ctx.State(), "sums")
		if err != nil {
			return nil, err
		}
		return KeyedProcessFuncs[string, cev, Windowed[string, int64]]{
			Element: func(c *KeyedContext[string, Windowed[string, int64]], e cev) {
				start := e.Ts - e.Ts%cwin
				s, _ := sums.Get(start)
				sums.Put(start, s+e.V)
				c.RegisterEventTimer(start + cwin - 1)
			},
			Timer: func(c *KeyedContext[string, Windowed[string, int64]], tm Timer) {
				start := tm.Time - cwin + 1
				s, _ := sums.Get(start)
				sums.Delete(start)
				c.Emit(Windowed[string, int64]{Key: c.Key(), Window: window.Window{Start: start, End: start + cwin}, Value: s})
			},
		}, nil
	})
	To(out, sink, Name("sink"))
}

// TestRestoreRefusesOtherPipeline: a checkpoint directory of one pipeline
// is refused by a pipeline with different operators, with a message naming
// the difference; a corrupt latest checkpoint is skipped for the previous.
func TestRestoreRefusesOtherPipeline(t *testing.T) {
	dir := t.TempDir()
	data := genEvents(3, 2, 200, 5)
	st := newTxStore()
	env := New(WithParallelism(2), WithMaxParallelism(16), WithCheckpointing(dir, time.Hour), WithLogger(quietLog()))
	buildAgg(env, &pacedSource{data: data, chunk: 10}, func(e cev) cev { return e }, st)
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameResults(t, st.results(), oracle(data))

	env2 := New(WithParallelism(2), WithMaxParallelism(16), WithCheckpointing(dir, time.Hour), WithLogger(quietLog()))
	s := FromSource(env2, "events", &pacedSource{data: data, chunk: 10}, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	buildAggTo(Filter(s, func(cev) bool { return true }, Name("only")), txSink{st})
	err := env2.Execute(context.Background())
	if !errors.Is(err, checkpoint.ErrIncompatible) || !strings.Contains(err.Error(), `"only"`) {
		t.Fatalf("err = %v", err)
	}

	// The same pipeline again: it restores the final checkpoint and emits
	// nothing twice.
	env3 := New(WithParallelism(3), WithMaxParallelism(16), WithCheckpointing(dir, time.Hour), WithLogger(quietLog()))
	buildAgg(env3, &pacedSource{data: data, chunk: 10}, func(e cev) cev { return e }, st)
	if err := env3.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameResults(t, st.results(), oracle(data))
}
