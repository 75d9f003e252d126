package mysqlcdc

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLargeTransactionResumesMidway: one transaction of 50,000 rows;
// the split is closed after part of it and reopened from its position,
// by GTID: the rest arrives, nothing twice.
func TestLargeTransactionResumesMidway(t *testing.T) {
	lt := openLive(t, "bigtxn", "id INT PRIMARY KEY, v VARCHAR(100)")
	c, name, cfg, sp := lt.c, lt.name, lt.cfg, lt.sp
	const n = 50000
	mustExec(t, c, "BEGIN")
	for from := 0; from < n; from += 1000 {
		var b strings.Builder
		b.WriteString("INSERT INTO " + name + " VALUES ")
		for i := from; i < from+1000; i++ {
			if i > from {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d, '%090d')", i, i)
		}
		mustExec(t, c, b.String())
	}
	mustExec(t, c, "COMMIT")
	first := readN(t, sp, 20000, 60*time.Second)
	pos := sp.Position()
	if p, err := decodePosition(pos); err != nil || p.Skip != 20000 || p.GTID == "" {
		t.Fatalf("position mid-transaction %s (%v): want skip 20000 and a GTID set", pos, err)
	}
	_, sp2 := openSplit(t, cfg, pos)
	rest := readN(t, sp2, n-20000, 60*time.Second)
	expectQuiet(t, sp2)
	lt.replaysToTable(t, first, rest)
	if p, _ := decodePosition(sp2.Position()); p.Skip != 0 {
		t.Errorf("after the transaction, skip %d", p.Skip)
	}
}

// TestResumeByFilePosition: without GTIDs in the position the split
// reconnects by binlog file and position, mid-transaction too.
func TestResumeByFilePosition(t *testing.T) {
	lt := openLive(t, "filepos", "id INT PRIMARY KEY, v INT")
	c, name, cfg, sp := lt.c, lt.name, lt.cfg, lt.sp
	mustExec(t, c, "BEGIN")
	for i := range 30 {
		mustExec(t, c, "INSERT INTO "+name+" VALUES (?, ?)", i, i)
	}
	mustExec(t, c, "COMMIT")
	mustExec(t, c, "UPDATE "+name+" SET v = v + 1 WHERE id < 10")
	first := readN(t, sp, 12, 30*time.Second)
	p, err := decodePosition(sp.Position())
	if err != nil {
		t.Fatal(err)
	}
	p.GTID = ""
	_, sp2 := openSplit(t, cfg, p.encode())
	rest := readN(t, sp2, 30-12+10, 30*time.Second)
	expectQuiet(t, sp2)
	lt.replaysToTable(t, first, rest)
}

// TestSnapshotResumesUnderWrites: the snapshot is cut after some chunks
// while the table changes (before and after the cut, below and above the
// last key read, keys inserted and deleted); the resumed split's output
// replays into exactly the table.
func TestSnapshotResumesUnderWrites(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "snapresume", "id INT PRIMARY KEY, v INT, s VARCHAR(20)")
	for from := 0; from < 3000; from += 500 {
		var b strings.Builder
		b.WriteString("INSERT INTO " + name + " VALUES ")
		for i := from; i < from+500; i++ {
			if i > from {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d, 0, 'x')", i*2)
		}
		mustExec(t, c, b.String())
	}
	cfg := testConfig(name)
	cfg.ChunkRows = 100
	_, sp := openSplit(t, cfg, nil)
	got := readN(t, sp, 250, 30*time.Second)
	// Changes after the first snapshot's point: below and above the cut.
	mustExec(t, c, "UPDATE "+name+" SET v = 1 WHERE id IN (10, 4000)")
	mustExec(t, c, "DELETE FROM "+name+" WHERE id IN (20, 4002)")
	mustExec(t, c, "INSERT INTO "+name+" VALUES (21, 1, 'new'), (4001, 1, 'new')")
	got = append(got, readN(t, sp, 150, 30*time.Second)...) // up to key 798
	pos := sp.Position()
	// Changes between the cut and the resumed snapshot.
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "UPDATE "+name+" SET v = 2 WHERE id IN (12, 798, 800, 5000)")
	mustExec(t, c, "DELETE FROM "+name+" WHERE id IN (14, 802)")
	mustExec(t, c, "INSERT INTO "+name+" VALUES (23, 2, 'new'), (801, 2, 'new'), (9999, 2, 'new')")
	mustExec(t, c, "UPDATE "+name+" SET id = 803 WHERE id = 16") // key moves above the cut
	mustExec(t, c, "UPDATE "+name+" SET id = 17 WHERE id = 804") // and below it
	mustExec(t, c, "COMMIT")
	_, sp2 := openSplit(t, cfg, pos)
	p, _ := decodePosition(pos)
	if len(p.Snapshot) != 1 || p.Snapshot[0].Done {
		t.Fatalf("position %s is not mid-snapshot", pos)
	}
	// And changes after the resumed snapshot's point.
	rest := readN(t, sp2, 1, 30*time.Second)
	mustExec(t, c, "UPDATE "+name+" SET v = 3 WHERE id IN (12, 801, 5002)")
	want := tableImage(t, c, name)
	img := map[string]string{}
	apply(t, img, got)
	end := time.Now().Add(60 * time.Second)
	apply(t, img, rest)
	for !mapsEqual(img, want) {
		if time.Now().After(end) {
			sameImage(t, img, want)
			t.Fatal("the replay never matched the table")
		}
		apply(t, img, readN(t, sp2, 1, 30*time.Second))
	}
	expectQuiet(t, sp2)
	if p, _ := decodePosition(sp2.Position()); p.Snapshot != nil || p.Segments != nil {
		t.Errorf("caught up, the position still has snapshot state: %s", sp2.Position())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
