package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector/lookup"
	"github.com/sluicehq/sluice/internal/testservice"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// fakeUsers is a Lookuper over an in-memory table (user -> name, tier)
// that records the keys of every call. fail makes every call fail.
type fakeUsers struct {
	mu    sync.Mutex
	rows  map[string]lookup.Row
	calls [][]string
	fail  bool
}

func (f *fakeUsers) Columns() []string { return []string{"name", "tier"} }
func (f *fakeUsers) Close() error      { return nil }
func (f *fakeUsers) Lookup(_ context.Context, keys []lookup.Key) ([][]lookup.Row, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ks []string
	out := make([][]lookup.Row, len(keys))
	for i, k := range keys {
		id := lookup.Text(k[0])
		ks = append(ks, id)
		if r, ok := f.rows[id]; ok {
			out[i] = []lookup.Row{r}
		}
	}
	f.calls = append(f.calls, ks)
	if f.fail {
		return nil, errors.New("connection refused")
	}
	return out, nil
}

// users 0..8 exist; 9 does not.
func newFakeUsers() *fakeUsers {
	f := &fakeUsers{rows: map[string]lookup.Row{}}
	for i := 0; i < 9; i++ {
		f.rows[strconv.Itoa(i)] = lookup.Row{row.String("u" + strconv.Itoa(i)), row.Int(int64(i % 3))}
	}
	return f
}

// runWith is runSpec with a hook that adjusts the parsed spec (to plug a
// fake Lookuper in) before it is compiled.
func runWith(t *testing.T, spec string, files map[string]string, adjust func(*Spec), opts ...StartOption) ([]map[string]any, *Job, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Parse("test.yaml", []byte(strings.ReplaceAll(spec, "$DIR", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(s)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	j, err := p.Start(context.Background(), &Host{Stdout: &out, DataDir: dir}, opts...)
	if err != nil {
		return nil, nil, err
	}
	err = j.Wait()
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("output %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	return rows, j, err
}

func withLookuper(l lookup.Lookuper, now func() time.Time) func(*Spec) {
	return func(s *Spec) {
		for _, st := range s.Steps {
			if st.Lookup != nil {
				st.Lookup.lookuper = l
				st.Lookup.now = now
			}
		}
	}
}

// ordersFile is n records {seq, user: seq % 10}.
func ordersFile(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"seq":%d,"user":%d}`+"\n", i, i%10)
	}
	return b.String()
}

const lookupBatch = 16

// TestLookupStep: every record gets the columns of its user (nulls for
// the missing user 9), and the lookups of a record batch go out as one
// call with each key once.
func TestLookupStep(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) {
			f := newFakeUsers()
			cache := ""
			if cached {
				cache = "      cache: {size: 100, ttl: 1h}\n"
			}
			rows, _, err := runWith(t, `
parallelism: 1
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      postgres: {dsn: "postgres://unused/x", query: "SELECT name, tier FROM users WHERE id = $1", key: [user]}
`+cache+`sink: {stdout: {}}
`, map[string]string{"in.jsonl": ordersFile(200)}, withLookuper(f, func() time.Time { return time.Unix(0, 0) }),
				WithStreamOptions(stream.WithBatchSize(lookupBatch)))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 200 {
				t.Fatalf("%d rows, want 200", len(rows))
			}
			for _, r := range rows {
				u := int(r["user"].(float64))
				want := map[string]any{"seq": r["seq"], "user": r["user"], "name": nil, "tier": nil}
				if u != 9 {
					want["name"], want["tier"] = "u"+strconv.Itoa(u), float64(u%3)
				}
				if fmt.Sprint(r) != fmt.Sprint(want) {
					t.Errorf("got %v, want %v", r, want)
				}
			}
			fetched := 0
			for _, c := range f.calls {
				s := slices.Clone(c)
				slices.Sort(s)
				if len(slices.Compact(s)) != len(c) {
					t.Errorf("a call repeats keys: %q", c)
				}
				fetched += len(c)
			}
			if cached {
				if fetched != 10 {
					t.Errorf("with a cache (ttl not reached) fetched %d keys, want each of the 10 once: %q", fetched, f.calls)
				}
			} else if maxCalls := (200 + lookupBatch - 1) / lookupBatch; len(f.calls) < 2 || len(f.calls) > maxCalls {
				// One call per record batch; the runtime may deliver
				// batches smaller than the batch size, never larger.
				t.Errorf("%d lookup calls for 200 records in batches of at most %d: want at least 2 and at most %d", len(f.calls), lookupBatch, maxCalls)
			}
		})
	}
}

// TestLookupInto: into: puts the columns into one JSON field.
func TestLookupInto(t *testing.T) {
	rows, _, err := runWith(t, `
source: {file: {path: $DIR/in.jsonl}}
steps:
  - map: {seq: seq, user: user}
  - lookup:
      redis: {key: "u:{user}"}
      fields: [name, tier]
      into: profile
sink: {stdout: {}}
`, map[string]string{"in.jsonl": ordersFile(10)}, withLookuper(newFakeUsers(), nil))
	if err != nil {
		t.Fatal(err)
	}
	got := canon(rows)
	var want []string
	for i := 0; i < 10; i++ {
		p := "null"
		if i != 9 {
			p = fmt.Sprintf(`{"name":"u%d","tier":%d}`, i, i%3)
		}
		want = append(want, fmt.Sprintf(`{"profile":%s,"seq":%d,"user":%d}`, p, i, i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLookupMissingAndFailures: on_missing drop and error, and a lookup
// that keeps failing (dead letters under tolerance all, a failed job
// under none).
func TestLookupMissingAndFailures(t *testing.T) {
	const base = `
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      redis: {key: "u:{user}"}
      fields: [name, tier]
      retries: 1
      backoff: 1ms
`
	rows, _, err := runWith(t, base+"      on_missing: drop\nsink: {stdout: {}}\n", map[string]string{"in.jsonl": ordersFile(100)}, withLookuper(newFakeUsers(), nil))
	if err != nil || len(rows) != 90 {
		t.Errorf("on_missing drop: %d rows (want 90), %v", len(rows), err)
	}
	rows, j, err := runWith(t, base+"      on_missing: error\nsink: {stdout: {}}\nerrors: {tolerance: all, dead_letter: {file: {path: $DIR/dead}}}\n", map[string]string{"in.jsonl": ordersFile(100)}, withLookuper(newFakeUsers(), nil))
	if err != nil || len(rows) != 90 || j.DeadLetters() != 10 {
		t.Errorf("on_missing error: %d rows (want 90), %d dead letters (want 10), %v", len(rows), j.DeadLetters(), err)
	}
	failing := newFakeUsers()
	failing.fail = true
	_, j, err = runWith(t, base+"sink: {stdout: {}}\nerrors: {tolerance: all}\n", map[string]string{"in.jsonl": ordersFile(100)}, withLookuper(failing, nil))
	if err != nil || j.DeadLetters() != 100 {
		t.Errorf("failing lookups under tolerance all: %d dead letters (want 100), %v", j.DeadLetters(), err)
	}
	for _, c := range failing.calls[:2] {
		if len(c) == 0 {
			t.Error("an empty call")
		}
	}
	failing.calls = nil
	_, _, err = runWith(t, base+"sink: {stdout: {}}\n", map[string]string{"in.jsonl": ordersFile(100)}, withLookuper(failing, nil))
	if !errors.Is(err, ErrTolerance) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "after 2 tries") {
		t.Errorf("failing lookups under tolerance none: %v, want a job failure naming the error after 2 tries", err)
	}
}

// badKeyUsers is fakeUsers that cannot look up a key that is not a
// number (as PostgreSQL cannot for a bigint column): those keys fail
// alone, with a *lookup.KeyErrors.
type badKeyUsers struct{ *fakeUsers }

func (b badKeyUsers) Lookup(ctx context.Context, keys []lookup.Key) ([][]lookup.Row, error) {
	out, err := b.fakeUsers.Lookup(ctx, keys)
	if err != nil {
		return nil, err
	}
	var bad *lookup.KeyErrors
	for i, k := range keys {
		if _, err := strconv.Atoi(lookup.Text(k[0])); err != nil {
			if bad == nil {
				bad = &lookup.KeyErrors{Errs: make([]error, len(keys))}
			}
			bad.Errs[i] = fmt.Errorf("%q is not a bigint", lookup.Text(k[0]))
		}
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

// TestLookupBadKeyFailsAlone: a record whose key cannot be looked up at
// all goes to the dead letters alone; the other records of its batch are
// joined. Before, the key's error failed the whole call, retried, and
// every record of the batch went to the dead letters.
func TestLookupBadKeyFailsAlone(t *testing.T) {
	var in strings.Builder
	bad := 0
	for i := 0; i < 100; i++ {
		if i%7 == 0 {
			fmt.Fprintf(&in, `{"seq":%d,"user":"x%d"}`+"\n", i, i)
			bad++
			continue
		}
		fmt.Fprintf(&in, `{"seq":%d,"user":%d}`+"\n", i, i%9)
	}
	rows, j, err := runWith(t, `
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      redis: {key: "u:{user}"}
      fields: [name, tier]
      retries: 2
      backoff: 1ms
sink: {stdout: {}}
errors: {tolerance: all, dead_letter: {file: {path: $DIR/dead}}}
`, map[string]string{"in.jsonl": in.String()}, withLookuper(badKeyUsers{newFakeUsers()}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 100-bad || j.DeadLetters() != int64(bad) {
		t.Fatalf("%d rows (want %d), %d dead letters (want %d)", len(rows), 100-bad, j.DeadLetters(), bad)
	}
	for _, r := range rows {
		if u := int(r["user"].(float64)); r["name"] != "u"+strconv.Itoa(u) {
			t.Errorf("row %v", r)
		}
	}
	if e := j.lookups[0].client.Metrics().Errors.Load(); e != 0 {
		t.Errorf("%d failed (retried) calls, want none", e)
	}
}

// versioned wraps a Lookuper: before each call it changes every row of
// the table (update(n) for the n-th call, from 1) and records which call
// fetched each key, so a test can check that every record was joined with
// the value current when its batch was looked up.
type versioned struct {
	lookup.Lookuper
	update func(n int)
	mu     sync.Mutex
	n      int
	at     map[string]int // key -> the call that fetched it
}

func (v *versioned) Lookup(ctx context.Context, keys []lookup.Key) ([][]lookup.Row, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n++
	v.update(v.n)
	for _, k := range keys {
		v.at[lookup.Text(k[0])] = v.n
	}
	return v.Lookuper.Lookup(ctx, keys)
}

func pgTestDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		testservice.Addr(t, "SLUICE_TEST_POSTGRES", "127.0.0.1:5432", "PostgreSQL")
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	return dsn
}

// TestLookupUpdatesDuringRun runs a pipeline against the real PostgreSQL
// and Redis while the table changes between record batches: every record
// carries the value its key had when its batch was looked up, not the
// value at job start.
func TestLookupUpdatesDuringRun(t *testing.T) {
	const n = 300
	in := map[string]string{"in.jsonl": func() string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `{"user":%d}`+"\n", i)
		}
		return b.String()
	}()}
	check := func(t *testing.T, rows []map[string]any, v *versioned) {
		t.Helper()
		if len(rows) != n {
			t.Fatalf("%d rows, want %d", len(rows), n)
		}
		if v.n < 3 {
			t.Fatalf("%d lookup calls: the test needs several batches", v.n)
		}
		versions := map[string]bool{}
		for _, r := range rows {
			u := fmt.Sprint(r["user"])
			want := "v" + strconv.Itoa(v.at[u])
			if r["tier"] != want {
				t.Errorf("user %s: tier %v, want %s (the value when its batch was looked up)", u, r["tier"], want)
			}
			versions[fmt.Sprint(r["tier"])] = true
		}
		if len(versions) < 3 {
			t.Errorf("records saw only the versions %v", versions)
		}
	}
	t.Run("postgres", func(t *testing.T) {
		dsn := pgTestDSN(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Skipf("no PostgreSQL at %s: %v", dsn, err)
		}
		defer conn.Close(ctx)
		tbl := "sluice_lookup_" + testservice.Suffix()
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, tier text); INSERT INTO %s SELECT i, 'v0' FROM generate_series(0, %d) i", tbl, tbl, n-1)); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(context.Background(), "DROP TABLE "+tbl)
		query := fmt.Sprintf("SELECT tier FROM %s WHERE id = $1", tbl)
		pg, err := lookup.OpenPostgres(ctx, lookup.PostgresConfig{DSN: dsn, Query: query})
		if err != nil {
			t.Fatal(err)
		}
		v := &versioned{Lookuper: pg, at: map[string]int{}, update: func(k int) {
			if _, err := conn.Exec(ctx, fmt.Sprintf("UPDATE %s SET tier = $1", tbl), "v"+strconv.Itoa(k)); err != nil {
				t.Error(err)
			}
		}}
		rows, _, err := runWith(t, `
parallelism: 1
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      postgres: {dsn: "`+dsn+`", query: "`+query+`", key: [user]}
sink: {stdout: {}}
`, in, withLookuper(v, nil), WithStreamOptions(stream.WithBatchSize(32)))
		if err != nil {
			t.Fatal(err)
		}
		check(t, rows, v)
	})
	t.Run("redis", func(t *testing.T) {
		addr := testservice.Addr(t, "SLUICE_TEST_REDIS", "127.0.0.1:6379", "Redis")
		ctx := context.Background()
		cli := redis.NewClient(&redis.Options{Addr: addr})
		defer cli.Close()
		prefix := "sluice-test-lookup-" + testservice.Suffix() + ":"
		defer func() {
			for i := 0; i < n; i++ {
				cli.Del(ctx, prefix+strconv.Itoa(i))
			}
		}()
		tm, _ := lookup.ParseTemplate(prefix + "{user}")
		rd, err := lookup.OpenRedis(ctx, lookup.RedisConfig{Options: redis.Options{Addr: addr}, Key: tm, Type: lookup.RedisHash, Fields: []string{"tier"}})
		if err != nil {
			t.Fatal(err)
		}
		v := &versioned{Lookuper: rd, at: map[string]int{}, update: func(k int) {
			_, err := cli.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := 0; i < n; i++ {
					p.HSet(ctx, prefix+strconv.Itoa(i), "tier", "v"+strconv.Itoa(k))
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}}
		rows, _, err := runWith(t, `
parallelism: 1
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      redis: {addr: "`+addr+`", key: "`+prefix+`{user}"}
      fields: [tier]
sink: {stdout: {}}
`, in, withLookuper(v, nil), WithStreamOptions(stream.WithBatchSize(32)))
		if err != nil {
			t.Fatal(err)
		}
		check(t, rows, v)
	})
}

// TestLookupPostgresEndToEnd runs the step on its own connector (no
// injected Lookuper): the columns come from the query, and the metrics
// count the work.
func TestLookupPostgresEndToEnd(t *testing.T) {
	dsn := pgTestDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL at %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	tbl := "sluice_lookup_" + testservice.Suffix()
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, name text, tier int); INSERT INTO %s SELECT i, 'u' || i, i %% 3 FROM generate_series(0, 8) i", tbl, tbl)); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "DROP TABLE "+tbl)
	rows, j, err := runWith(t, `
parallelism: 1
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      postgres: {dsn: "`+dsn+`", query: "SELECT name, tier FROM `+tbl+` WHERE id = $1", key: [user]}
      cache: {size: 100, ttl: 1h}
sink: {stdout: {}}
`, map[string]string{"in.jsonl": ordersFile(100)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 100 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		u := int(r["user"].(float64))
		if (u == 9) != (r["name"] == nil) || (u != 9 && (r["name"] != "u"+strconv.Itoa(u) || r["tier"] != float64(u%3))) {
			t.Errorf("row %v", r)
		}
	}
	m := j.lookups[0].client.Metrics()
	if m.Lookups.Load() != 100 || m.Misses.Load() != 10 || m.Hits.Load()+m.Misses.Load() > 100 {
		t.Errorf("metrics: lookups %d misses %d hits %d", m.Lookups.Load(), m.Misses.Load(), m.Hits.Load())
	}
}

// TestLookupExactlyOnce: a lookup step in an exactly-once pipeline with
// checkpoints: barriers pass the operator and the file sink commits every
// record once.
func TestLookupExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	_, j, err := runWith(t, `
parallelism: 2
source: {file: {path: $DIR/in.jsonl}}
steps:
  - lookup:
      redis: {key: "u:{user}"}
      fields: [name, tier]
sink: {file: {path: `+dir+`/out}}
checkpoint: {interval: 20ms, dir: $DIR/chk}
`, map[string]string{"in.jsonl": ordersFile(3000)}, withLookuper(newFakeUsers(), nil), WithStreamOptions(stream.WithBatchSize(64)))
	if err != nil {
		t.Fatal(err)
	}
	if j.CheckpointStats().Completed == 0 {
		t.Error("no checkpoint completed")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: %q: %v", f, line, err)
			}
			seq := fmt.Sprint(m["seq"])
			if seen[seq] {
				t.Errorf("record %s written twice", seq)
			}
			seen[seq] = true
			if u := fmt.Sprint(m["user"]); u != "9" && m["name"] != "u"+u {
				t.Errorf("record %v: name", m)
			}
		}
	}
	if len(seen) != 3000 {
		t.Errorf("%d records written, want 3000", len(seen))
	}
}
