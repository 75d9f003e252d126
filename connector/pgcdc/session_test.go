package pgcdc

import (
	"testing"
)

// TestByteaBase64WhateverTheDefault: a server, database or role whose
// bytea_output is escape (here set by the connection string's options,
// as ALTER ROLE ... SET would) must not change the records: bytea is a
// base64 string in snapshot reads and changes alike.
func TestByteaBase64WhateverTheDefault(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, b bytea)`)
	f.exec("INSERT INTO " + f.table + ` VALUES (1, '\x00ff')`)
	cfg := f.config()
	cfg.DSN += "&options=-c%20bytea_output%3Descape"
	s := openSplit(t, cfg, nil)
	snap := s.readN(1)[0]
	f.exec("INSERT INTO " + f.table + ` VALUES (2, '\x00ff')`)
	ch := s.readN(1)[0]
	for _, e := range []event{snap, ch} {
		if got := string(e.After["b"]); got != `"AP8="` {
			t.Errorf("%s of %s: b = %s, want \"AP8=\" (00 ff in base64)", e.Op, e.Key, got)
		}
	}
}
