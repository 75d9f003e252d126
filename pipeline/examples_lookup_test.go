package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/testservice"
)

// TestExampleLookupUsers runs examples/orders-lookup-users.yaml (which
// TestExamples skips: it needs PostgreSQL and Redis) on the local servers,
// with its users table and Redis keys under names of this test's own, set
// up as the example's header says: every paid order comes out, with the
// user's row and segment where there is one and nulls otherwise.
func TestExampleLookupUsers(t *testing.T) {
	dsn := pgTestDSN(t)
	addr := testservice.Addr(t, "SLUICE_TEST_REDIS", "127.0.0.1:6379", "Redis")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL at %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	suffix := testservice.Suffix()
	tbl := "sluice_example_users_" + suffix
	if _, err := conn.Exec(ctx, "CREATE TABLE "+tbl+" (id text PRIMARY KEY, name text, tier text); INSERT INTO "+tbl+" VALUES ('u7', 'Ann', 'gold')"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "DROP TABLE "+tbl)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	prefix := "sluice-example-" + suffix + ":"
	if err := rc.HSet(ctx, prefix+"segment:u7", "segment", "returning", "since", "2025-03-01").Err(); err != nil {
		t.Fatal(err)
	}
	defer rc.Del(context.Background(), prefix+"segment:u7")

	spec, err := ParseFile("../examples/orders-lookup-users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := spec.Source.cfg.(*fileSourceConfig)
	src.cfg.Path = filepath.Join("..", src.cfg.Path)
	pg := spec.Steps[1].Lookup.Postgres
	pg.DSN = dsn
	pg.Query = strings.Replace(pg.Query, "FROM users", "FROM "+tbl, 1)
	rd := spec.Steps[2].Lookup.Redis
	rd.Options.Addr = addr
	rd.Key = prefix + rd.Key
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	j, err := plan.Start(ctx, &Host{Stdout: &stdout, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}

	// The paid orders of the input, by order id.
	in, err := os.ReadFile("../examples/data/orders.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	paid := map[float64]string{}
	sc := bufio.NewScanner(bytes.NewReader(in))
	for sc.Scan() {
		var o struct {
			OrderID float64 `json:"order_id"`
			UserID  string  `json:"user_id"`
			Status  string
		}
		if json.Unmarshal(sc.Bytes(), &o) == nil && o.Status == "paid" {
			paid[o.OrderID] = o.UserID
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	seen := map[float64]bool{}
	found := 0 // orders of u7
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output %q: %v", l, err)
		}
		order, _ := r["order"].(float64)
		user, ok := paid[order]
		var wantUser any = user
		if user == "" {
			wantUser = nil // an order without a user_id: null key, not looked up
		}
		if !ok || r["user"] != wantUser {
			t.Fatalf("output %v: not a paid order of the input", r)
		}
		seen[order] = true
		want := map[string]any{"name": nil, "tier": nil, "segment": nil}
		if user == "u7" {
			found++
			want = map[string]any{"name": "Ann", "tier": "gold", "segment": "returning"}
		}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("order %v of %s: %s = %v, want %v", order, user, k, r[k], v)
			}
		}
	}
	// Exact duplicates in the input share an order id.
	if found == 0 || len(seen) != len(paid) {
		t.Errorf("%d paid orders out (%d of u7), %d in the input", len(seen), found, len(paid))
	}
}
