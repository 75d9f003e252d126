package logsrc

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// FuzzDecodePosition checks that any bytes from a checkpoint either decode
// to a non-negative offset that encodes back to the same bytes, or fail
// with stream.ErrBadPosition.
func FuzzDecodePosition(f *testing.F) {
	for _, s := range [][]byte{nil, {0}, make([]byte, 8), {0x80, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 0}, make([]byte, 9)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodePosition(b)
		if err != nil {
			if !errors.Is(err, stream.ErrBadPosition) {
				t.Fatalf("error %v does not match ErrBadPosition", err)
			}
			return
		}
		if v < 0 || string(binary.BigEndian.AppendUint64(nil, uint64(v))) != string(b) {
			t.Fatalf("%x decoded to %d", b, v)
		}
	})
}
