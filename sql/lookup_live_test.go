package sql

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/testservice"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

const liveBatch = 8

// liveSession is a session of parallelism 1 with batches of liveBatch
// rows, an orders table of n rows (seq 1..n, user_id seq % 10) and a
// BUMP(seq, user_id) function that calls bump(seq) and returns user_id.
func liveSession(t *testing.T, n int, bump func(seq int64)) *Session {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for s := 1; s <= n; s++ {
		fmt.Fprintf(&b, `{"seq":%d,"user_id":%d}`+"\n", s, s%10)
	}
	if err := os.WriteFile(filepath.Join(dir, "orders.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sess := NewSession(Options{StreamOptions: []stream.Option{stream.WithBatchSize(liveBatch), stream.WithParallelism(1)}})
	err := sess.RegisterFunction(expr.ScalarFunc{
		Name:  "BUMP",
		Check: func([]types.Type) (types.Type, error) { return types.Type{Kind: types.BigInt}, nil },
		Eval: func(args []row.Value) row.Value {
			bump(args[0].AsInt())
			return args[1]
		},
	}, "BUMP")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.ExecuteScript(context.Background(), fmt.Sprintf(`CREATE TABLE orders (seq BIGINT, user_id BIGINT, proc AS PROCTIME()) WITH ('connector' = 'filesystem', 'path' = '%s', 'format' = 'json')`, filepath.Join(dir, "orders.jsonl"))); err != nil {
		t.Fatal(err)
	}
	return sess
}

// liveQuery runs a SELECT and returns its rows, values as text ("null"
// for NULL), in arrival order.
func liveQuery(t *testing.T, sess *Session, q string) [][]string {
	t.Helper()
	st, err := parser.ParseStatement(q)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out [][]string
	err = sess.Query(context.Background(), st.(*ast.QueryStatement).Query, nil, func(c exec.Change) {
		mu.Lock()
		defer mu.Unlock()
		cells := make([]string, len(c.Vals))
		for i, v := range c.Vals {
			cells[i] = "null"
			if !v.IsNull() {
				cells[i] = v.String()
			}
		}
		out = append(out, cells)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLookupJoinLivePostgres: a FOR SYSTEM_TIME AS OF join against a
// PostgreSQL table looks each batch of rows up when it is processed. The
// join key calls BUMP, which sets every user's ver to the row's seq before
// the batch is looked up: without a cache a row must see a ver between its
// own seq and the last seq of its batch (a table read at job start would
// show 0); with a cache that outlives the job, every row of a user sees
// the ver of that user's first lookup.
func TestLookupJoinLivePostgres(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skip(err)
	}
	defer conn.Close(ctx)
	tbl := "sluice_sql_lookup_" + testservice.Suffix()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, name text, ver bigint); INSERT INTO %s SELECT i, 'u' || i, 0 FROM generate_series(0, 8) i`, tbl, tbl)); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "DROP TABLE "+tbl)
	bump := func(seq int64) {
		if _, err := conn.Exec(ctx, fmt.Sprintf("UPDATE %s SET ver = $1", tbl), seq); err != nil {
			t.Error(err)
		}
	}
	const n = 120
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) {
			bump(0)
			sess := liveSession(t, n, bump)
			opts := ""
			if cached {
				opts = ", 'lookup.cache.max-rows' = '100', 'lookup.cache.ttl' = '1 h'"
			}
			if err := sess.ExecuteScript(ctx, fmt.Sprintf(`CREATE TABLE users (id BIGINT, name STRING, ver BIGINT) WITH ('connector' = 'jdbc', 'url' = '%s', 'table-name' = '%s'%s)`, dsn, tbl, opts)); err != nil {
				t.Fatal(err)
			}
			rows := liveQuery(t, sess, `SELECT o.seq, o.user_id, u.name, u.ver FROM orders AS o LEFT JOIN users FOR SYSTEM_TIME AS OF o.proc AS u ON u.id = BUMP(o.seq, o.user_id)`)
			if len(rows) != n {
				t.Fatalf("%d rows, want %d", len(rows), n)
			}
			first := map[string]string{}
			for _, r := range rows {
				seq, _ := strconv.ParseInt(r[0], 10, 64)
				if r[1] == "9" {
					if r[2] != "null" || r[3] != "null" {
						t.Errorf("user 9 has no row: got %v", r)
					}
					continue
				}
				if r[2] != "u"+r[1] {
					t.Errorf("row %v: name %s, want u%s", r, r[2], r[1])
				}
				ver, _ := strconv.ParseInt(r[3], 10, 64)
				if !cached {
					if ver < seq || ver >= seq+liveBatch {
						t.Errorf("row %v: ver %d, want the value when its batch was looked up: from %d to %d", r, ver, seq, seq+liveBatch-1)
					}
					continue
				}
				if f, ok := first[r[1]]; !ok {
					first[r[1]] = r[3]
				} else if f != r[3] {
					t.Errorf("row %v: ver %s, want %s (cached by the user's first lookup, ttl 1 h)", r, r[3], f)
				}
				if ver > seq+liveBatch {
					t.Errorf("row %v: ver %d from the future", r, ver)
				}
			}
		})
	}
}

// TestLookupJoinLiveRedis: the same join against Redis hashes (the key
// column from the key, the others from the hash's fields) and JSON
// strings.
func TestLookupJoinLiveRedis(t *testing.T) {
	addr := testservice.Addr(t, "SLUICE_TEST_REDIS", "127.0.0.1:6379", "Redis")
	ctx := context.Background()
	cli := redis.NewClient(&redis.Options{Addr: addr})
	defer cli.Close()
	prefix := "sluice-test-sql-" + testservice.Suffix() + ":"
	defer func() {
		for i := 0; i < 10; i++ {
			cli.Del(ctx, prefix+"h:"+strconv.Itoa(i), prefix+"s:"+strconv.Itoa(i))
		}
	}()
	for i := 0; i < 9; i++ {
		cli.HSet(ctx, prefix+"h:"+strconv.Itoa(i), "name", "u"+strconv.Itoa(i), "ver", 0)
		cli.Set(ctx, prefix+"s:"+strconv.Itoa(i), fmt.Sprintf(`{"name":"u%d","ver":0}`, i), 0)
	}
	for _, typ := range []string{"hash", "string"} {
		t.Run(typ, func(t *testing.T) {
			key := prefix + typ[:1] + ":"
			bump := func(seq int64) {
				_, err := cli.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := 0; i < 9; i++ {
						if typ == "hash" {
							p.HSet(ctx, key+strconv.Itoa(i), "ver", seq)
						} else {
							p.Set(ctx, key+strconv.Itoa(i), fmt.Sprintf(`{"name":"u%d","ver":%d}`, i, seq), 0)
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
			sess := liveSession(t, 60, bump)
			if err := sess.ExecuteScript(ctx, fmt.Sprintf(`CREATE TABLE users (id BIGINT, name STRING, ver BIGINT) WITH ('connector' = 'redis', 'url' = 'redis://%s', 'key.prefix' = '%s', 'data-type' = '%s')`, addr, key, typ)); err != nil {
				t.Fatal(err)
			}
			rows := liveQuery(t, sess, `SELECT o.seq, u.id, u.name, u.ver FROM orders AS o JOIN users FOR SYSTEM_TIME AS OF o.proc AS u ON u.id = BUMP(o.seq, o.user_id)`)
			if len(rows) != 54 { // user 9 has no key: an inner join drops its rows
				t.Fatalf("%d rows, want 54", len(rows))
			}
			for _, r := range rows {
				seq, _ := strconv.ParseInt(r[0], 10, 64)
				ver, _ := strconv.ParseInt(r[3], 10, 64)
				if r[2] != "u"+r[1] || strconv.FormatInt(seq%10, 10) != r[1] || ver < seq || ver >= seq+liveBatch {
					t.Errorf("row %v: want id seq %% 10, name u<id>, ver from seq to seq+%d", r, liveBatch-1)
				}
			}
		})
	}
}

// TestLookupJoinLiveErrors: options and keys a live lookup refuses.
func TestLookupJoinLiveErrors(t *testing.T) {
	sess := liveSession(t, 1, func(int64) {})
	ctx := context.Background()
	for _, c := range []struct{ ddl, want string }{
		{`CREATE TABLE u1 (id BIGINT, name STRING) WITH ('connector' = 'redis', 'lookup.cache.max-rows' = '10')`, "'lookup.cache.max-rows' needs 'lookup.cache.ttl'"},
		{`CREATE TABLE u2 (id BIGINT, name STRING) WITH ('connector' = 'redis', 'lookup.cache.ttl' = '10 parsecs')`, "unknown unit 'parsecs'"},
		{`CREATE TABLE u3 (id BIGINT, name STRING) WITH ('connector' = 'redis', 'key.prefixx' = 'a')`, "unknown option 'key.prefixx'"},
		{`CREATE TABLE u4 (id BIGINT, name STRING) WITH ('connector' = 'jdbc', 'lookup.max-retries' = 'x', 'url' = 'postgres://127.0.0.1:1/x')`, "'lookup.max-retries' = 'x'"},
	} {
		name := strings.Fields(c.ddl)[2]
		if err := sess.ExecuteScript(ctx, c.ddl); err != nil {
			t.Fatalf("%s: %v", c.ddl, err)
		}
		st, err := parser.ParseStatement(`SELECT * FROM orders AS o JOIN ` + name + ` FOR SYSTEM_TIME AS OF o.proc AS u ON u.id = o.user_id`)
		if err != nil {
			t.Fatal(err)
		}
		err = sess.Query(ctx, st.(*ast.QueryStatement).Query, nil, func(exec.Change) {})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.ddl, err, c.want)
		}
	}
}

// TestLookupJoinLiveExplain: EXPLAIN shows a live lookup join without
// connecting to the table's system.
func TestLookupJoinLiveExplain(t *testing.T) {
	sess := liveSession(t, 1, func(int64) {})
	ctx := context.Background()
	if err := sess.ExecuteScript(ctx, `CREATE TABLE u (id BIGINT, name STRING) WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:1')`); err != nil {
		t.Fatal(err)
	}
	st, err := parser.ParseStatement(`EXPLAIN SELECT o.seq, u.name FROM orders AS o JOIN u FOR SYSTEM_TIME AS OF o.proc ON u.id = o.user_id`)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sess.Explain(st.(*ast.Explain).Stmt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "LookupJoin(table=[u], joinType=[InnerJoin], lookup=[o.user_id = id], live=[redis])") {
		t.Errorf("plan:\n%s", plan)
	}
}
