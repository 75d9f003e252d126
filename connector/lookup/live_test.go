package lookup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/faultproxy"
	"github.com/sluicehq/sluice/internal/testservice"
	"github.com/sluicehq/sluice/row"
)

// The tests in this file run against the local PostgreSQL and Redis
// (skipped when there is none): SLUICE_TEST_POSTGRES_DSN and
// SLUICE_TEST_REDIS name others.

func pgDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		testservice.Addr(t, "SLUICE_TEST_POSTGRES", "127.0.0.1:5432", "PostgreSQL")
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	return dsn
}

// pgTable creates a users table unique to the test (dropped afterwards)
// and returns a connection for changing it and its name.
func pgTable(t testing.TB, dsn string) (*pgx.Conn, string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL at %s (set SLUICE_TEST_POSTGRES_DSN): %v", dsn, err)
	}
	name := "sluice_lookup_" + testservice.Suffix()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, name text, tier text, score numeric(10,2), seen timestamptz)`, name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+name)
		conn.Close(context.Background())
	})
	return conn, name
}

func exec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func redisAddr(t testing.TB) (*redis.Client, string) {
	t.Helper()
	addr := testservice.Addr(t, "SLUICE_TEST_REDIS", "127.0.0.1:6379", "Redis")
	cli := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { cli.Close() })
	return cli, addr
}

// TestPostgresBatchedMatchesOracle: the `= ANY($1)` query answers each
// key with exactly its rows (keys given as ints, strings and floats, some
// missing, some repeated), in one query.
func TestPostgresBatchedMatchesOracle(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s (id, name, tier, score, seen) SELECT i, 'u' || i, CASE WHEN i %% 3 = 0 THEN 'gold' ELSE 'basic' END, i / 4.0, timestamptz '2024-01-01 00:00:00Z' + i * interval '1 second' FROM generate_series(1, 200, 2) i`, tbl))
	ctx := context.Background()
	for _, noBatch := range []bool{false, true} {
		p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT name, tier, score, seen FROM %s WHERE id = $1", tbl), NoBatch: noBatch})
		if err != nil {
			t.Fatal(err)
		}
		if p.Batched() == noBatch {
			t.Errorf("noBatch %v: Batched() = %v", noBatch, p.Batched())
		}
		if !slices.Equal(p.Columns(), []string{"name", "tier", "score", "seen"}) {
			t.Errorf("columns %q", p.Columns())
		}
		var ks []Key
		for i := 0; i < 220; i++ {
			switch i % 3 {
			case 0:
				ks = append(ks, Key{row.Int(int64(i))})
			case 1:
				ks = append(ks, Key{row.String(strconv.Itoa(i))})
			default:
				ks = append(ks, Key{row.Float(float64(i))})
			}
		}
		res, err := p.Lookup(ctx, ks)
		if err != nil {
			t.Fatal(err)
		}
		for i, rows := range res {
			if i%2 == 0 || i > 200 {
				if rows != nil {
					t.Errorf("key %d: rows %v, want none", i, rows)
				}
				continue
			}
			tier := "basic"
			if i%3 == 0 {
				tier = "gold"
			}
			want := Row{row.String("u" + strconv.Itoa(i)), row.String(tier), row.Float(float64(i) / 4), row.Timestamp(time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC).UnixMilli())}
			if len(rows) != 1 || !slices.EqualFunc(rows[0], want, row.Equal) {
				t.Errorf("key %d: rows %v, want %v", i, rows, want)
			}
		}
		p.Close()
	}
}

// TestPostgresPerKey: queries that the rewrite does not fit (two
// parameters, several rows per key) run once per key in one pipelined
// batch, each key getting its rows.
func TestPostgresPerKey(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s (id, name, tier) VALUES (1, 'a', 'x'), (2, 'b', 'x'), (3, 'c', 'y')`, tbl))
	ctx := context.Background()
	p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT id, name FROM %s WHERE tier = $1 AND id >= $2 ORDER BY id", tbl)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Batched() {
		t.Fatal("a two-parameter query was batched")
	}
	res, err := p.Lookup(ctx, []Key{{row.String("x"), row.Int(1)}, {row.String("y"), row.String("1")}, {row.String("x"), row.Int(2)}, {row.String("z"), row.Int(0)}})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res)
	if want := "[[[1 a] [2 b]] [[3 c]] [[2 b]] []]"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if _, err := p.Lookup(ctx, []Key{{row.String("x"), row.String("not a number")}}); err == nil {
		t.Error("a key that is not a number for a bigint parameter was accepted")
	}
}

// TestPostgresCurrentWithinTTL: each lookup returns the row current at
// lookup time, or, through a cache, a value at most TTL old.
func TestPostgresCurrentWithinTTL(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	p, err := OpenPostgres(context.Background(), PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT tier FROM %s WHERE id = $1", tbl)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	checkCurrentWithinTTL(t, p, func(id int, tier string) {
		if tier == "" {
			exec(t, conn, fmt.Sprintf("DELETE FROM %s WHERE id = $1", tbl), id)
			return
		}
		exec(t, conn, fmt.Sprintf("INSERT INTO %s (id, tier) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier", tbl), id, tier)
	})
}

// TestRedisCurrentWithinTTL is TestPostgresCurrentWithinTTL on Redis,
// for hashes and for JSON strings.
func TestRedisCurrentWithinTTL(t *testing.T) {
	cli, addr := redisAddr(t)
	for _, typ := range []string{RedisHash, RedisString} {
		t.Run(typ, func(t *testing.T) {
			prefix := "sluice-test-lookup-" + testservice.Suffix() + ":"
			tm, _ := ParseTemplate(prefix + "{id}")
			r, err := OpenRedis(context.Background(), RedisConfig{Options: redis.Options{Addr: addr}, Key: tm, Type: typ, Fields: []string{"tier"}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			t.Cleanup(func() {
				for i := 0; i < 3; i++ {
					cli.Del(ctx, prefix+strconv.Itoa(i))
				}
			})
			checkCurrentWithinTTL(t, r, func(id int, tier string) {
				k := prefix + strconv.Itoa(id)
				var err error
				switch {
				case tier == "":
					err = cli.Del(ctx, k).Err()
				case typ == RedisHash:
					err = cli.HSet(ctx, k, "tier", tier, "other", "x").Err()
				default:
					err = cli.Set(ctx, k, `{"tier":"`+tier+`","other":1}`, 0).Err()
				}
				if err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// checkCurrentWithinTTL drives a Lookuper of one column through updates
// made by set (tier "" deletes the key): without a cache every Get sees
// the last update; with one, a value or absence fetched at time T is
// served until T+TTL and refetched from then on (a fake clock).
func checkCurrentWithinTTL(t *testing.T, l Lookuper, set func(id int, tier string)) {
	t.Helper()
	ck := &clock{t: time.Unix(1_700_000_000, 0)}
	const ttl = 30 * time.Second
	cached, err := NewClient(l, Config{CacheSize: 100, CacheTTL: ttl, Now: ck.now})
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := NewClient(l, Config{})
	get := func(c *Client, id int) string {
		t.Helper()
		res, err := c.Get(context.Background(), []Key{{row.Int(int64(id))}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res[0]) == 0 {
			return "-"
		}
		return res[0][0][0].AsString()
	}
	step := func(what string, c *Client, id int, want string) {
		t.Helper()
		if got := get(c, id); got != want {
			t.Errorf("%s: key %d = %q, want %q", what, id, got, want)
		}
	}
	set(1, "v0")
	step("direct, first", direct, 1, "v0")
	step("cached, first", cached, 1, "v0")
	for i := 1; i <= 3; i++ {
		v := "v" + strconv.Itoa(i)
		set(1, v)
		step("direct after update "+v, direct, 1, v)
	}
	ck.advance(ttl - time.Millisecond)
	step("cached just before the ttl", cached, 1, "v0")
	ck.advance(time.Millisecond)
	step("cached at the ttl", cached, 1, "v3")
	set(1, "")
	step("direct after delete", direct, 1, "-")
	step("cached after delete, within ttl", cached, 1, "v3")
	ck.advance(ttl)
	step("cached after delete, after ttl", cached, 1, "-")
	// Absence is cached as well.
	set(1, "back")
	ck.advance(ttl / 2)
	step("cached absence within ttl", cached, 1, "-")
	step("direct after re-insert", direct, 1, "back")
	ck.advance(ttl / 2)
	step("cached absence at the ttl", cached, 1, "back")
	if m := cached.Metrics(); m.Hits.Load() != 3 || m.Misses.Load() != 4 {
		t.Errorf("cached: hits %d misses %d, want 3 and 4", m.Hits.Load(), m.Misses.Load())
	}
}

// TestRedisValues: hash fields and JSON members by name, a non-JSON
// string as the first field, missing keys and fields as null, all in one
// round trip per batch.
func TestRedisValues(t *testing.T) {
	cli, addr := redisAddr(t)
	ctx := context.Background()
	prefix := "sluice-test-lookup-" + testservice.Suffix() + ":"
	t.Cleanup(func() {
		for _, k := range []string{"h1", "s1", "s2", "s3"} {
			cli.Del(ctx, prefix+k)
		}
	})
	cli.HSet(ctx, prefix+"h1", "name", "ann", "tier", "gold")
	cli.Set(ctx, prefix+"s1", `{"name":"bob","tier":3,"extra":{"a":[1]}}`, 0)
	cli.Set(ctx, prefix+"s2", `plain text`, 0)
	cli.Set(ctx, prefix+"s3", `{"name":null}`, 0)
	tm, _ := ParseTemplate(prefix + "{k}")
	for _, c := range []struct {
		typ  string
		keys []string
		want string
	}{
		{RedisHash, []string{"h1", "nope"}, `[[[ann gold]] []]`},
		{RedisString, []string{"s1", "s2", "s3", "nope"}, `[[[bob 3]] [[plain text null]] [[null null]] []]`},
	} {
		r, err := OpenRedis(ctx, RedisConfig{Options: redis.Options{Addr: addr}, Key: tm, Type: c.typ, Fields: []string{"name", "tier"}})
		if err != nil {
			t.Fatal(err)
		}
		var ks []Key
		for _, k := range c.keys {
			ks = append(ks, Key{row.String(k)})
		}
		res, err := r.Lookup(ctx, ks)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(res); got != c.want {
			t.Errorf("%s: %s, want %s", c.typ, got, c.want)
		}
	}
}

// TestOutageRetried: lookups through a link that is cut fail, are
// retried with backoff on fresh connections, and succeed once the link is
// back (the test's Sleep restores it at the second retry); with every
// try failing, Get returns ErrLookup naming the cause. PostgreSQL and
// Redis.
func TestOutageRetried(t *testing.T) {
	type setup struct {
		name string
		open func(t *testing.T, addr string) (Lookuper, Key, string)
		addr string
	}
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf("INSERT INTO %s (id, tier) VALUES (7, 'gold')", tbl))
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cli, raddr := redisAddr(t)
	rkey := "sluice-test-lookup-" + testservice.Suffix()
	cli.HSet(context.Background(), rkey+":7", "tier", "gold")
	t.Cleanup(func() { cli.Del(context.Background(), rkey+":7") })
	for _, s := range []setup{
		{"postgres", func(t *testing.T, addr string) (Lookuper, Key, string) {
			direct := fmt.Sprintf("%s:%d", pcfg.Host, pcfg.Port)
			if !strings.Contains(dsn, direct) {
				t.Skipf("the DSN %q does not name %s: cannot route it through the proxy", dsn, direct)
			}
			l, err := OpenPostgres(context.Background(), PostgresConfig{DSN: strings.Replace(dsn, direct, addr, 1), Query: fmt.Sprintf("SELECT tier FROM %s WHERE id = $1", tbl)})
			if err != nil {
				t.Fatal(err)
			}
			return l, Key{row.Int(7)}, "gold"
		}, fmt.Sprintf("%s:%d", pcfg.Host, pcfg.Port)},
		{"redis", func(t *testing.T, addr string) (Lookuper, Key, string) {
			tm, _ := ParseTemplate(rkey + ":{id}")
			l, err := OpenRedis(context.Background(), RedisConfig{Options: redis.Options{Addr: addr, MaxRetries: -1}, Key: tm, Type: RedisHash, Fields: []string{"tier"}})
			if err != nil {
				t.Fatal(err)
			}
			return l, Key{row.Int(7)}, "gold"
		}, raddr},
	} {
		t.Run(s.name, func(t *testing.T) {
			p, err := faultproxy.Start(s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			l, key, want := s.open(t, p.Addr())
			defer l.Close()
			tries := 0
			sleep := func(ctx context.Context, d time.Duration) error {
				tries++
				if tries == 2 {
					p.Restore()
				}
				return nil
			}
			c, _ := NewClient(l, Config{Retries: 3, Sleep: sleep, Timeout: 5 * time.Second})
			ctx := context.Background()
			if res, err := c.Get(ctx, []Key{key}); err != nil || len(res[0]) != 1 || res[0][0][0].AsString() != want {
				t.Fatalf("before the cut: %v %v", res, err)
			}
			p.Cut()
			res, err := c.Get(ctx, []Key{key})
			if err != nil || len(res[0]) != 1 || res[0][0][0].AsString() != want {
				t.Fatalf("through the outage: %v %v", res, err)
			}
			if m := c.Metrics(); m.Errors.Load() < 2 {
				t.Errorf("%d failed queries, want at least 2 (cut until the second retry)", m.Errors.Load())
			}
			p.Cut()
			tries = -100 // never restored
			if _, err := c.Get(ctx, []Key{key}); !errors.Is(err, ErrLookup) {
				t.Errorf("a lasting outage: %v, want ErrLookup", err)
			}
		})
	}
}

// TestPostgresPoolConcurrent: more concurrent lookups than connections
// all complete (they wait for a connection), with the right rows.
func TestPostgresPoolConcurrent(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf("INSERT INTO %s (id, tier) SELECT i, 't' || i FROM generate_series(0, 99) i", tbl))
	p, err := OpenPostgres(context.Background(), PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT tier FROM %s WHERE id = $1", tbl), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				id := (g*20 + i) % 100
				res, err := p.Lookup(context.Background(), []Key{{row.Int(int64(id))}})
				if err == nil && (len(res[0]) != 1 || res[0][0][0].AsString() != "t"+strconv.Itoa(id)) {
					err = fmt.Errorf("key %d: %v", id, res)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestPostgresBatchedMatchesPerKey: for key columns whose values come
// back in another text than the key was sent in (char(n) pads, citext
// ignores case, numeric beyond 2^53, real rounds), the batched query
// answers every key as the per-key query does (the oracle: the query as
// the user wrote it, once per key).
func TestPostgresBatchedMatchesPerKey(t *testing.T) {
	dsn := pgDSN(t)
	conn, _ := pgTable(t, dsn)
	ctx := context.Background()
	name := "sluice_lookup_keys_" + testservice.Suffix()
	exec(t, conn, fmt.Sprintf(`CREATE TABLE %s (c char(5), n numeric(30,0), r real, v text)`, name))
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+name) })
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s VALUES ('ab', 12345678901234567890, 0.1, 'one'), ('abcde', 12345678901234567891, 2.5, 'two')`, name))
	cases := []struct {
		col  string
		keys []Key
	}{
		{"c", []Key{{row.String("ab")}, {row.String("abcde")}, {row.String("ab   ")}, {row.String("x")}}},
		{"n", []Key{{row.String("12345678901234567890")}, {row.String("12345678901234567891")}, {row.String("12345678901234567892")}}},
		{"r", []Key{{row.Float(0.1)}, {row.Float(2.5)}, {row.Float(3)}, {row.Float(0.1000000001)}}},
	}
	for _, c := range cases {
		q := fmt.Sprintf("SELECT v FROM %s WHERE %s = $1", name, c.col)
		var want string
		for _, noBatch := range []bool{true, false} {
			p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: q, NoBatch: noBatch})
			if err != nil {
				t.Fatal(err)
			}
			if p.Batched() == noBatch {
				t.Fatalf("%s: noBatch %v, Batched() %v", c.col, noBatch, p.Batched())
			}
			res, err := p.Lookup(ctx, c.keys)
			p.Close()
			if err != nil {
				t.Fatalf("%s: %v", c.col, err)
			}
			if got := fmt.Sprint(res); noBatch {
				want = got
			} else if got != want {
				t.Errorf("key column %s: batched %s, per key %s", c.col, got, want)
			}
		}
	}
}

// TestPostgresBadKeyAlone: a key the query's parameter type cannot hold
// ("abc" for a bigint) fails alone: the other keys of the batch are
// answered, in both query shapes, and the bad key is not retried.
func TestPostgresBadKeyAlone(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s (id, name) VALUES (1, 'a'), (2, 'b')`, tbl))
	ctx := context.Background()
	for _, noBatch := range []bool{false, true} {
		p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT name FROM %s WHERE id = $1", tbl), NoBatch: noBatch})
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(p, Config{CacheSize: 10, CacheTTL: time.Minute, Sleep: func(context.Context, time.Duration) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Get(ctx, []Key{{row.Int(1)}, {row.String("abc")}, {row.Int(2)}, {row.Int(3)}, {row.Float(1.5)}})
		var bad *KeyErrors
		if !errors.As(err, &bad) {
			t.Fatalf("noBatch %v: err %v, want KeyErrors", noBatch, err)
		}
		for i, want := range []bool{false, true, false, false, true} {
			if (bad.Errs[i] != nil) != want {
				t.Errorf("noBatch %v: key %d: error %v, want one: %v", noBatch, i, bad.Errs[i], want)
			}
		}
		if got, want := fmt.Sprint(res), "[[[a]] [] [[b]] [] []]"; got != want {
			t.Errorf("noBatch %v: rows %s, want %s", noBatch, got, want)
		}
		if q := c.Metrics().Queries.Load(); q != 1 {
			t.Errorf("noBatch %v: %d queries, want 1 (a bad key is not retried)", noBatch, q)
		}
		c.Close()
	}
}

// TestRedisWrongTypeAlone: a key that holds a string where the step
// reads hashes fails alone (Redis answers WRONGTYPE for it); the other
// keys of the batch are answered. Before, the error failed the whole
// batch, retried.
func TestRedisWrongTypeAlone(t *testing.T) {
	cli, addr := redisAddr(t)
	ctx := context.Background()
	prefix := "sluice-test-lookup-" + testservice.Suffix() + ":"
	t.Cleanup(func() { cli.Del(context.Background(), prefix+"1", prefix+"2", prefix+"3") })
	if err := cli.HSet(ctx, prefix+"1", "tier", "gold").Err(); err != nil {
		t.Fatal(err)
	}
	if err := cli.Set(ctx, prefix+"2", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cli.HSet(ctx, prefix+"3", "tier", "basic").Err(); err != nil {
		t.Fatal(err)
	}
	tm, _ := ParseTemplate(prefix + "{id}")
	r, err := OpenRedis(ctx, RedisConfig{Options: redis.Options{Addr: addr}, Key: tm, Type: RedisHash, Fields: []string{"tier"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(r, Config{Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Get(ctx, []Key{{row.Int(1)}, {row.Int(2)}, {row.Int(3)}, {row.Int(4)}})
	var bad *KeyErrors
	if !errors.As(err, &bad) || bad.Errs[1] == nil || bad.Errs[0] != nil || bad.Errs[2] != nil || bad.Errs[3] != nil {
		t.Fatalf("err %v, want a KeyErrors for key 2 alone", err)
	}
	if got, want := fmt.Sprint(res), "[[[gold]] [] [[basic]] []]"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if q := c.Metrics().Queries.Load(); q != 1 {
		t.Errorf("%d queries, want 1", q)
	}
}

// TestPostgresColumnsChange: when the table changes under a `SELECT *`
// query during a run (a column dropped or added), a lookup fails with an
// error naming the change instead of returning rows of another width
// than Columns (which the lookup step indexed by position: a panic).
func TestPostgresColumnsChange(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s (id, name, tier) VALUES (1, 'a', 'x')`, tbl))
	ctx := context.Background()
	for _, noBatch := range []bool{false, true} {
		p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT * FROM %s WHERE id = $1", tbl), NoBatch: noBatch})
		if err != nil {
			t.Fatal(err)
		}
		cols := len(p.Columns())
		if _, err := p.Lookup(ctx, []Key{{row.Int(1)}}); err != nil {
			t.Fatal(err)
		}
		alter := "DROP COLUMN tier"
		if noBatch {
			alter = "ADD COLUMN extra text"
		}
		exec(t, conn, fmt.Sprintf("ALTER TABLE %s %s", tbl, alter))
		var last error
		for try := range 3 { // the first may fail on the cached plan
			res, err := p.Lookup(ctx, []Key{{row.Int(1)}})
			if last = err; err != nil {
				continue
			}
			for _, rows := range res {
				for _, r := range rows {
					if len(r) != cols {
						t.Errorf("noBatch %v, try %d: a row of %d values for %d columns", noBatch, try, len(r), cols)
					}
				}
			}
		}
		if last == nil || !strings.Contains(last.Error(), "the table changed") {
			t.Errorf("noBatch %v: the last lookup's error %v, want one saying the table changed", noBatch, last)
		}
		p.Close()
	}
}

// TestPostgresOutOfRangeKeyAlone: a key beyond the range of an int or
// smallint key column cannot be sent as the parameter: it fails alone,
// and the other keys of the batch are answered. Before, pgx refused to
// encode the whole batch's parameter, and every key failed, retried.
func TestPostgresOutOfRangeKeyAlone(t *testing.T) {
	dsn := pgDSN(t)
	conn, _ := pgTable(t, dsn)
	ctx := context.Background()
	name := "sluice_lookup_int_" + testservice.Suffix()
	exec(t, conn, fmt.Sprintf(`CREATE TABLE %s (i int, s smallint, v text)`, name))
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+name) })
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s VALUES (1, 1, 'one'), (2, 2, 'two')`, name))
	// -70000 fits an int, not a smallint.
	for _, col := range []string{"i", "s"} {
		badLast := col == "s"
		for _, noBatch := range []bool{false, true} {
			p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT v FROM %s WHERE %s = $1", name, col), NoBatch: noBatch})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Lookup(ctx, []Key{{row.Int(1)}, {row.Int(3_000_000_000)}, {row.Int(2)}, {row.Int(-70_000)}})
			p.Close()
			var bad *KeyErrors
			if !errors.As(err, &bad) || bad.Errs[0] != nil || bad.Errs[1] == nil || bad.Errs[2] != nil || (bad.Errs[3] != nil) != badLast {
				t.Errorf("%s, noBatch %v: err %v, want KeyErrors for key 1 (and 3 for a smallint)", col, noBatch, err)
				continue
			}
			if got, want := fmt.Sprint(res), "[[[one]] [] [[two]] []]"; got != want {
				t.Errorf("%s, noBatch %v: rows %s, want %s", col, noBatch, got, want)
			}
		}
	}
}

// TestPostgresUnsendableTextKeyAlone: a text key PostgreSQL cannot
// receive (a NUL byte, invalid UTF-8) fails alone; before, the server
// refused the whole batch's parameter and every key failed, retried.
func TestPostgresUnsendableTextKeyAlone(t *testing.T) {
	dsn := pgDSN(t)
	conn, tbl := pgTable(t, dsn)
	exec(t, conn, fmt.Sprintf(`INSERT INTO %s (id, name, tier) VALUES (1, 'a', 'x'), (2, 'b', 'y')`, tbl))
	ctx := context.Background()
	for _, noBatch := range []bool{false, true} {
		p, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Query: fmt.Sprintf("SELECT tier FROM %s WHERE name = $1", tbl), NoBatch: noBatch})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Lookup(ctx, []Key{{row.String("a")}, {row.String("a\x00b")}, {row.String("b")}, {row.String("\xff")}})
		p.Close()
		var bad *KeyErrors
		if !errors.As(err, &bad) || bad.Errs[0] != nil || bad.Errs[1] == nil || bad.Errs[2] != nil || bad.Errs[3] == nil {
			t.Errorf("noBatch %v: err %v, want KeyErrors for keys 1 and 3", noBatch, err)
			continue
		}
		if got, want := fmt.Sprint(res), "[[[x]] [] [[y]] []]"; got != want {
			t.Errorf("noBatch %v: rows %s, want %s", noBatch, got, want)
		}
	}
}
