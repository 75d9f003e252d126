package exec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	statepebble "github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

// heldSource reads its events a few at a time and holds at index holdAt
// until release reports true (a checkpoint committed).
type heldSource struct {
	evs     []ev
	holdAt  int
	release func() bool
}

func (s *heldSource) Splits(context.Context, int) ([]stream.Split[ev], error) {
	return []stream.Split[ev]{&heldSplit{s: s}}, nil
}

type heldSplit struct {
	s   *heldSource
	pos int
}

func (p *heldSplit) ID() string { return "held" }

func (p *heldSplit) Read(_ context.Context, dst []ev) (int, error) {
	if p.pos >= len(p.s.evs) {
		return 0, io.EOF
	}
	if p.pos >= p.s.holdAt && !p.s.release() {
		time.Sleep(200 * time.Microsecond) // pacing, not synchronisation
		return 0, nil
	}
	end := min(len(p.s.evs), p.pos+3)
	if p.pos < p.s.holdAt {
		end = min(end, p.s.holdAt)
	}
	n := copy(dst, p.s.evs[p.pos:end])
	p.pos += n
	time.Sleep(100 * time.Microsecond) // pacing: let checkpoints happen mid-input
	return n, nil
}

func (p *heldSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.pos)) }

func (p *heldSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("bad position: %d bytes", len(pos))
	}
	p.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

// txStore is the outside world of the transactional sink: staged and
// committed transactions survive restarts.
type txStore struct {
	mu        sync.Mutex
	staged    map[string][]exec.Change
	committed map[string][]exec.Change
	runs      atomic.Int64
}

func newTxStore() *txStore {
	return &txStore{staged: map[string][]exec.Change{}, committed: map[string][]exec.Change{}}
}

func (s *txStore) hasCommitted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.committed) > 0
}

func (s *txStore) outs() []out {
	s.mu.Lock()
	defer s.mu.Unlock()
	var o []out
	for _, cs := range s.committed {
		for _, c := range cs {
			o = append(o, out{C: c})
		}
	}
	return o
}

func (s *txStore) commit(name string) error {
	if cs, ok := s.staged[name]; ok {
		s.committed[name] = cs
		delete(s.staged, name)
		return nil
	}
	if _, ok := s.committed[name]; ok {
		return nil
	}
	return fmt.Errorf("unknown transaction %s", name)
}

type txSink struct{ st *txStore }

func (s txSink) Open(_ context.Context, info stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	return &txWriter{st: s.st, sub: info.Index, run: s.st.runs.Add(1)}, nil
}

type txWriter struct {
	st  *txStore
	sub int
	run int64
	seq int
	buf []exec.Change
}

func (w *txWriter) Write(_ context.Context, cs []exec.Change) error {
	w.buf = append(w.buf, cs...)
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
	for name := range w.st.staged {
		if strings.HasPrefix(name, fmt.Sprintf("%d/", w.sub)) && !strings.HasPrefix(name, fmt.Sprintf("%d/%d/", w.sub, w.run)) {
			delete(w.st.staged, name)
		}
	}
	return nil
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

// TestCheckpointRestore: the join and rank operators run with
// checkpoints; after a checkpoint has committed, an injected failure
// restarts the job from it (state restored from the checkpoint files),
// and the committed changelog materialises to the oracle's result.
func TestCheckpointRestore(t *testing.T) {
	for _, c := range []struct{ op, backend string }{
		{"join-full", "memory"}, {"join-anti", "memory"}, {"interval-left", "memory"}, {"rank-rownum", "memory"},
		{"join-full", "pebble"}, {"interval-left", "pebble"}, {"rank-rownum", "pebble"},
	} {
		op := c.op
		t.Run(op+"/"+c.backend, func(t *testing.T) {
			r := rand.New(rand.NewPCG(42, uint64(len(op))))
			var ls, rs []ev
			var want map[string]int
			var build func(l, r stream.Stream[exec.Change]) stream.Stream[exec.Change]
			switch op {
			case "join-full", "join-anti":
				kind := exec.JoinFull
				if op == "join-anti" {
					kind = exec.JoinAnti
				}
				var lf, rf [][]row.Value
				ls, lf = changelog(r, 400, 6, func(i int) int64 { return int64(i) })
				rs, rf = changelog(r, 400, 6, func(i int) int64 { return int64(i) })
				want = nestedLoop(kind, lf, rf, []int{0}, []int{0}, oddSum, 2, 2)
				build = func(l, r stream.Stream[exec.Change]) stream.Stream[exec.Change] {
					return exec.Join(l, r, []int{0}, []int{0}, kind, oddSum, 2, 2, exec.JoinConfig{Name: "j"})
				}
			case "interval-left":
				ls, rs = onTime(r, 400, 5, 8), onTime(r, 400, 5, 8)
				want = map[string]int{}
				for _, l := range ls {
					n := 0
					for _, rr := range rs {
						if d := rr.Ts - l.Ts; !l.C.Vals[0].IsNull() && !rr.C.Vals[0].IsNull() && row.Equal(l.C.Vals[0], rr.C.Vals[0]) && d >= -3 && d <= 4 {
							want[rowStr(cat(l.C.Vals, rr.C.Vals, 3, 3))]++
							n++
						}
					}
					if n == 0 {
						want[rowStr(cat(l.C.Vals, nil, 3, 3))]++
					}
				}
				build = func(l, r stream.Stream[exec.Change]) stream.Stream[exec.Change] {
					return exec.IntervalJoin(l, r, []int{0}, []int{0}, exec.JoinLeft, -3*time.Millisecond, 4*time.Millisecond, nil, 3, 3, exec.JoinConfig{Name: "ij"})
				}
			case "rank-rownum":
				ls = rankInput(r, 600, true)
				order := []exec.SortKey{{Col: 1, Desc: true}, {Col: 2, NullsFirst: true}}
				want = rankOracle(ls, 0, order, 3, true)
				build = func(l, _ stream.Stream[exec.Change]) stream.Stream[exec.Change] {
					return exec.Rank(l, []int{0}, order, 3, true, exec.RankConfig{Name: "top"})
				}
			}
			st := newTxStore()
			var fired atomic.Bool
			var seen atomic.Int64 // records of the left input read, over all runs
			panicAt := len(ls) * 3 / 4
			var logs bytes.Buffer
			var mu sync.Mutex
			opts := []stream.Option{stream.WithParallelism(2), stream.WithBatchSize(8), stream.WithMaxParallelism(16),
				stream.WithCheckpointing(t.TempDir(), 5*time.Millisecond), stream.WithRestartPolicy(3, time.Millisecond),
				stream.WithCheckpointTimeout(10 * time.Second),
				stream.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))}
			if c.backend == "pebble" {
				opts = append(opts, stream.WithStateBackend(statepebble.Factory(statepebble.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 256 << 10})))
			}
			env := stream.New(opts...)
			src := func(name string, evs []ev, inject bool) stream.Stream[exec.Change] {
				s := stream.FromSource(env, name, &heldSource{evs: evs, holdAt: len(evs) / 2, release: st.hasCommitted},
					stream.WatermarkStrategy[ev]{Timestamp: func(e ev) int64 { return e.Ts }, MaxOutOfOrderness: 8 * time.Millisecond})
				return stream.Map(s, func(e ev) exec.Change {
					if inject && seen.Add(1) >= int64(panicAt) && fired.CompareAndSwap(false, true) {
						panic("injected failure")
					}
					return e.C
				}, stream.Name(name+"-change"), stream.Parallelism(1))
			}
			var rsrc stream.Stream[exec.Change]
			if rs != nil {
				rsrc = src("r", rs, false)
			}
			stream.To(build(src("l", ls, true), rsrc), txSink{st}, stream.Name("sink"))
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !fired.Load() {
				t.Fatal("the failure was not injected")
			}
			mu.Lock()
			l := logs.String()
			mu.Unlock()
			if !strings.Contains(l, "restoring checkpoint") {
				t.Fatalf("no restore logged: %s", l)
			}
			sameMultiset(t, materialise(t, st.outs()), want)
		})
	}
}
