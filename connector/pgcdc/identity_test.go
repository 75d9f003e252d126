package pgcdc

import (
	"context"
	"strings"
	"testing"
)

// TestReplicaIdentityIndexWithoutKeyRefused: under REPLICA IDENTITY USING
// INDEX on a unique index that leaves out the primary key, pgoutput's
// delete carries the index's columns only: the record's key would be
// {"id":null} and no consumer could remove the row. The source refuses
// such a table at start, saying what to change; an identity index that
// holds the primary key is accepted.
func TestReplicaIdentityIndexWithoutKeyRefused(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, code text NOT NULL, v int)`)
	idx := strings.TrimPrefix(f.table, "public.") + "_code"
	f.exec("CREATE UNIQUE INDEX " + idx + " ON " + f.table + " (code)")
	f.exec("ALTER TABLE " + f.table + " REPLICA IDENTITY USING INDEX " + idx)
	f.exec("INSERT INTO " + f.table + " VALUES (1, 'a', 1)")
	s := openSplit(t, f.config(), nil)
	_, err := s.sp.Read(context.Background(), s.buf)
	if err == nil || !strings.Contains(err.Error(), "REPLICA IDENTITY") || !strings.Contains(err.Error(), "id") {
		t.Fatalf("Read: %v, want the replica identity refused", err)
	}

	// An identity index holding the key: deletes say which row.
	idx2 := idx + "2"
	f.exec("CREATE UNIQUE INDEX " + idx2 + " ON " + f.table + " (code, id)")
	f.exec("ALTER TABLE " + f.table + " REPLICA IDENTITY USING INDEX " + idx2)
	s = openSplit(t, f.config(), nil)
	s.readN(1)
	f.exec("DELETE FROM " + f.table + " WHERE id = 1")
	if e := s.readN(1)[0]; e.Op != "d" || string(e.Key) != `{"id":1}` {
		t.Fatalf("delete: %s keyed %s", e.Op, e.Key)
	}
}
