package exec

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// aggEv is a test input row with its event time.
type aggEv struct {
	C  Change
	TS int64
}

func aggRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SQLAGG_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (SQLAGG_SEED)", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// aggFmt formats values with their kinds, so that an int 1 and a float
// 1 differ.
func aggFmt(vs []row.Value) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString("|")
		}
		fmt.Fprintf(&b, "%s:%s", v.Kind(), v.String())
	}
	return b.String()
}

// aggMaterialize applies a changelog: +I/+U add a row under its key (the
// first nk columns), -U/-D remove it, checking that the removed row is the
// one present.
func aggMaterialize(t *testing.T, log []Change, nk int) map[string]string {
	t.Helper()
	tab := map[string]string{}
	for i, c := range log {
		k := aggFmt(c.Vals[:nk])
		v := aggFmt(c.Vals)
		switch c.Op {
		case Insert, UpdateAfter:
			if old, ok := tab[k]; ok {
				t.Fatalf("change %d: %s %s while %s is present", i, c.Op, v, old)
			}
			tab[k] = v
		case UpdateBefore, Delete:
			if old, ok := tab[k]; !ok || old != v {
				t.Fatalf("change %d: %s %s but the table holds %q", i, c.Op, v, old)
			}
			delete(tab, k)
		}
	}
	return tab
}

func aggDiffTables(t *testing.T, name string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: key %s: got %q\n want %q", name, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: key %s: unexpected row %q", name, k, g)
		}
	}
}

// aggRunChanges runs build over the input rows (one split, one record per
// batch so that a watermark follows every record) and collects its output.
func aggRunChanges(t *testing.T, evs []aggEv, par int, bound time.Duration, build func(stream.Stream[Change]) stream.Stream[Change]) []Change {
	t.Helper()
	env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1),
		stream.BoundedOutOfOrderness(func(e aggEv) int64 { return e.TS }, bound))
	in := stream.Map(src, func(e aggEv) Change { return e.C })
	got := stream.Collect(build(in))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got.Values()
}

// aggPacedSource is a one-split source of aggEv that stops handing out records
// at limit (while limit is set) and counts itself parked, so that a test
// can take a savepoint mid-input.
type aggPacedSource struct {
	data   []aggEv
	limit  *atomic.Int64
	parked *atomic.Int64
}

func (s *aggPacedSource) Splits(context.Context, int) ([]stream.Split[aggEv], error) {
	return []stream.Split[aggEv]{&aggPacedSplit{s: s}}, nil
}

type aggPacedSplit struct {
	s      *aggPacedSource
	pos    int
	parked bool
}

func (p *aggPacedSplit) ID() string { return "paced" }

func (p *aggPacedSplit) Read(_ context.Context, dst []aggEv) (int, error) {
	end := len(p.s.data)
	if p.s.limit != nil {
		end = min(end, int(p.s.limit.Load()))
	}
	if p.pos >= end {
		if p.pos >= len(p.s.data) {
			return 0, io.EOF
		}
		if !p.parked && p.s.parked != nil {
			p.parked = true
			p.s.parked.Add(1)
		}
		time.Sleep(200 * time.Microsecond) // pacing while parked, not synchronisation
		return 0, nil
	}
	n := copy(dst[:min(len(dst), 7)], p.s.data[p.pos:end])
	p.pos += n
	return n, nil
}

func (p *aggPacedSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.pos)) }

func (p *aggPacedSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("bad position")
	}
	p.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

// aggSumSq is a user-defined aggregate: the sum of the squares of its
// non-null integer arguments (each argument of a row), with Retract and
// Merge.
type aggSumSq struct{}

func (aggSumSq) Name() string                   { return "SUMSQ" }
func (aggSumSq) CreateAccumulator() Accumulator { return &aggSumSqAcc{} }
func (aggSumSq) DecodeAccumulator(b []byte) (Accumulator, error) {
	s, n := binary.Varint(b)
	c, m := binary.Varint(b[max(n, 0):])
	if n <= 0 || m <= 0 || n+m != len(b) {
		return nil, fmt.Errorf("SUMSQ: bad accumulator")
	}
	return &aggSumSqAcc{sum: s, n: c}, nil
}

type aggSumSqAcc struct{ sum, n int64 }

func (a *aggSumSqAcc) Accumulate(args []row.Value) {
	for _, v := range args {
		if !v.IsNull() {
			a.sum += v.AsInt() * v.AsInt()
			a.n++
		}
	}
}

func (a *aggSumSqAcc) Retract(args []row.Value) {
	for _, v := range args {
		if !v.IsNull() {
			a.sum -= v.AsInt() * v.AsInt()
			a.n--
		}
	}
}

func (a *aggSumSqAcc) Merge(o Accumulator) {
	b := o.(*aggSumSqAcc)
	a.sum += b.sum
	a.n += b.n
}

func (a *aggSumSqAcc) Value() row.Value {
	if a.n == 0 {
		return row.Value{}
	}
	return row.Int(a.sum)
}

func (a *aggSumSqAcc) AppendBinary(dst []byte) []byte {
	return binary.AppendVarint(binary.AppendVarint(dst, a.sum), a.n)
}
