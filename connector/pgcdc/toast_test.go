package pgcdc

import (
	"context"
	"testing"
)

// bigValue is an SQL expression of a text too large and too random to be
// kept inline: PostgreSQL stores it out of line (TOASTed).
const bigValue = "(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 2000) g)"

// TestToastUnchangedNotLost: updates that do not change a TOASTed column
// under REPLICA IDENTITY DEFAULT, where pgoutput sends the column as
// 'unchanged' and no old value: the update's after image and a key
// change's create must carry the column's value (left out, a consumer
// taking the image as the row, a changelog or an upsert, reads null).
func TestToastUnchangedNotLost(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int, big text)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	start(t, s)
	f.exec("INSERT INTO " + f.table + " VALUES (1, 1, " + bigValue + ")")
	var big string
	if err := f.db.QueryRow(context.Background(), "SELECT to_jsonb(big)::text FROM "+f.table+" WHERE id = 1").Scan(&big); err != nil {
		t.Fatal(err)
	}
	f.exec("UPDATE " + f.table + " SET v = 2 WHERE id = 1")
	evs := s.readN(2)
	f.exec("UPDATE " + f.table + " SET id = 2 WHERE id = 1")
	evs = append(evs, s.readN(2)...)
	if evs[0].Op != "c" || string(evs[0].After["big"]) != big {
		t.Fatalf("insert: %s with big of %d bytes", evs[0].Op, len(evs[0].After["big"]))
	}
	if evs[1].Op != "u" || string(evs[1].After["big"]) != big {
		t.Errorf("update of another column: after has big %.40q, want the stored value", evs[1].After["big"])
	}
	if evs[2].Op != "d" || evs[3].Op != "c" || string(evs[3].After["id"]) != "2" || string(evs[3].After["big"]) != big {
		t.Errorf("key change: %s then %s with big %.40q, want d then c with the stored value", evs[2].Op, evs[3].Op, evs[3].After["big"])
	}
}

// TestSnapshotSees: the 32-bit transaction id of a change against
// pg_snapshot's text form, across an epoch boundary.
func TestSnapshotSees(t *testing.T) {
	for _, c := range []struct {
		snap string
		xid  uint32
		want bool
	}{
		{"100:105:", 99, true},
		{"100:105:", 104, true},
		{"100:105:", 105, false},                     // not yet started as far as the snapshot knows
		{"100:105:101,103", 103, false},              // in progress
		{"100:105:101,103", 102, true},               // finished
		{"100:105:", 4000000000, false},              // a later id of epoch 0 would be above xmax; no earlier epoch
		{"4294967290:4294967300:", 4294967295, true}, // below the boundary, xmax beyond it
		{"4294967290:4294967300:", 2, true},          // past the boundary: epoch 1
		{"4294967290:4294967300:4294967298", 2, false},
		{"4294967290:4294967300:", 5, true}, // epoch 1 would be 4294967301 >= xmax: the one of epoch 0, long finished
		{"garbage", 1, false},
	} {
		if got := snapshotSees(c.snap, c.xid); got != c.want {
			t.Errorf("snapshotSees(%q, %d) = %v, want %v", c.snap, c.xid, got, c.want)
		}
	}
}
