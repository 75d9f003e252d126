package pgcdc

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pglogrepl"
)

// position is a split's progress, saved in checkpoints as JSON.
type position struct {
	V int `json:"v"`
	// Phase is phaseSnapshot while the initial snapshot is read, then
	// phaseStream.
	Phase string `json:"phase"`
	// Tables are the configured tables, in order (a restore with other
	// tables is refused).
	Tables []string `json:"tables"`
	// SlotLSN is the slot's consistent point: streaming after the
	// snapshot starts there.
	SlotLSN pglogrepl.LSN `json:"slot_lsn,omitempty"`
	// Table is the index of the table the snapshot is reading; Last the
	// text of the key columns of the last row read in it (nil: none yet).
	Table int       `json:"table,omitempty"`
	Last  []*string `json:"last,omitempty"`
	// Segs are, per table, the key ranges read by each snapshot: rows
	// with a key above Segs[t][i].From (all rows when From is nil) and not
	// above the next segment's From were read in the snapshot at
	// Segs[t][i].LSN. Changes committed before that LSN are in the read.
	Segs [][]segment `json:"segs,omitempty"`
	// LSN (stream phase): every transaction committing before it has
	// been emitted; replication restarts there.
	LSN pglogrepl.LSN `json:"lsn,omitempty"`
	// TxLSN, TxSkip: the commit LSN of the transaction after LSN of
	// which the first TxSkip records were emitted (0: none).
	TxLSN  pglogrepl.LSN `json:"tx_lsn,omitempty"`
	TxSkip int           `json:"tx_skip,omitempty"`
}

type segment struct {
	From []*string     `json:"from,omitempty"`
	LSN  pglogrepl.LSN `json:"lsn"`
}

const (
	phaseSnapshot = "snapshot"
	phaseStream   = "stream"
	positionV     = 1
)

func (p *position) encode() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("pgcdc: encoding a position: %v", err)) // plain data: cannot fail
	}
	return b
}

func decodePosition(b []byte) (*position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: %w", err)
	}
	if p.V != positionV {
		return nil, fmt.Errorf("postgres_cdc: checkpoint position version %d is not known to this build (want %d)", p.V, positionV)
	}
	switch p.Phase {
	case phaseSnapshot:
		if p.Table < 0 || p.Table >= len(p.Tables) || len(p.Segs) != len(p.Tables) {
			return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: snapshot of table %d of %d", p.Table, len(p.Tables))
		}
	case phaseStream:
		if p.LSN == 0 || (p.Segs != nil && len(p.Segs) != len(p.Tables)) {
			return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: stream at LSN %s", p.LSN)
		}
	default:
		return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: phase %q", p.Phase)
	}
	if p.TxSkip < 0 {
		return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: negative skip")
	}
	// Every table's key ranges start with the first snapshot's (all rows
	// from the start: no From) and each later range starts at a whole
	// key: the stream looks a change's key up in them.
	for t, segs := range p.Segs {
		if len(segs) == 0 || segs[0].From != nil {
			return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: the snapshot ranges of table %d do not start at its first row", t)
		}
		for _, s := range segs[1:] {
			if len(s.From) == 0 || slices.Contains(s.From, nil) {
				return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: a snapshot range of table %d starts at a missing key", t)
			}
		}
	}
	if slices.Contains(p.Last, nil) {
		return nil, fmt.Errorf("postgres_cdc: checkpoint position is not valid: the last snapshot key has a null column")
	}
	return &p, nil
}

// clone returns a deep enough copy: Segs and Last are never mutated in
// place, only replaced.
func (p *position) clone() *position {
	c := *p
	return &c
}

// maxSegLSN is the newest snapshot LSN of any key range: from there on,
// every change is emitted.
func (p *position) maxSegLSN() pglogrepl.LSN {
	var m pglogrepl.LSN
	for _, t := range p.Segs {
		for _, s := range t {
			m = max(m, s.LSN)
		}
	}
	return m
}
