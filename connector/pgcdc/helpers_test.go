package pgcdc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/connector"
)

// testDSN returns the test server's DSN, or skips: no server, or
// wal_level is not logical (scripts/start-services.sh sets it).
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL at %s (set SLUICE_TEST_POSTGRES_DSN): %v", dsn, err)
	}
	defer c.Close(ctx)
	var wal string
	if err := c.QueryRow(ctx, "SHOW wal_level").Scan(&wal); err != nil {
		t.Fatal(err)
	}
	if wal != "logical" {
		t.Skipf("PostgreSQL's wal_level is %s, not logical: run scripts/start-services.sh", wal)
	}
	return dsn
}

var nameSeq atomic.Int64

// fixture is a captured table with its own slot and publication, all
// dropped at the end of the test.
type fixture struct {
	t     testing.TB
	dsn   string
	db    *pgx.Conn
	table string // schema-qualified
	slot  string
	pub   string
}

func newFixture(t testing.TB, ddl string) *fixture {
	dsn := testDSN(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	// SLUICE_TEST_PG_PREFIX prefixes the names (default cdc_), for runs
	// that share the server and must keep to their own names.
	pre := os.Getenv("SLUICE_TEST_PG_PREFIX")
	if pre == "" {
		pre = "cdc_"
	}
	n := fmt.Sprintf("%d_%d", os.Getpid(), nameSeq.Add(1))
	f := &fixture{t: t, dsn: dsn, db: db, table: "public." + pre + "t_" + n, slot: pre + "slot_" + n, pub: pre + "pub_" + n}
	f.exec("DROP TABLE IF EXISTS " + f.table)
	f.exec(fmt.Sprintf(ddl, f.table))
	t.Cleanup(func() {
		ctx := context.Background()
		// A slot left behind keeps WAL forever: drop it even if a
		// walsender still holds it (wait for it to go).
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := db.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1", f.slot+"%")
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("dropping slot %s: %v", f.slot, err)
				}
				break
			}
			_, _ = db.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE $1 AND active_pid IS NOT NULL", f.slot+"%")
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+f.pub)
		_, _ = db.Exec(ctx, "DROP TABLE IF EXISTS "+f.table)
		db.Close(ctx)
	})
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) config() Config {
	return Config{DSN: f.dsn, Tables: []string{f.table}, Slot: f.slot, Publication: f.pub, ChunkRows: 7,
		StatusInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// event is a decoded record.
type event struct {
	Op     string                     `json:"op"`
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	Source struct {
		Connector string `json:"connector"`
		DB        string `json:"db"`
		Schema    string `json:"schema"`
		Table     string `json:"table"`
		LSN       uint64 `json:"lsn"`
		TxID      *int64 `json:"txid"`
		TsMs      int64  `json:"ts_ms"`
	} `json:"source"`
	TsMs int64           `json:"ts_ms"`
	Key  json.RawMessage `json:"-"`
	Ts   int64           `json:"-"`
}

func decodeEvent(t testing.TB, m connector.Message) event {
	t.Helper()
	var e event
	if err := json.Unmarshal(m.Value, &e); err != nil {
		t.Fatalf("record %s: %v", m.Value, err)
	}
	if !json.Valid(m.Key) {
		t.Fatalf("key %q is not JSON", m.Key)
	}
	e.Key, e.Ts = m.Key, m.Timestamp
	return e
}

// oracle applies events as a strict changelog: a create or read of a key
// that exists, or an update or delete of one that does not, is an error
// (a change lost or emitted twice).
type oracle struct {
	rows map[string]string // key JSON -> after JSON (normalised)
}

func newOracle() *oracle { return &oracle{rows: map[string]string{}} }

func norm(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func keyOf(img map[string]json.RawMessage, cols ...string) string {
	var parts []string
	for _, c := range cols {
		parts = append(parts, string(img[c]))
	}
	return strings.Join(parts, ",")
}

func (o *oracle) apply(e event, keyCols ...string) error {
	switch e.Op {
	case "r", "c":
		k := keyOf(e.After, keyCols...)
		if _, ok := o.rows[k]; ok {
			return fmt.Errorf("%s of key %s, which exists", e.Op, k)
		}
		o.rows[k] = norm(e.After)
	case "u":
		k := keyOf(e.After, keyCols...)
		if _, ok := o.rows[k]; !ok {
			return fmt.Errorf("update of key %s, which does not exist", k)
		}
		o.rows[k] = norm(e.After)
	case "d":
		k := keyOf(e.Before, keyCols...)
		if _, ok := o.rows[k]; !ok {
			return fmt.Errorf("delete of key %s, which does not exist", k)
		}
		delete(o.rows, k)
	default:
		return fmt.Errorf("op %q", e.Op)
	}
	return nil
}

// tableRows reads the table as the connector would show each row.
func (f *fixture) tableRows(keyCols ...string) map[string]string {
	f.t.Helper()
	f.exec("SET TIME ZONE 'UTC'")
	rows, err := f.db.Query(context.Background(), "SELECT to_jsonb(t)::text FROM "+f.table+" t")
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		var m map[string]json.RawMessage
		s = strings.ReplaceAll(s, `+00:00"`, `Z"`) // the connector writes UTC as Z
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			f.t.Fatal(err)
		}
		out[keyOf(m, keyCols...)] = norm(m)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func diffRows(want, got map[string]string) string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, "missing "+k+": "+w)
		} else if g != w {
			out = append(out, "differs "+k+": want "+w+" got "+g)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k+": "+g)
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// reader drives one split in a test.
type testSplit struct {
	t   testing.TB
	src *Source
	sp  *split
	buf []connector.Message
}

func openSplit(t testing.TB, cfg Config, pos []byte) *testSplit {
	t.Helper()
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sps, err := src.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sp := sps[0].(*split)
	if pos != nil {
		if err := sp.Seek(pos); err != nil {
			t.Fatal(err)
		}
	}
	ts := &testSplit{t: t, src: src, sp: sp, buf: make([]connector.Message, 64)}
	t.Cleanup(func() { sp.Close() })
	return ts
}

// readN reads until n records arrived (exactly n: dst is cut to what is
// missing), failing after a deadline.
func (s *testSplit) readN(n int) []event {
	s.t.Helper()
	var out []event
	deadline := time.Now().Add(60 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("got %d records of %d", len(out), n)
		}
		dst := s.buf[:min(len(s.buf), n-len(out))]
		k, err := s.sp.Read(context.Background(), dst)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, m := range dst[:k] {
			out = append(out, decodeEvent(s.t, m))
		}
	}
	return out
}

// quiet reads for a while and fails on any record.
func (s *testSplit) quiet(d time.Duration) {
	s.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		k, err := s.sp.Read(context.Background(), s.buf)
		if err != nil {
			s.t.Fatal(err)
		}
		if k > 0 {
			s.t.Fatalf("unexpected record %s", s.buf[0].Value)
		}
	}
}

// readUntil reads until a record with key marker (JSON) arrives, and
// returns every record up to and including it.
func (s *testSplit) readUntil(marker string) []event {
	s.t.Helper()
	var out []event
	deadline := time.Now().Add(120 * time.Second)
	for {
		if time.Now().After(deadline) {
			s.t.Fatalf("no record with key %s after %d records", marker, len(out))
		}
		k, err := s.sp.Read(context.Background(), s.buf)
		if err != nil {
			s.t.Fatal(err)
		}
		for i, m := range s.buf[:k] {
			e := decodeEvent(s.t, m)
			out = append(out, e)
			if string(e.Key) == marker {
				if i != k-1 {
					s.t.Fatalf("records after the marker: %s", s.buf[i+1].Value)
				}
				return out
			}
		}
	}
}

// commitAndAwait confirms pos to the slot (CommitPosition, as a completed
// checkpoint does) and reads until the server shows it as the slot's
// confirmed flush LSN.
func (s *testSplit) commitAndAwait(f *fixture, pos []byte) {
	s.t.Helper()
	var p position
	if err := json.Unmarshal(pos, &p); err != nil {
		s.t.Fatal(err)
	}
	if err := s.sp.CommitPosition(context.Background(), pos); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var confirmed string
		if err := f.db.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&confirmed); err != nil {
			s.t.Fatal(err)
		}
		if confirmed == p.LSN.String() {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("confirmed_flush_lsn %s, want %s", confirmed, p.LSN)
		}
		if _, err := s.sp.Read(context.Background(), s.buf); err != nil { // waits up to 100ms
			s.t.Fatal(err)
		}
	}
}
