package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// testDSN returns the test server's DSN, skipping the test when nothing
// answers there.
func testDSN(t *testing.T) string { return benchDSN(t) }

func benchDSN(t testing.TB) string {
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

// freshTable returns a table name unused so far, dropped after the test,
// and a side table of its own.
func freshTable(t *testing.T, dsn string) (table, side string) { return freshTableB(t, dsn) }

func freshTableB(t testing.TB, dsn string) (table, side string) {
	t.Helper()
	suffix := fmt.Sprintf("%d_%d", time.Now().UnixNano(), rand.Uint32())
	table, side = "sluice_test_"+suffix, "sluice_test_ckpt_"+suffix
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
		conn.Exec(ctx, "DROP TABLE IF EXISTS "+side)
	})
	return table, side
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dump returns the table's rows as text, sorted, columns in order.
func dump(t *testing.T, dsn, table string, cols ...string) []string {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = "coalesce(" + c + "::text, 'NULL')"
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, " || '|' || ")+" FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

var revenueSchema = row.MustSchema(
	row.Field{Name: "user", Kind: row.KindString},
	row.Field{Name: "window_start", Kind: row.KindTimestamp},
	row.Field{Name: "orders", Kind: row.KindInt},
	row.Field{Name: "revenue", Kind: row.KindFloat},
	row.Field{Name: "paid", Kind: row.KindBool},
	row.Field{Name: "meta", Kind: row.KindJSON},
)

func revenueRow(user string, minute int64, orders int64, revenue float64) row.Row {
	return row.Row{Vals: []row.Value{
		row.String(user), row.Timestamp(minute * 60_000), row.Int(orders), row.Float(revenue), row.Bool(orders%2 == 0),
		row.JSON(fmt.Sprintf(`{"n":%d}`, orders)),
	}}
}

func runWriter(t *testing.T, s *Sink, batches [][]row.Row, barrier uint64) {
	t.Helper()
	ctx := ctxT(t)
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batches {
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		if i == 0 && barrier > 0 {
			if err := w.(stream.BarrierWriter).OnBarrier(ctx, barrier); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Upserts by key: the last row of each key wins, within a batch and across
// batches, and running the same input twice leaves the same rows.
func TestUpsertIsIdempotent(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	s, err := NewSink(Config{DSN: dsn, Table: table, Key: []string{"user", "window_start"}, BatchRows: 4, CheckpointTable: side}, revenueSchema)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var batches [][]row.Row
	oracle := map[string]string{}
	for range 6 {
		var b []row.Row
		for range 1 + rng.IntN(6) {
			u, m := fmt.Sprintf("u%d", rng.IntN(4)), int64(rng.IntN(3))
			o, r := rng.Int64N(100), float64(rng.IntN(10000))/100
			b = append(b, revenueRow(u, m, o, r))
			ts := time.UnixMilli(m * 60_000).UTC().Format("2006-01-02 15:04:05+00")
			oracle[u+"|"+ts] = fmt.Sprintf("%s|%s|%d|%v|%v|{\"n\": %d}", u, ts, o, r, o%2 == 0, o)
		}
		batches = append(batches, b)
	}
	var want []string
	for _, v := range oracle {
		want = append(want, v)
	}
	slices.Sort(want)
	cols := []string{`"user"`, "window_start", "orders", "revenue", "paid", "meta"}
	sessionUTC(t, dsn)

	runWriter(t, s, batches, 7)
	first := dump(t, dsn, table, cols...)
	if !slices.Equal(first, want) {
		t.Fatalf("table:\n%s\nwant:\n%s", strings.Join(first, "\n"), strings.Join(want, "\n"))
	}
	runWriter(t, s, batches, 0)
	if again := dump(t, dsn, table, cols...); !slices.Equal(again, first) {
		t.Fatalf("second run changed the table:\n%s", strings.Join(again, "\n"))
	}
	id, ok, err := s.CommittedCheckpoint(ctxT(t), 0)
	if err != nil || !ok || id != 7 {
		t.Fatalf("committed checkpoint = %d, %v, %v; want 7", id, ok, err)
	}
	if _, ok, err := s.CommittedCheckpoint(ctxT(t), 1); ok || err != nil {
		t.Fatalf("subtask 1 committed: %v, %v", ok, err)
	}
}

// sessionUTC makes the server print timestamptz in UTC for dump.
func sessionUTC(t *testing.T, dsn string) {
	t.Helper()
	if !strings.Contains(dsn, "timezone") {
		t.Setenv("PGTZ", "UTC")
	}
}

func TestPipelineWithUntypedFieldsAppends(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	sc, err := row.Untyped("id", "name", "score")
	if err != nil {
		t.Fatal(err)
	}
	var in []row.Row
	for i := range 50 {
		name := row.String(fmt.Sprintf("n%d", i))
		if i == 0 {
			name = row.Null() // the kind comes from the first non-null value
		}
		in = append(in, row.Row{Vals: []row.Value{row.Int(int64(i)), name, row.Float(float64(i) / 4)}})
	}
	s, err := NewSink(Config{DSN: dsn, Table: table, BatchRows: 7, CheckpointTable: side}, sc)
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		env := stream.New(stream.WithParallelism(2))
		stream.To(stream.FromSource(env, "rows", stream.FromSlice(in, 2), stream.WatermarkStrategy[row.Row]{}), stream.Sink[row.Row](s))
		if err := env.Execute(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		got := dump(t, dsn, table, "id", "name", "score")
		if len(got) != 50*run {
			t.Fatalf("run %d: %d rows, want %d (append mode)", run, len(got), 50*run)
		}
		if !slices.Contains(got, "0|NULL|0") || !slices.Contains(got, "49|n49|12.25") {
			t.Fatalf("run %d: rows %v", run, got[:3])
		}
	}
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var types []string
	rows, err := conn.Query(ctx, "SELECT data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position", table)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		types = append(types, s)
	}
	rows.Close()
	if want := []string{"bigint", "text", "double precision"}; !slices.Equal(types, want) {
		t.Fatalf("column types %v, want %v", types, want)
	}
}

// Rows that do not fit their column or that the database refuses are
// rejected, named in a RejectError; the others and the checkpoint id are
// committed, and the writer goes on.
func TestRejectedRowsLeaveTheRest(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// An existing table with a constraint the sink does not know about.
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+` ("user" text NOT NULL, window_start timestamptz NOT NULL, orders bigint CHECK (orders >= 0), revenue double precision, paid boolean, meta jsonb, PRIMARY KEY ("user", window_start))`); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(Config{DSN: dsn, Table: table, Key: []string{"user", "window_start"}, CheckpointTable: side}, revenueSchema)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	badKind := revenueRow("kind", 1, 1, 1)
	badKind.Vals[2] = row.String("many")
	negative := revenueRow("neg", 1, -5, 1)
	in := []row.Row{revenueRow("a", 1, 1, 1), badKind, revenueRow("b", 1, 2, 2), negative, revenueRow("c", 1, 3, 3)}
	if err := w.Write(ctx, in); err != nil {
		t.Fatal(err) // buffered
	}
	err = w.(stream.BarrierWriter).OnBarrier(ctx, 4)
	var rej *RejectError
	if !errors.As(err, &rej) || len(rej.Rejected) != 2 {
		t.Fatalf("err = %v, want a RejectError of 2 rows", err)
	}
	if r := rej.Rejected[0]; r.Field != "orders" || !errors.Is(r.Err, ErrIncompatible) || r.Row.Vals[0].AsString() != "kind" {
		t.Fatalf("first rejected: %+v", r)
	}
	if r := rej.Rejected[1]; pgCode(r.Err) != "23514" || r.Row.Vals[0].AsString() != "neg" {
		t.Fatalf("second rejected: %+v", r)
	}
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("errors.Is(ErrIncompatible) false for %v", err)
	}
	if got := dump(t, dsn, table, `"user"`); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("rows written: %v", got)
	}
	if id, ok, err := s.CommittedCheckpoint(ctx, 0); err != nil || !ok || id != 4 {
		t.Fatalf("checkpoint %d %v %v", id, ok, err)
	}
	// The writer goes on.
	if err := w.Write(ctx, []row.Row{revenueRow("d", 1, 4, 4)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dsn, table, `"user"`); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("rows written: %v", got)
	}
}

func TestExistingTableMissingColumn(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (id bigint)"); err != nil {
		t.Fatal(err)
	}
	s, _ := NewSink(Config{DSN: dsn, Table: table, CheckpointTable: side}, row.MustSchema(row.Field{Name: "id", Kind: row.KindInt}, row.Field{Name: "extra", Kind: row.KindString}))
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(ctx, []row.Row{{Vals: []row.Value{row.Int(1), row.String("x")}}})
	if err := w.Close(ctx); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	sc := row.MustSchema(row.Field{Name: "a", Kind: row.KindInt})
	for _, tc := range []struct {
		cfg Config
		sc  *row.Schema
	}{
		{Config{Table: "t"}, sc},
		{Config{DSN: "postgres://x/y"}, sc},
		{Config{DSN: "postgres://x/y", Table: "t", Key: []string{"b"}}, sc},
		{Config{DSN: "postgres://x/y", Table: "t"}, row.MustSchema()},
		{Config{DSN: "::not a dsn::", Table: "t"}, sc},
	} {
		if _, err := NewSink(tc.cfg, tc.sc); err == nil {
			t.Errorf("NewSink(%+v): no error", tc.cfg)
		}
	}
}

func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		v    row.Value
		k    row.Kind
		want any
		bad  bool
	}{
		{row.Int(3), row.KindFloat, 3.0, false},
		{row.Float(3), row.KindInt, int64(3), false},
		{row.Float(3.5), row.KindInt, nil, true},
		{row.String("x"), row.KindInt, nil, true},
		{row.Int(5), row.KindString, "5", false},
		{row.String("1970-01-01T00:00:01Z"), row.KindTimestamp, time.UnixMilli(1000).UTC(), false},
		{row.String("yesterday"), row.KindTimestamp, nil, true},
		{row.Int(1), row.KindBool, nil, true},
		{row.String("a\"b"), row.KindJSON, `"a\"b"`, false},
		{row.Null(), row.KindInt, nil, false},
	} {
		got, err := convert(tc.v, tc.k)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("convert(%v, %s) = %v, %v; want %v (error %v)", tc.v, tc.k, got, err, tc.want, tc.bad)
		}
	}
}

// A barrier before any row stores the checkpoint id without fixing the
// columns: an untyped field still takes its kind from the first rows.
func TestBarrierBeforeRows(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	sc, _ := row.Untyped("n")
	s, err := NewSink(Config{DSN: dsn, Table: table, CheckpointTable: side}, sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	w, err := s.Open(ctx, stream.SubtaskInfo{Index: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, []row.Row{{Vals: []row.Value{row.Int(42)}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := s.CommittedCheckpoint(ctx, 2); err != nil || !ok || id != 1 {
		t.Fatalf("checkpoint %d %v %v", id, ok, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var typ string
	if err := conn.QueryRow(ctx, "SELECT data_type FROM information_schema.columns WHERE table_name = $1", table).Scan(&typ); err != nil || typ != "bigint" {
		t.Fatalf("column type %q, %v", typ, err)
	}
}

// Appends of many rows go through COPY; a row the database refuses makes
// the flush fall back to one row at a time, which leaves out just that row.
func TestAppendWithCopy(t *testing.T) {
	dsn := testDSN(t)
	sessionUTC(t, dsn)
	table, side := freshTable(t, dsn)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+` ("user" text, window_start timestamptz, orders bigint CHECK (orders <> 13), revenue double precision, paid boolean, meta jsonb)`); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(Config{DSN: dsn, Table: table, CheckpointTable: side}, revenueSchema)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	var in []row.Row
	for i := range 100 {
		r := revenueRow(fmt.Sprintf("u%02d", i), int64(i), int64(i), float64(i)/4)
		if i == 7 {
			r.Vals[5] = row.Null()
		}
		in = append(in, r)
	}
	if err := w.Write(ctx, in); err != nil {
		t.Fatal(err)
	}
	err = w.(stream.BarrierWriter).OnBarrier(ctx, 2)
	var rej *RejectError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Row.Vals[0].AsString() != "u13" {
		t.Fatalf("err = %v, want row u13 rejected", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := dump(t, dsn, table, `"user"`, "orders", "revenue", "meta")
	if len(got) != 99 || got[0] != `u00|0|0|{"n": 0}` || got[7] != "u07|7|1.75|NULL" || slices.Contains(got, `u13|13|3.25|{"n": 13}`) {
		t.Fatalf("%d rows: %v", len(got), got[:8])
	}
	// Without a refused row, COPY itself writes them all.
	table2, side2 := freshTable(t, dsn)
	s2, _ := NewSink(Config{DSN: dsn, Table: table2, CheckpointTable: side2}, revenueSchema)
	w2, err := s2.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dsn, table2, `"user"`, "window_start", "paid"); len(got) != 100 || got[1] != "u01|1970-01-01 00:01:00+00|false" {
		t.Fatalf("%d rows: %v", len(got), got[:2])
	}
}

// TestUntypedNumericWidens: an untyped numeric field whose first values
// are whole numbers (a sum over JSON prices, say) gets a bigint column;
// a later fractional value widens the column to double precision instead
// of being rejected.
func TestUntypedNumericWidens(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	sc, err := row.Untyped("id", "v")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(Config{DSN: dsn, Table: table, Key: []string{"id"}, CheckpointTable: side}, sc)
	if err != nil {
		t.Fatal(err)
	}
	r := func(id int64, v row.Value) row.Row { return row.Row{Vals: []row.Value{row.Int(id), v}} }
	runWriter(t, s, [][]row.Row{{r(1, row.Int(3)), r(2, row.Int(4))}, {r(2, row.Float(2.5)), r(3, row.Int(7))}}, 1)
	if got, want := dump(t, dsn, table, "id", "v"), []string{"1|3", "2|2.5", "3|7"}; !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

// TestConcurrentTableCreation: many subtasks creating the same missing
// table at once all succeed (PostgreSQL reports the losers of that race
// as 23505, 42P07 or 42710, depending on timing).
func TestConcurrentTableCreation(t *testing.T) {
	dsn := testDSN(t)
	for round := range 5 {
		table, side := freshTable(t, dsn)
		sc, err := row.Untyped("id", "v")
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSink(Config{DSN: dsn, Table: table, Key: []string{"id"}, CheckpointTable: side}, sc)
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxT(t)
		const n = 8
		ws := make([]stream.SinkWriter[row.Row], n)
		for i := range ws {
			if ws[i], err = s.Open(ctx, stream.SubtaskInfo{Index: i, Parallelism: n}); err != nil {
				t.Fatal(err)
			}
			if err := ws[i].Write(ctx, []row.Row{{Vals: []row.Value{row.Int(int64(i)), row.Int(1)}}}); err != nil {
				t.Fatal(err)
			}
		}
		errs := make(chan error, n)
		for _, w := range ws {
			go func() { errs <- w.Close(ctx) }()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if got := dump(t, dsn, table, "id"); len(got) != n {
			t.Fatalf("round %d: rows %v", round, got)
		}
	}
}

// A row with a NULL key cannot be upserted: in an existing table whose key
// columns allow NULL (a unique constraint, not a primary key) NULLs never
// conflict, so each replay of the row would insert it again, and two such
// rows of one batch would be collapsed into one without a word. The sink
// rejects it, whatever the table.
func TestNullKeyIsRejected(t *testing.T) {
	dsn := testDSN(t)
	table, side := freshTable(t, dsn)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+` ("user" text, window_start timestamptz, orders bigint, revenue double precision, paid boolean, meta jsonb, UNIQUE ("user", window_start))`); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(Config{DSN: dsn, Table: table, Key: []string{"user", "window_start"}, CheckpointTable: side}, revenueSchema)
	if err != nil {
		t.Fatal(err)
	}
	nullKey := func(orders int64) row.Row {
		r := revenueRow("x", 1, orders, 1)
		r.Vals[0] = row.Null()
		return r
	}
	for run := range 2 { // the second run replays the input
		w, err := s.Open(ctx, stream.SubtaskInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, []row.Row{revenueRow("a", 1, 1, 1), nullKey(2), nullKey(3)}); err != nil {
			t.Fatal(err)
		}
		err = w.(stream.BarrierWriter).OnBarrier(ctx, uint64(run+1))
		var rej *RejectError
		if !errors.As(err, &rej) || len(rej.Rejected) != 2 {
			t.Fatalf("run %d: err = %v, want a RejectError of 2 rows", run, err)
		}
		if r := rej.Rejected[0]; r.Field != "user" || !errors.Is(r.Err, ErrNullKey) || r.Row.Vals[2].AsInt() != 2 {
			t.Fatalf("run %d: first rejected: %+v", run, r)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := dump(t, dsn, table, `"user"`, "orders"); !slices.Equal(got, []string{"a|1"}) {
		t.Fatalf("rows written: %v", got)
	}
}
