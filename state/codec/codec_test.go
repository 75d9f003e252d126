package codec

import (
	"errors"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

type point struct {
	X, Y int32
	Tag  string
}

type window struct {
	Start, End int64
	Sums       map[string]float64
	Points     []point
	Best       *point
	Seen       [2]bool
	At         time.Time
}

type userID [4]byte

func (u userID) MarshalBinary() ([]byte, error) { return []byte{u[3], u[2], u[1], u[0]}, nil }
func (u *userID) UnmarshalBinary(b []byte) error {
	if len(b) != 4 {
		return errors.New("userID: want 4 bytes")
	}
	*u = userID{b[3], b[2], b[1], b[0]}
	return nil
}

func roundTrip[T any](t *testing.T, vals ...T) {
	t.Helper()
	c, err := For[T]()
	if err != nil {
		t.Fatal(err)
	}
	// Concatenate all values, then decode them one after the other: the
	// encodings must be self-delimiting.
	var buf []byte
	for _, v := range vals {
		buf = c.Append(buf, v)
	}
	for i, want := range vals {
		got, n, err := c.Decode(buf)
		if err != nil {
			t.Fatalf("%T value %d: %v", want, i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T value %d: got %+v, want %+v", want, i, got, want)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%T: %d bytes left", vals[0], len(buf))
	}
}

func TestRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	var ints []int64
	var strs []string
	var floats []float64
	for range 200 {
		ints = append(ints, rnd.Int63()-rnd.Int63())
		b := make([]byte, rnd.Intn(40))
		rnd.Read(b)
		strs = append(strs, string(b))
		floats = append(floats, rnd.NormFloat64()*1e6)
	}
	roundTrip(t, ints...)
	roundTrip(t, strs...)
	roundTrip(t, floats...)
	roundTrip(t, 0, 1, -1, int(^uint(0)>>1))
	roundTrip(t, uint64(0), ^uint64(0))
	roundTrip(t, true, false)
	roundTrip(t, []byte{}, []byte{1, 2, 3})
	roundTrip(t, int8(-128), int8(127))
	roundTrip(t, uint16(65535))
	roundTrip(t, float32(1.5))
	roundTrip(t, time.Unix(1700000000, 123).UTC(), time.Unix(-5, 0).UTC())
	roundTrip(t, 3*time.Second)
	roundTrip(t, userID{1, 2, 3, 4})
	roundTrip(t, point{1, -2, "a"}, point{})
	roundTrip(t, map[string]int64{"a": 1, "b": -2}, map[string]int64(nil))
	roundTrip(t, []string{"x", ""}, []string(nil))
	roundTrip(t,
		window{Start: 1, End: 2, Sums: map[string]float64{"x": 1.5}, Points: []point{{1, 2, "p"}}, Best: &point{3, 4, "b"}, Seen: [2]bool{true, false}, At: time.Unix(9, 9).UTC()},
		window{},
	)
}

func TestUnsupported(t *testing.T) {
	type hidden struct{ x int }
	if _, err := For[hidden](); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unexported field: %v", err)
	}
	if _, err := For[chan int](); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("chan: %v", err)
	}
	if _, err := For[any](); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("interface: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	c := MustFor[window]()
	full := c.Append(nil, window{Start: 1, Sums: map[string]float64{"abc": 2}, Points: []point{{1, 2, "xyz"}}})
	for i := range len(full) - 1 {
		if _, _, err := c.Decode(full[:i]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(full))
		}
	}
}

func FuzzDecode(f *testing.F) {
	c := MustFor[window]()
	f.Add(c.Append(nil, window{Start: 1, Sums: map[string]float64{"abc": 2}, Points: []point{{1, 2, "xyz"}}, Best: &point{}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := c.Decode(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		again := c.Append(nil, v)
		if _, _, err := c.Decode(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func BenchmarkCodecs(b *testing.B) {
	b.Run("int64", func(b *testing.B) {
		c := MustFor[int64]()
		buf := make([]byte, 0, 16)
		b.ReportAllocs()
		for i := range b.N {
			buf = c.Append(buf[:0], int64(i))
			if _, _, err := c.Decode(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("struct", func(b *testing.B) {
		c := MustFor[point]()
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		for i := range b.N {
			buf = c.Append(buf[:0], point{int32(i), 2, "user-42"})
			if _, _, err := c.Decode(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
