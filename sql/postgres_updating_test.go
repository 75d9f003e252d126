package sql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// testDSN follows connector/postgres's convention: SLUICE_TEST_POSTGRES_DSN
// or the local server, the test skipped when nothing answers.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL at %s (set SLUICE_TEST_POSTGRES_DSN): %v", dsn, err)
	}
	conn.Close(ctx)
	return dsn
}

type srcRow struct {
	ID int64  `json:"id"`
	K  string `json:"k"`
	V  int64  `json:"v"`
}

type userRow struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
}

// updatingInput writes n src rows and the users of some keys as JSON
// files, and returns them.
func updatingInput(t *testing.T, dir string, n int) ([]srcRow, []userRow) {
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	var src []srcRow
	var b strings.Builder
	for i := 0; i < n; i++ {
		r := srcRow{ID: int64(i), K: fmt.Sprintf("k%d", rng.IntN(23)), V: rng.Int64N(1000) - 200}
		src = append(src, r)
		x, _ := json.Marshal(r)
		b.Write(x)
		b.WriteByte('\n')
	}
	var users []userRow
	var u strings.Builder
	for k := 0; k < 23; k += 2 { // odd keys have no user: their rows stay null-padded
		r := userRow{UID: fmt.Sprintf("k%d", k), Name: fmt.Sprintf("name-%d", k*7)}
		users = append(users, r)
		x, _ := json.Marshal(r)
		u.Write(x)
		u.WriteByte('\n')
	}
	for name, data := range map[string]string{"src/a.jsonl": b.String(), "users/u.jsonl": u.String()} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src, users
}

// batchResults computes in Go what each query's table must hold at the
// end: every row as text, sorted.
func batchResults(src []srcRow, users []userRow) map[string][]string {
	out := map[string][]string{}
	// GROUP BY k: count, sum.
	cnt, sum := map[string]int64{}, map[string]int64{}
	for _, r := range src {
		cnt[r.K]++
		sum[r.K] += r.V
	}
	for k := range cnt {
		out["agg"] = append(out["agg"], fmt.Sprintf("%s|%d|%d", k, cnt[k], sum[k]))
	}
	// GROUP BY of a GROUP BY: how many keys have each count (buckets
	// empty out as counts grow: deletions).
	hist := map[int64]int64{}
	for _, c := range cnt {
		hist[c]++
	}
	for c, n := range hist {
		out["hist"] = append(out["hist"], fmt.Sprintf("%d|%d", c, n))
	}
	// Top 3 by v DESC, id ASC per k.
	byK := map[string][]srcRow{}
	for _, r := range src {
		byK[r.K] = append(byK[r.K], r)
	}
	for k, rs := range byK {
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].V != rs[j].V {
				return rs[i].V > rs[j].V
			}
			return rs[i].ID < rs[j].ID
		})
		for i := 0; i < len(rs) && i < 3; i++ {
			out["topn"] = append(out["topn"], fmt.Sprintf("%s|%d|%d|%d", k, i+1, rs[i].ID, rs[i].V))
		}
	}
	// LEFT JOIN users.
	name := map[string]string{}
	for _, u := range users {
		name[u.UID] = u.Name
	}
	for _, r := range src {
		n, ok := name[r.K]
		if !ok {
			n = "<null>"
		}
		out["joined"] = append(out["joined"], fmt.Sprintf("%d|%s|%s", r.ID, r.K, n))
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

// updatingScript creates the tables (the sinks in PostgreSQL under
// prefix) and returns the statement set writing the four results.
func updatingScript(dir, dsn, prefix, connector string) string {
	pg := func(name string) string {
		return fmt.Sprintf("WITH ('connector' = '%s', 'url' = '%s', 'table-name' = '%s_%s')", connector, dsn, prefix, name)
	}
	return fmt.Sprintf(`
CREATE TABLE src (id BIGINT, k STRING, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '%s', 'format' = 'json');
CREATE TABLE users (uid STRING, name STRING) WITH ('connector' = 'filesystem', 'path' = '%s', 'format' = 'json');
CREATE TABLE agg (k STRING, n BIGINT, s BIGINT, PRIMARY KEY (k) NOT ENFORCED) %s;
CREATE TABLE hist (c BIGINT, keys BIGINT, PRIMARY KEY (c) NOT ENFORCED) %s;
CREATE TABLE topn (k STRING, rn BIGINT, id BIGINT, v BIGINT, PRIMARY KEY (k, rn) NOT ENFORCED) %s;
CREATE TABLE joined (id BIGINT, k STRING, name STRING, PRIMARY KEY (id) NOT ENFORCED) %s;
EXECUTE STATEMENT SET BEGIN
INSERT INTO agg SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;
INSERT INTO hist SELECT n, COUNT(*) FROM (SELECT k, COUNT(*) AS n FROM src GROUP BY k) GROUP BY n;
INSERT INTO topn SELECT k, rn, id, v FROM (
  SELECT k, id, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, id ASC) AS rn FROM src) WHERE rn <= 3;
INSERT INTO joined SELECT s.id, s.k, u.name FROM src AS s LEFT JOIN users AS u ON s.k = u.uid;
END;
`, filepath.Join(dir, "src"), filepath.Join(dir, "users"), pg("agg"), pg("hist"), pg("topn"), pg("joined"))
}

// readTables reads the four PostgreSQL tables as sorted text rows.
func readTables(t *testing.T, dsn, prefix string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	queries := map[string]string{
		"agg":    "SELECT k || '|' || n || '|' || s FROM %s_agg",
		"hist":   "SELECT c || '|' || keys FROM %s_hist",
		"topn":   "SELECT k || '|' || rn || '|' || id || '|' || v FROM %s_topn",
		"joined": "SELECT id || '|' || k || '|' || coalesce(name, '<null>') FROM %s_joined",
	}
	out := map[string][]string{}
	for name, q := range queries {
		rows, err := conn.Query(ctx, fmt.Sprintf(q, prefix))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[name] = append(out[name], s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(out[name])
	}
	return out
}

func dropTables(t *testing.T, dsn, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		for _, n := range []string{"agg", "hist", "topn", "joined"} {
			conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s_%s", prefix, n))
		}
	})
}

func compareTables(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for _, name := range []string{"agg", "hist", "topn", "joined"} {
		g, w := got[name], want[name]
		if strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("table %s: %d rows, want %d\n got: %.600v\nwant: %.600v", name, len(g), len(w), g, w)
		}
	}
}

// Updating results (GROUP BY, a GROUP BY of a GROUP BY, a ROW_NUMBER
// top-N and a LEFT JOIN, all producing retractions) written to
// PostgreSQL tables with a PRIMARY KEY hold, at the end, what a batch
// computation over the input gives.
func TestUpdatingResultsIntoPostgres(t *testing.T) {
	dsn := testDSN(t)
	dir := t.TempDir()
	src, users := updatingInput(t, dir, 3000)
	prefix := fmt.Sprintf("sluice_upd_%d_%d", time.Now().UnixNano(), rand.Uint32())
	dropTables(t, dsn, prefix)
	s := NewSession(Options{StreamOptions: []stream.Option{stream.WithBatchSize(64)}})
	if err := s.Set("parallelism.default", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.ExecuteScript(context.Background(), updatingScript(dir, dsn, prefix, "postgres")); err != nil {
		t.Fatal(err)
	}
	compareTables(t, readTables(t, dsn, prefix), batchResults(src, users))
}

// failingPostgres is the postgres sink whose subtask 0 fails once (an
// injected crash): at its first write after checkpoint barrier 2 passed
// it, so that checkpoint 1 is complete (checkpoints are not concurrent).
type failingPostgres struct {
	inner  stream.Sink[exec.Change]
	failed *atomic.Bool
}

func (f *failingPostgres) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	w, err := f.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &failingWriter{SinkWriter: w, f: f, sub: info.Index}, nil
}

type failingWriter struct {
	stream.SinkWriter[exec.Change]
	f       *failingPostgres
	sub     int
	barrier uint64
}

func (w *failingWriter) OnBarrier(_ context.Context, id uint64) error {
	w.barrier = id
	return nil
}

func (w *failingWriter) Write(ctx context.Context, recs []exec.Change) error {
	if err := w.SinkWriter.Write(ctx, recs); err != nil {
		return err
	}
	if w.sub == 0 && w.barrier >= 1 && !w.f.failed.Swap(true) {
		return errInjected
	}
	return nil
}

var errInjected = errors.New("injected failure")

// With checkpointing, a job that fails midway and is started again
// restores its latest checkpoint (sources rewound, operator state
// restored) and replays the changes after it: the tables end up as the
// batch computation says, as without the failure. A third start, from
// the finished job's last checkpoint, leaves them the same again.
func TestUpdatingResultsIntoPostgresRestart(t *testing.T) {
	dsn := testDSN(t)
	dir := t.TempDir()
	src, users := updatingInput(t, dir, 4000)
	want := batchResults(src, users)
	prefix := fmt.Sprintf("sluice_updr_%d_%d", time.Now().UnixNano(), rand.Uint32())
	dropTables(t, dsn, prefix)
	chk := filepath.Join(dir, "checkpoints")
	var failed atomic.Bool
	var jobs []*stream.Job
	newSession := func() *Session {
		s := NewSession(Options{
			StreamOptions: []stream.Option{stream.WithBatchSize(16)},
			OnJob:         func(_ string, j *stream.Job, _ string) { jobs = append(jobs, j) },
		})
		s.RegisterSink("failing-postgres", SinkConnector{AcceptsUpdates: true, Open: func(st connect.SinkTable) (stream.Sink[exec.Change], error) {
			opts := connect.Options{}
			for k, v := range st.Options {
				opts[k] = v
			}
			opts["connector"] = "postgres"
			st.Options = opts
			inner, err := connect.OpenSink(st, connect.Env{})
			if err != nil {
				return nil, err
			}
			return &failingPostgres{inner: inner, failed: &failed}, nil
		}})
		for k, v := range map[string]string{
			"parallelism.default":              "2",
			"execution.checkpointing.interval": "20 ms",
			"state.checkpoints.dir":            chk,
			// The restart is the next session's (as after a crash of
			// the process), not the job's own.
			"restart-strategy": "none",
			// A loaded machine must not time the checkpoints out.
			"execution.checkpointing.timeout": "30 s",
		} {
			if err := s.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	ctx := context.Background()
	err := newSession().ExecuteScript(ctx, updatingScript(dir, dsn, prefix, "failing-postgres"))
	if !errors.Is(err, errInjected) {
		t.Fatalf("first run: %v, want the injected failure", err)
	}
	if st := jobs[0].CheckpointStats(); st.Completed == 0 {
		// Checkpoint 1 was triggered but aborted (a slow machine): the
		// restart below is then from the beginning, which must give the
		// same tables too.
		t.Logf("no checkpoint completed before the failure: %+v", st)
	}
	if err := newSession().ExecuteScript(ctx, updatingScript(dir, dsn, prefix, "postgres")); err != nil {
		t.Fatal(err)
	}
	compareTables(t, readTables(t, dsn, prefix), want)
	if err := newSession().ExecuteScript(ctx, updatingScript(dir, dsn, prefix, "postgres")); err != nil {
		t.Fatal(err)
	}
	compareTables(t, readTables(t, dsn, prefix), want)
	for i, j := range jobs {
		t.Logf("job %d checkpoints: %+v", i, j.CheckpointStats())
	}
}
