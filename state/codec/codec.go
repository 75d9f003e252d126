package codec

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"
	"unsafe"
)

// Codec encodes values of type T. Append appends v's encoding to dst and
// returns the extended slice (no allocation when dst has room); Decode
// decodes one value from the start of src and returns it with the number
// of bytes it used. Codecs are safe for concurrent use.
//
// The value Decode returns must not alias src: state backends decode out
// of buffers they reuse (a Pebble iterator's block, a window's batch
// buffer), so a decoder that keeps a sub-slice of src (a []byte field, a
// string made with unsafe) must copy it, as DecodeBytes and DecodeString
// do.
type Codec[T any] interface {
	Append(dst []byte, v T) []byte
	Decode(src []byte) (T, int, error)
}

// ErrShort is wrapped by decoding errors of truncated input.
var ErrShort = errors.New("codec: input too short")

// ErrUnsupported is returned by For for types it cannot encode (channels,
// functions, interfaces, unsafe pointers).
var ErrUnsupported = errors.New("codec: unsupported type")

// Func makes a Codec from two functions, to plug a user encoding. decodeFn
// must copy what it keeps of its input (see Codec).
func Func[T any](appendFn func([]byte, T) []byte, decodeFn func([]byte) (T, int, error)) Codec[T] {
	return funcCodec[T]{appendFn, decodeFn}
}

type funcCodec[T any] struct {
	a func([]byte, T) []byte
	d func([]byte) (T, int, error)
}

func (c funcCodec[T]) Append(dst []byte, v T) []byte     { return c.a(dst, v) }
func (c funcCodec[T]) Decode(src []byte) (T, int, error) { return c.d(src) }

// AppendPtr implements PtrAppender.
func (c funcCodec[T]) AppendPtr(dst []byte, v *T) []byte { return c.a(dst, *v) }

// For returns the codec of T, or an error wrapping ErrUnsupported.
func For[T any]() (Codec[T], error) {
	var zero T
	var c any
	switch any(zero).(type) {
	case string:
		c = Func(AppendString, DecodeString)
	case []byte:
		c = Func(AppendBytes, DecodeBytes)
	case int64:
		c = Func(AppendInt64, DecodeInt64)
	case int:
		c = Func(func(d []byte, v int) []byte { return AppendInt64(d, int64(v)) },
			func(s []byte) (int, int, error) { v, n, err := DecodeInt64(s); return int(v), n, err })
	case uint64:
		c = Func(AppendUint64, DecodeUint64)
	case float64:
		c = Func(AppendFloat64, DecodeFloat64)
	case bool:
		c = Func(AppendBool, DecodeBool)
	case time.Time:
		c = Func(AppendTime, DecodeTime)
	}
	if cc, ok := c.(Codec[T]); ok {
		return cc, nil
	}
	ct, err := compile(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	return reflectCodec[T]{ct}, nil
}

// MustFor is For for types known to be supported; it panics otherwise.
func MustFor[T any]() Codec[T] {
	c, err := For[T]()
	if err != nil {
		panic(err)
	}
	return c
}

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// DecodeUvarint decodes an unsigned varint.
func DecodeUvarint(src []byte) (uint64, int, error) {
	v, n := binary.Uvarint(src)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: varint", ErrShort)
	}
	return v, n, nil
}

// AppendString appends s, length-prefixed.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeString decodes a length-prefixed string.
func DecodeString(src []byte) (string, int, error) {
	l, n, err := DecodeUvarint(src)
	if err != nil {
		return "", 0, err
	}
	if l > uint64(len(src)-n) {
		return "", 0, fmt.Errorf("%w: string of %d bytes, %d left", ErrShort, l, len(src)-n)
	}
	return string(src[n : n+int(l)]), n + int(l), nil
}

// AppendBytes appends b, length-prefixed.
func AppendBytes(dst []byte, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// DecodeBytes decodes a length-prefixed byte slice (a copy).
func DecodeBytes(src []byte) ([]byte, int, error) {
	l, n, err := DecodeUvarint(src)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(src)-n) {
		return nil, 0, fmt.Errorf("%w: %d bytes, %d left", ErrShort, l, len(src)-n)
	}
	return append([]byte{}, src[n:n+int(l)]...), n + int(l), nil
}

// AppendInt64 appends v as a zig-zag varint.
func AppendInt64(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// DecodeInt64 decodes a zig-zag varint.
func DecodeInt64(src []byte) (int64, int, error) {
	v, n := binary.Varint(src)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: varint", ErrShort)
	}
	return v, n, nil
}

// AppendUint64 appends v as a varint.
func AppendUint64(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// DecodeUint64 decodes a varint.
func DecodeUint64(src []byte) (uint64, int, error) { return DecodeUvarint(src) }

// AppendFloat64 appends v's IEEE bits, 8 bytes little-endian.
func AppendFloat64(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// DecodeFloat64 decodes 8 bytes of IEEE bits.
func DecodeFloat64(src []byte) (float64, int, error) {
	if len(src) < 8 {
		return 0, 0, fmt.Errorf("%w: float64", ErrShort)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(src)), 8, nil
}

// AppendBool appends one byte, 0 or 1.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// DecodeBool decodes one byte.
func DecodeBool(src []byte) (bool, int, error) {
	if len(src) < 1 {
		return false, 0, fmt.Errorf("%w: bool", ErrShort)
	}
	if src[0] > 1 {
		return false, 0, fmt.Errorf("codec: bool byte %d", src[0])
	}
	return src[0] == 1, 1, nil
}

// AppendTime appends t as Unix seconds and nanoseconds (the location is
// not kept; times decode in UTC).
func AppendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// DecodeTime decodes a time written by AppendTime.
func DecodeTime(src []byte) (time.Time, int, error) {
	s, n, err := DecodeInt64(src)
	if err != nil {
		return time.Time{}, 0, err
	}
	ns, m, err := DecodeUvarint(src[n:])
	if err != nil {
		return time.Time{}, 0, err
	}
	if ns >= 1e9 {
		return time.Time{}, 0, fmt.Errorf("codec: time nanoseconds %d", ns)
	}
	return time.Unix(s, int64(ns)).UTC(), n + m, nil
}

var (
	binaryMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	timeType          = reflect.TypeFor[time.Time]()
)

// A typePlan encodes and decodes values of one type through reflection.
type typePlan struct {
	enc func(dst []byte, v reflect.Value) []byte
	dec func(src []byte, v reflect.Value) (int, error)
}

// reflectCodec is the codec of a type without a hand-written one: it
// encodes through the compiled encoder (fast.go) and decodes through the
// reflective plan.
type reflectCodec[T any] struct{ c *compiledType }

func (c reflectCodec[T]) Append(dst []byte, v T) []byte {
	if c.c.elem != nil {
		// A pointer: read it from v, which does not escape.
		p := *(*unsafe.Pointer)(unsafe.Pointer(&v))
		if p == nil {
			return append(dst, 0)
		}
		return c.c.elem(append(dst, 1), p)
	}
	w := v // only this copy escapes
	return c.c.enc(dst, unsafe.Pointer(&w))
}

// AppendPtr implements PtrAppender.
func (c reflectCodec[T]) AppendPtr(dst []byte, v *T) []byte {
	return c.c.enc(dst, unsafe.Pointer(v))
}

func (c reflectCodec[T]) Decode(src []byte) (T, int, error) {
	var v T
	n, err := c.c.p.dec(src, reflect.ValueOf(&v).Elem())
	return v, n, err
}

// appendReflect encodes v through the reflective plan (the reference the
// compiled encoders are tested against).
func (c reflectCodec[T]) appendReflect(dst []byte, v T) []byte {
	return c.c.p.enc(dst, reflect.ValueOf(&v).Elem())
}

// maxLen bounds decoded collection lengths so that corrupt input cannot
// make the decoder allocate without bound: every element takes a byte.
func checkLen(l uint64, src []byte) error {
	if l > uint64(len(src)) {
		return fmt.Errorf("%w: %d elements, %d bytes left", ErrShort, l, len(src))
	}
	return nil
}

func plan(t reflect.Type, depth int) (typePlan, error) {
	if depth > 32 {
		return typePlan{}, fmt.Errorf("%w: %s nests too deeply (recursive type?)", ErrUnsupported, t)
	}
	if t == timeType {
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte { return AppendTime(d, v.Interface().(time.Time)) },
			dec: func(s []byte, v reflect.Value) (int, error) {
				x, n, err := DecodeTime(s)
				v.Set(reflect.ValueOf(x))
				return n, err
			},
		}, nil
	}
	if t.Implements(binaryMarshaler) && reflect.PointerTo(t).Implements(binaryUnmarshaler) && t.Kind() != reflect.Pointer {
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte {
				b, err := v.Interface().(encoding.BinaryMarshaler).MarshalBinary()
				if err != nil {
					// Append cannot fail; a marshaller that fails is a bug
					// in the user type, reported where it happens.
					panic(fmt.Errorf("codec: %s.MarshalBinary: %w", t, err))
				}
				return AppendBytes(d, b)
			},
			dec: func(s []byte, v reflect.Value) (int, error) {
				l, n, err := DecodeUvarint(s)
				if err != nil {
					return 0, err
				}
				if l > uint64(len(s)-n) {
					return 0, fmt.Errorf("%w: %s of %d bytes", ErrShort, t, l)
				}
				if err := v.Addr().Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(s[n : n+int(l)]); err != nil {
					return 0, fmt.Errorf("codec: %s: %w", t, err)
				}
				return n + int(l), nil
			},
		}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte { return AppendBool(d, v.Bool()) },
			dec: func(s []byte, v reflect.Value) (int, error) {
				x, n, err := DecodeBool(s)
				v.SetBool(x)
				return n, err
			},
		}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte { return AppendInt64(d, v.Int()) },
			dec: func(s []byte, v reflect.Value) (int, error) {
				x, n, err := DecodeInt64(s)
				if err == nil && v.OverflowInt(x) {
					return 0, fmt.Errorf("codec: %d overflows %s", x, t)
				}
				v.SetInt(x)
				return n, err
			},
		}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte { return AppendUint64(d, v.Uint()) },
			dec: func(s []byte, v reflect.Value) (int, error) {
				x, n, err := DecodeUint64(s)
				if err == nil && v.OverflowUint(x) {
					return 0, fmt.Errorf("codec: %d overflows %s", x, t)
				}
				v.SetUint(x)
				return n, err
			},
		}, nil
	case reflect.Float32, reflect.Float64:
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte { return AppendFloat64(d, v.Float()) },
			dec: func(s []byte, v reflect.Value) (int, error) {
				x, n, err := DecodeFloat64(s)
				v.SetFloat(x)
				return n, err
			},
		}, nil
	case reflect.String:
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte { return AppendString(d, v.String()) },
			dec: func(s []byte, v reflect.Value) (int, error) {
				x, n, err := DecodeString(s)
				v.SetString(x)
				return n, err
			},
		}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return typePlan{
				enc: func(d []byte, v reflect.Value) []byte { return AppendBytes(d, v.Bytes()) },
				dec: func(s []byte, v reflect.Value) (int, error) {
					x, n, err := DecodeBytes(s)
					v.SetBytes(x)
					return n, err
				},
			}, nil
		}
		ep, err := plan(t.Elem(), depth+1)
		if err != nil {
			return typePlan{}, err
		}
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte {
				if v.IsNil() {
					return append(d, 0)
				}
				d = AppendUvarint(d, uint64(v.Len())+1)
				for i := range v.Len() {
					d = ep.enc(d, v.Index(i))
				}
				return d
			},
			dec: func(s []byte, v reflect.Value) (int, error) {
				l, n, err := DecodeUvarint(s)
				if err != nil || l == 0 {
					return n, err
				}
				if err := checkLen(l-1, s[n:]); err != nil {
					return 0, err
				}
				sl := reflect.MakeSlice(t, int(l-1), int(l-1))
				for i := range int(l - 1) {
					m, err := ep.dec(s[n:], sl.Index(i))
					if err != nil {
						return 0, err
					}
					n += m
				}
				v.Set(sl)
				return n, nil
			},
		}, nil
	case reflect.Array:
		ep, err := plan(t.Elem(), depth+1)
		if err != nil {
			return typePlan{}, err
		}
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte {
				for i := range v.Len() {
					d = ep.enc(d, v.Index(i))
				}
				return d
			},
			dec: func(s []byte, v reflect.Value) (int, error) {
				n := 0
				for i := range v.Len() {
					m, err := ep.dec(s[n:], v.Index(i))
					if err != nil {
						return 0, err
					}
					n += m
				}
				return n, nil
			},
		}, nil
	case reflect.Map:
		kp, err := plan(t.Key(), depth+1)
		if err != nil {
			return typePlan{}, err
		}
		vp, err := plan(t.Elem(), depth+1)
		if err != nil {
			return typePlan{}, err
		}
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte {
				if v.IsNil() {
					return append(d, 0)
				}
				d = AppendUvarint(d, uint64(v.Len())+1)
				it := v.MapRange()
				for it.Next() {
					d = kp.enc(d, it.Key())
					d = vp.enc(d, it.Value())
				}
				return d
			},
			dec: func(s []byte, v reflect.Value) (int, error) {
				l, n, err := DecodeUvarint(s)
				if err != nil || l == 0 {
					return n, err
				}
				if err := checkLen(l-1, s[n:]); err != nil {
					return 0, err
				}
				m := reflect.MakeMapWithSize(t, int(l-1))
				k := reflect.New(t.Key()).Elem()
				e := reflect.New(t.Elem()).Elem()
				for range int(l - 1) {
					k.SetZero()
					e.SetZero()
					a, err := kp.dec(s[n:], k)
					if err != nil {
						return 0, err
					}
					n += a
					b, err := vp.dec(s[n:], e)
					if err != nil {
						return 0, err
					}
					n += b
					m.SetMapIndex(k, e)
				}
				v.Set(m)
				return n, nil
			},
		}, nil
	case reflect.Pointer:
		ep, err := plan(t.Elem(), depth+1)
		if err != nil {
			return typePlan{}, err
		}
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte {
				if v.IsNil() {
					return append(d, 0)
				}
				return ep.enc(append(d, 1), v.Elem())
			},
			dec: func(s []byte, v reflect.Value) (int, error) {
				if len(s) < 1 {
					return 0, fmt.Errorf("%w: pointer", ErrShort)
				}
				if s[0] == 0 {
					return 1, nil
				}
				p := reflect.New(t.Elem())
				n, err := ep.dec(s[1:], p.Elem())
				if err != nil {
					return 0, err
				}
				v.Set(p)
				return n + 1, nil
			},
		}, nil
	case reflect.Struct:
		type field struct {
			idx int
			p   typePlan
		}
		var fields []field
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				return typePlan{}, fmt.Errorf("%w: %s has unexported field %s (implement encoding.BinaryMarshaler or pass a codec)", ErrUnsupported, t, f.Name)
			}
			fp, err := plan(f.Type, depth+1)
			if err != nil {
				return typePlan{}, err
			}
			fields = append(fields, field{i, fp})
		}
		return typePlan{
			enc: func(d []byte, v reflect.Value) []byte {
				for _, f := range fields {
					d = f.p.enc(d, v.Field(f.idx))
				}
				return d
			},
			dec: func(s []byte, v reflect.Value) (int, error) {
				n := 0
				for _, f := range fields {
					m, err := f.p.dec(s[n:], v.Field(f.idx))
					if err != nil {
						return 0, err
					}
					n += m
				}
				return n, nil
			},
		}, nil
	}
	return typePlan{}, fmt.Errorf("%w: %s", ErrUnsupported, t)
}

// UvarintLen returns the length of x's unsigned varint encoding
// (binary.AppendUvarint), for callers that reserve room for a length
// before they know it.
func UvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// prefixRoom is the room BeginPrefixed reserves for a length: bodies of
// up to 2 MiB need no move.
const prefixRoom = 3

// BeginPrefixed reserves room at the end of dst for the uvarint length of
// what the caller appends next (the body), and returns dst and the offset
// of the reservation for EndPrefixed. Together they append what
// AppendBytes appends, without encoding the body elsewhere first.
func BeginPrefixed(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0), len(dst)
}

// EndPrefixed writes the uvarint length of the body appended after the
// reservation at offset at (from BeginPrefixed) into it, moving the body
// when its length takes another number of bytes, and returns dst and
// the body's length. dst[at:] is then what AppendBytes appends.
func EndPrefixed(dst []byte, at int) ([]byte, int) {
	n := len(dst) - at - prefixRoom
	need := UvarintLen(uint64(n))
	if need != prefixRoom {
		for range need - prefixRoom {
			dst = append(dst, 0)
		}
		copy(dst[at+need:], dst[at+prefixRoom:at+prefixRoom+n])
		dst = dst[:at+need+n]
	}
	binary.PutUvarint(dst[at:], uint64(n))
	return dst, n
}
