package pgcdc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestGeneratedColumnSameInSnapshotAndStream: pgoutput does not send
// stored generated columns (PostgreSQL 12 to 17): a snapshot row must
// have the same columns as a change of the same row, or a consumer taking
// the images as the row (a changelog, an upsert) turns the column null at
// the row's first change.
func TestGeneratedColumnSameInSnapshotAndStream(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int, twice int GENERATED ALWAYS AS (v * 2) STORED)`)
	f.exec("INSERT INTO " + f.table + " (id, v) VALUES (1, 1)")
	s := openSplit(t, f.config(), nil)
	snap := s.readN(1)[0]
	f.exec("UPDATE " + f.table + " SET v = 2 WHERE id = 1")
	upd := s.readN(1)[0]
	if cols(snap.After) != cols(upd.After) {
		t.Fatalf("snapshot row has columns %s, the update's after image %s", cols(snap.After), cols(upd.After))
	}
}

// cols lists an image's columns, sorted.
func cols(img map[string]json.RawMessage) string {
	var names []string
	for k := range img {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
