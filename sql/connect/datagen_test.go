package connect

import (
	"sort"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

func TestDatagen(t *testing.T) {
	cols := []Column{col("id", types.TBigInt), col("name", types.TVarchar), col("score", types.Type{Kind: types.SmallInt}),
		col("price", types.DecimalOf(6, 2)), col("ratio", types.TDouble), col("ok", types.TBoolean), col("ts", types.TTimestamp),
		col("day", types.TDate), col("maybe", types.TInt)}
	opts := Options{"connector": "datagen", "seed": "42", "rows-per-second": "0", "number-of-rows": "1000",
		"fields.id.kind": "sequence", "fields.id.start": "10", "fields.id.end": "509",
		"fields.name.length": "5", "fields.score.min": "-3", "fields.score.max": "3", "fields.price.min": "1.50", "fields.price.max": "2.00",
		"fields.ratio.min": "10", "fields.ratio.max": "20", "fields.day.min": "2020-01-01", "fields.day.max": "2020-01-31",
		"fields.maybe.null-rate": "0.5"}
	src, info, err := OpenSource(SourceTable{Name: "g", Columns: cols, Options: opts}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Bounded {
		t.Fatal("bounded by the sequence")
	}
	one := flatten(readAll(t, src, 1))
	three := flatten(readAll(t, src, 3))
	if len(one) != 500 || len(three) != 500 {
		t.Fatalf("%d and %d rows, want 500 (the sequence 10..509 bounds number-of-rows)", len(one), len(three))
	}
	sort.Slice(three, func(i, j int) bool { return three[i].Vals[0].AsInt() < three[j].Vals[0].AsInt() })
	nulls := 0
	for i, c := range one {
		if !equalVals(c.Vals, three[i].Vals) {
			t.Fatalf("row %d differs across parallelism: %v vs %v", i, c.Vals, three[i].Vals)
		}
		v := c.Vals
		if v[0].AsInt() != int64(10+i) || len(v[1].AsString()) != 5 || v[2].AsInt() < -3 || v[2].AsInt() > 3 ||
			v[3].AsInt() < 150 || v[3].AsInt() > 200 || v[4].AsFloat() < 10 || v[4].AsFloat() >= 20 || v[5].Kind() != row.KindBool ||
			v[6] != row.Timestamp(datagenBaseTime) || v[7].AsInt() < 18262 || v[7].AsInt() > 18292 {
			t.Fatalf("row %d out of bounds: %v", i, v)
		}
		if v[8].IsNull() {
			nulls++
		}
	}
	if nulls < 150 || nulls > 350 {
		t.Fatalf("%d nulls of 500 at null-rate 0.5", nulls)
	}
	// Another seed, other rows.
	opts["seed"] = "43"
	src2, _, _ := OpenSource(SourceTable{Name: "g", Columns: cols, Options: opts}, Env{})
	other := flatten(readAll(t, src2, 1))
	if equalVals(other[0].Vals, one[0].Vals) && equalVals(other[1].Vals, one[1].Vals) {
		t.Fatal("the seed changes nothing")
	}
}
