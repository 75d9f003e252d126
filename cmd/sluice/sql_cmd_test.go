package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sql"
)

// TestSQLEveryExample runs every examples/*.sql script: each must finish
// with status 0 and print something.
func TestSQLEveryExample(t *testing.T) {
	t.Chdir("../..")
	files, err := filepath.Glob("examples/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no SQL examples: %v", err)
	}
	for _, f := range files {
		code, out, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": t.TempDir()}, "", "sql", f)
		if code != 0 || strings.TrimSpace(out) == "" {
			t.Errorf("sluice sql %s: status %d, %d bytes of output, stderr %q", f, code, len(out), errs)
		}
	}
}

// TestSQLRevenueExample runs examples/revenue-per-user.sql and checks its
// rows against the same computation done in Go over the input file: per
// user and per minute of event time, the count and the sum of price*qty
// of paid orders. The truncated line is skipped (the script sets
// 'json.ignore-parse-errors'). The record without a timestamp has no
// window (Flink drops rows whose time attribute is NULL).
func TestSQLRevenueExample(t *testing.T) {
	t.Chdir("../..")
	type key = sqlRevenueKey
	type agg = sqlRevenueAgg
	want := map[key]agg{}
	f, err := os.Open("examples/data/orders.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	broken := 0
	for sc.Scan() {
		var o struct {
			TS     *int64  `json:"ts"`
			User   string  `json:"user_id"`
			Status string  `json:"status"`
			Price  float64 `json:"price"`
			Qty    int64   `json:"qty"`
		}
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			broken++
			continue
		}
		if o.TS == nil || o.Status != "paid" {
			continue
		}
		k := key{o.User, *o.TS - *o.TS%60000}
		a := want[k]
		a.n++
		a.sum += o.Price * float64(o.Qty)
		want[k] = a
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if broken != 1 || len(want) < 10 {
		t.Fatalf("input changed: %d broken lines (want 1), %d groups", broken, len(want))
	}

	for _, par := range []string{"1", "2"} {
		t.Run("parallelism="+par, func(t *testing.T) {
			code, out, errs := runCLI(t, nil, "", "sql", "--parallelism", par, "examples/revenue-per-user.sql")
			if code != 0 {
				t.Fatalf("status %d, stderr %s", code, errs)
			}
			checkSQLRevenue(t, out, want)
		})
	}
}

type sqlRevenueKey struct {
	user  string
	start int64
}

type sqlRevenueAgg struct {
	n   int64
	sum float64
}

// checkSQLRevenue compares the JSON rows the revenue example printed with
// the expected count and sum per user and window start.
func checkSQLRevenue(t *testing.T, out string, want map[sqlRevenueKey]sqlRevenueAgg) {
	t.Helper()
	type key = sqlRevenueKey
	type agg = sqlRevenueAgg
	got := map[key]agg{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			User    *string `json:"user_id"`
			Start   int64   `json:"window_start"`
			End     int64   `json:"window_end"`
			Orders  int64   `json:"orders"`
			Revenue float64 `json:"revenue"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		if r.User == nil {
			t.Errorf("row without a user: %s (the record without a timestamp has no window)", line)
			continue
		}
		if r.End-r.Start != 60000 {
			t.Errorf("window of %d ms, want one minute: %s", r.End-r.Start, line)
		}
		k := key{*r.User, r.Start}
		if _, dup := got[k]; dup {
			t.Errorf("two rows for %v", k)
		}
		got[k] = agg{r.Orders, r.Revenue}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing row for user %s, window %d: want %d orders, revenue %v", k.user, k.start, w.n, w.sum)
		case g.n != w.n || math.Abs(g.sum-w.sum) > 1e-9*math.Max(1, math.Abs(w.sum)):
			t.Errorf("user %s, window %d: got %d orders, revenue %v; want %d, %v", k.user, k.start, g.n, g.sum, w.n, w.sum)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected row for user %s, window %d", k.user, k.start)
		}
	}
}

// TestSQLTableOutput: -e runs a query and prints it as a table: numbers
// right-aligned, strings left-aligned, NULL as <NULL>, a row count.
func TestSQLTableOutput(t *testing.T) {
	code, out, errs := runCLI(t, nil, "", "sql", "-e",
		"SELECT * FROM (VALUES (1, 'ab', CAST(NULL AS INT)), (22, CAST(NULL AS STRING), 3)) AS t(a, b, c)")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, errs)
	}
	want := `+-------------+---------------------------+-------------+
|           a | b                         |           c |
+-------------+---------------------------+-------------+
|           1 | ab                        |      <NULL> |
|          22 | <NULL>                    |           3 |
+-------------+---------------------------+-------------+
2 rows in result
`
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	code, out, errs = runCLI(t, nil, "", "sql", "--format", "table", "-e", "SELECT a FROM (VALUES (1.5), (-10.25)) AS t(a)")
	want = `+--------+
|      a |
+--------+
|   1.50 |
| -10.25 |
+--------+
2 rows in result
`
	if code != 0 || out != want {
		t.Fatalf("status %d, stderr %q, got\n%s\nwant\n%s", code, errs, out, want)
	}
}

// TestSQLJSONChangelog: --format json prints an updating query as JSON
// lines of changes with their "op".
func TestSQLJSONChangelog(t *testing.T) {
	code, out, errs := runCLI(t, nil, "", "sql", "--format", "json", "-e",
		"SELECT k, COUNT(*) AS n FROM (VALUES ('x'), ('y'), ('x')) AS t(k) GROUP BY k")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, errs)
	}
	want := `{"op":"+I","k":"x","n":1}
{"op":"+I","k":"y","n":1}
{"op":"-U","k":"x","n":1}
{"op":"+U","k":"x","n":2}
`
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestSQLExplain(t *testing.T) {
	code, out, errs := runCLI(t, nil, "", "sql", "-e",
		"EXPLAIN SELECT k, COUNT(*) FROM (VALUES ('x'), ('y')) AS t(k) WHERE k <> 'z' GROUP BY k")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, errs)
	}
	for _, s := range []string{"== Plan ==", "GroupAggregate(groupBy=[k], select=[COUNT(*)]) [updating]", "Values(rows=[2]"} {
		if !strings.Contains(out, s) {
			t.Errorf("EXPLAIN output lacks %q:\n%s", s, out)
		}
	}
}

// TestSQLStdin: without a file or -e, statements come from standard input
// when it is not a terminal; a script runs its statements in order.
func TestSQLStdin(t *testing.T) {
	script := "CREATE TEMPORARY VIEW v AS SELECT * FROM (VALUES (1), (2), (3)) AS t(x);\n" +
		"SELECT SUM(x) AS s FROM v;\n" +
		"SELECT x FROM v WHERE x > 2;\n"
	code, out, errs := runCLI(t, nil, script, "sql", "--format", "json")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, errs)
	}
	want := "{\"op\":\"+I\",\"s\":1}\n{\"op\":\"-U\",\"s\":1}\n{\"op\":\"+U\",\"s\":3}\n{\"op\":\"-U\",\"s\":3}\n{\"op\":\"+U\",\"s\":6}\n{\"x\":3}\n"
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

// TestSQLUsageErrors: bad usage exits 2 with a message and a pointer to
// --help.
func TestSQLUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"sql", "a.sql", "b.sql"}, "takes one SQL file, or -e STATEMENTS, not both"},
		{[]string{"sql", "-e", "SELECT 1", "a.sql"}, "takes one SQL file, or -e STATEMENTS, not both"},
		{[]string{"sql", "--format", "xml", "-e", "SELECT 1"}, `--format is table or json, not "xml"`},
		{[]string{"sql", "--set", "parallelism.default", "-e", "SELECT 1"}, `--set takes KEY=VALUE, not "parallelism.default"`},
		{[]string{"sql", "--nosuchflag"}, "flag provided but not defined: -nosuchflag"},
		{[]string{"sql", "--set", "parallelism.defualt=2", "-e", "SELECT 1"}, "unknown setting 'parallelism.defualt'; did you mean 'parallelism.default'?"},
		{[]string{"sql", "--set", "table.exec.state.tll=1 h", "-e", "SELECT 1"}, "unknown setting 'table.exec.state.tll'; did you mean 'table.exec.state.ttl'?"},
		{[]string{"sql", "--set", "zzz=1", "-e", "SELECT 1"}, "unknown setting 'zzz'; known settings: execution.buffer-timeout, execution.buffer-timeout.interval, execution.checkpointing.interval, "},
	} {
		code, out, errs := runCLI(t, nil, "", tc.args...)
		if code != 2 || !strings.Contains(errs, "sluice sql: "+tc.msg) || !strings.Contains(errs, "Run 'sluice sql --help' for usage.") || out != "" {
			t.Errorf("%q: status %d (want 2), stdout %q, stderr %q (want %q)", tc.args, code, out, errs, tc.msg)
		}
	}
}

// TestSQLErrorsExit1: an error in the SQL exits 1 with its line and
// column on stderr and nothing on stdout.
func TestSQLErrorsExit1(t *testing.T) {
	for _, tc := range []struct {
		src, msg string
	}{
		{"SELECT nosuch FROM (VALUES (1)) AS t(a)", "sluice sql: line 1, column 8: column 'nosuch' not found (available: a)\n"},
		{"SELECT 1;\nSELEC 2", "sluice sql: line 2, column 1:"},
	} {
		code, _, errs := runCLI(t, nil, "", "sql", "--format", "json", "-e", tc.src)
		if code != 1 || !strings.HasPrefix(errs, tc.msg) {
			t.Errorf("%q: status %d (want 1), stderr %q (want %q)", tc.src, code, errs, tc.msg)
		}
	}
	// A missing file is an error too, naming the file.
	code, _, errs := runCLI(t, nil, "", "sql", filepath.Join(t.TempDir(), "none.sql"))
	if code != 1 || !strings.Contains(errs, "none.sql") {
		t.Errorf("missing file: status %d, stderr %q", code, errs)
	}
}

// TestSQLDashboard: --http serves the dashboard while the statements
// run; a port of 0 picks a free one.
func TestSQLDashboard(t *testing.T) {
	code, out, errs := runCLI(t, nil, "", "sql", "--http", "127.0.0.1:0", "--format", "json", "-e", "SELECT 1 AS one")
	if code != 0 || out != "{\"one\":1}\n" {
		t.Fatalf("status %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestSQLHelp(t *testing.T) {
	code, out, errs := runCLI(t, nil, "", "sql", "--help")
	if code != 0 || errs != "" {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	for _, s := range []string{
		"Usage: sluice sql [flags] [FILE.sql]",
		"Runs every statement of FILE.sql in order",
		"See docs/sql.md.",
		"-e string", "-format string", "-set value", "-parallelism int", "-http string", "-data-dir string",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("--help lacks %q:\n%s", s, out)
		}
	}
}

// TestSQLPrompt drives the interactive prompt with scripted input: a
// statement may span lines and ends with ';', an error is printed and
// the session goes on, QUIT ends it.
func TestSQLPrompt(t *testing.T) {
	in := "SELECT 1\n  AS one;\nSELECT nosuch FROM (VALUES (1)) AS t(a);\nSELEC 2;\nSELECT 'b' AS s;\nquit;\nSELECT 3 AS never;\n"
	var out, errb strings.Builder
	c := &cli{stdin: strings.NewReader(in), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	sess := sql.NewSession(sql.Options{Out: &out, Format: "json"})
	if err := sqlPrompt(context.Background(), c, sess); err != nil {
		t.Fatal(err)
	}
	want := "Sluice SQL. End statements with ';'. QUIT; to leave. Ctrl-C stops a running query.\n" +
		"sluice> " + "     -> " + "{\"one\":1}\n" +
		"sluice> " + "sluice> " + "sluice> " + "{\"s\":\"b\"}\n" + "sluice> "
	if out.String() != want {
		t.Errorf("stdout\n%q\nwant\n%q", out.String(), want)
	}
	errs := errb.String()
	if !strings.Contains(errs, "error: line 1, column 8: column 'nosuch' not found") || !strings.Contains(errs, "error: line 1, column 1: expected a statement") || strings.Count(errs, "error:") != 2 {
		t.Errorf("stderr %q: want the two errors", errs)
	}
	// EOF (Ctrl-D) ends the session too, after a newline.
	out.Reset()
	c.stdin = strings.NewReader("SELECT 1 AS one;\n")
	if err := sqlPrompt(context.Background(), c, sql.NewSession(sql.Options{Out: &out, Format: "json"})); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "{\"one\":1}\nsluice> \n") {
		t.Errorf("EOF: stdout %q", out.String())
	}
}

// TestDataDirFlagEverywhere: every command whose --data-dir is the
// embedded log's directory (sql included, which once defaulted to "data"
// and did not say it reads SLUICE_DATA_DIR) defaults to SLUICE_DATA_DIR,
// else ./data, and says so in --help.
func TestDataDirFlagEverywhere(t *testing.T) {
	seen := map[string]bool{}
	var walk func(cmd *command, path []string)
	walk = func(cmd *command, path []string) {
		for _, s := range cmd.sub {
			walk(s, append(append([]string(nil), path...), s.name))
		}
		name := strings.Join(path, " ")
		if len(cmd.sub) != 0 || name == "bench compaction" { // bench's --data-dir is a scratch disk
			return
		}
		for e, want := range map[string]string{"": `(default "./data")`, "/srv/sluice-env": `(default "/srv/sluice-env")`} {
			_, out, _ := runCLI(t, map[string]string{"SLUICE_DATA_DIR": e}, "", append(append([]string(nil), path...), "--help")...)
			_, usage, ok := strings.Cut(out, "  -data-dir string\n")
			if !ok {
				continue
			}
			usage, _, _ = strings.Cut(usage, "\n")
			seen[name] = true
			if !strings.Contains(usage, "(env SLUICE_DATA_DIR)") || !strings.Contains(usage, want) {
				t.Errorf("sluice %s --help (SLUICE_DATA_DIR=%q): --data-dir %q, want the env note and %s", name, e, usage, want)
			}
		}
	}
	walk(commands(), nil)
	for _, name := range []string{"sql", "serve", "run", "topic create", "tenant list"} {
		if !seen[name] {
			t.Errorf("sluice %s --help shows no --data-dir", name)
		}
	}
}
