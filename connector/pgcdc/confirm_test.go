package pgcdc

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSlotNotConfirmedBeforeCheckpoint: records read, and keep-alives
// that move the position while the slot is idle, must not move the
// slot's confirmed flush LSN: only CommitPosition (a completed
// checkpoint) does, else a crash before the checkpoint loses the changes
// the server has released. The test waits for status updates sent after
// the reads (the walsender's reply_time) before looking at the slot.
func TestSlotNotConfirmedBeforeCheckpoint(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	start(t, s)
	var base position
	if err := json.Unmarshal(s.sp.Position(), &base); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", f.table, i, i))
	}
	s.readN(5)
	var read time.Time
	if err := f.db.QueryRow(context.Background(), "SELECT now()").Scan(&read); err != nil {
		t.Fatal(err)
	}
	confirmed := func() string {
		var c string
		if err := f.db.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Status updates after the reads (and the keep-alives the idle slot
	// gets meanwhile, which move the position to the WAL's end).
	deadline := time.Now().Add(30 * time.Second)
	for replies := 0; replies < 3; {
		var newer bool
		if err := f.db.QueryRow(context.Background(), "SELECT coalesce(bool_or(r.reply_time > $2), false) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1", f.slot, read).Scan(&newer); err != nil {
			t.Fatal(err)
		}
		if newer {
			replies++
			if err := f.db.QueryRow(context.Background(), "SELECT now()").Scan(&read); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no status update from the split")
		}
		if _, err := s.sp.Read(context.Background(), s.buf); err != nil { // waits up to 100ms
			t.Fatal(err)
		}
	}
	if c := confirmed(); c != base.LSN.String() {
		t.Fatalf("confirmed_flush_lsn moved to %s without a completed checkpoint (started at %s)", c, base.LSN)
	}
	pos := s.sp.Position()
	var p position
	if err := json.Unmarshal(pos, &p); err != nil {
		t.Fatal(err)
	}
	if err := s.sp.CommitPosition(context.Background(), pos); err != nil {
		t.Fatal(err)
	}
	for c := confirmed(); c != p.LSN.String(); c = confirmed() {
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn %s after CommitPosition, want %s", c, p.LSN)
		}
		if _, err := s.sp.Read(context.Background(), s.buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOlderCheckpointRefused: a split restored from a checkpoint older
// than the one the slot has confirmed (sluice run --from-checkpoint of an
// earlier one) cannot be served: the server starts a slot at its
// confirmed flush LSN whatever LSN is asked for, so the changes between
// the two checkpoints would silently be missing. The source refuses.
func TestOlderCheckpointRefused(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	start(t, s)
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (1, 1)", f.table))
	s.readN(1)
	older := s.sp.Position()
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (2, 2)", f.table))
	s.readN(1)
	newer := s.sp.Position()
	s.commitAndAwait(f, newer)
	s.sp.Close()

	r := openSplit(t, cfg, older)
	_, err := r.sp.Read(context.Background(), r.buf)
	if err == nil || !strings.Contains(err.Error(), "confirmed") {
		t.Fatalf("restored from the older checkpoint: Read error %v, want the restore refused", err)
	}
	// The latest checkpoint still resumes.
	r = openSplit(t, cfg, newer)
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (3, 3)", f.table))
	if e := r.readN(1)[0]; string(e.Key) != `{"id":3}` {
		t.Fatalf("resumed at the latest checkpoint: %s", e.Key)
	}
}
