package connect

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
)

// allTypesColumns covers every storage with a ROW flattened in the middle.
func allTypesColumns() []Column {
	return []Column{
		col("id", types.TBigInt), col("flag", types.TBoolean), col("small", types.Type{Kind: types.SmallInt}),
		col("price", types.DecimalOf(10, 3)), col("ratio", types.TDouble), col("name", types.TVarchar),
		{Name: "p.city", Type: types.TVarchar, Path: []string{"p", "city"}}, {Name: "p.zip", Type: types.TInt, Path: []string{"p", "zip"}},
		col("ts", types.TTimestamp), col("day", types.TDate), col("tod", types.Type{Kind: types.Time}),
		col("tags", types.Type{Kind: types.Array, Elem: &types.TVarchar}),
	}
}

func allTypesRows() []exec.Change {
	mk := func(v ...row.Value) exec.Change { return exec.Change{Op: exec.Insert, Vals: v} }
	return []exec.Change{
		mk(row.Int(1), row.Bool(true), row.Int(-3), row.Int(1234500), row.Float(0.25), row.String("plain"),
			row.String("Boise"), row.Int(83701), row.Timestamp(1436918400123), row.Int(16631), row.Int(45296789), row.JSON(`["a","b"]`)),
		mk(row.Int(2), row.Bool(false), row.Int(0), row.Int(-1), row.Float(-1e300), row.String("comma, \"quote\"\nline"),
			row.Value{}, row.Value{}, row.Timestamp(-1), row.Int(-1), row.Int(0), row.JSON(`[]`)),
		mk(row.Int(3), row.Value{}, row.Value{}, row.Value{}, row.Value{}, row.String(""),
			row.String("x"), row.Value{}, row.Value{}, row.Value{}, row.Value{}, row.Value{}),
		mk(row.Int(4), row.Value{}, row.Value{}, row.Value{}, row.Value{}, row.Value{},
			row.Value{}, row.Value{}, row.Value{}, row.Value{}, row.Value{}, row.Value{}),
	}
}

func TestFileRoundTrip(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		for _, ts := range []string{"", "SQL", "ISO-8601", "EPOCH_MILLIS"} {
			t.Run(format+"/"+ts, func(t *testing.T) {
				dir := t.TempDir()
				opts := Options{"connector": "filesystem", "path": dir, "format": format}
				if ts != "" {
					opts[format+".timestamp-format"] = ts
				}
				sink, err := OpenSink(SinkTable{Name: "out", Columns: allTypesColumns(), Options: opts}, Env{})
				if err != nil {
					t.Fatal(err)
				}
				want := allTypesRows()
				writeAll(t, sink, want)
				src, info, err := OpenSource(SourceTable{Name: "in", Columns: allTypesColumns(), Options: opts}, Env{})
				if err != nil {
					t.Fatal(err)
				}
				if !info.Bounded {
					t.Fatal("a file source is bounded")
				}
				got := flatten(readAll(t, src, 2))
				sort.Slice(got, func(i, j int) bool { return got[i].Vals[0].AsInt() < got[j].Vals[0].AsInt() })
				if len(got) != len(want) {
					t.Fatalf("%d rows, want %d", len(got), len(want))
				}
				for i := range want {
					if !equalVals(got[i].Vals, want[i].Vals) {
						files, _ := filepath.Glob(filepath.Join(dir, "*"))
						data, _ := os.ReadFile(files[0])
						t.Fatalf("row %d:\n got %v\nwant %v\nfile:\n%s", i, got[i].Vals, want[i].Vals, data)
					}
				}
			})
		}
	}
}

func TestFileJSONReading(t *testing.T) {
	dir := t.TempDir()
	lines := `{"id":1,"ts":"2015-07-15T00:00:00.5Z","price":"12.3456","name":7,"p":{"zip":"5"}}
{"id":2,"ts":"2015-07-15 00:00:01","price":1e1,"extra":{"ignored":[1,2]},"p":null}

{"id":3,"ts":1436918402000,"name":{"a":1}}
`
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(lines), 0o644)
	cols := []Column{col("id", types.TInt), col("ts", types.TTimestamp), col("price", types.DecimalOf(8, 2)), col("name", types.TVarchar),
		{Name: "p.zip", Type: types.TInt, Path: []string{"p", "zip"}}}
	src, _, err := OpenSource(SourceTable{Name: "t", Columns: cols, Options: Options{"connector": "file", "path": dir, "format": "json"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(readAll(t, src, 1))
	want := [][]row.Value{
		{row.Int(1), row.Timestamp(1436918400500), row.Int(1235), row.String("7"), row.Int(5)},
		{row.Int(2), row.Timestamp(1436918401000), row.Int(1000), {}, {}},
		{row.Int(3), row.Timestamp(1436918402000), {}, row.String(`{"a":1}`), {}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows", len(got))
	}
	for i := range want {
		if !equalVals(got[i].Vals, want[i]) {
			t.Fatalf("row %d: got %v want %v", i, got[i].Vals, want[i])
		}
	}
}

func TestFileBadRecord(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), []byte("{\"id\":1}\n{\"id\":\"x\"}\n{\"id\":3}\n"), 0o644)
	cols := []Column{col("id", types.TInt)}
	src, _, err := OpenSource(SourceTable{Name: "t", Columns: cols, Options: Options{"connector": "file", "path": dir, "format": "json"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	splits, _ := src.Splits(t.Context(), 1)
	buf := make([]exec.Change, 10)
	_, err = splits[0].Read(t.Context(), buf)
	if err == nil || !strings.Contains(err.Error(), `field id (INT): "x" is not an integer`) || !strings.Contains(err.Error(), "ignore-parse-errors") {
		t.Fatalf("err = %v", err)
	}
	src, _, _ = OpenSource(SourceTable{Name: "t", Columns: cols, Options: Options{"connector": "file", "path": dir, "format": "json", "json.ignore-parse-errors": "true"}}, Env{})
	got := flatten(readAll(t, src, 1))
	if len(got) != 2 || got[1].Vals[0].AsInt() != 3 {
		t.Fatalf("got %v", got)
	}
}

func TestPrintSink(t *testing.T) {
	var out bytes.Buffer
	cols := []Column{col("id", types.TBigInt), col("final", types.DecimalOf(5, 2))}
	sink, err := OpenSink(SinkTable{Name: "q", Columns: cols, Options: Options{"connector": "print", "print-identifier": "q4"}, Updating: true}, Env{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, sink, []exec.Change{
		{Op: exec.Insert, Vals: []row.Value{row.Int(1), row.Int(150)}},
		{Op: exec.UpdateBefore, Vals: []row.Value{row.Int(1), row.Int(150)}},
		{Op: exec.UpdateAfter, Vals: []row.Value{row.Int(1), row.Int(275)}},
		{Op: exec.Delete, Vals: []row.Value{row.Int(1), row.Int(275)}},
	})
	want := `q4> {"op":"+I","id":1,"final":1.50}
q4> {"op":"-U","id":1,"final":1.50}
q4> {"op":"+U","id":1,"final":2.75}
q4> {"op":"-D","id":1,"final":2.75}
`
	if out.String() != want {
		t.Fatalf("got\n%s", out.String())
	}
	bh, err := OpenSink(SinkTable{Name: "b", Columns: cols, Options: Options{"connector": "blackhole"}, Updating: true}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, bh, make([]exec.Change, 12))
	if bh.(*Blackhole).Rows() != 12 {
		t.Fatal(bh.(*Blackhole).Rows())
	}
}

func TestParquetRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cols := []Column{col("id", types.TBigInt), col("flag", types.TBoolean), col("price", types.DecimalOf(10, 3)), col("ratio", types.TDouble),
		col("name", types.TVarchar), col("ts", types.TTimestamp), col("day", types.TDate), col("tags", types.Type{Kind: types.Array, Elem: &types.TVarchar})}
	var want []exec.Change
	for i := int64(0); i < 50; i++ {
		v := []row.Value{row.Int(i), row.Bool(i%2 == 0), row.Int(i*1234 - 7), row.Float(float64(i) / 4), row.String(strings.Repeat("x", int(i%5))),
			row.Timestamp(1436918400000 + i), row.Int(16000 + i), row.JSON(`["a"]`)}
		if i%7 == 0 {
			v[1], v[3], v[4], v[7] = row.Value{}, row.Value{}, row.Value{}, row.Value{}
		}
		want = append(want, exec.Change{Op: exec.Insert, Vals: v})
	}
	opts := Options{"connector": "filesystem", "path": dir, "format": "parquet"}
	sink, err := OpenSink(SinkTable{Name: "out", Columns: cols, Options: opts}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, sink, want)
	src, _, err := OpenSource(SourceTable{Name: "in", Columns: cols, Options: opts}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(readAll(t, src, 2))
	sort.Slice(got, func(i, j int) bool { return got[i].Vals[0].AsInt() < got[j].Vals[0].AsInt() })
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !equalVals(got[i].Vals, want[i].Vals) {
			t.Fatalf("row %d: got %v want %v", i, got[i].Vals, want[i].Vals)
		}
	}
}

func TestCSVOptions(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("1;NULL;\"x;y\"\n2;2015-07-15 00:00:01;\n\n3;1436918402000;\"multi\nline\"\n"), 0o644)
	cols := []Column{col("id", types.TInt), col("ts", types.TTimestamp), col("s", types.TVarchar)}
	src, _, err := OpenSource(SourceTable{Name: "t", Columns: cols, Options: Options{"connector": "filesystem", "path": dir, "format": "csv",
		"csv.field-delimiter": ";", "csv.null-literal": "NULL"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(readAll(t, src, 1))
	want := [][]row.Value{
		{row.Int(1), {}, row.String("x;y")},
		{row.Int(2), row.Timestamp(1436918401000), {}},
		{row.Int(3), row.Timestamp(1436918402000), row.String("multi\nline")},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows: %v", len(got), got)
	}
	for i := range want {
		if !equalVals(got[i].Vals, want[i]) {
			t.Fatalf("row %d: got %v want %v", i, got[i].Vals, want[i])
		}
	}
}
