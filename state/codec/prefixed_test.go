package codec

import (
	"bytes"
	"testing"
)

// TestPrefixedMatchesAppendBytes: BeginPrefixed, a body appended in
// place and EndPrefixed give exactly what AppendBytes appends, for
// bodies whose length takes fewer, as many and more bytes than the room
// reserved.
func TestPrefixedMatchesAppendBytes(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<21 + 5} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i*7 + n)
		}
		head := []byte("head")
		dst, at := BeginPrefixed(append([]byte(nil), head...))
		dst = append(dst, body...)
		dst, got := EndPrefixed(dst, at)
		if got != n {
			t.Fatalf("length %d: EndPrefixed says %d", n, got)
		}
		if want := AppendBytes(append([]byte(nil), head...), body); !bytes.Equal(dst, want) {
			t.Fatalf("length %d: %d bytes differ from AppendBytes' %d", n, len(dst), len(want))
		}
	}
}
