package codec

import (
	"encoding/binary"
	"math"
	"reflect"
	"sync"
	"time"
	"unsafe"
)

// Compiled encoders: the reflective plans (plan) turned into encoders
// that read a value through its address and field offsets instead of
// reflect.Value, for the snapshot hot path. They write exactly the bytes
// of the reflective plan (fast_test.go checks it on random values); the
// decoders stay reflective. A struct (nested structs and short arrays
// included) becomes a flat list of steps, most of them an inline switch
// case (varints, strings, booleans, floats) rather than a call.

// encFn appends the encoding of the value at p.
type encFn func(dst []byte, p unsafe.Pointer) []byte

// PtrAppender is implemented by the codecs of For for every type: it
// appends the encoding of *v, which it does not keep, without copying v
// to the heap (Append of a codec called through the Codec interface
// moves its argument to the heap when T is not pointer-shaped).
type PtrAppender[T any] interface {
	AppendPtr(dst []byte, v *T) []byte
}

// step kinds of a compiled struct.
const (
	stepCall uint8 = iota
	stepInt64
	stepInt32
	stepInt16
	stepInt8
	stepUint64
	stepUint32
	stepUint16
	stepUint8
	stepBool
	stepFloat64
	stepFloat32
	stepString
	stepBytes
)

type step struct {
	kind uint8
	off  uintptr
	fn   encFn // stepCall
}

// maxFlatArray bounds the arrays whose elements become steps of their
// struct (longer ones loop).
const maxFlatArray = 16

// compiled caches the compiled encoders and the reflective plans by type:
// For is called at every snapshot.
var compiled sync.Map // reflect.Type -> *compiledType

type compiledType struct {
	p   typePlan
	enc encFn
	// elem is the encoder of the pointed-to value when the type is a
	// pointer (the codec reads the pointer from the value itself).
	elem encFn
}

func compile(t reflect.Type) (*compiledType, error) {
	if c, ok := compiled.Load(t); ok {
		return c.(*compiledType), nil
	}
	p, err := plan(t, 0)
	if err != nil {
		return nil, err
	}
	c := &compiledType{p: p, enc: fastEnc(t)}
	if t.Kind() == reflect.Pointer && !isMarshaler(t) && t != timeType {
		c.elem = fastEnc(t.Elem())
	}
	v, _ := compiled.LoadOrStore(t, c)
	return v.(*compiledType), nil
}

func isMarshaler(t reflect.Type) bool {
	return t.Implements(binaryMarshaler) && reflect.PointerTo(t).Implements(binaryUnmarshaler) && t.Kind() != reflect.Pointer
}

// fastEnc compiles the encoder of t, which plan accepted (so every field
// is exported and the nesting is bounded).
func fastEnc(t reflect.Type) encFn {
	if k, ok := scalarStep(t); ok {
		return func(d []byte, p unsafe.Pointer) []byte { return runStep(d, p, step{kind: k}) }
	}
	if t == timeType {
		return func(d []byte, p unsafe.Pointer) []byte { return AppendTime(d, *(*time.Time)(p)) }
	}
	if isMarshaler(t) {
		rp, _ := plan(t, 0)
		return func(d []byte, p unsafe.Pointer) []byte { return rp.enc(d, reflect.NewAt(t, p).Elem()) }
	}
	switch t.Kind() {
	case reflect.Slice:
		ef, size := fastEnc(t.Elem()), t.Elem().Size()
		ek, scalar := scalarStep(t.Elem())
		return func(d []byte, p unsafe.Pointer) []byte {
			data, n := *(*unsafe.Pointer)(p), *(*int)(unsafe.Add(p, unsafe.Sizeof(uintptr(0))))
			if data == nil {
				return append(d, 0)
			}
			d = binary.AppendUvarint(d, uint64(n)+1)
			if scalar {
				for i := range n {
					d = runStep(d, unsafe.Add(data, uintptr(i)*size), step{kind: ek})
				}
				return d
			}
			for i := range n {
				d = ef(d, unsafe.Add(data, uintptr(i)*size))
			}
			return d
		}
	case reflect.Array:
		ef, size, n := fastEnc(t.Elem()), t.Elem().Size(), t.Len()
		return func(d []byte, p unsafe.Pointer) []byte {
			for i := range n {
				d = ef(d, unsafe.Add(p, uintptr(i)*size))
			}
			return d
		}
	case reflect.Map:
		kf, vf := fastEnc(t.Key()), fastEnc(t.Elem())
		return func(d []byte, p unsafe.Pointer) []byte {
			m := reflect.NewAt(t, p).Elem()
			if m.IsNil() {
				return append(d, 0)
			}
			d = binary.AppendUvarint(d, uint64(m.Len())+1)
			k := reflect.New(t.Key()).Elem()
			e := reflect.New(t.Elem()).Elem()
			kp, ep := k.Addr().UnsafePointer(), e.Addr().UnsafePointer()
			it := m.MapRange()
			for it.Next() {
				k.SetIterKey(it)
				e.SetIterValue(it)
				d = kf(d, kp)
				d = vf(d, ep)
			}
			return d
		}
	case reflect.Pointer:
		ef := fastEnc(t.Elem())
		return func(d []byte, p unsafe.Pointer) []byte {
			q := *(*unsafe.Pointer)(p)
			if q == nil {
				return append(d, 0)
			}
			return ef(append(d, 1), q)
		}
	case reflect.Struct:
		steps := structSteps(nil, t, 0)
		return func(d []byte, p unsafe.Pointer) []byte { return runSteps(d, p, steps) }
	}
	// Not reached for types plan accepts; keep the reflective encoding.
	rp, _ := plan(t, 0)
	return func(d []byte, p unsafe.Pointer) []byte { return rp.enc(d, reflect.NewAt(t, p).Elem()) }
}

// scalarStep returns the step kind of a type encoded inline.
func scalarStep(t reflect.Type) (uint8, bool) {
	if t == timeType || isMarshaler(t) {
		return 0, false
	}
	switch t.Kind() {
	case reflect.Bool:
		return stepBool, true
	case reflect.Int, reflect.Int64:
		if t.Size() == 8 {
			return stepInt64, true
		}
		return stepInt32, true
	case reflect.Int32:
		return stepInt32, true
	case reflect.Int16:
		return stepInt16, true
	case reflect.Int8:
		return stepInt8, true
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		if t.Size() == 8 {
			return stepUint64, true
		}
		return stepUint32, true
	case reflect.Uint32:
		return stepUint32, true
	case reflect.Uint16:
		return stepUint16, true
	case reflect.Uint8:
		return stepUint8, true
	case reflect.Float64:
		return stepFloat64, true
	case reflect.Float32:
		return stepFloat32, true
	case reflect.String:
		return stepString, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return stepBytes, true
		}
	}
	return 0, false
}

// structSteps appends the steps of struct (or short array) t at offset
// off, flattening nested structs and short arrays.
func structSteps(steps []step, t reflect.Type, off uintptr) []step {
	for i := range t.NumField() {
		f := t.Field(i)
		steps = fieldSteps(steps, f.Type, off+f.Offset)
	}
	return steps
}

func fieldSteps(steps []step, t reflect.Type, off uintptr) []step {
	if k, ok := scalarStep(t); ok {
		return append(steps, step{kind: k, off: off})
	}
	if t != timeType && !isMarshaler(t) {
		switch {
		case t.Kind() == reflect.Struct:
			return structSteps(steps, t, off)
		case t.Kind() == reflect.Array && t.Len() <= maxFlatArray:
			for i := range t.Len() {
				steps = fieldSteps(steps, t.Elem(), off+uintptr(i)*t.Elem().Size())
			}
			return steps
		}
	}
	return append(steps, step{kind: stepCall, off: off, fn: fastEnc(t)})
}

func runSteps(d []byte, p unsafe.Pointer, steps []step) []byte {
	for i := range steps {
		d = runStep(d, p, steps[i])
	}
	return d
}

func runStep(d []byte, p unsafe.Pointer, s step) []byte {
	q := unsafe.Add(p, s.off)
	switch s.kind {
	case stepInt64:
		return binary.AppendVarint(d, *(*int64)(q))
	case stepInt32:
		return binary.AppendVarint(d, int64(*(*int32)(q)))
	case stepInt16:
		return binary.AppendVarint(d, int64(*(*int16)(q)))
	case stepInt8:
		return binary.AppendVarint(d, int64(*(*int8)(q)))
	case stepUint64:
		return binary.AppendUvarint(d, *(*uint64)(q))
	case stepUint32:
		return binary.AppendUvarint(d, uint64(*(*uint32)(q)))
	case stepUint16:
		return binary.AppendUvarint(d, uint64(*(*uint16)(q)))
	case stepUint8:
		return binary.AppendUvarint(d, uint64(*(*uint8)(q)))
	case stepBool:
		if *(*bool)(q) {
			return append(d, 1)
		}
		return append(d, 0)
	case stepFloat64:
		return binary.LittleEndian.AppendUint64(d, math.Float64bits(*(*float64)(q)))
	case stepFloat32:
		return binary.LittleEndian.AppendUint64(d, math.Float64bits(float64(*(*float32)(q))))
	case stepString:
		s := *(*string)(q)
		d = binary.AppendUvarint(d, uint64(len(s)))
		return append(d, s...)
	case stepBytes:
		b := *(*[]byte)(q)
		d = binary.AppendUvarint(d, uint64(len(b)))
		return append(d, b...)
	}
	return s.fn(d, q)
}
