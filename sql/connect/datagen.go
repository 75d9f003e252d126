package connect

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
	"golang.org/x/time/rate"
)

// datagenBaseTime is the time of row 0 of a datagen table's TIMESTAMP
// columns without bounds: 2015-07-15T00:00:00Z, the Nexmark base time,
// so that runs repeat.
const datagenBaseTime int64 = 1436918400000

// datagenField generates one column.
type datagenField struct {
	t        types.Type
	sequence bool
	start    int64 // sequence start (unscaled for DECIMAL)
	end      int64
	min, max int64 // random bounds, integers, DECIMAL unscaled, TIMESTAMP ms, DATE days
	fmin     float64
	fmax     float64
	bounded  bool // min/max given for a TIMESTAMP
	length   int
	nullRate float64
}

// Datagen is the 'datagen' connector's source: Flink's options
// ('rows-per-second', 'number-of-rows', 'fields.<col>.kind' = random |
// sequence, 'fields.<col>.min/max/length/start/end/null-rate'), with a
// 'seed': row i is a function of the seed and i alone, so any split
// layout gives the same rows.
type Datagen struct {
	fields []datagenField
	seed   uint64
	rows   int64 // -1: unbounded
	rps    float64
}

func openDatagen(t SourceTable) (stream.Source[exec.Change], Info, error) {
	d := &Datagen{rows: -1}
	seed, err := optInt(t.Options, "seed", 0)
	if err != nil {
		return nil, Info{}, err
	}
	d.seed = uint64(seed)
	rps, err := optInt(t.Options, "rows-per-second", 10000)
	if err != nil {
		return nil, Info{}, err
	}
	if rps < 0 {
		return nil, Info{}, fmt.Errorf("option 'rows-per-second' = %d must not be negative (0: as fast as possible)", rps)
	}
	d.rps = float64(rps)
	if _, ok := t.Options["number-of-rows"]; ok {
		if d.rows, err = optInt(t.Options, "number-of-rows", 0); err != nil {
			return nil, Info{}, err
		}
		if d.rows < 0 {
			return nil, Info{}, fmt.Errorf("option 'number-of-rows' = %d must not be negative", d.rows)
		}
	}
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	for k := range t.Options {
		if !strings.HasPrefix(k, "fields.") {
			continue
		}
		rest := strings.TrimPrefix(k, "fields.")
		j := strings.LastIndexByte(rest, '.')
		if j < 0 || !contains(names, rest[:j]) {
			name := rest
			if j >= 0 {
				name = rest[:j]
			}
			return nil, Info{}, fmt.Errorf("option '%s' names no column '%s'%s (columns: %s)", k, name, didYouMean(name, names), strings.Join(names, ", "))
		}
	}
	for _, c := range t.Columns {
		f, err := datagenFieldOf(c, t.Options)
		if err != nil {
			return nil, Info{}, fmt.Errorf("column %s: %w", c.Name, err)
		}
		if f.sequence {
			n := f.end - f.start + 1
			if d.rows < 0 || n < d.rows {
				d.rows = n
			}
		}
		d.fields = append(d.fields, f)
	}
	desc := "datagen"
	if d.rows >= 0 {
		desc += fmt.Sprintf(", %d rows", d.rows)
	} else {
		desc += ", unbounded"
	}
	if rps > 0 {
		desc += fmt.Sprintf(", %d rows/s", rps)
	}
	return d, Info{Bounded: d.rows >= 0, Description: desc}, nil
}

func datagenFieldOf(c Column, opts Options) (datagenField, error) {
	p := "fields." + c.Name + "."
	f := datagenField{t: c.Type, length: 100}
	if c.Metadata != "" {
		return f, fmt.Errorf("the datagen connector has no metadata")
	}
	kind, err := optEnum(opts, p+"kind", "random", "random", "sequence")
	if err != nil {
		return f, err
	}
	f.sequence = kind == "sequence"
	if f.nullRate, err = optFloat(opts, p+"null-rate", 0); err != nil {
		return f, err
	}
	if f.nullRate < 0 || f.nullRate > 1 {
		return f, fmt.Errorf("option '%snull-rate' must be between 0 and 1", p)
	}
	parse := func(key string, def int64) (int64, error) {
		v, ok := opts[key]
		if !ok {
			return def, nil
		}
		x, err := parseText(v, c.Type)
		if err != nil {
			return 0, fmt.Errorf("option '%s': %w", key, err)
		}
		return x.AsInt(), nil
	}
	t := c.Type
	if f.sequence {
		switch {
		case t.IsInteger(), t.Kind == types.Decimal && t.Scale == 0, t.IsString():
		default:
			return f, fmt.Errorf("a sequence needs an integer or string column, not %s", t)
		}
		for _, k := range []string{"start", "end"} {
			if _, ok := opts[p+k]; !ok {
				return f, fmt.Errorf("'%skind' = 'sequence' needs '%sstart' and '%send'", p, p, p)
			}
		}
		seqType := t
		if t.IsString() {
			seqType = types.TBigInt
		}
		for _, k := range []struct {
			key string
			dst *int64
		}{{"start", &f.start}, {"end", &f.end}} {
			x, err := parseText(opts[p+k.key], seqType)
			if err != nil {
				return f, fmt.Errorf("option '%s%s': %w", p, k.key, err)
			}
			*k.dst = x.AsInt()
		}
		if f.end < f.start {
			return f, fmt.Errorf("'%send' = %d is below '%sstart' = %d", p, f.end, p, f.start)
		}
		return f, nil
	}
	switch {
	case t.Kind == types.Boolean:
	case t.IsInteger():
		lo, hi := intRange(t.Kind)
		if f.min, err = parse(p+"min", lo); err != nil {
			return f, err
		}
		if f.max, err = parse(p+"max", hi); err != nil {
			return f, err
		}
	case t.Kind == types.Decimal:
		digits := min(t.Precision, 18)
		hi := pow10[digits] - 1
		if f.min, err = parse(p+"min", 0); err != nil {
			return f, err
		}
		if f.max, err = parse(p+"max", hi); err != nil {
			return f, err
		}
	case t.Kind == types.Float || t.Kind == types.Double:
		if f.fmin, err = optFloat(opts, p+"min", 0); err != nil {
			return f, err
		}
		if f.fmax, err = optFloat(opts, p+"max", 1); err != nil {
			return f, err
		}
		if f.fmax < f.fmin {
			return f, fmt.Errorf("'%smax' is below '%smin'", p, p)
		}
		return f, nil
	case t.IsString():
		n, err := optInt(opts, p+"length", 100)
		if err != nil {
			return f, err
		}
		if n < 0 || n > 1<<20 {
			return f, fmt.Errorf("option '%slength' = %d must be 0 to 1048576", p, n)
		}
		f.length = int(n)
		return f, nil
	case t.IsTimestamp(), t.Kind == types.Date:
		_, hasMin := opts[p+"min"]
		_, hasMax := opts[p+"max"]
		if hasMin != hasMax {
			return f, fmt.Errorf("give both '%smin' and '%smax', or neither (then the row's time from %s at 'rows-per-second')", p, p, "2015-07-15")
		}
		f.bounded = hasMin
		if f.min, err = parse(p+"min", 0); err != nil {
			return f, err
		}
		if f.max, err = parse(p+"max", 0); err != nil {
			return f, err
		}
	default:
		return f, fmt.Errorf("the datagen connector cannot generate %s", t)
	}
	if f.max < f.min {
		return f, fmt.Errorf("'%smax' is below '%smin'", p, p)
	}
	return f, nil
}

func intRange(k types.Kind) (int64, int64) {
	switch k {
	case types.TinyInt:
		return math.MinInt8, math.MaxInt8
	case types.SmallInt:
		return math.MinInt16, math.MaxInt16
	case types.Int:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

func optFloat(opts Options, key string, def float64) (float64, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("option '%s' = '%s' is not a number", key, v)
	}
	return f, nil
}

// Row fills vals with row i.
func (d *Datagen) Row(i int64, vals []row.Value) {
	r := rand.New(rand.NewPCG(d.seed, uint64(i)))
	for j := range d.fields {
		f := &d.fields[j]
		if f.nullRate > 0 && r.Float64() < f.nullRate {
			vals[j] = row.Value{}
			continue
		}
		vals[j] = f.value(i, r, d.rps)
	}
}

func (f *datagenField) value(i int64, r *rand.Rand, rps float64) row.Value {
	t := f.t
	if f.sequence {
		n := f.start + i
		if t.IsString() {
			return row.String(strconv.FormatInt(n, 10))
		}
		return row.Int(n)
	}
	switch {
	case t.Kind == types.Boolean:
		return row.Bool(r.IntN(2) == 1)
	case t.IsInteger(), t.Kind == types.Decimal:
		return row.Int(uniform(r, f.min, f.max))
	case t.Kind == types.Float || t.Kind == types.Double:
		return row.Float(f.fmin + r.Float64()*(f.fmax-f.fmin))
	case t.IsString():
		b := make([]byte, f.length)
		const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
		for k := range b {
			b[k] = alnum[r.IntN(len(alnum))]
		}
		return row.String(string(b))
	case t.IsTimestamp(), t.Kind == types.Date:
		var ms int64
		if f.bounded {
			ms = uniform(r, f.min, f.max)
		} else {
			ms = datagenBaseTime
			if rps > 0 {
				ms += int64(float64(i) * 1000 / rps)
			}
			if t.Kind == types.Date {
				ms = floorDiv(ms, msPerDay)
			}
		}
		if t.Kind == types.Date {
			return row.Int(ms)
		}
		return row.Timestamp(ms)
	}
	return row.Value{}
}

// uniform draws from [lo, hi].
func uniform(r *rand.Rand, lo, hi int64) int64 {
	span := uint64(hi) - uint64(lo)
	if span == math.MaxUint64 {
		return int64(r.Uint64())
	}
	return lo + int64(r.Uint64N(span+1))
}

// Splits implements stream.Source: split k of n makes rows k, k+n, ...
// at rows-per-second / n each.
func (d *Datagen) Splits(_ context.Context, parallelism int) ([]stream.Split[exec.Change], error) {
	n := max(parallelism, 1)
	out := make([]stream.Split[exec.Change], n)
	for k := range out {
		s := &datagenSplit{d: d, id: fmt.Sprintf("datagen-%d-of-%d", k, n), next: int64(k), step: int64(n)}
		if d.rps > 0 {
			per := d.rps / float64(n)
			s.lim = rate.NewLimiter(rate.Limit(per), max(int(per), 1))
		}
		out[k] = s
	}
	return out, nil
}

type datagenSplit struct {
	d          *Datagen
	id         string
	next, step int64
	lim        *rate.Limiter
	slab       []row.Value
}

func (s *datagenSplit) ID() string { return s.id }

func (s *datagenSplit) Read(ctx context.Context, dst []exec.Change) (int, error) {
	want := len(dst)
	if s.d.rows >= 0 {
		left := (s.d.rows - s.next + s.step - 1) / s.step
		if left <= 0 {
			return 0, io.EOF
		}
		want = int(min(int64(want), left))
	}
	if s.lim != nil {
		want = min(want, s.lim.Burst())
		if err := s.lim.WaitN(ctx, want); err != nil {
			return 0, ctx.Err()
		}
	}
	w := len(s.d.fields)
	for k := 0; k < want; k++ {
		if len(s.slab) < w {
			s.slab = make([]row.Value, w*max(want, 64))
		}
		vals := s.slab[:w:w]
		s.slab = s.slab[w:]
		s.d.Row(s.next, vals)
		dst[k] = exec.Change{Op: exec.Insert, Vals: vals}
		s.next += s.step
	}
	return want, nil
}

// Position is the number of the next row, 8 bytes big-endian.
func (s *datagenSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(s.next)) }

func (s *datagenSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("datagen split %s: position of %d bytes, want 8", s.id, len(pos))
	}
	n := int64(binary.BigEndian.Uint64(pos))
	if n < 0 || n%s.step != s.next%s.step {
		return fmt.Errorf("datagen split %s: row %d is not in this split", s.id, n)
	}
	s.next = n
	return nil
}
