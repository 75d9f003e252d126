package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/stream"
)

// sqlOrders returns n random orders {ts, user, amount, status} with
// event times moving forward with some disorder (within 2s).
func sqlOrders(n int, seed uint64) []map[string]any {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := int64(1767225600000)
	var out []map[string]any
	for i := 0; i < n; i++ {
		ts := base + int64(i)*250 - rng.Int64N(2000)
		st := "paid"
		if rng.IntN(4) == 0 {
			st = "cancelled"
		}
		out = append(out, map[string]any{
			"ts": ts, "user": fmt.Sprintf("u%d", rng.IntN(5)),
			"amount": float64(rng.IntN(10000)) / 100, "status": st, "qty": rng.IntN(5) + 1,
		})
	}
	return out
}

// A windowed count over a JSON file: the SQL window aggregation on the
// pipeline's event time gives what grouping the records by user and
// 10-second window gives.
func TestSQLStepWindowedCount(t *testing.T) {
	recs := sqlOrders(400, 1)
	spec := `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: 2s}
  types: {amount: float}
steps:
  - sql: |
      SELECT user, window_start, window_end, COUNT(*) AS n, SUM(amount) AS total
      FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
      GROUP BY user, window_start, window_end
sink: {stdout: {}}
parallelism: 2
`
	rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(recs)})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		user  string
		start int64
	}
	type agg struct {
		n     int
		total float64
	}
	want := map[key]*agg{}
	for _, r := range recs {
		ts := r["ts"].(int64)
		k := key{r["user"].(string), ts - ((ts%10000)+10000)%10000}
		if want[k] == nil {
			want[k] = &agg{}
		}
		want[k].n++
		want[k].total += r["amount"].(float64)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		start, err := time.Parse(time.RFC3339, r["window_start"].(string))
		if err != nil {
			t.Fatal(err)
		}
		end, _ := time.Parse(time.RFC3339, r["window_end"].(string))
		k := key{r["user"].(string), start.UnixMilli()}
		w := want[k]
		if w == nil {
			t.Fatalf("unexpected row %v", r)
		}
		n, _ := r["n"].(json.Number).Int64()
		total, _ := r["total"].(json.Number).Float64()
		if int(n) != w.n || math.Abs(total-w.total) > 1e-6 || end.Sub(start) != 10*time.Second {
			t.Errorf("row %v; want n %d total %v", r, w.n, w.total)
		}
	}
}

// A filter and projection: declared column types convert the input's
// values; the result's columns are the fields for the next step.
func TestSQLStepFilterProjection(t *testing.T) {
	recs := sqlOrders(200, 2)
	spec := `
source:
  file: {path: $DIR/in.jsonl}
steps:
  - sql:
      query: SELECT user, amount * qty AS value, UPPER(status) AS st FROM input WHERE status = 'paid' AND amount > 20
      columns: {qty: INT, amount: "DECIMAL(10, 2)"}
  - filter: value > 50
  - map: {who: user, value: value, st: st}
sink: {stdout: {}}
`
	rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(recs)})
	if err != nil {
		t.Fatal(err)
	}
	var want []map[string]any
	for _, r := range recs {
		if r["status"] != "paid" || r["amount"].(float64) <= 20 {
			continue
		}
		v := math.Round(r["amount"].(float64)*100) * float64(r["qty"].(int)) / 100
		if v <= 50 {
			continue
		}
		want = append(want, map[string]any{"who": r["user"], "value": v, "st": "PAID"})
	}
	got, exp := canon(rows), canon(toNumbers(want))
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		t.Errorf("got %d rows:\n%v\nwant %d:\n%v", len(got), got, len(exp), exp)
	}
}

func toNumbers(rs []map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range rs {
		b, _ := json.Marshal(r)
		var m map[string]any
		json.Unmarshal(b, &m)
		out = append(out, m)
	}
	return out
}

// An updating GROUP BY goes to a byte sink as a changelog: applying the
// changes by key gives the batch result.
func TestSQLStepUpdatingChangelog(t *testing.T) {
	recs := sqlOrders(300, 3)
	spec := `
source:
  file: {path: $DIR/in.jsonl}
steps:
  - sql:
      query: SELECT user, COUNT(*) AS n, SUM(qty) AS q FROM input GROUP BY user
      columns: {qty: INT}
sink: {stdout: {}}
parallelism: 2
`
	rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(recs)})
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]string{}
	for _, r := range rows {
		u := r["user"].(string)
		v := fmt.Sprintf("%v/%v", r["n"], r["q"])
		switch r["op"] {
		case "+I", "+U":
			table[u] = v
		case "-U", "-D":
			if table[u] != v {
				t.Fatalf("retraction %v of a row the table does not hold (%q)", r, table[u])
			}
			delete(table, u)
		default:
			t.Fatalf("row without op: %v", r)
		}
	}
	want := map[string]string{}
	n, q := map[string]int{}, map[string]int{}
	for _, r := range recs {
		n[r["user"].(string)]++
		q[r["user"].(string)] += r["qty"].(int)
	}
	for u := range n {
		want[u] = fmt.Sprintf("%d/%d", n[u], q[u])
	}
	if fmt.Sprint(table) != fmt.Sprint(want) {
		t.Errorf("table %v, want %v", table, want)
	}
}

// An updating GROUP BY into PostgreSQL with key: the table ends up
// holding the batch result; a second run over the same input leaves the
// same rows.
func TestSQLStepUpdatingPostgres(t *testing.T) {
	dsn := testPostgres(t)
	table := fmt.Sprintf("sluice_sqlstep_%d_%d", time.Now().UnixNano(), rand.Uint32())
	ctx := context.Background()
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			conn.Close(ctx)
		}
	})
	recs := sqlOrders(500, 4)
	spec := fmt.Sprintf(`
source:
  file: {path: $DIR/in.jsonl}
steps:
  - filter: status == "paid"
  - sql:
      query: SELECT user, COUNT(*) AS n, MAX(amount) AS top FROM input GROUP BY user
      columns: {amount: DOUBLE}
sink:
  postgres: {dsn: %q, table: %s, key: [user]}
parallelism: 2
`, dsn, table)
	for run := 0; run < 2; run++ {
		if _, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(recs)}); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := conn.Query(ctx, "SELECT \"user\", n, top FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rs.Next() {
			var u string
			var n int64
			var top float64
			if err := rs.Scan(&u, &n, &top); err != nil {
				t.Fatal(err)
			}
			got[u] = fmt.Sprintf("%d/%.2f", n, top)
		}
		rs.Close()
		conn.Close(ctx)
		n, top := map[string]int{}, map[string]float64{}
		for _, r := range recs {
			if r["status"] != "paid" {
				continue
			}
			u := r["user"].(string)
			n[u]++
			top[u] = math.Max(top[u], r["amount"].(float64))
		}
		want := map[string]string{}
		for u := range n {
			want[u] = fmt.Sprintf("%d/%.2f", n[u], top[u])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("run %d: table %v, want %v", run, got, want)
		}
	}
}

// queryFieldRefs names the input fields a query uses, not its aliases.
func TestQueryFieldRefs(t *testing.T) {
	spec := `
source: {file: {path: x.jsonl}, event_time: {field: ts}}
steps:
  - sql: |
      SELECT u, cnt FROM (
        SELECT user AS u, window_start, COUNT(DISTINCT sku) AS cnt
        FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)) AS t
        WHERE t.status = 'paid'
        GROUP BY user, window_start, window_end) WHERE cnt > 1
sink: {stdout: {}}
`
	s, err := Parse("spec.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	names := p.InputSchema().Names()
	sort.Strings(names)
	if fmt.Sprint(names) != "[sku status ts user]" {
		t.Errorf("input fields %v", names)
	}
	if got := p.OutputSchema().String(); got != "u, cnt" && got != "u string, cnt int" {
		t.Logf("output schema %s", got)
	}
}

// A sql step's operators checkpoint with the pipeline: a windowed and an
// updating-free query under exactly-once with frequent checkpoints
// writes what a run without checkpoints writes, and a second run from
// the final checkpoint writes nothing more.
func TestSQLStepExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, `{"ts":%d,"user":"u%d","amount":%d}`+"\n", 1_000_000+i*37, i%11, i%5)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := func(out, extra string) string {
		return fmt.Sprintf(`
source:
  file: {path: %s/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: 1s}
  types: {amount: int}
steps:
  - sql: |
      SELECT user, window_start, COUNT(*) AS n, SUM(amount) AS total
      FROM TABLE(HOP(TABLE input, DESCRIPTOR(rowtime), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
      WHERE amount > 0
      GROUP BY user, window_start, window_end
sink:
  file: {path: %s/%s}
parallelism: 2
%s`, dir, dir, out, extra)
	}
	run := func(src string) stream.CheckpointStats {
		t.Helper()
		s, err := Parse("eo.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		j, err := p.Start(context.Background(), &Host{DataDir: dir}, WithStreamOptions(stream.WithBatchSize(16)))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		return j.CheckpointStats()
	}
	run(spec("oracle", ""))
	want := readParts(t, filepath.Join(dir, "oracle"))
	eo := spec("eo", "delivery: exactly_once\ncheckpoint: {interval: 1ms, dir: "+dir+"/chk}\n")
	t.Logf("checkpoints: %+v", run(eo))
	got := readParts(t, filepath.Join(dir, "eo"))
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("exactly-once output (%d lines) differs from the oracle (%d lines)", len(got), len(want))
	}
	run(eo)
	if again := readParts(t, filepath.Join(dir, "eo")); len(again) != len(got) {
		t.Fatalf("second run from the final checkpoint wrote %d more lines", len(again)-len(got))
	}
}
