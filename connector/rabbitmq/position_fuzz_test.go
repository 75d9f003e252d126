package rabbitmq

import (
	"errors"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// FuzzDecodePosition: positions come from checkpoint files; a decoded
// position survives encoding and decoding again, and anything else is
// ErrBadPosition.
func FuzzDecodePosition(f *testing.F) {
	f.Add(position{seq: 42, ids: []string{"a", "id-7"}}.encode())
	f.Add(position{}.encode())
	f.Add([]byte{1, 0, 3, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePosition(b)
		if err != nil {
			if !errors.Is(err, stream.ErrBadPosition) {
				t.Fatalf("error %v is not ErrBadPosition", err)
			}
			return
		}
		q, err := decodePosition(p.encode())
		if err != nil || q.seq != p.seq || !slices.Equal(q.ids, p.ids) {
			t.Fatalf("%x decodes to %+v, which round-trips to %+v, %v", b, p, q, err)
		}
	})
}
