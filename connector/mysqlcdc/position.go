package mysqlcdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// binlogPos is a place in the binary log: a file and a byte offset.
type binlogPos struct {
	File string `json:"file"`
	Pos  uint32 `json:"pos"`
}

// compare orders positions of one server: by the file's sequence number
// (mysql-bin.000012), then the offset.
func (p binlogPos) compare(q binlogPos) int {
	if p.File != q.File {
		a, b := fileSeq(p.File), fileSeq(q.File)
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
		return strings.Compare(p.File, q.File)
	}
	switch {
	case p.Pos < q.Pos:
		return -1
	case p.Pos > q.Pos:
		return 1
	}
	return 0
}

func fileSeq(f string) int64 {
	i := strings.LastIndexByte(f, '.')
	n, err := strconv.ParseInt(f[i+1:], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// segment says that a table's keys above From (all keys when From is
// nil) up to the next segment's From were read by a snapshot taken at At:
// binlog changes to them at or before At are already in that snapshot.
type segment struct {
	From []json.RawMessage `json:"from"`
	At   binlogPos         `json:"at"`
}

// tableProgress is a table's snapshot progress.
type tableProgress struct {
	Table string `json:"table"`
	Done  bool   `json:"done,omitempty"`
	// Last is the primary key of the last row emitted (JSON values in key
	// order), nil before the first.
	Last []json.RawMessage `json:"last,omitempty"`
}

// position is the split's checkpointed position.
type position struct {
	V int `json:"v"`
	// Snapshot is the snapshot's progress while it runs, nil once done
	// (or never taken).
	Snapshot []tableProgress `json:"snapshot,omitempty"`
	// Resume is where the binlog is read from: the start of the current
	// transaction (or the next one); GTID the set executed before it, ""
	// when the server writes none.
	Resume binlogPos `json:"resume"`
	GTID   string    `json:"gtid,omitempty"`
	// Skip is how many row changes of the transaction at Resume were
	// already delivered.
	Skip int64 `json:"skip,omitempty"`
	// Segments is, per table (db.table), the key ranges read by snapshots
	// later than Resume; absent once the binlog passed them all.
	Segments map[string][]segment `json:"segments,omitempty"`
}

const positionVersion = 1

func (p *position) encode() []byte {
	b, err := json.Marshal(p)
	if err != nil { // only plain types: cannot happen
		panic(fmt.Sprintf("mysql_cdc: encode position: %v", err))
	}
	return b
}

// decodePosition parses a checkpointed position, checking what the
// source relies on.
func decodePosition(b []byte) (*position, error) {
	var p position
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("mysql_cdc position: %w", err)
	}
	if d.More() {
		return nil, errors.New("mysql_cdc position: trailing data")
	}
	if p.V != positionVersion {
		return nil, fmt.Errorf("mysql_cdc position: version %d, want %d (a checkpoint from another version of sluice)", p.V, positionVersion)
	}
	if p.Resume.File == "" {
		return nil, errors.New("mysql_cdc position: no binlog file")
	}
	if p.Skip < 0 {
		return nil, errors.New("mysql_cdc position: negative skip")
	}
	seen := map[string]bool{}
	for _, t := range p.Snapshot {
		if seen[t.Table] || !strings.Contains(t.Table, ".") {
			return nil, fmt.Errorf("mysql_cdc position: bad or repeated snapshot table %q", t.Table)
		}
		seen[t.Table] = true
		if err := validTokens(t.Last); err != nil {
			return nil, err
		}
	}
	for name, segs := range p.Segments {
		if len(segs) == 0 || segs[0].From != nil {
			return nil, fmt.Errorf("mysql_cdc position: segments of %s must start with the whole key range", name)
		}
		for _, s := range segs {
			if s.At.File == "" {
				return nil, fmt.Errorf("mysql_cdc position: segment of %s without a binlog file", name)
			}
			if err := validTokens(s.From); err != nil {
				return nil, err
			}
		}
	}
	return &p, nil
}

// validTokens checks that key values are JSON scalars (what appendValue
// produces).
func validTokens(ts []json.RawMessage) error {
	for _, t := range ts {
		if len(t) == 0 {
			return errors.New("mysql_cdc position: empty key value")
		}
		switch t[0] {
		case '{', '[':
			return fmt.Errorf("mysql_cdc position: key value %s is not a scalar", t)
		}
	}
	return nil
}

func equalKey(a, b []json.RawMessage) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
