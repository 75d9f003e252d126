package mysqlcdc

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTruncated: the table a logged TRUNCATE statement empties.
func TestTruncated(t *testing.T) {
	for _, c := range []struct{ q, db, want string }{
		{"TRUNCATE TABLE `orders`", "shop", "shop.orders"},
		{"truncate orders", "shop", "shop.orders"},
		{"TRUNCATE TABLE `crm`.`people`", "shop", "crm.people"},
		{"TRUNCATE crm.people", "shop", "crm.people"},
		{"TRUNCATE TABLE `a.b`", "shop", "shop.a.b"},
		{"ALTER TABLE orders ADD c INT", "shop", ""},
		{"TRUNCATE", "shop", ""},
	} {
		if got := truncated(c.q, c.db); got != c.want {
			t.Errorf("truncated(%q, %q) = %q, want %q", c.q, c.db, got, c.want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTruncateWarned: a TRUNCATE of a captured table removes its rows
// without row events; the source says so in its log (as postgres_cdc
// does) instead of going on as if nothing happened.
func TestTruncateWarned(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "trunc", "id INT PRIMARY KEY")
	cfg := testConfig(name)
	cfg.Snapshot = SnapshotNever
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	_, sp := openSplit(t, cfg, nil)
	expectQuiet(t, sp)
	mustExec(t, c, "INSERT INTO "+name+" VALUES (1)")
	mustExec(t, c, "TRUNCATE TABLE "+name)
	mustExec(t, c, "INSERT INTO "+name+" VALUES (2)")
	readN(t, sp, 2, 30*time.Second) // the TRUNCATE comes between the inserts
	if l := logs.String(); !strings.Contains(l, "TRUNCATE is not captured") || !strings.Contains(l, name) {
		t.Fatalf("no warning naming %s in the log:\n%s", name, l)
	}
}
