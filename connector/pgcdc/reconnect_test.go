package pgcdc

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log destination safe for the reader's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReconnectsAfterConnectionLoss: the server ends the replication
// connection (its walsender terminated) in the middle of the stream,
// while changes keep committing; the split logs the loss, reconnects at
// its own position and every change arrives once, in commit order.
func TestReconnectsAfterConnectionLoss(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	cfg.MaxBackoff = 500 * time.Millisecond
	logs := &lockedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := openSplit(t, cfg, nil)
	start(t, s)
	const n = 300
	insert := func(from, to int) {
		for i := from; i <= to; i++ {
			f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", f.table, i, i))
		}
	}
	insert(1, n/2)
	got := s.readN(n / 4)
	// End the walsender serving the split (the slot's active backend).
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ended bool
		if err := f.db.QueryRow(t.Context(), "SELECT coalesce(bool_or(pg_terminate_backend(active_pid)), false) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", f.slot).Scan(&ended); err != nil {
			t.Fatal(err)
		}
		if ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot never had an active walsender")
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
	insert(n/2+1, n)
	got = append(got, s.readN(n-len(got))...)
	for i, e := range got {
		if want := fmt.Sprintf(`{"id":%d}`, i+1); e.Op != "c" || string(e.Key) != want {
			t.Fatalf("record %d: op %s key %s, want c %s", i, e.Op, e.Key, want)
		}
	}
	if r := s.src.Stats().Reconnects.Load(); r < 1 {
		t.Fatalf("reconnects = %d after the walsender was terminated", r)
	}
	if !strings.Contains(logs.String(), "postgres_cdc: replication connection lost; reconnecting") {
		t.Fatalf("no log line for the lost connection:\n%s", logs.String())
	}
	// Nothing more than the changes: no record repeated after the reconnection.
	s.quiet(300 * time.Millisecond)
}
