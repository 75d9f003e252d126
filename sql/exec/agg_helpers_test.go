package exec

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// tev is a test input row with its event time.
type tev struct {
	C  Change
	TS int64
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SQLAGG_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (SQLAGG_SEED)", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// fmtVals formats values with their kinds, so that an int 1 and a float
// 1 differ.
func fmtVals(vs []row.Value) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString("|")
		}
		fmt.Fprintf(&b, "%s:%s", v.Kind(), v.String())
	}
	return b.String()
}

// materialize applies a changelog: +I/+U add a row under its key (the
// first nk columns), -U/-D remove it, checking that the removed row is the
// one present.
func materialize(t *testing.T, log []Change, nk int) map[string]string {
	t.Helper()
	tab := map[string]string{}
	for i, c := range log {
		k := fmtVals(c.Vals[:nk])
		v := fmtVals(c.Vals)
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

func diffTables(t *testing.T, name string, got, want map[string]string) {
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

// runChanges runs build over the input rows (one split, one record per
// batch so that a watermark follows every record) and collects its output.
func runChanges(t *testing.T, evs []tev, par int, bound time.Duration, build func(stream.Stream[Change]) stream.Stream[Change]) []Change {
	t.Helper()
	env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1),
		stream.BoundedOutOfOrderness(func(e tev) int64 { return e.TS }, bound))
	in := stream.Map(src, func(e tev) Change { return e.C })
	got := stream.Collect(build(in))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got.Values()
}

// pacedSource is a one-split source of tev that stops handing out records
// at limit (while limit is set) and counts itself parked, so that a test
// can take a savepoint mid-input.
type pacedSource struct {
	data   []tev
	limit  *atomic.Int64
	parked *atomic.Int64
}

func (s *pacedSource) Splits(context.Context, int) ([]stream.Split[tev], error) {
	return []stream.Split[tev]{&pacedSplit{s: s}}, nil
}

type pacedSplit struct {
	s      *pacedSource
	pos    int
	parked bool
}

func (p *pacedSplit) ID() string { return "paced" }

func (p *pacedSplit) Read(_ context.Context, dst []tev) (int, error) {
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

func (p *pacedSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.pos)) }

func (p *pacedSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("bad position")
	}
	p.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

// sumSq is a user-defined aggregate: the sum of the squares of its
// non-null integer arguments (each argument of a row), with Retract and
// Merge.
type sumSq struct{}

func (sumSq) Name() string                   { return "SUMSQ" }
func (sumSq) CreateAccumulator() Accumulator { return &sumSqAcc{} }
func (sumSq) DecodeAccumulator(b []byte) (Accumulator, error) {
	s, n := binary.Varint(b)
	c, m := binary.Varint(b[max(n, 0):])
	if n <= 0 || m <= 0 || n+m != len(b) {
		return nil, fmt.Errorf("SUMSQ: bad accumulator")
	}
	return &sumSqAcc{sum: s, n: c}, nil
}

type sumSqAcc struct{ sum, n int64 }

func (a *sumSqAcc) Accumulate(args []row.Value) {
	for _, v := range args {
		if !v.IsNull() {
			a.sum += v.AsInt() * v.AsInt()
			a.n++
		}
	}
}

func (a *sumSqAcc) Retract(args []row.Value) {
	for _, v := range args {
		if !v.IsNull() {
			a.sum -= v.AsInt() * v.AsInt()
			a.n--
		}
	}
}

func (a *sumSqAcc) Merge(o Accumulator) {
	b := o.(*sumSqAcc)
	a.sum += b.sum
	a.n += b.n
}

func (a *sumSqAcc) Value() row.Value {
	if a.n == 0 {
		return row.Value{}
	}
	return row.Int(a.sum)
}

func (a *sumSqAcc) AppendBinary(dst []byte) []byte {
	return binary.AppendVarint(binary.AppendVarint(dst, a.sum), a.n)
}

func sortedStrings(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}
