package state

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/sluicehq/sluice/state/codec"
)

// The in-place length prefixes write what codec.AppendBytes of a
// separately encoded value writes, whatever the sizes (prefixes of 1 to
// 4 bytes, growing and shrinking from one value to the next).
func TestPrefixedEncodingMatchesAppendBytes(t *testing.T) {
	rnd := rand.New(rand.NewSource(3))
	sizes := []int{0, 1, 126, 127, 128, 129, 16383, 16384, 16385, 2097151, 2097152, 2097153, 5, 300000, 3}
	for range 40 {
		sizes = append(sizes, rnd.Intn(40000))
	}
	sc := codec.MustFor[string]()
	type pair struct{ S []string }
	pc := codec.MustFor[pair]()
	se, pe := newPrefixedEncoder(sc), newPrefixedEncoder(pc)
	var got, want []byte
	for i, n := range sizes {
		b := make([]byte, n)
		rnd.Read(b)
		s := string(b)
		got = se.append(got, s)
		want = codec.AppendBytes(want, sc.Append(nil, s))
		p := pair{S: []string{s[:n/2], s[n/2:]}}
		got = pe.append(got, p)
		want = codec.AppendBytes(want, pc.Append(nil, p))
		var m int
		var err error
		got, m, err = appendLenPrefixed(got, func(d []byte) ([]byte, error) { return append(d, b...), nil })
		if err != nil || m != n {
			t.Fatalf("appendLenPrefixed: %d bytes, %v", m, err)
		}
		want = codec.AppendBytes(want, b)
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d (step %d): encodings differ", n, i)
		}
	}
}
