package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/testservice"
)

// The lookup benchmarks run the orders of benchInput (user_id one of
// 10,000 users, "u0".."u9999") through a lookup step against the local
// PostgreSQL or Redis, one subtask, batches of 1024 records:
//
//	go test -run '^$' -bench 'Lookup' -benchtime 3x ./pipeline
//
// cached: a cache of all users (ttl 1 h): after the first 10,000 misses
// every lookup is a hit (the warm case). uncached: no cache, each record
// batch one query (= ANY($1), or MGET / pipelined HGETALL) with its
// distinct users. perkey: the query's shape (LIMIT 1) is not rewritten,
// so each batch is one pipelined pgx.Batch of one query per distinct user.

const lookupBenchRecords = 200_000

func BenchmarkLookupPostgres(b *testing.B) {
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		testservice.Addr(b, "SLUICE_TEST_POSTGRES", "127.0.0.1:5432", "PostgreSQL")
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Skip(err)
	}
	defer conn.Close(ctx)
	tbl := "sluice_lookup_bench_" + testservice.Suffix()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (id text PRIMARY KEY, name text, tier int); INSERT INTO %s SELECT 'u' || i, 'name ' || i, i %% 5 FROM generate_series(0, 9999) i; ANALYZE %s`, tbl, tbl, tbl)); err != nil {
		b.Fatal(err)
	}
	defer conn.Exec(context.Background(), "DROP TABLE "+tbl)
	for _, c := range []struct{ name, query, cache string }{
		{"cached", "SELECT name, tier FROM %s WHERE id = $1", "\n      cache: {size: 20000, ttl: 1h}"},
		{"uncached", "SELECT name, tier FROM %s WHERE id = $1", ""},
		{"perkey", "SELECT name, tier FROM %s WHERE id = $1 LIMIT 1", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchRun(b, lookupBenchRecords, fmt.Sprintf(`
  - lookup:
      postgres: {dsn: "%s", query: "%s", key: [user_id]}%s
  - map: {order_id: order_id, user_id: user_id, name: name, tier: tier}`, dsn, fmt.Sprintf(c.query, tbl), c.cache))
		})
	}
}

func BenchmarkLookupRedis(b *testing.B) {
	addr := testservice.Addr(b, "SLUICE_TEST_REDIS", "127.0.0.1:6379", "Redis")
	ctx := context.Background()
	cli := redis.NewClient(&redis.Options{Addr: addr})
	defer cli.Close()
	prefix := "sluice-bench-lookup-" + testservice.Suffix()
	_, err := cli.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < 10000; i++ {
			id := "u" + strconv.Itoa(i)
			p.HSet(ctx, prefix+":h:"+id, "name", "name "+strconv.Itoa(i), "tier", i%5)
			p.Set(ctx, prefix+":s:"+id, fmt.Sprintf(`{"name":"name %d","tier":%d}`, i, i%5), 0)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		cli.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < 10000; i++ {
				id := "u" + strconv.Itoa(i)
				p.Del(ctx, prefix+":h:"+id, prefix+":s:"+id)
			}
			return nil
		})
	}()
	for _, c := range []struct{ name, typ, cache string }{
		{"cached", "hash", "\n      cache: {size: 20000, ttl: 1h}"},
		{"uncached-hash", "hash", ""},
		{"uncached-string", "string", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchRun(b, lookupBenchRecords, fmt.Sprintf(`
  - lookup:
      redis: {addr: "%s", key: "%s:%s:{user_id}", type: %s}
      fields: [name, tier]%s
  - map: {order_id: order_id, user_id: user_id, name: name, tier: tier}`, addr, prefix, c.typ[:1], c.typ, c.cache))
		})
	}
}

// BenchmarkLookupNoop is the same pipeline with a map in place of the
// lookup: the cost of the rest of the pipeline (file in, JSON, file out).
func BenchmarkLookupNoop(b *testing.B) {
	benchRun(b, lookupBenchRecords, `
  - map: {order_id: order_id, user_id: user_id, name: user_id, tier: qty}`)
}
