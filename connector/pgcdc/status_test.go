package pgcdc

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestStatusWithinWalSenderTimeout: with a status interval longer than
// the server's wal_sender_timeout (here 4s, set for the connection) and
// the reader's queue full (the pipeline slower than the stream: no
// keep-alive is answered, updates go on a timer only), the split must
// still send status updates often enough for the server to keep the
// connection: the walsender's reply time keeps advancing, on one
// connection, without a reconnection.
func TestStatusWithinWalSenderTimeout(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	cfg := f.config()
	cfg.DSN += "&options=-c%20wal_sender_timeout%3D4s"
	cfg.StatusInterval = time.Hour
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	start(t, s)
	const n = 6000 // more than the reader's queue holds
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT i, i FROM generate_series(1, %d) i", f.table, n))
	walsender := func() (pid int32, reply time.Time) {
		if err := f.db.QueryRow(context.Background(), "SELECT coalesce(max(r.pid), 0), coalesce(max(r.reply_time), 'epoch') FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1", f.slot).Scan(&pid, &reply); err != nil {
			t.Fatal(err)
		}
		return pid, reply
	}
	// Wait until the queue is full: the reader has read past its size.
	deadline := time.Now().Add(60 * time.Second)
	for len(s.sp.rd.ch) < cap(s.sp.rd.ch) {
		if time.Now().After(deadline) {
			t.Fatalf("the reader's queue holds %d of %d (%d reconnections)", len(s.sp.rd.ch), cap(s.sp.rd.ch), s.src.Stats().Reconnects.Load())
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
	pid, last := walsender()
	for advances := 0; advances < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the walsender's reply time advanced %d times while the queue was full (%d reconnections)", advances, s.src.Stats().Reconnects.Load())
		}
		time.Sleep(100 * time.Millisecond) // polling
		p, reply := walsender()
		if p != pid {
			t.Fatalf("the walsender changed (%d, then %d): the server ended the connection", pid, p)
		}
		if reply.After(last) {
			advances++
			last = reply
		}
	}
	if r := s.src.Stats().Reconnects.Load(); r != 0 {
		t.Fatalf("%d reconnections", r)
	}
	s.readN(n)
}

func TestParseGUCDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"60s": time.Minute, "1min": time.Minute, "500ms": 500 * time.Millisecond, "0": 0, "2h": 2 * time.Hour, "1d": 24 * time.Hour, "1500": 1500 * time.Millisecond, "x": 0, "5fortnights": 0} {
		if got := parseGUCDuration(in); got != want {
			t.Errorf("parseGUCDuration(%q) = %v, want %v", in, got, want)
		}
	}
}
