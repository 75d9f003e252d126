package sql_test

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"
)

// randomQueries are run over random event tables by TestRandomAgainstOracle:
// the engine's materialised result at parallelism 1 and 2 must equal
// the oracle's.
var randomQueries = []string{
	`SELECT window_start, window_end, k, COUNT(*), SUM(v), MIN(v), MAX(v), AVG(v) FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, k`,
	`SELECT window_start, window_end, COUNT(DISTINCT k), SUM(v) FILTER (WHERE v > 50) FROM TABLE(HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '3' SECOND, INTERVAL '9' SECOND)) GROUP BY window_start, window_end`,
	`SELECT window_start, window_end, k, COUNT(*), MAX(v) FROM TABLE(CUMULATE(TABLE ev, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '8' SECOND)) GROUP BY window_start, window_end, k`,
	`SELECT k, TUMBLE_START(ts, INTERVAL '4' SECOND), COUNT(*), SUM(v) FROM ev GROUP BY TUMBLE(ts, INTERVAL '4' SECOND), k`,
	`SELECT window_start, window_end, k, COUNT(*), SUM(v) FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND)) WHERE v < 80 GROUP BY window_start, window_end, k`,
	`SELECT window_start, window_end, k, COUNT(*), SUM(v) FROM TABLE(SESSION(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k`,
	`SELECT k, SESSION_START(ts, INTERVAL '2' SECOND), SESSION_END(ts, INTERVAL '2' SECOND), MAX(v) FROM ev GROUP BY SESSION(ts, INTERVAL '2' SECOND), k`,
	`SELECT k, COUNT(*), SUM(v), MIN(v), MAX(v) FROM ev GROUP BY k HAVING COUNT(*) > 2`,
	`SELECT v / 10, COUNT(*) FROM ev WHERE v > 10 GROUP BY v / 10`,
	`SELECT * FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM ev) WHERE rn <= 3`,
	`SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM ev) WHERE rn = 1`,
	`SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts ASC) AS rn FROM ev) WHERE rn = 1`,
	`SELECT DISTINCT k, v / 25 FROM ev`,
	`SELECT k FROM ev WHERE v > 60 UNION SELECT k FROM ev WHERE v < 20`,
	`SELECT a.k, a.v, b.v FROM ev a JOIN ev b ON a.k = b.k AND a.v < b.v AND b.v - a.v < 5`,
	`SELECT a.k, a.v, b.name FROM ev a LEFT JOIN names b ON a.k = b.k WHERE a.v > 70`,
	`SELECT b.name, COUNT(a.v) FROM ev a FULL JOIN names b ON a.k = b.k GROUP BY b.name`,
	// Interval joins drop rows behind the watermark (sql/exec/join_time.go),
	// which the oracle does not model: they read evo, ev in time order.
	`SELECT a.k, a.v, b.v FROM evo a JOIN evo b ON a.k = b.k AND a.ts BETWEEN b.ts - INTERVAL '1' SECOND AND b.ts + INTERVAL '1' SECOND AND a.v <> b.v`,
	`SELECT a.k, a.v, b.v FROM evo a JOIN evo b ON a.k = b.k AND a.ts BETWEEN b.ts AND b.ts + INTERVAL '2' SECOND AND a.v > b.v`,
	// A window over an interval join's output, on either side's rowtime:
	// the join forwards its watermark behind by its bounds, and the rows
	// are windowed on the column, not on their record's time (a pair's
	// later one).
	`SELECT TUMBLE_START(ts, INTERVAL '1' SECOND), COUNT(*), COUNT(bv) FROM (SELECT a.ts, b.v AS bv FROM evo a LEFT JOIN evo b ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '2' SECOND AND a.v < b.v) GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)`,
	`SELECT TUMBLE_START(bts, INTERVAL '1' SECOND), COUNT(*), SUM(av) FROM (SELECT a.v AS av, b.ts AS bts FROM evo a JOIN evo b ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '2' SECOND AND a.ts AND a.v <> b.v) GROUP BY TUMBLE(bts, INTERVAL '1' SECOND)`,
	// An interval join over an interval join's output bounds a column
	// its records' times are not: it is planned as a regular join.
	`SELECT j.k, j.av, c.v FROM (SELECT a.k, a.v AS av, a.ts AS ats, b.ts AS bts FROM evo a JOIN evo b ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '2' SECOND AND a.v < b.v) j JOIN evo c ON j.k = c.k AND c.ts BETWEEN j.ats - INTERVAL '1' SECOND AND j.ats AND c.v > j.av`,
	`SELECT k, v FROM ev ORDER BY v DESC LIMIT 4`,
	`SELECT window_start, k, v, rn FROM (SELECT window_start, window_end, k, v, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, k ORDER BY v DESC) AS rn FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '3' SECOND))) WHERE rn <= 2`,
	`SELECT window_start, k, v FROM (SELECT window_start, window_end, k, v, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, k ORDER BY ts ASC) AS rn FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '4' SECOND))) WHERE rn = 1`,
	`SELECT window_start, k, total FROM (SELECT window_start, window_end, k, total, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC, k) AS rn FROM (SELECT window_start, window_end, k, SUM(v) AS total FROM TABLE(HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '6' SECOND)) GROUP BY window_start, window_end, k)) WHERE rn <= 1`,
	`SELECT L.window_start, L.k, L.c, R.m FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, k) L JOIN (SELECT window_start, window_end, k, MAX(v) AS m FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' SECOND)) WHERE v > 30 GROUP BY window_start, window_end, k) R ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.k = R.k`,
	`SELECT window_start, window_end, SUM(c), COUNT(*) FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k) GROUP BY window_start, window_end`,
}

// randomEvents returns n events with unique values and timestamps
// around 300 ms apart, out of order by up to 1.5 s (the watermark delay
// is 1 s, so some are late), keys k0..k3; with nulls, some keys and
// values are NULL.
func randomEvents(r *rand.Rand, n int, nulls bool) []string {
	base := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	vals := r.Perm(100)
	used := map[int64]bool{}
	var out []string
	for i := 0; i < n; i++ {
		ms := int64(i*300) - int64(r.Intn(1500))
		for used[ms] {
			ms++
		}
		used[ms] = true
		ts := base.Add(time.Duration(ms) * time.Millisecond).Format("2006-01-02 15:04:05.000")
		k, v := fmt.Sprintf(`"k%d"`, r.Intn(4)), fmt.Sprint(vals[i%100])
		if nulls && r.Intn(12) == 0 {
			k = "null"
		}
		if nulls && r.Intn(8) == 0 {
			v = "null"
		}
		out = append(out, fmt.Sprintf(`{"k": %s, "v": %s, "ts": "%s"}`, k, v, ts))
	}
	return out
}

func TestRandomAgainstOracle(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, 6}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		ev := confTable{name: "ev", ddl: `CREATE TABLE ev (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'filesystem', 'path' = '${ev}', 'format' = 'json')`, rows: randomEvents(r, 60, seed > 3)}
		evo := confTable{name: "evo", ddl: strings.Replace(strings.ReplaceAll(ev.ddl, "${ev}", "${evo}"), "TABLE ev ", "TABLE evo ", 1), rows: sortedByTime(ev.rows)}
		names := confTable{name: "names", ddl: `CREATE TABLE names (k VARCHAR, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = '${names}', 'format' = 'json')`,
			rows: []string{`{"k": "k0", "name": "zero"}`, `{"k": "k1", "name": "one"}`, `{"k": "k9", "name": "nine"}`}}
		for qi, q := range randomQueries {
			c := &confCase{file: "random", name: fmt.Sprintf("seed%d/q%d", seed, qi), tables: []confTable{ev, evo, names}, query: q}
			t.Run(c.name, func(t *testing.T) {
				want, err := runOracle(c)
				if err != nil {
					t.Fatalf("oracle: %v\n%s", err, q)
				}
				if len(want) == 0 {
					t.Logf("the oracle gives no rows for %s", q)
				}
				for _, p := range []int{1, 2} {
					got, err := runEngine(t, c, p)
					if err != nil {
						t.Errorf("parallelism %d: %v\n%s", p, err, q)
						continue
					}
					if !equalRows(want, got) {
						t.Errorf("parallelism %d: %s\nengine vs oracle: %s", p, q, diffRows(want, got))
					}
				}
			})
		}
	}
}

// sortedByTime orders randomEvents' rows by their timestamp (the rows
// hold it last, in a fixed format).
func sortedByTime(rows []string) []string {
	out := append([]string(nil), rows...)
	ts := func(r string) string { return r[strings.LastIndex(r, `"ts": "`):] }
	sort.SliceStable(out, func(i, j int) bool { return ts(out[i]) < ts(out[j]) })
	return out
}
