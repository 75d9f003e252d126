package state

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestKeyGroupRanges checks that the ranges of all subtasks are disjoint,
// contiguous, cover every key group and agree with SubtaskFor.
func TestKeyGroupRanges(t *testing.T) {
	for _, maxPar := range []int{1, 7, 128, 1000} {
		for par := 1; par <= maxPar && par <= 64; par++ {
			next := 0
			for sub := range par {
				r := RangeFor(maxPar, par, sub)
				if r.Start != next {
					t.Fatalf("max %d par %d sub %d: range %v does not start at %d", maxPar, par, sub, r, next)
				}
				for kg := r.Start; kg < r.End; kg++ {
					if got := SubtaskFor(maxPar, par, kg); got != sub {
						t.Fatalf("max %d par %d: key group %d in range of %d but SubtaskFor says %d", maxPar, par, kg, sub, got)
					}
				}
				next = r.End
			}
			if next != maxPar {
				t.Fatalf("max %d par %d: ranges end at %d", maxPar, par, next)
			}
		}
	}
}

type userID string

type point struct{ X, Y int }

type custom int

func (c custom) KeyHash() uint64 { return uint64(c) * 3 }

// customPair is a struct key with its own hash (like Nexmark q16's
// channel and day).
type customPair struct {
	S string
	N int64
}

func (c customPair) KeyHash() uint64 { return uint64(len(c.S))*31 + uint64(c.N) }

// TestKeyHasherStructNoAlloc: a struct key's own KeyHash is what Hasher
// returns, and hashing it does not copy the key to the heap.
func TestKeyHasherStructNoAlloc(t *testing.T) {
	h := Hasher[customPair]()
	k := customPair{S: "channel-7", N: 4}
	if got := h(k); got != k.KeyHash() {
		t.Fatalf("hash %d, want KeyHash %d", got, k.KeyHash())
	}
	var sink uint64
	if n := testing.AllocsPerRun(100, func() { sink += h(k) }); n != 0 {
		t.Fatalf("%v allocations per hash, want 0", n)
	}
}

// TestHasherStable pins hash values: they must not change between runs or
// releases, or restored state would land in the wrong key groups.
func TestHasherStable(t *testing.T) {
	if got := Hasher[string]()("user-1"); got != Hasher[userID]()("user-1") {
		t.Fatalf("named string type hashes differently: %d", got)
	}
	if Hasher[int64]()(42) != Hasher[int]()(42) || Hasher[int64]()(42) != mix64(42) {
		t.Fatal("integer hashes differ by type")
	}
	if Hasher[custom]()(5) != 15 {
		t.Fatal("KeyHasher not used")
	}
	h := Hasher[point]()
	if h(point{1, 2}) != h(point{1, 2}) || h(point{1, 2}) == h(point{2, 1}) {
		t.Fatal("struct hash not a function of the value")
	}
	// Spread: 10,000 sequential ints over 128 key groups.
	counts := make([]int, 128)
	hi := Hasher[int]()
	for i := range 10_000 {
		counts[KeyGroup(hi(i), 128)]++
	}
	for kg, n := range counts {
		if n < 40 || n > 120 {
			t.Fatalf("key group %d got %d of 10000 keys", kg, n)
		}
	}
}

func TestHandlesAgainstMaps(t *testing.T) {
	b := NewMemory(16, RangeFor(16, 2, 1))
	c := NewKeyed[string](b)
	v, err := NewValue[string, int](c, "v")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMap[string, int, string](c, "m")
	l, _ := NewList[string, int](c, "l")
	if _, err := NewValue[string, string](c, "v"); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("reopen with another type: %v", err)
	}
	wantV := map[string]int{}
	wantM := map[string]map[int]string{}
	wantL := map[string][]int{}
	r := rand.New(rand.NewPCG(3, 4))
	h := Hasher[string]()
	for range 5000 {
		var key string
		var kg int
		for { // only keys this backend owns
			key = fmt.Sprint("k", r.IntN(40))
			kg = KeyGroup(h(key), 16)
			if b.KeyGroups().Contains(kg) {
				break
			}
		}
		c.SetCurrentKey(key, kg)
		x := r.IntN(10)
		switch r.IntN(7) {
		case 0:
			v.Set(x)
			wantV[key] = x
		case 1:
			v.Clear()
			delete(wantV, key)
		case 2:
			m.Put(x, fmt.Sprint(x))
			if wantM[key] == nil {
				wantM[key] = map[int]string{}
			}
			wantM[key][x] = fmt.Sprint(x)
		case 3:
			m.Delete(x)
			delete(wantM[key], x)
		case 4:
			l.Add(x)
			wantL[key] = append(wantL[key], x)
		case 5:
			l.Clear()
			delete(wantL, key)
		case 6:
			m.Clear()
			delete(wantM, key)
		}
		got, ok := v.Get()
		want, wok := wantV[key]
		if ok != wok || got != want {
			t.Fatalf("value of %s: %d,%v want %d,%v", key, got, ok, want, wok)
		}
		if m.Len() != len(wantM[key]) {
			t.Fatalf("map of %s: len %d want %d", key, m.Len(), len(wantM[key]))
		}
		for uk, uv := range m.All() {
			if wantM[key][uk] != uv {
				t.Fatalf("map of %s: %d=%s", key, uk, uv)
			}
		}
		if fmt.Sprint(l.Values()) != fmt.Sprint(wantL[key]) && !(len(l.Values()) == 0 && len(wantL[key]) == 0) {
			t.Fatalf("list of %s: %v want %v", key, l.Values(), wantL[key])
		}
	}
	if len(b.Tables()) != 3 || b.Tables()[0].Name() != "l" {
		t.Fatalf("tables %v", b.Tables())
	}
	for _, tb := range b.Tables() {
		for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
			tb.ClearKeyGroup(kg)
		}
		if tb.Len() != 0 {
			t.Fatalf("table %s not empty after clearing", tb.Name())
		}
	}
}

type composite struct {
	Auction int64
	Bidder  int32
	Flag    bool
	Name    string
	Pair    [2]uint16
	Price   float64
}

func TestHasherComposite(t *testing.T) {
	h := Hasher[composite]()
	a := composite{Auction: 7, Bidder: 3, Flag: true, Name: "x", Pair: [2]uint16{1, 2}, Price: 0}
	b := a
	b.Price = math.Copysign(0, -1)
	if h(a) != h(b) {
		t.Fatal("-0 and +0 hash differently")
	}
	// The same for a float64 key itself and a named one: -0 == +0, so
	// they are one key and must share a key group and a subtask.
	negZero := math.Copysign(0, -1)
	if hf := Hasher[float64](); hf(negZero) != hf(0) {
		t.Fatal("float64 key: -0 and +0 hash differently")
	}
	type price float64
	if hp := Hasher[price](); hp(price(negZero)) != hp(0) {
		t.Fatal("named float64 key: -0 and +0 hash differently")
	}
	// Pinned values: they must never change, or state restored from a
	// checkpoint would land in other key groups.
	pins := []struct {
		got, want uint64
	}{
		{h(composite{Auction: 7, Bidder: 3, Flag: true, Name: "x", Pair: [2]uint16{1, 2}}), 14183386398142692700},
		{Hasher[string]()("user-1"), 11633770265628666856},
		{Hasher[int64]()(42), 12058926934050108962},
	}
	for i, p := range pins {
		if p.got != p.want {
			t.Errorf("pin %d: hash %d, want %d", i, p.got, p.want)
		}
	}
	seen := map[uint64]composite{}
	for i := range 2000 {
		c := composite{Auction: int64(i % 50), Bidder: int32(i / 50), Name: fmt.Sprint(i % 3)}
		if prev, dup := seen[h(c)]; dup && prev != c {
			t.Fatalf("collision between %v and %v", prev, c)
		}
		seen[h(c)] = c
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = h(a) }); allocs != 0 {
		t.Fatalf("%v allocations per hash", allocs)
	}
	type withPtr struct{ P *int }
	hp := Hasher[withPtr]()
	x := 1
	if hp(withPtr{&x}) != hp(withPtr{&x}) {
		t.Fatal("fallback hash unstable")
	}
}
