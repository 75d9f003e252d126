package exec

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// accSamples builds accumulators with every kind of state by running
// random changelogs through the group calls.
func accSamples(r *rand.Rand) []*accRow {
	var out []*accRow
	for _, retract := range []bool{true, false} {
		p, err := compileAggs(groupCalls(true), retract, false)
		if err != nil {
			panic(err)
		}
		evs, _ := genChangelog(r, 60, !retract)
		a := p.newAcc()
		for _, e := range evs {
			sign := int64(1)
			if e.C.Op.IsRetract() {
				sign = -1
			}
			a.rows += sign
			p.accumulate(a, e.C.Vals, sign)
		}
		a.out = []row.Value{row.Int(1), row.String("x")}
		a.keyVals = []row.Value{row.Int(1)}
		a.touched, a.timer, a.dirty, a.flushAt = 5, 9, true, 7
		out = append(out, a, p.newAcc())
	}
	return out
}

// accReencode encodes sample i, decodes it and encodes the decoded
// accumulator again (after fixup when fix is set), returning the first
// encoding and the second.
func accReencode(t *testing.T, p *aggPlan, i int, a *accRow, fix bool) (b, b2 []byte) {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var d accRow
	if err := d.UnmarshalBinary(b); err != nil {
		t.Fatalf("sample %d: %v", i, err)
	}
	if fix {
		p.fixup(&d)
	}
	b2, err = d.MarshalBinary()
	if err != nil {
		t.Fatalf("sample %d: re-encoding a restored accumulator: %v", i, err)
	}
	return b, b2
}

// accSameResults checks that got gives a's results, for the retracting
// plan's samples (i 0).
func accSameResults(t *testing.T, p *aggPlan, i int, a, got *accRow, after string) {
	t.Helper()
	if i%2 != 0 || i >= 2 {
		return
	}
	want, have := make([]row.Value, len(p.calls)), make([]row.Value, len(p.calls))
	p.results(a, want)
	p.results(got, have)
	if !aggEqualVals(have, want) {
		t.Fatalf("sample %d: results %s after %s, want %s", i, aggFmt(have), after, aggFmt(want))
	}
}

// TestAccRoundTrip: an accumulator decoded from its encoding encodes to
// the same bytes and gives the same results.
func TestAccRoundTrip(t *testing.T) {
	r := aggRand(t)
	p, _ := compileAggs(groupCalls(true), true, false)
	for i, a := range accSamples(r) {
		b, b2 := accReencode(t, p, i, a, true)
		// Map iteration order differs between encodings of DISTINCT sets;
		// compare lengths and results rather than bytes.
		if len(b) != len(b2) {
			t.Fatalf("sample %d: %d bytes re-encoded as %d", i, len(b), len(b2))
		}
		var d accRow
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		p.fixup(&d)
		accSameResults(t, p, i, a, &d, "decoding")
	}
}

// TestAccReencodeUndecoded: an accumulator restored from a checkpoint and
// not touched before the next one (a window or group that saw no row
// since the restore) still holds its user accumulators encoded; the next
// checkpoint must write them as they are, and they must decode to the
// same results. It failed the job ("user accumulators not decoded yet").
func TestAccReencodeUndecoded(t *testing.T) {
	r := aggRand(t)
	p, _ := compileAggs(groupCalls(true), true, false)
	for i, a := range accSamples(r) {
		_, b2 := accReencode(t, p, i, a, false) // no fixup: user accumulators still raw
		var e accRow
		if err := e.UnmarshalBinary(b2); err != nil {
			t.Fatalf("sample %d: decoding the re-encoding: %v", i, err)
		}
		p.fixup(&e)
		accSameResults(t, p, i, a, &e, "re-encoding")
	}
}

// FuzzAccDecode: checkpoint bytes come from disk; decoding anything must
// fail cleanly or give an accumulator that encodes again.
func FuzzAccDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, a := range accSamples(r) {
		b, err := a.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{accVersion})
	f.Add([]byte{1}) // version 1, still read
	f.Fuzz(func(t *testing.T, b []byte) {
		var a accRow
		if err := a.UnmarshalBinary(b); err != nil {
			return
		}
		a.userRaw = nil // user bytes are the function's to decode
		if _, err := a.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDecimalAvg(t *testing.T) {
	for _, c := range []struct {
		sum, n int64
		up     int
		want   int64
	}{
		{5, 2, 0, 3},    // 2.5 → 3
		{-5, 2, 0, -3},  // -2.5 → -3
		{7, 3, 0, 2},    // 2.33 → 2
		{-7, 3, 0, -2},  // -2.33 → -2
		{1, 3, 4, 3333}, // 0.3333
		{2, 3, 4, 6667}, // 0.66667 → 0.6667
		{1, 8, 2, 13},   // 0.125 → 0.13
		{-1, 8, 2, -13},
		{10_000_000_000_000_000, 3, 3, 3333333333333333333}, // 10^16×10^3 overflows int64: the big path
		{125, 10, -1, 1},   // 12.5 / 10^1 → 1.25 → 1
		{155, 10, -1, 2},   // 1.55 → 2
		{-155, 10, -1, -2}, // -1.55 → -2
	} {
		if got, ok := decimalAvg(c.sum>>63, c.sum, c.n, c.up); !ok || got != c.want {
			t.Errorf("decimalAvg(%d, %d, %d) = %d, %v, want %d", c.sum, c.n, c.up, got, ok, c.want)
		}
	}
}

// TestDecimalSumWide: a DECIMAL SUM/AVG is kept in 128 bits: past 18
// digits SUM is NULL with an error (not a wrapped value), AVG is exact
// while the average fits, a retraction brings the sum back, and the high
// word survives a checkpoint; a version-1 encoding (no high word) still
// decodes.
func TestDecimalSumWide(t *testing.T) {
	dec := types.DecimalOf(18, 2)
	calls := []AggCall{
		{Kind: AggSum, Arg: 0, Filter: -1, ArgType: dec, ResultType: types.DecimalOf(38, 2)},
		{Kind: AggAvg, Arg: 0, Filter: -1, ArgType: dec, ResultType: types.DecimalOf(38, 6)},
	}
	p, err := compileAggs(calls, true, false)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	p.onError = func(err error) { errs = append(errs, err) }
	big := row.Int(math.MaxInt64 - 1) // 92233720368547758.06
	a := p.newAcc()
	p.accumulate(a, []row.Value{big}, 1)
	p.accumulate(a, []row.Value{big}, 1)
	res := make([]row.Value, 2)
	p.results(a, res)
	// AVG = big at scale 6 does not fit either: both NULL, an error each.
	if !res[0].IsNull() || !res[1].IsNull() || len(errs) != 2 {
		t.Fatalf("SUM, AVG past 18 digits = %s, %s with %d errors, want NULL, NULL with 2", res[0], res[1], len(errs))
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var d accRow
	if err := d.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	p.accumulate(&d, []row.Value{big}, -1)
	p.accumulate(&d, []row.Value{row.Int(-3)}, 1)
	p.results(&d, res)
	if want := int64(math.MaxInt64 - 4); res[0].IsNull() || res[0].AsInt() != want {
		t.Fatalf("SUM after a retraction back into range = %s, want %d", res[0], want)
	}
	// Version 1: the same layout without the high word.
	small := p.newAcc()
	p.accumulate(small, []row.Value{row.Int(250)}, 1)
	v2, _ := small.MarshalBinary()
	v1 := aggDropHi(t, v2)
	var o accRow
	if err := o.UnmarshalBinary(v1); err != nil {
		t.Fatalf("version 1: %v", err)
	}
	p.results(&o, res)
	if res[0].AsInt() != 250 || res[1].AsInt() != 2500000 {
		t.Fatalf("version 1 results %s, %s, want 2.50 and 2.500000", res[0], res[1])
	}
}

// aggDropHi rewrites a version-2 encoding of an accumulator with two
// SUM/AVG calls and nothing else as version 1, by re-encoding it without
// the high words.
func aggDropHi(t *testing.T, v2 []byte) []byte {
	t.Helper()
	var a accRow
	if err := a.UnmarshalBinary(v2); err != nil {
		t.Fatal(err)
	}
	for i := range a.calls {
		if a.calls[i].hi != 0 {
			t.Fatal("aggDropHi: a call has a high word")
		}
	}
	b := []byte{1}
	b = binary.AppendVarint(b, a.rows)
	b = binary.AppendVarint(b, a.touched)
	b = binary.AppendVarint(b, a.timer)
	b = binary.AppendVarint(b, a.flushAt)
	b = append(b, 0)
	b = aggAppendVals(b, a.keyVals)
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(len(a.calls)))
	for _, c := range a.calls {
		b = binary.AppendVarint(b, c.n)
		b = binary.AppendVarint(b, c.i)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.f))
		b = c.v.AppendBinary(b)
		b = binary.AppendUvarint(b, c.seq)
		b = binary.AppendUvarint(b, 0)
		b = append(b, 0)
	}
	return binary.AppendUvarint(b, 0)
}
