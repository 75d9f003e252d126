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

// FuzzRegistryValue checks that a registry record value read from the log
// either decodes to a valid producer that encodes back to the same bytes,
// or fails with errBadRegistryRecord.
func FuzzRegistryValue(f *testing.F) {
	f.Add(encodeRegistryValue(producer{pid: 7, epoch: 3}))
	f.Add([]byte{0, 1})
	f.Add([]byte{0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0, 1, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeRegistryValue(b)
		if err != nil {
			if !errors.Is(err, errBadRegistryRecord) {
				t.Fatalf("error %v does not match errBadRegistryRecord", err)
			}
			return
		}
		if p.pid < 0 || p.epoch < 0 || string(encodeRegistryValue(p)) != string(b) {
			t.Fatalf("%x decoded to %+v", b, p)
		}
	})
}
