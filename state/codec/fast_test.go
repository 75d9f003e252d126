package codec

import (
	"bytes"
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// Property tests of the compiled encoders (fast.go): on random values of
// many shapes they must write exactly the bytes of the reflective plans,
// which existing snapshots were written with, and decode back.

type myInt int16
type myBytes []byte
type myByte uint8

type allKinds struct {
	B    bool
	I    int
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	U    uint
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	UP   uintptr
	F32  float32
	F64  float64
	S    string
	BS   []byte
	MB   myBytes
	MI   myInt
	Arr  [3]myByte
	Long [20]int32
	T    time.Time
	ID   userID
	IDs  []userID
	PID  *userID
}

type nested struct {
	Inner  allKinds
	Ptr    *allKinds
	List   []allKinds
	Grid   [2][2]int64
	Ptrs   []*point
	M      map[int64]point
	MP     map[string]*point
	PP     **point
	Times  []time.Time
	Strs   [2]string
	Matrix [][]int8
}

type bidLike struct {
	Auction, Bidder, Price int64
	Channel, URL           string
	DateTime               int64
	Extra                  string
}

type entryLike struct {
	Last, Emitted bidLike
	Has, Dirty    bool
}

type topLike struct {
	Top     []bidLike
	Emitted []bidLike
	Dirty   bool
	Timer   int64
}

// randValue fills v (settable) with random contents; maps get at most
// one entry so that their encoding does not depend on iteration order.
func randValue(rnd *rand.Rand, v reflect.Value, depth int) {
	t := v.Type()
	if t == timeType {
		v.Set(reflect.ValueOf(time.Unix(rnd.Int63n(1<<40)-1<<39, rnd.Int63n(1e9)).UTC()))
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(rnd.Intn(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := rnd.Int63() >> rnd.Intn(64)
		if rnd.Intn(2) == 0 {
			x = -x
		}
		if rnd.Intn(8) == 0 {
			x = math.MinInt64
		}
		bits := t.Size() * 8
		x = x << (64 - bits) >> (64 - bits) // fits
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x := rnd.Uint64() >> rnd.Intn(65)
		bits := t.Size() * 8
		x = x << (64 - bits) >> (64 - bits)
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		f := rnd.NormFloat64() * math.Pow(10, float64(rnd.Intn(20)-10))
		switch rnd.Intn(10) {
		case 0:
			f = math.Inf(1)
		case 1:
			f = math.NaN()
		case 2:
			f = 0
		}
		v.SetFloat(f)
	case reflect.String:
		b := make([]byte, rnd.Intn(300))
		rnd.Read(b)
		v.SetString(string(b))
	case reflect.Slice:
		switch {
		case rnd.Intn(4) == 0 || depth > 4:
			return // nil
		case rnd.Intn(4) == 0:
			v.Set(reflect.MakeSlice(t, 0, rnd.Intn(3))) // empty, not nil
			return
		}
		n := rnd.Intn(5)
		s := reflect.MakeSlice(t, n, n+rnd.Intn(3))
		for i := range n {
			randValue(rnd, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			randValue(rnd, v.Index(i), depth+1)
		}
	case reflect.Map:
		if rnd.Intn(3) == 0 || depth > 4 {
			return
		}
		m := reflect.MakeMap(t)
		if rnd.Intn(3) > 0 {
			k := reflect.New(t.Key()).Elem()
			e := reflect.New(t.Elem()).Elem()
			randValue(rnd, k, depth+1)
			randValue(rnd, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if rnd.Intn(3) == 0 || depth > 4 {
			return
		}
		p := reflect.New(t.Elem())
		randValue(rnd, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			randValue(rnd, v.Field(i), depth+1)
		}
	default:
		panic(t.String())
	}
}

func checkCompiled[T any](t *testing.T, rnd *rand.Rand, n int) {
	t.Helper()
	c, err := For[T]()
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := c.(reflectCodec[T])
	if !ok {
		t.Fatalf("%T: codec %T, not the compiled one", *new(T), c)
	}
	pa := c.(PtrAppender[T])
	var buf []byte
	for i := range n {
		var v T
		randValue(rnd, reflect.ValueOf(&v).Elem(), 0)
		want := rc.appendReflect([]byte{0xAA}, v)
		got := c.Append([]byte{0xAA}, v)
		if !bytes.Equal(got, want) {
			t.Fatalf("%T value %d %+v:\ncompiled   %x\nreflective %x", v, i, v, got, want)
		}
		if got := pa.AppendPtr([]byte{0xAA}, &v); !bytes.Equal(got, want) {
			t.Fatalf("%T value %d: AppendPtr %x, reflective %x", v, i, got, want)
		}
		// And it decodes back to an equal value (NaN aside, which
		// DeepEqual never equates: compare the re-encoding instead).
		d, m, err := c.Decode(want[1:])
		if err != nil || m != len(want)-1 {
			t.Fatalf("%T value %d: decode: %d of %d bytes, %v", v, i, m, len(want)-1, err)
		}
		if again := c.Append(nil, d); !bytes.Equal(again, want[1:]) {
			t.Fatalf("%T value %d: re-encoding differs", v, i)
		}
		buf = c.Append(buf, v)
	}
}

func TestCompiledMatchesReflective(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	checkCompiled[point](t, rnd, 300)
	checkCompiled[*point](t, rnd, 300)
	checkCompiled[window](t, rnd, 300)
	checkCompiled[*window](t, rnd, 300)
	checkCompiled[allKinds](t, rnd, 500)
	checkCompiled[*allKinds](t, rnd, 200)
	checkCompiled[nested](t, rnd, 300)
	checkCompiled[[]point](t, rnd, 200)
	checkCompiled[[5]int16](t, rnd, 100)
	checkCompiled[[40]uint8](t, rnd, 100)
	checkCompiled[myInt](t, rnd, 100)
	checkCompiled[myBytes](t, rnd, 100)
	checkCompiled[userID](t, rnd, 100)
	checkCompiled[map[int64]entryLike](t, rnd, 200)
	checkCompiled[entryLike](t, rnd, 300)
	checkCompiled[*topLike](t, rnd, 300)
	checkCompiled[[]int64](t, rnd, 100)
	checkCompiled[float32](t, rnd, 100)
	checkCompiled[[]string](t, rnd, 100)
}

// Maps of several entries encode in iteration order: compare decodings.
func TestCompiledMaps(t *testing.T) {
	c := MustFor[map[string][]point]()
	m := map[string][]point{}
	for i := range 50 {
		m[string(rune('a'+i))] = make([]point, i%4)
	}
	m["nil"] = nil
	b := c.Append(nil, m)
	if want := c.(reflectCodec[map[string][]point]).appendReflect(nil, m); len(b) != len(want) {
		t.Fatalf("compiled %d bytes, reflective %d", len(b), len(want))
	}
	got, n, err := c.Decode(b)
	if err != nil || n != len(b) || !reflect.DeepEqual(got, m) {
		t.Fatalf("decoded %v (%d of %d bytes, %v)", got, n, len(b), err)
	}
}

func BenchmarkAppendEntry(b *testing.B) {
	rnd := rand.New(rand.NewSource(1))
	var v topLike
	for len(v.Top) < 10 {
		v.Top = append(v.Top, bidLike{Auction: rnd.Int63n(1e6), Bidder: rnd.Int63n(1e6), Price: rnd.Int63n(1e7),
			Channel: "channel-1234", URL: "https://www.nexmark.com/abcd/efgh/item.htm?query=1", DateTime: rnd.Int63(), Extra: "extra"})
	}
	c := MustFor[*topLike]()
	rc := c.(reflectCodec[*topLike])
	var buf []byte
	b.Run("compiled", func(b *testing.B) {
		for b.Loop() {
			buf = c.Append(buf[:0], &v)
		}
	})
	b.Run("reflective", func(b *testing.B) {
		for b.Loop() {
			buf = rc.appendReflect(buf[:0], &v)
		}
	})
}
