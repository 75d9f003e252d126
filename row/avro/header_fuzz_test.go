package avro

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// FuzzSplitHeader checks the Confluent wire-format header split against
// franz-go's (another implementation): on any bytes it never panics, it
// refuses exactly what is shorter than the header (ErrShort) or starts
// with another magic byte (ErrMagic), it agrees on the schema id and the
// payload of what it accepts, and AppendHeader writes back the same bytes.
func FuzzSplitHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 7})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 2, 4})
	f.Add([]byte{1, 0, 0, 0, 1, 0})
	var h sr.ConfluentHeader
	f.Fuzz(func(t *testing.T, data []byte) {
		id, payload, err := SplitHeader(data)
		switch {
		case len(data) < HeaderLen:
			if !errors.Is(err, ErrShort) {
				t.Fatalf("%x: %v, want ErrShort", data, err)
			}
			return
		case data[0] != MagicByte:
			if !errors.Is(err, ErrMagic) {
				t.Fatalf("%x: %v, want ErrMagic", data, err)
			}
			return
		case err != nil:
			t.Fatalf("%x: %v", data, err)
		}
		rid, rest, rerr := h.DecodeID(data)
		if rerr != nil || uint32(rid) != id || !bytes.Equal(rest, payload) {
			t.Fatalf("%x: id %d payload %x; franz-go: %d %x %v", data, id, payload, rid, rest, rerr)
		}
		if back := append(AppendHeader(nil, id), payload...); !bytes.Equal(back, data) {
			t.Fatalf("%x: writes back as %x", data, back)
		}
	})
}
