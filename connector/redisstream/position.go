package redisstream

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/stream"
)

// entryID is a stream entry id, <milliseconds>-<sequence>.
type entryID struct{ ms, seq uint64 }

func parseID(s string) (entryID, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return entryID{}, fmt.Errorf("stream entry id %q: want MS-SEQ", s)
	}
	ms, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return entryID{}, fmt.Errorf("stream entry id %q: %w", s, err)
	}
	seq, err := strconv.ParseUint(b, 10, 64)
	if err != nil {
		return entryID{}, fmt.Errorf("stream entry id %q: %w", s, err)
	}
	return entryID{ms, seq}, nil
}

func (id entryID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id entryID) cmp(o entryID) int {
	if c := cmp.Compare(id.ms, o.ms); c != 0 {
		return c
	}
	return cmp.Compare(id.seq, o.seq)
}

// position is a split's checkpointed position: the id of the last entry
// it read for its own consumer and handed over (own reads are handed over
// in id order, so every own entry up to it is covered), and the ids of
// the entries it claimed from other consumers and handed over without
// their XACK having completed when the barrier passed.
type position struct {
	own    entryID
	claims []entryID
}

const positionVersion = 1

func (p position) encode() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+len(p.claims)*2*binary.MaxVarintLen64)
	b = append(b, positionVersion)
	b = binary.AppendUvarint(b, p.own.ms)
	b = binary.AppendUvarint(b, p.own.seq)
	b = binary.AppendUvarint(b, uint64(len(p.claims)))
	for _, c := range p.claims {
		b = binary.AppendUvarint(b, c.ms)
		b = binary.AppendUvarint(b, c.seq)
	}
	return b
}

func decodePosition(b []byte) (position, error) {
	bad := func(what string) (position, error) {
		return position{}, fmt.Errorf("%w: redis stream position: %s", stream.ErrBadPosition, what)
	}
	if len(b) == 0 || b[0] != positionVersion {
		return bad("unknown version")
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	var p position
	var ok1, ok2, ok3 bool
	p.own.ms, ok1 = next()
	p.own.seq, ok2 = next()
	cnt, ok3 := next()
	if !ok1 || !ok2 || !ok3 || cnt > uint64(len(b)) {
		return bad("truncated")
	}
	for range cnt {
		ms, ok1 := next()
		seq, ok2 := next()
		if !ok1 || !ok2 {
			return bad("truncated claimed id")
		}
		p.claims = append(p.claims, entryID{ms, seq})
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return p, nil
}
