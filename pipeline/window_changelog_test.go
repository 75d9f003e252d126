package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/row"
)

// cdcEvent is a change event as postgres_cdc writes it, with PostgreSQL's
// default REPLICA IDENTITY: the before image of an update or a delete
// holds only the key.
func cdcEvent(op string, id int, after map[string]any) map[string]any {
	e := map[string]any{"op": op}
	if op == "u" || op == "d" {
		e["before"] = map[string]any{"id": id}
	}
	if after != nil {
		after["id"] = id
		e["after"] = after
	}
	return e
}

// TestChangelogWindowStep: a window step over a changelog source's rows
// (random inserts, updates that move rows between groups and windows,
// deletes; before images with the key only; event times out of order)
// emits, for each group and window, count, sum, min, max, avg and
// count_distinct of the rows the window holds once the changes are
// netted: a deleted row and an update's old row are retracted from the
// window their insertion went to.
func TestChangelogWindowStep(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	type liveRow struct {
		grp  string
		qty  any
		name string
		ts   int64
	}
	live := map[int]liveRow{}
	var evs []map[string]any
	base := int64(1_700_000_000_000)
	newRow := func(i int) liveRow {
		var qty any = r.IntN(50)
		if r.IntN(10) == 0 {
			qty = float64(r.IntN(100)) / 4
		}
		if r.IntN(15) == 0 {
			qty = nil
		}
		return liveRow{grp: fmt.Sprint("g", r.IntN(3)), qty: qty, name: fmt.Sprint("n", r.IntN(4)), ts: base + int64(i)*400 - r.Int64N(3000)}
	}
	after := func(l liveRow) map[string]any {
		return map[string]any{"grp": l.grp, "qty": l.qty, "name": l.name, "ts": l.ts}
	}
	next := 0
	for i := range 700 {
		var ids []int
		for id := range live {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		switch op := r.IntN(5); {
		case len(ids) == 0 || op < 2:
			l := newRow(i)
			live[next] = l
			evs = append(evs, cdcEvent([]string{"c", "r"}[r.IntN(2)], next, after(l)))
			next++
		case op < 4:
			id := ids[r.IntN(len(ids))]
			l := newRow(i)
			live[id] = l
			evs = append(evs, cdcEvent("u", id, after(l)))
		default:
			id := ids[r.IntN(len(ids))]
			delete(live, id)
			evs = append(evs, cdcEvent("d", id, nil))
		}
	}
	spec := `
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
  event_time: {field: ts, max_out_of_orderness: 1h}
steps:
  - window:
      key: [grp]
      tumbling: 10s
      aggregate: {n: count(), q: count(qty), total: sum(qty), lo: min(qty), hi: max(qty), mean: avg(qty), names: count_distinct(name)}
sink: {stdout: {}}
parallelism: 2
`
	rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(evs)})
	if err != nil {
		t.Fatal(err)
	}
	type acc struct {
		n, q     int
		isFloat  bool
		sum      float64
		lo, hi   float64
		names    map[string]bool
		hasValue bool
	}
	want := map[string]*acc{}
	for _, l := range live {
		k := fmt.Sprintf("%s@%d", l.grp, l.ts-l.ts%10000)
		a := want[k]
		if a == nil {
			a = &acc{names: map[string]bool{}}
			want[k] = a
		}
		a.n++
		a.names[l.name] = true
		if l.qty == nil {
			continue
		}
		var x float64
		switch v := l.qty.(type) {
		case int:
			x = float64(v)
		case float64:
			x, a.isFloat = v, true
		}
		a.q++
		a.sum += x
		if !a.hasValue || x < a.lo {
			a.lo = x
		}
		if !a.hasValue || x > a.hi {
			a.hi = x
		}
		a.hasValue = true
	}
	num := func(v any) string {
		if v == nil {
			return "null"
		}
		f, err := v.(json.Number).Float64()
		if err != nil {
			return "bad " + fmt.Sprint(v)
		}
		return fmt.Sprintf("%.6f", f)
	}
	var got, exp []string
	for _, row := range rows {
		got = append(got, fmt.Sprintf("%s@%s n=%s q=%s total=%s lo=%s hi=%s mean=%s names=%s", row["grp"], row["window_start"],
			num(row["n"]), num(row["q"]), num(row["total"]), num(row["lo"]), num(row["hi"]), num(row["mean"]), num(row["names"])))
		// An integer sum stays an integer until a float is in the window.
		if tot, ok := row["total"].(json.Number); ok && !strings.ContainsAny(tot.String(), ".eE") {
			k := fmt.Sprintf("%s@%s", row["grp"], row["window_start"])
			if a := want[k]; a != nil && a.isFloat && a.sum != math.Trunc(a.sum) {
				t.Errorf("%s: total %s is an integer but the window holds floats", k, tot)
			}
		}
	}
	f := func(x float64) string { return fmt.Sprintf("%.6f", x) }
	for k, a := range want {
		total, lo, hi, mean := "null", "null", "null", "null"
		if a.q > 0 {
			total, lo, hi, mean = f(a.sum), f(a.lo), f(a.hi), f(a.sum/float64(a.q))
		}
		exp = append(exp, fmt.Sprintf("%s n=%s q=%s total=%s lo=%s hi=%s mean=%s names=%s", k, f(float64(a.n)), f(float64(a.q)), total, lo, hi, mean, f(float64(len(a.names)))))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		var diff []string
		for _, g := range got {
			if !slices.Contains(exp, g) {
				diff = append(diff, "unexpected "+g)
			}
		}
		for _, w := range exp {
			if !slices.Contains(got, w) {
				diff = append(diff, "missing    "+w)
			}
		}
		t.Fatalf("%d events, %d live rows: %d windows, want %d:\n%s", len(evs), len(live), len(got), len(exp), strings.Join(diff, "\n"))
	}
	t.Logf("%d events, %d live rows, %d windows", len(evs), len(live), len(got))

	// The same windows from a sql step's window aggregation.
	sqlSpec := `
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
  event_time: {field: ts, max_out_of_orderness: 1h}
steps:
  - sql:
      query: SELECT grp, window_start, COUNT(*) AS n, SUM(qty) AS total, MAX(qty) AS hi FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY grp, window_start, window_end
      columns: {qty: DOUBLE}
sink: {stdout: {}}
parallelism: 2
`
	rows, _, err = runSpec(t, sqlSpec, map[string]string{"in.jsonl": jsonLines(evs)})
	if err != nil {
		t.Fatal(err)
	}
	got, exp = nil, nil
	for _, row := range rows {
		if row["op"] != nil {
			t.Fatalf("an updating row from a window aggregation: %v", row)
		}
		ws, err := time.Parse(time.RFC3339Nano, fmt.Sprint(row["window_start"]))
		if err != nil {
			t.Fatalf("window_start %v: %v", row["window_start"], err)
		}
		got = append(got, fmt.Sprintf("%s@%d n=%s total=%s hi=%s", row["grp"], ws.UnixMilli(), num(row["n"]), num(row["total"]), num(row["hi"])))
	}
	for k, a := range want {
		total, hi := "null", "null"
		if a.q > 0 {
			total, hi = f(a.sum), f(a.hi)
		}
		exp = append(exp, fmt.Sprintf("%s n=%s total=%s hi=%s", k, f(float64(a.n)), total, hi))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Fatalf("sql step: got %d windows, want %d:\n%s\n--\n%s", len(got), len(exp), strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
}

// TestChangelogWindowStepRefused: the window steps a changelog cannot
// feed exactly are refused with the reason, and the other stateful steps
// still are.
func TestChangelogWindowStepRefused(t *testing.T) {
	for _, c := range []struct{ changelog, step, want string }{
		{"{}", "window: {key: [grp], tumbling: 10s, aggregate: {n: count()}}", "needs the rows' key, changelog: {key: [id]}"},
		{"{key: [id]}", "window: {key: [grp], session: {gap: 10s}, aggregate: {n: count()}}", "a session window cannot aggregate a changelog"},
		{"{key: [id]}", "window: {key: [grp], tumbling: 10s, allowed_lateness: 5s, aggregate: {n: count()}}", "remove allowed_lateness"},
		{"{key: [id]}", "window: {key: [grp], tumbling: 10s, aggregate: {f: first(qty)}}", "first() is not available over a changelog"},
		{"{key: [id]}", "dedup: {key: [id], within: 1m}", "which a dedup step would take as plain records"},
		{"{}", `sql: "SELECT window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY window_start, window_end"`, "a window aggregation over a changelog (changelog:) needs the rows' key"},
		{"{key: [id]}", `sql: "SELECT window_start, COUNT(*) AS n FROM TABLE(SESSION(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY window_start, window_end"`, "SESSION windows need an append-only input"},
	} {
		spec := fmt.Sprintf(`
source:
  file: {path: in.jsonl}
  changelog: %s
  event_time: {field: ts}
steps:
  - %s
sink: {stdout: {}}
`, c.changelog, c.step)
		s, err := Parse("cl.yaml", []byte(spec))
		if err == nil {
			_, err = Compile(s)
		}
		var se *SpecError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a spec error with %q", c.step, err, c.want)
		}
	}
}

// TestTimedRowCodec: the normalisation's kept row round-trips with its
// event time, and a row kept by the previous encoding (a keyedRow,
// without the time) still decodes, marked as without it.
func TestTimedRowCodec(t *testing.T) {
	r := row.Row{Vals: []row.Value{row.String("+I"), row.Int(7), row.String("x")}}
	b, err := timedRow{r: r, ts: -12345, timed: true, touched: 99, timer: 1099}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got timedRow
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !got.timed || got.ts != -12345 || got.touched != 99 || got.timer != 1099 || fmt.Sprint(got.r.Vals) != fmt.Sprint(r.Vals) {
		t.Fatalf("round trip: %+v", got)
	}
	// Version 2: the time, no TTL fields.
	v2 := r.AppendBinary(binary.AppendVarint([]byte{timedRowVersion2}, 777))
	got = timedRow{}
	if err := got.UnmarshalBinary(v2); err != nil {
		t.Fatal(err)
	}
	if !got.timed || got.ts != 777 || got.touched != 0 || got.timer != 0 || fmt.Sprint(got.r.Vals) != fmt.Sprint(r.Vals) {
		t.Fatalf("version 2: %+v", got)
	}
	old, _ := keyedRow{key: rowKey{v: row.Int(7)}, r: r}.MarshalBinary()
	got = timedRow{}
	if err := got.UnmarshalBinary(old); err != nil {
		t.Fatal(err)
	}
	if got.timed || fmt.Sprint(got.r.Vals) != fmt.Sprint(r.Vals) {
		t.Fatalf("version 1: %+v", got)
	}
	for _, bad := range [][]byte{nil, {9}, {timedRowVersion}, {timedRowVersion, 2, 0xff}, {timedRowVersion, 2, 2}, {timedRowVersion2}} {
		if err := new(timedRow).UnmarshalBinary(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// TestChangelogWindowAfterFilter: a filter step before a window step over
// a changelog sees whole rows: an update whose new row no longer passes
// the filter retracts the old row, and a delete (whose before image holds
// only the key, on which the filter cannot pass) retracts its row, from
// the window and from a sql step's window aggregation alike.
func TestChangelogWindowAfterFilter(t *testing.T) {
	base := int64(1_700_000_000_000)
	row := func(status string, ts int64) map[string]any {
		return map[string]any{"grp": "g", "status": status, "ts": base + ts}
	}
	evs := []map[string]any{
		cdcEvent("c", 1, row("paid", 1000)),
		cdcEvent("c", 2, row("paid", 2000)),
		cdcEvent("c", 3, row("open", 2500)),
		cdcEvent("u", 1, row("refunded", 1000)), // no longer paid
		cdcEvent("d", 2, nil),                   // before image: the key alone
		cdcEvent("u", 3, row("paid", 2500)),     // now paid
		cdcEvent("c", 4, row("paid", 3000)),
	}
	for _, step := range []string{
		"window: {key: [grp], tumbling: 10s, aggregate: {n: count()}}",
		`sql: "SELECT grp, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY grp, window_start, window_end"`,
	} {
		spec := `
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
  event_time: {field: ts}
steps:
  - filter: status == "paid"
  - ` + step + `
sink: {stdout: {}}
parallelism: 2
`
		rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(evs)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%s n=%v", r["grp"], r["n"]))
		}
		if want := []string{"g n=2"}; !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v (rows 3 and 4)", step, got, want)
		}
	}
}

// TestChangelogSQLWindowThenSteps: a sql step's window aggregation over a
// changelog has an append-only result (no op field): the steps after it
// take its rows as plain records (a dedup is allowed, a window step reads
// no change field) and a postgres sink with key inserts them as they are.
func TestChangelogSQLWindowThenSteps(t *testing.T) {
	base := int64(1_700_000_000_000)
	row := func(grp string, ts int64) map[string]any { return map[string]any{"grp": grp, "ts": base + ts} }
	evs := []map[string]any{
		cdcEvent("c", 1, row("a", 1000)),
		cdcEvent("c", 2, row("a", 2000)),
		cdcEvent("c", 3, row("b", 3000)),
		cdcEvent("d", 2, nil),
		cdcEvent("c", 4, row("a", 12000)),
	}
	const sqlStep = `  - sql: {query: "SELECT grp, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY grp, window_start, window_end"}
`
	spec := `
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
  event_time: {field: ts}
steps:
` + sqlStep + `  - dedup: {key: [grp, n], within: 1h}
  - window: {key: [n], tumbling: 1h, aggregate: {windows: count()}}
sink: {stdout: {}}
`
	rows, job, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(evs)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("n=%v windows=%v", r["n"], r["windows"]))
	}
	slices.Sort(got)
	// a@0: 1, b@0: 1, a@10s: 1; the dedup keeps one (grp, n) each.
	if want := []string{"n=1 windows=2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if n := job.DeadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}

	dsn := testPostgres(t)
	table := fmt.Sprintf("sluice_clwin_%d_%d", time.Now().UnixNano(), rand.Uint32())
	ctx := context.Background()
	t.Cleanup(func() {
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			conn.Close(ctx)
		}
	})
	spec = fmt.Sprintf(`
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
  event_time: {field: ts}
steps:
%ssink:
  postgres: {dsn: %q, table: %s, key: [grp, n]}
`, sqlStep, dsn, table)
	if _, _, err := runSpec(t, spec, map[string]string{"in.jsonl": jsonLines(evs)}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var cnt int
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM "+table+" WHERE n = 1").Scan(&cnt); err != nil {
		t.Fatal(err)
	}
	if cnt != 2 {
		t.Errorf("%d rows (grp, n=1) in %s, want 2 (a and b)", cnt, table)
	}
}

// TestChangelogNormalizePlacement: a keyed changelog is normalised before
// the filter, map and set steps that lead to its window or sql step (they
// then see whole rows), but after an enrich step, which would compute a
// retraction's fields anew; the normalisation keeps the name of the step
// it serves.
func TestChangelogNormalizePlacement(t *testing.T) {
	for _, c := range []struct{ steps, want string }{
		{"  - filter: status == \"paid\"\n  - map: {grp: grp, id: id}\n  - window: {key: [grp], tumbling: 10s, aggregate: {n: count()}}",
			"normalize(steps[2].window.changelog) chain window"},
		{"  - sql: \"SELECT grp, COUNT(*) AS n FROM input GROUP BY grp\"",
			"normalize(steps[0].sql.changelog) sql"},
		{"  - filter: status == \"paid\"\n  - enrich: {http: {url: \"http://127.0.0.1:1/u/{id}\"}, into: profile}\n  - set: {tier: profile.tier}\n  - window: {key: [grp], tumbling: 10s, aggregate: {n: count()}}",
			"chain enrich normalize(steps[3].window.changelog) chain window"},
	} {
		spec := "source:\n  file: {path: in.jsonl}\n  changelog: {key: [id]}\n  event_time: {field: ts}\nsteps:\n" + c.steps + "\nsink: {stdout: {}}\n"
		s, err := Parse("cl.yaml", []byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if p.input.chain != nil && !p.input.chain.empty() {
			got = append(got, "chain")
		}
		for _, st := range p.stages {
			if st.kind == "normalize" {
				got = append(got, "normalize("+st.name+")")
				continue
			}
			got = append(got, st.kind)
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s:\n got  %s\n want %s", c.steps, g, c.want)
		}
	}
}

// TestChangelogWindowMinMaxKinds: min and max over a changelog give a
// value of the same kind as a window step over the net rows does, when a
// field is an integer in some rows and a float in others: an integer and
// a float of equal value are told apart (a retraction of one leaves the
// other), and a tie between them gives the float, in both paths.
func TestChangelogWindowMinMaxKinds(t *testing.T) {
	ev := func(op string, id int, grp, qty string) string {
		after := fmt.Sprintf(`{"id":%d,"grp":%q,"qty":%s,"ts":1700000000000}`, id, grp, qty)
		switch op {
		case "d":
			return fmt.Sprintf(`{"op":"d","before":{"id":%d}}`, id)
		}
		return fmt.Sprintf(`{"op":%q,"after":%s}`, op, after)
	}
	evs := []string{
		ev("c", 1, "g1", "3"), ev("c", 2, "g1", "3.0"), ev("d", 1, "", ""), // net {3.0}
		ev("c", 3, "g2", "3.0"), ev("c", 4, "g2", "3"), ev("d", 3, "", ""), // net {3}
		ev("c", 5, "g3", "3"), ev("c", 6, "g3", "3.0"), // net {3, 3.0}
		ev("c", 7, "g4", "3.0"), ev("c", 8, "g4", "3"), // net {3.0, 3}
		ev("c", 9, "g5", "2"), ev("c", 10, "g5", "2.5"), ev("c", 11, "g5", "2.0"), ev("d", 9, "", ""), // net {2.5, 2.0}
	}
	net := []string{
		`{"id":2,"grp":"g1","qty":3.0,"ts":1700000000000}`,
		`{"id":4,"grp":"g2","qty":3,"ts":1700000000000}`,
		`{"id":5,"grp":"g3","qty":3,"ts":1700000000000}`, `{"id":6,"grp":"g3","qty":3.0,"ts":1700000000000}`,
		`{"id":7,"grp":"g4","qty":3.0,"ts":1700000000000}`, `{"id":8,"grp":"g4","qty":3,"ts":1700000000000}`,
		`{"id":10,"grp":"g5","qty":2.5,"ts":1700000000000}`, `{"id":11,"grp":"g5","qty":2.0,"ts":1700000000000}`,
	}
	const steps = `
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - window:
      key: [grp]
      tumbling: 10s
      aggregate: {lo: min(qty), hi: max(qty)}
sink: {stdout: {}}
`
	run := func(spec string, lines []string) []string {
		rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": strings.Join(lines, "\n") + "\n"})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s lo=%s hi=%s", r["grp"], r["lo"], r["hi"]))
		}
		slices.Sort(out)
		return out
	}
	got := run("source:\n  file: {path: $DIR/in.jsonl}\n  changelog: {key: [id]}"+steps, evs)
	want := run("source:\n  file: {path: $DIR/in.jsonl}"+steps, net)
	if !slices.Equal(got, want) {
		t.Fatalf("over the changelog:\n%s\nover the net rows:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range []string{"g1 lo=3.0 hi=3.0", "g2 lo=3 hi=3", "g3 lo=3.0 hi=3.0", "g4 lo=3.0 hi=3.0", "g5 lo=2.0 hi=2.5"} {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// TestChangelogWindowBadRowDeadLetteredOnce: a row that fails the window
// step's preparation (a sum over a field that is not a number) goes to the
// dead letters once, at its insertion, not again when an update or a
// delete retracts it; the windows count the good rows only.
func TestChangelogWindowBadRowDeadLetteredOnce(t *testing.T) {
	evs := []map[string]any{
		cdcEvent("c", 1, map[string]any{"grp": "a", "qty": "abc", "ts": 1_700_000_000_000}),
		cdcEvent("c", 2, map[string]any{"grp": "a", "qty": 4, "ts": 1_700_000_000_000}),
		cdcEvent("u", 1, map[string]any{"grp": "a", "qty": 5, "ts": 1_700_000_000_001}),
		cdcEvent("c", 3, map[string]any{"grp": "a", "qty": "x", "ts": 1_700_000_000_002}),
		cdcEvent("d", 3, nil),
	}
	rows, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - window:
      key: [grp]
      tumbling: 10s
      aggregate: {n: count(), total: sum(qty)}
sink: {stdout: {}}
errors: {tolerance: all, dead_letter: {file: {path: $DIR/dead}}}
`, map[string]string{"in.jsonl": jsonLines(evs)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || fmt.Sprint(rows[0]["n"], " ", rows[0]["total"]) != "2 9" {
		t.Errorf("windows %v, want one with n=2 total=9", rows)
	}
	if n := j.DeadLetters(); n != 2 {
		t.Errorf("%d dead letters, want 2 (each bad row once, at its insertion)", n)
	}
}

// TestChangelogSQLBadRowDeadLetteredOnce: the same for a sql step, whose
// input conversion a field that is not a number fails.
func TestChangelogSQLBadRowDeadLetteredOnce(t *testing.T) {
	evs := []map[string]any{
		cdcEvent("c", 1, map[string]any{"grp": "a", "qty": "abc"}),
		cdcEvent("c", 2, map[string]any{"grp": "a", "qty": 4}),
		cdcEvent("u", 1, map[string]any{"grp": "a", "qty": 5}),
		cdcEvent("c", 3, map[string]any{"grp": "a", "qty": "x"}),
		cdcEvent("d", 3, nil),
	}
	rows, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  changelog: {key: [id]}
steps:
  - sql:
      query: SELECT grp, COUNT(*) AS n, SUM(qty) AS total FROM input GROUP BY grp
      columns: {qty: BIGINT}
sink: {stdout: {}}
errors: {tolerance: all, dead_letter: {file: {path: $DIR/dead}}}
`, map[string]string{"in.jsonl": jsonLines(evs)})
	if err != nil {
		t.Fatal(err)
	}
	if last := rows[len(rows)-1]; fmt.Sprint(last["op"], " ", last["n"], " ", last["total"]) != "+U 2 9" {
		t.Errorf("last change %v, want +U n=2 total=9", last)
	}
	if n := j.DeadLetters(); n != 2 {
		t.Errorf("%d dead letters, want 2 (each bad row once, at its insertion)", n)
	}
}
