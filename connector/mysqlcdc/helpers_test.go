package mysqlcdc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// testAddr is the MariaDB (or MySQL) server of the tests; SLUICE_MYSQL_ADDR
// overrides it.
func testAddr() string {
	if a := os.Getenv("SLUICE_MYSQL_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:3306"
}

// server connects to the test server as root, or skips the test saying
// why (no server, binary log off).
func server(t testing.TB) *client.Conn {
	t.Helper()
	c, err := client.ConnectWithTimeout(testAddr(), "root", "", "", 5*time.Second)
	if err != nil {
		t.Skipf("no MariaDB/MySQL server at %s (%v): scripts/start-services.sh starts it", testAddr(), err)
	}
	t.Cleanup(func() { c.Close() })
	r, err := c.Execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := r.GetString(0, 0)
	f, _ := r.GetString(0, 1)
	img, _ := r.GetString(0, 2)
	if (lb != "1" && lb != "ON") || f != "ROW" || img != "FULL" {
		t.Skipf("the server at %s has log_bin=%s binlog_format=%s binlog_row_image=%s: CDC needs ON/ROW/FULL (scripts/start-services.sh sets them)", testAddr(), lb, f, img)
	}
	mustExec(t, c, "CREATE DATABASE IF NOT EXISTS test")
	return c
}

func mustExec(t testing.TB, c *client.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.Execute(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// newTable creates a fresh table test.<prefix>_<random> with the given
// column definitions and drops it when the test ends.
func newTable(t testing.TB, c *client.Conn, prefix, defs string) string {
	t.Helper()
	name := fmt.Sprintf("test.%s_%d", prefix, rand.Uint32())
	mustExec(t, c, "CREATE TABLE "+name+" ("+defs+") ENGINE=InnoDB")
	t.Cleanup(func() { _, _ = c.Execute("DROP TABLE IF EXISTS " + name) })
	return name
}

func testConfig(tables ...string) Config {
	host, port, _ := strings.Cut(testAddr(), ":")
	var p uint16
	fmt.Sscan(port, &p)
	// A replica id of its own: the server ends an older binlog
	// connection with the same id (tests run concurrently).
	return Config{Host: host, Port: p, User: "root", Tables: tables, Name: "test", ChunkRows: 1000, ServerID: 7000 + rand.Uint32N(10000),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBackoff: time.Second}
}

func openSplit(t testing.TB, cfg Config, pos []byte) (*Source, stream.Split[connector.Message]) {
	t.Helper()
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := src.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp[0].Seek(pos); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp[0].(io.Closer).Close() })
	return src, sp[0]
}

type change struct {
	Op     string                     `json:"op"`
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	Source struct {
		Connector string  `json:"connector"`
		DB        string  `json:"db"`
		Table     string  `json:"table"`
		File      string  `json:"file"`
		Pos       uint32  `json:"pos"`
		GTID      *string `json:"gtid"`
		ServerID  uint32  `json:"server_id"`
		TsMs      int64   `json:"ts_ms"`
		Snapshot  bool    `json:"snapshot"`
	} `json:"source"`
	TsMs int64 `json:"ts_ms"`
	key  string
	raw  string
}

func decodeChange(t testing.TB, m connector.Message) change {
	t.Helper()
	var c change
	if err := json.Unmarshal(m.Value, &c); err != nil {
		t.Fatalf("message %s: %v", m.Value, err)
	}
	c.key, c.raw = string(m.Key), string(m.Value)
	return c
}

// readN reads from sp until it returned n messages in all (or fails the
// test after a deadline).
func readN(t testing.TB, sp stream.Split[connector.Message], n int, deadline time.Duration) []change {
	t.Helper()
	var out []change
	buf := make([]connector.Message, 512)
	end := time.Now().Add(deadline)
	for len(out) < n {
		if time.Now().After(end) {
			t.Fatalf("read %d changes of %d before the deadline", len(out), n)
		}
		k, err := sp.Read(context.Background(), buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:k] {
			out = append(out, decodeChange(t, m))
		}
	}
	return out
}

// expectQuiet reads for a moment and fails on any message.
func expectQuiet(t testing.TB, sp stream.Split[connector.Message]) {
	t.Helper()
	buf := make([]connector.Message, 16)
	for range 5 {
		k, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if k > 0 {
			t.Fatalf("unexpected change %s", buf[0].Value)
		}
	}
}

// apply is the oracle: it applies changes to a table image (key → row
// JSON), failing on a change that contradicts it.
func apply(t testing.TB, img map[string]string, cs []change) {
	t.Helper()
	for _, c := range cs {
		switch c.Op {
		case "r", "c":
			if _, ok := img[c.key]; ok {
				t.Fatalf("%s of key %s, which exists: %s", c.Op, c.key, c.raw)
			}
			img[c.key] = canon(c.After)
		case "u":
			if old, ok := img[c.key]; !ok || old != canon(c.Before) {
				t.Fatalf("update of key %s whose before %s is not the image's %q", c.key, canon(c.Before), old)
			}
			img[c.key] = canon(c.After)
		case "d":
			if old, ok := img[c.key]; !ok || old != canon(c.Before) {
				t.Fatalf("delete of key %s whose before %s is not the image's %q", c.key, canon(c.Before), old)
			}
			delete(img, c.key)
		default:
			t.Fatalf("op %q: %s", c.Op, c.raw)
		}
	}
}

func canon(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// tableImage reads a table as the snapshot renders it.
func tableImage(t testing.TB, c *client.Conn, name string) map[string]string {
	t.Helper()
	db, tb, _ := strings.Cut(name, ".")
	mustExec(t, c, "SET time_zone = '+00:00'")
	tab, err := loadTable(c, db, tb)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := chunkQuery(tab, nil, 1<<30)
	r, err := c.Execute(q)
	if err != nil {
		t.Fatal(err)
	}
	img := map[string]string{}
	vals := make([]any, len(tab.cols))
	for i := range r.RowNumber() {
		for j := range vals {
			vals[j] = r.Values[i][j].Value()
		}
		ri, _, err := render(tab, vals, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := message(tab, 'r', nil, ri, sourceMeta{})
		ch := decodeChange(t, m)
		img[ch.key] = canon(ch.After)
	}
	return img
}

func sameImage(t testing.TB, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("replayed table has %d rows, the table %d", len(got), len(want))
	}
	n := 0
	for k, v := range want {
		if got[k] != v {
			if n++; n <= 5 {
				t.Errorf("key %s: replayed %q, table %q", k, got[k], v)
			}
		}
	}
}

// liveTable is a fresh table on the test server and a split that reads
// its changes from the binlog's head (no snapshot), already caught up.
type liveTable struct {
	c    *client.Conn
	name string
	cfg  Config
	src  *Source
	sp   stream.Split[connector.Message]
}

// openLive creates a table test.<prefix>_<random> with the column
// definitions defs and opens a split on it at the binlog's head; the
// table is dropped and the split closed when the test ends.
func openLive(t testing.TB, prefix, defs string) liveTable {
	t.Helper()
	c := server(t)
	name := newTable(t, c, prefix, defs)
	cfg := testConfig(name)
	cfg.Snapshot = SnapshotNever
	src, sp := openSplit(t, cfg, nil)
	expectQuiet(t, sp) // connected at the head
	return liveTable{c: c, name: name, cfg: cfg, src: src, sp: sp}
}

// exec runs a statement on the live table's server, failing the test
// on an error.
func (lt liveTable) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	mustExec(t, lt.c, q, args...)
}

// replaysToTable applies the parts of changes in order to an empty
// image and checks the result is exactly the table's rows now.
func (lt liveTable) replaysToTable(t testing.TB, parts ...[]change) {
	t.Helper()
	img := map[string]string{}
	for _, p := range parts {
		apply(t, img, p)
	}
	sameImage(t, img, tableImage(t, lt.c, lt.name))
}

// resumeMidTransaction runs the statements of one transaction on the
// live table, reads its first `first` changes, reopens the split from
// the position saved there and inserts the marker row (markerID,
// markerID) after it: the reopened split must bring the rest of the
// transaction and the marker (`rest` changes) and then nothing, and the
// replay must be exactly the table, nothing twice.
func (lt liveTable) resumeMidTransaction(t testing.TB, stmts []string, first, markerID, rest int) {
	t.Helper()
	for _, q := range stmts {
		lt.exec(t, q)
	}
	got := readN(t, lt.sp, first, 30*time.Second)
	pos := lt.sp.Position()
	t.Logf("position %s", pos)
	_, sp2 := openSplit(t, lt.cfg, pos)
	lt.exec(t, fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", lt.name, markerID, markerID))
	more := readN(t, sp2, rest, 30*time.Second)
	expectQuiet(t, sp2)
	lt.replaysToTable(t, got, more)
}
