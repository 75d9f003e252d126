package pipeline

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// FuzzConfluentHeader checks the protobuf header parser against
// franz-go's (another implementation): on any bytes it never panics, it
// agrees on the schema id and message indexes of every header it
// accepts, and what it accepts writes back to a header that reads the
// same.
func FuzzConfluentHeader(f *testing.F) {
	var h sr.ConfluentHeader
	for _, idx := range [][]int{{0}, {1}, {1, 0}, {3, 2, 1}} {
		b, _ := h.AppendEncode(nil, 7, idx)
		f.Add(append(b, 8, 1))
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		id, idx, payload, err := confluentHeader(data)
		if err != nil {
			return
		}
		rid, rest, rerr := h.DecodeID(data)
		if rerr != nil || rid != int(id) {
			t.Fatalf("%x: id %d; franz-go: %d, %v", data, id, rid, rerr)
		}
		ridx, rpayload, rerr := h.DecodeIndex(rest, 64)
		got := messageIndexes(idx)
		if rerr != nil || !slices.Equal(ridx, got) || len(rpayload) != len(payload) {
			t.Fatalf("%x: indexes %v, payload %d bytes; franz-go: %v, %d bytes, %v", data, got, len(payload), ridx, len(rpayload), rerr)
		}
		back := appendConfluentHeader(nil, int(id), got)
		id2, idx2, rest2, err := confluentHeader(back)
		if err != nil || id2 != id || !slices.Equal(messageIndexes(idx2), got) || len(rest2) != 0 {
			t.Fatalf("%x: header %x does not read back: %v", data, back, err)
		}
	})
}
