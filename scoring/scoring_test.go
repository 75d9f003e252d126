package scoring

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func readRows(t *testing.T, file string) [][]float64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var row []float64
		for _, s := range strings.Fields(line) {
			v := math.NaN()
			if s != "NA" && s != "NaN" {
				if v, err = strconv.ParseFloat(s, 64); err != nil {
					t.Fatal(err)
				}
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

func load(t *testing.T, kind, file string) Model {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(kind, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// vector orders a row of (temp, humidity, count) as m's features.
func vector(t *testing.T, m Model, row []float64) []float64 {
	idx := map[string]int{"temp": 0, "humidity": 1, "count": 2}
	var x []float64
	for _, f := range m.Features() {
		i, ok := idx[f]
		if !ok {
			t.Fatalf("unexpected feature %q", f)
		}
		x = append(x, row[i])
	}
	return x
}

// TestReference: predictions equal testdata/expected.txt, written by the
// independent reference.py (and derived by hand for three rows in
// testdata/README.md).
func TestReference(t *testing.T) {
	ens := load(t, KindTreeEnsemble, "testdata/ensemble.json")
	lr := load(t, KindLogistic, "testdata/logistic.json")
	in := readRows(t, "testdata/inputs.txt")
	want := readRows(t, "testdata/expected.txt")
	if len(in) != len(want) || len(in) == 0 {
		t.Fatalf("%d inputs, %d expected", len(in), len(want))
	}
	if n := ens.(*Trees).Trees(); n != 3 {
		t.Fatalf("%d trees", n)
	}
	for i, row := range in {
		got := []float64{ens.Predict(vector(t, ens, row)), lr.Predict(vector(t, lr, row))}
		for j := range got {
			w := want[i][j]
			if math.IsNaN(w) != math.IsNaN(got[j]) || math.Abs(got[j]-w) > 1e-12 {
				t.Errorf("row %d %v, model %d: got %v, want %v", i, row, j, got[j], w)
			}
		}
	}
}

// TestDumpList: the bare list get_dump returns (trees as JSON strings,
// or objects) is read with base_score 0.5 and reg:squarederror.
func TestDumpList(t *testing.T) {
	list := `["{\"nodeid\":0,\"split\":\"f0\",\"split_condition\":1.5,\"yes\":1,\"no\":2,\"missing\":2,\"children\":[{\"nodeid\":1,\"leaf\":1},{\"nodeid\":2,\"leaf\":2}]}", {"nodeid":0,"leaf":0.25}]`
	m, err := Parse(KindTreeEnsemble, []byte(list))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ x, want float64 }{{1, 1.75}, {1.5, 2.75}, {math.NaN(), 2.75}} {
		if got := m.Predict([]float64{c.x}); got != c.want {
			t.Errorf("f0=%v: %v, want %v", c.x, got, c.want)
		}
	}
	// float32 comparison: 1.4999999999 rounds to 1.5 in float32.
	if got := m.Predict([]float64{1.4999999999}); got != 2.75 {
		t.Errorf("float32 comparison: %v", got)
	}
}

func TestLinear(t *testing.T) {
	m, err := Parse(KindLinear, []byte(`{"intercept": 1, "coefficients": {"b": 2, "a": -1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f := m.Features(); len(f) != 2 || f[0] != "a" || f[1] != "b" {
		t.Fatalf("features %v", f)
	}
	if got := m.Predict([]float64{3, 4}); got != 6 {
		t.Errorf("got %v", got)
	}
	if got := m.Predict([]float64{math.NaN(), 4}); !math.IsNaN(got) {
		t.Errorf("missing feature: %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ kind, doc, want string }{
		{KindLinear, `{"coefficients": {}}`, "coefficients is missing"},
		{KindLinear, `{"intercept": 1, "coefs": {"a": 1}}`, "unknown field"},
		{KindLogistic, `[1]`, "want {"},
		{KindTreeEnsemble, `{"trees": []}`, "no trees"},
		{KindTreeEnsemble, `{"objective": "multi:softmax", "trees": [{"nodeid":0,"leaf":1}]}`, "not supported"},
		{KindTreeEnsemble, `{"objective": "binary:logistic", "base_score": 1, "trees": [{"nodeid":0,"leaf":1}]}`, "probability"},
		{KindTreeEnsemble, `[{"nodeid":0,"split":"a","split_condition":1,"yes":1,"no":2,"children":[{"nodeid":1,"leaf":1}]}]`, "no 2 is not one of its children"},
		{KindTreeEnsemble, `[{"nodeid":0,"split":"a","yes":1,"no":2,"children":[{"nodeid":1,"leaf":1},{"nodeid":2,"leaf":1}]}]`, "categorical"},
		{KindTreeEnsemble, `[{"nodeid":0}]`, "neither a leaf"},
		{KindTreeEnsemble, `[{"leaf":1}]`, "without nodeid"},
		{KindTreeEnsemble, `[{"nodeid":0,"split":"a","split_condition":1,"yes":1,"no":1,"children":[{"nodeid":1,"leaf":1},{"nodeid":1,"leaf":2}]}]`, "two children"},
		{"forest", `{}`, "unknown"},
		{KindLinear, "", "empty"},
		{KindTreeEnsemble, " \n", "empty"},
	}
	for _, c := range cases {
		_, err := Parse(c.kind, []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: err %v, want it to mention %q", c.kind, c.doc, err, c.want)
		}
	}
}

// FuzzParse: no input panics the decoders; an ensemble they accept
// predicts without panicking for any feature vector.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/ensemble.json", "testdata/logistic.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`[{"nodeid":0,"leaf":1}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range Kinds {
			m, err := Parse(k, data)
			if err != nil {
				continue
			}
			x := make([]float64, len(m.Features()))
			for i := range x {
				x[i] = float64(i) - 1
			}
			m.Predict(x)
			if i := len(x) - 1; i >= 0 {
				x[i] = math.NaN()
				m.Predict(x)
			}
		}
	})
}

func BenchmarkTrees(b *testing.B) {
	data, _ := os.ReadFile("testdata/ensemble.json")
	m, err := ParseTrees(data)
	if err != nil {
		b.Fatal(err)
	}
	x := []float64{22, 70, 4}
	b.ReportAllocs()
	for b.Loop() {
		m.Predict(x)
	}
}
