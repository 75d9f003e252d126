package state

import (
	"fmt"
	"math"
	"reflect"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// DefaultMaxParallelism is the number of key groups when none is configured.
const DefaultMaxParallelism = 128

// KeyGroupRange is the half-open range [Start, End) of key groups that one
// subtask owns.
type KeyGroupRange struct {
	Start, End int
}

// Contains reports whether kg is in the range.
func (r KeyGroupRange) Contains(kg int) bool { return kg >= r.Start && kg < r.End }

// Len returns the number of key groups in the range.
func (r KeyGroupRange) Len() int { return r.End - r.Start }

// String formats the range as [start,end).
func (r KeyGroupRange) String() string { return fmt.Sprintf("[%d,%d)", r.Start, r.End) }

// KeyGroup returns the key group of a key hash.
func KeyGroup(hash uint64, maxParallelism int) int {
	return int(hash % uint64(maxParallelism))
}

// RangeFor returns the key groups owned by subtask index of parallelism
// subtasks. The ranges of all subtasks are contiguous, disjoint and cover
// [0, maxParallelism). parallelism must be in [1, maxParallelism].
func RangeFor(maxParallelism, parallelism, index int) KeyGroupRange {
	return KeyGroupRange{
		Start: (index*maxParallelism + parallelism - 1) / parallelism,
		End:   ((index+1)*maxParallelism + parallelism - 1) / parallelism,
	}
}

// SubtaskFor returns the subtask that owns key group kg; it agrees with
// RangeFor.
func SubtaskFor(maxParallelism, parallelism, kg int) int {
	return kg * parallelism / maxParallelism
}

// KeyHasher lets a key type choose its own stable hash; Hasher uses it when
// the key implements it.
type KeyHasher interface {
	KeyHash() uint64
}

// Hasher returns a hash function for keys of type K that is stable across
// processes and runs, so that a key keeps its key group when state is
// restored: integers and strings hash by value, types implementing
// KeyHasher use their own hash, structs and arrays of booleans, numbers
// and strings hash field by field, and other comparable types (with
// pointers or interfaces) hash their fmt %#v form (slow; implement
// KeyHasher for such keys on hot paths).
func Hasher[K comparable]() func(K) uint64 {
	h, _ := hasher[K]()
	return h
}

// FastHasher is Hasher, and reports whether the hash is cheap: false for
// the fmt fallback, where a Go map is the better index of in-memory keys.
func FastHasher[K comparable]() (h func(K) uint64, fast bool) { return hasher[K]() }

func hasher[K comparable]() (func(K) uint64, bool) {
	var zero K
	var f any
	switch any(zero).(type) {
	case KeyHasher:
		// The method expression K.KeyHash, a plain func(K) uint64: called
		// through the interface, a key that is not pointer-shaped (a
		// struct) is copied to the heap at every call.
		if m, ok := reflect.TypeFor[K]().MethodByName("KeyHash"); ok {
			if h, ok := m.Func.Interface().(func(K) uint64); ok {
				return h, true
			}
		}
		f = func(k K) uint64 { return any(k).(KeyHasher).KeyHash() }
	case string:
		f = func(k string) uint64 { return xxhash.Sum64String(k) }
	case int:
		f = func(k int) uint64 { return mix64(uint64(k)) }
	case int64:
		f = func(k int64) uint64 { return mix64(uint64(k)) }
	case int32:
		f = func(k int32) uint64 { return mix64(uint64(k)) }
	case int16:
		f = func(k int16) uint64 { return mix64(uint64(k)) }
	case int8:
		f = func(k int8) uint64 { return mix64(uint64(k)) }
	case uint:
		f = func(k uint) uint64 { return mix64(uint64(k)) }
	case uint64:
		f = func(k uint64) uint64 { return mix64(k) }
	case uint32:
		f = func(k uint32) uint64 { return mix64(uint64(k)) }
	case uint16:
		f = func(k uint16) uint64 { return mix64(uint64(k)) }
	case uint8:
		f = func(k uint8) uint64 { return mix64(uint64(k)) }
	case bool:
		f = func(k bool) uint64 {
			if k {
				return mix64(1)
			}
			return mix64(0)
		}
	case float64:
		f = func(k float64) uint64 {
			if k == 0 {
				k = 0 // -0 and +0 are equal keys
			}
			return mix64(math.Float64bits(k))
		}
	}
	if h, ok := f.(func(K) uint64); ok {
		return h, true
	}
	// Named types over strings and integers (type UserID string) hash like
	// their underlying type; the conversion is safe because the kind is
	// checked first.
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String:
		return func(k K) uint64 { return xxhash.Sum64String(*(*string)(unsafe.Pointer(&k))) }, true
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		if unsafe.Sizeof(zero) == 8 {
			return func(k K) uint64 { return mix64(*(*uint64)(unsafe.Pointer(&k))) }, true
		}
		return func(k K) uint64 { return mix64(uint64(*(*uint32)(unsafe.Pointer(&k)))) }, true
	case reflect.Int32:
		return func(k K) uint64 { return mix64(uint64(*(*int32)(unsafe.Pointer(&k)))) }, true
	case reflect.Uint32:
		return func(k K) uint64 { return mix64(uint64(*(*uint32)(unsafe.Pointer(&k)))) }, true
	}
	if fields, ok := planFields(reflect.TypeFor[K](), 0, nil); ok {
		return func(k K) uint64 { return hashFields(unsafe.Pointer(&k), fields) }, true
	}
	return func(k K) uint64 {
		return xxhash.Sum64String(fmt.Sprintf("%#v", k))
	}, false
}

type fieldKind uint8

const (
	fieldInt fieldKind = iota
	fieldFloat
	fieldString
)

// fieldHash says where a scalar field of a composite key lives.
type fieldHash struct {
	off  uintptr
	size uintptr
	kind fieldKind
}

// planFields flattens a struct or array type made of booleans, integers,
// floats and strings into the list of its scalar fields. It reports false
// for types with pointers, interfaces, maps and the like, whose hash could
// not be stable across processes.
func planFields(t reflect.Type, base uintptr, out []fieldHash) ([]fieldHash, bool) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return append(out, fieldHash{off: base, size: t.Size(), kind: fieldInt}), true
	case reflect.Float32, reflect.Float64:
		return append(out, fieldHash{off: base, size: t.Size(), kind: fieldFloat}), true
	case reflect.String:
		return append(out, fieldHash{off: base, kind: fieldString}), true
	case reflect.Array:
		var ok bool
		for i := range t.Len() {
			if out, ok = planFields(t.Elem(), base+uintptr(i)*t.Elem().Size(), out); !ok {
				return nil, false
			}
		}
		return out, true
	case reflect.Struct:
		var ok bool
		for i := range t.NumField() {
			f := t.Field(i)
			if out, ok = planFields(f.Type, base+f.Offset, out); !ok {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

// hashFields combines the hashes of the scalar fields of the key at p.
func hashFields(p unsafe.Pointer, fields []fieldHash) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, f := range fields {
		fp := unsafe.Add(p, f.off)
		var v uint64
		switch f.kind {
		case fieldString:
			v = xxhash.Sum64String(*(*string)(fp))
		case fieldFloat:
			if f.size == 4 {
				x := *(*float32)(fp)
				if x == 0 {
					x = 0 // -0 and +0 are equal keys
				}
				v = uint64(math.Float32bits(x))
			} else {
				x := *(*float64)(fp)
				if x == 0 {
					x = 0
				}
				v = math.Float64bits(x)
			}
		default:
			switch f.size {
			case 1:
				v = uint64(*(*uint8)(fp))
			case 2:
				v = uint64(*(*uint16)(fp))
			case 4:
				v = uint64(*(*uint32)(fp))
			default:
				v = *(*uint64)(fp)
			}
		}
		h = mix64(h ^ v)
	}
	return h
}

// mix64 is a 64-bit finaliser (from the splitmix64 generator) that spreads
// integer keys over all bits before the modulo by the number of key groups.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
