package connect

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
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

// An updating changelog upserted into PostgreSQL leaves the final table
// of the changelog applied to a map.
func TestPostgresUpsert(t *testing.T) {
	dsn := testDSN(t)
	table := fmt.Sprintf("sluice_sql_test_%d_%d", time.Now().UnixNano(), rand.Uint32())
	ctx := context.Background()
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			conn.Close(ctx)
		}
	})
	cols := []Column{col("id", types.TBigInt), col("final", types.DecimalOf(12, 3)), col("ts", types.TTimestamp), col("day", types.TDate)}
	sink, err := OpenSink(SinkTable{Name: "q4", Columns: cols, PrimaryKey: []int{0}, Updating: true,
		Options: Options{"connector": "postgres", "url": dsn, "table-name": table}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	final := map[int64][]row.Value{}
	var changes []exec.Change
	for i := int64(0); i < 300; i++ {
		id := i % 17
		v := []row.Value{row.Int(id), row.Int(i*1001 - 5000), row.Timestamp(1436918400000 + i*1500), row.Int(16631 + i%3)}
		if old, ok := final[id]; ok {
			changes = append(changes, exec.Change{Op: exec.UpdateBefore, Vals: old})
			if i%13 == 0 {
				changes = append(changes, exec.Change{Op: exec.Delete, Vals: old})
				delete(final, id)
				continue
			}
			changes = append(changes, exec.Change{Op: exec.UpdateAfter, Vals: v})
		} else {
			changes = append(changes, exec.Change{Op: exec.Insert, Vals: v})
		}
		final[id] = v
	}
	writeAll(t, sink, changes)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, final::text, (extract(epoch from ts) * 1000)::bigint, (day - date '1970-01-01') FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64][]row.Value{}
	for rows.Next() {
		var id, ms int64
		var days int32
		var dec string
		if err := rows.Scan(&id, &dec, &ms, &days); err != nil {
			t.Fatal(err)
		}
		unscaled, err := parseDecimal(dec, 3)
		if err != nil {
			t.Fatal(err)
		}
		got[id] = []row.Value{row.Int(id), row.Int(unscaled), row.Timestamp(ms), row.Int(int64(days))}
	}
	if len(got) != len(final) {
		t.Fatalf("%d rows, want %d", len(got), len(final))
	}
	for id, v := range final {
		if !equalVals(got[id], v) {
			t.Fatalf("id %d: got %v want %v", id, got[id], v)
		}
	}
}
