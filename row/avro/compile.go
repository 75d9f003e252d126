package avro

import (
	"errors"
	"fmt"
	"strings"

	havro "github.com/hamba/avro/v2"

	"github.com/sluicehq/sluice/row"
)

// ErrResolve is wrapped by Compile's errors: the writer's schema cannot be
// read with the reader's under Avro's resolution rules.
var ErrResolve = errors.New("avro schemas do not resolve")

// wire is how a value is laid out in the writer's bytes.
type wire uint8

// primitiveWire is the wire kind of a primitive schema (null, boolean,
// int, long, float, double, bytes, string); the decoder's and the
// encoder's compilers share it.
func primitiveWire(s havro.Schema) (wire, bool) {
	switch s.Type() {
	case havro.Null:
		return wNull, true
	case havro.Boolean:
		return wBool, true
	case havro.Int:
		return wInt, true
	case havro.Long:
		return wLong, true
	case havro.Float:
		return wFloat, true
	case havro.Double:
		return wDouble, true
	case havro.Bytes:
		return wBytes, true
	case havro.String:
		return wString, true
	}
	return 0, false
}

const (
	wNull wire = iota
	wBool
	wInt
	wLong
	wFloat
	wDouble
	wBytes
	wString
	wFixed
	wEnum
	wArray
	wMap
	wUnion
	wRecord
	wFail // a writer union branch the reader cannot take
)

// out is the row value a decoded value becomes, as the reader's type
// says.
type out uint8

const (
	oNull out = iota
	oBool
	oInt
	oFloat
	oString
	oTsMillis
	oTsMicros
	oTsNanos
	oDate
	oDecimal
	oDecimalString
	oUUID // a fixed of 16 bytes, read as the UUID's canonical text
	oEnum
	oJSON
)

// node reads one writer value and turns it into the reader's value. Nodes
// of recursive schemas form cycles; they are immutable once compiled.
type node struct {
	w        wire
	o        out
	size     int     // fixed: byte length
	scale    int     // decimal
	items    *node   // array items, map values
	branches []*node // union: one per writer branch
	fields   []field // record: the writer's fields in order
	// defaults are `"name":value` JSON members of reader fields the
	// writer lacks (nested records are written as JSON).
	defaults []byte
	symbols  []string // enum: writer index -> reader symbol ("" if none)
	fail     string   // wFail: why
	min      int      // fewest bytes a value takes (0 if unknown)
}

type field struct {
	n    *node
	key  string // `"name":` (the reader's name), for JSON
	skip bool   // not in the reader's schema
}

// Options tune a Program.
type Options struct {
	// KeepRest keeps the top-level fields that are not row fields as JSON
	// members in Row.Rest.
	KeepRest bool
	// DecimalAsString decodes decimals to exact decimal strings instead of
	// floats.
	DecimalAsString bool
	// RawRest keeps the reader's top-level fields that are not row fields
	// in Row.Rest in the reader schema's binary encoding, concatenated in
	// the reader's field order: a field whose writer type is the reader's
	// is copied without being decoded, others are resolved and
	// re-encoded, and fields the writer lacks take their defaults. An
	// encoder from NewRestEncoder with the reader schema writes them back
	// unchanged; RestJSON turns them into JSON members. It overrides
	// KeepRest.
	RawRest bool
}

// Program decodes records written with one writer schema into rows of a
// row schema, resolved against a reader schema. It is immutable and safe
// for concurrent use by many Decoders.
type Program struct {
	fields   []topField
	defaults []posValue
	// restDefaults are JSON members of reader fields the writer lacks that
	// are not row fields (with KeepRest).
	restDefaults []byte
	width        int
	keepRest     bool
	kinds        []row.Kind // declared kinds of the row fields
	coerce       bool       // some declared kind is not KindNull
	// RawRest: rawN rest fields; rawDefaults are the binary defaults of
	// those the writer lacks; rawOrdered says the writer's rest fields
	// come in the reader's order and none is missing, so that they are
	// appended as they come; conv encodes the values of rest fields
	// whose writer type differs from the reader's.
	rawN        int
	rawDefaults []rawDefault
	rawOrdered  bool
	conv        *Encoder
}

type rawDefault struct {
	idx int
	bin []byte
}

type topField struct {
	n   *node
	pos int    // row position, posRest, posRaw or posSkip
	key []byte // `"name":` for Rest
	// posRaw: the field's index among the rest fields, and the reader
	// type's encoder when the writer's type differs (nil: copied).
	raw  int
	conv *enode
}

// Positions of top-level fields that are not row fields.
const (
	posRest = -1 // kept as JSON in Row.Rest
	posSkip = -2 // skipped
	posRaw  = -3 // kept as binary in Row.Rest (RawRest)
)

type posValue struct {
	pos int
	v   row.Value
}

type compiler struct {
	memo map[[2]havro.Schema]*node
	opts Options
}

// Compile returns the program that reads records written with writer as
// reader (nil: the writer itself) into rows of target: each target field
// takes the reader field of its name, null when the reader has none.
func Compile(writer, reader *Schema, target *row.Schema, opts Options) (*Program, error) {
	if reader == nil {
		reader = writer
	}
	c := &compiler{memo: map[[2]havro.Schema]*node{}, opts: opts}
	p := &Program{width: target.Len(), keepRest: opts.KeepRest, kinds: make([]row.Kind, target.Len())}
	for i := range target.Len() {
		p.kinds[i] = target.Field(i).Kind
		p.coerce = p.coerce || p.kinds[i] != row.KindNull
	}
	wfields, rfields := writer.rec.Fields(), reader.rec.Fields()
	match := matchFields(wfields, rfields)
	matched := make([]bool, len(rfields))
	if opts.RawRest {
		opts.KeepRest = false
		p.keepRest = false
		p.conv = &Encoder{schema: reader}
	}
	// rawIdx is each reader field's index among the rest fields (-1: a
	// row field), with RawRest.
	rawIdx := make([]int, len(rfields))
	for ri, rf := range rfields {
		rawIdx[ri] = -1
		if _, ok := target.Index(rf.Name()); !ok && opts.RawRest {
			rawIdx[ri] = p.rawN
			p.rawN++
		}
	}
	p.rawOrdered = true
	seen := 0
	emem := map[havro.Schema]*enode{}
	for wi, wf := range wfields {
		ri := match[wi]
		if ri < 0 {
			// Not in the reader's schema: skipped.
			n, err := c.resolve(wf.Type(), wf.Type())
			if err != nil {
				return nil, err
			}
			p.fields = append(p.fields, topField{n: n, pos: posSkip})
			continue
		}
		matched[ri] = true
		rf := rfields[ri]
		n, err := c.resolve(wf.Type(), rf.Type())
		if err != nil {
			return nil, fmt.Errorf("%w: field %s: %w", ErrResolve, rf.Name(), err)
		}
		tf := topField{n: n, pos: posSkip}
		if pos, ok := target.Index(rf.Name()); ok {
			tf.pos = pos
		} else if opts.RawRest {
			tf.pos, tf.raw = posRaw, rawIdx[ri]
			if tf.raw != seen {
				p.rawOrdered = false
			}
			seen++
			if wf.Type().Fingerprint() != rf.Type().Fingerprint() {
				if tf.conv, err = compileEnc(rf.Type(), emem); err != nil {
					return nil, fmt.Errorf("%w: field %s: %w", ErrResolve, rf.Name(), err)
				}
			}
		} else if opts.KeepRest {
			tf.pos = posRest
			tf.key = append(row.AppendQuoted(nil, rf.Name()), ':')
		}
		p.fields = append(p.fields, tf)
	}
	var d Decoder
	for ri, rf := range rfields {
		if matched[ri] {
			continue
		}
		if !rf.HasDefault() {
			return nil, fmt.Errorf("%w: field %s is not in the writer's schema and has no default", ErrResolve, rf.Name())
		}
		bin, err := appendDefault(nil, rf.Type(), rf.Default())
		if err != nil {
			return nil, fmt.Errorf("%w: field %s: default: %w", ErrResolve, rf.Name(), err)
		}
		n, err := c.resolve(rf.Type(), rf.Type())
		if err != nil {
			return nil, err
		}
		if pos, ok := target.Index(rf.Name()); ok {
			v, err := d.decodeOne(n, bin)
			if err != nil {
				return nil, fmt.Errorf("%w: field %s: default: %w", ErrResolve, rf.Name(), err)
			}
			if v.Kind() == row.KindString || v.Kind() == row.KindJSON {
				v = cloneValue(v)
			}
			p.defaults = append(p.defaults, posValue{pos: pos, v: v})
		} else if opts.RawRest {
			p.rawDefaults = append(p.rawDefaults, rawDefault{idx: rawIdx[ri], bin: bin})
			p.rawOrdered = false
		} else if opts.KeepRest {
			js, err := d.jsonOne(n, bin)
			if err != nil {
				return nil, fmt.Errorf("%w: field %s: default: %w", ErrResolve, rf.Name(), err)
			}
			if len(p.restDefaults) > 0 {
				p.restDefaults = append(p.restDefaults, ',')
			}
			p.restDefaults = append(row.AppendQuoted(p.restDefaults, rf.Name()), ':')
			p.restDefaults = append(p.restDefaults, js...)
		}
	}
	c.setMinSizes()
	return p, nil
}

func cloneValue(v row.Value) row.Value {
	s := strings.Clone(v.AsString())
	if v.Kind() == row.KindJSON {
		return row.JSON(s)
	}
	return row.String(s)
}

// matchFields returns, for each writer field, the index of the reader
// field that reads it (-1: none, the field is skipped). A reader field
// reads the writer field of its name, else the first writer field named
// by one of its aliases (Avro spec, "Schema Resolution" and "Aliases"),
// so that a writer field of the reader field's own name is never lost to
// another one its aliases name.
func matchFields(wfields, rfields []*havro.Field) []int {
	out := make([]int, len(wfields))
	byName := make(map[string]int, len(wfields))
	for wi, wf := range wfields {
		out[wi] = -1
		byName[wf.Name()] = wi
	}
	for ri, rf := range rfields {
		if wi, ok := byName[rf.Name()]; ok {
			out[wi] = ri
		}
	}
	for ri, rf := range rfields {
		if _, ok := byName[rf.Name()]; ok {
			continue
		}
		for _, a := range rf.Aliases() {
			if wi, ok := byName[a]; ok && out[wi] < 0 {
				out[wi] = ri
				break
			}
		}
	}
	return out
}

// resolve compiles the node reading w's values as r's.
func (c *compiler) resolve(w, r havro.Schema) (*node, error) {
	w, r = deref(w), deref(r)
	key := [2]havro.Schema{w, r}
	if n, ok := c.memo[key]; ok {
		return n, nil
	}
	if wu, ok := w.(*havro.UnionSchema); ok {
		n := &node{w: wUnion}
		c.memo[key] = n
		for _, wb := range wu.Types() {
			b, err := c.resolve(wb, r)
			if err != nil {
				b = &node{w: wFail, fail: err.Error()}
			}
			n.branches = append(n.branches, b)
		}
		return n, nil
	}
	if ru, ok := r.(*havro.UnionSchema); ok {
		// Not memoized under its own key: the branch's node is.
		rb := pickBranch(w, ru)
		if rb == nil {
			return nil, fmt.Errorf("writer type %s is not in the reader's union %s", typeName(w), ru)
		}
		return c.resolve(w, rb)
	}
	n := &node{}
	c.memo[key] = n
	if !promotes(w, r) {
		delete(c.memo, key)
		return nil, fmt.Errorf("writer type %s cannot be read as %s", typeName(w), typeName(r))
	}
	n.o = c.outOf(r)
	if pw, ok := primitiveWire(w); ok {
		n.w = pw
	}
	switch w.Type() {
	case havro.Fixed:
		n.w = wFixed
		n.size = w.(*havro.FixedSchema).Size()
	case havro.Enum:
		n.w = wEnum
		we, re := w.(*havro.EnumSchema), r.(*havro.EnumSchema)
		for _, s := range we.Symbols() {
			switch {
			case contains(re.Symbols(), s):
				n.symbols = append(n.symbols, s)
			case re.HasDefault():
				n.symbols = append(n.symbols, re.Default())
			default:
				n.symbols = append(n.symbols, "")
			}
		}
	case havro.Array:
		n.w = wArray
		it, err := c.resolve(w.(*havro.ArraySchema).Items(), r.(*havro.ArraySchema).Items())
		if err != nil {
			delete(c.memo, key)
			return nil, fmt.Errorf("array items: %w", err)
		}
		n.items = it
	case havro.Map:
		n.w = wMap
		it, err := c.resolve(w.(*havro.MapSchema).Values(), r.(*havro.MapSchema).Values())
		if err != nil {
			delete(c.memo, key)
			return nil, fmt.Errorf("map values: %w", err)
		}
		n.items = it
	case havro.Record:
		n.w = wRecord
		if err := c.record(n, w.(*havro.RecordSchema), r.(*havro.RecordSchema)); err != nil {
			delete(c.memo, key)
			return nil, err
		}
	}
	if n.o == oDecimal || n.o == oDecimalString {
		// The bytes are scaled as the writer wrote them.
		if d, ok := logicalSchema(w).(*havro.DecimalLogicalSchema); ok {
			n.scale = d.Scale()
		} else if d, ok := logicalSchema(r).(*havro.DecimalLogicalSchema); ok {
			n.scale = d.Scale()
		}
	}
	return n, nil
}

func (c *compiler) record(n *node, w, r *havro.RecordSchema) error {
	rfields := r.Fields()
	matched := make([]bool, len(rfields))
	match := matchFields(w.Fields(), rfields)
	for wi, wf := range w.Fields() {
		ri := match[wi]
		if ri < 0 {
			fn, err := c.resolve(wf.Type(), wf.Type())
			if err != nil {
				return err
			}
			n.fields = append(n.fields, field{n: fn, skip: true})
			continue
		}
		matched[ri] = true
		fn, err := c.resolve(wf.Type(), rfields[ri].Type())
		if err != nil {
			return fmt.Errorf("%s.%s: %w", r.Name(), rfields[ri].Name(), err)
		}
		n.fields = append(n.fields, field{n: fn, key: string(append(row.AppendQuoted(nil, rfields[ri].Name()), ':'))})
	}
	var d Decoder
	for ri, rf := range rfields {
		if matched[ri] {
			continue
		}
		if !rf.HasDefault() {
			return fmt.Errorf("%s.%s is not in the writer's schema and has no default", r.Name(), rf.Name())
		}
		bin, err := appendDefault(nil, rf.Type(), rf.Default())
		if err != nil {
			return fmt.Errorf("%s.%s: default: %w", r.Name(), rf.Name(), err)
		}
		dn, err := c.resolve(rf.Type(), rf.Type())
		if err != nil {
			return err
		}
		// The default's node may be part of a cycle still being built;
		// defaults of recursive types are rendered when first needed.
		js, err := d.jsonOne(dn, bin)
		if err != nil {
			return fmt.Errorf("%s.%s: default: %w", r.Name(), rf.Name(), err)
		}
		if len(n.defaults) > 0 {
			n.defaults = append(n.defaults, ',')
		}
		n.defaults = append(row.AppendQuoted(n.defaults, rf.Name()), ':')
		n.defaults = append(n.defaults, js...)
	}
	return nil
}

func (c *compiler) outOf(r havro.Schema) out {
	switch r.Type() {
	case havro.Null:
		return oNull
	case havro.Boolean:
		return oBool
	case havro.Int, havro.Long:
		switch logicalOf(r) {
		case havro.TimestampMillis, havro.LocalTimestampMillis:
			return oTsMillis
		case havro.TimestampMicros, havro.LocalTimestampMicros:
			return oTsMicros
		case timestampNanos, localTimestampNanos:
			return oTsNanos
		case havro.Date:
			return oDate
		}
		return oInt
	case havro.Float, havro.Double:
		return oFloat
	case havro.Bytes, havro.Fixed:
		if logicalOf(r) == havro.UUID {
			return oUUID
		}
		if logicalOf(r) == havro.Decimal {
			if c.opts.DecimalAsString {
				return oDecimalString
			}
			return oDecimal
		}
		return oString
	case havro.String:
		return oString
	case havro.Enum:
		return oEnum
	}
	return oJSON
}

func logicalSchema(s havro.Schema) havro.LogicalSchema {
	if l, ok := s.(havro.LogicalTypeSchema); ok {
		return l.Logical()
	}
	return nil
}

// promotes reports whether a writer value of type w can be read as r
// (r not a union).
func promotes(w, r havro.Schema) bool {
	wt, rt := w.Type(), r.Type()
	switch wt {
	case havro.Int:
		return rt == havro.Int || rt == havro.Long || rt == havro.Float || rt == havro.Double
	case havro.Long:
		return rt == havro.Long || rt == havro.Float || rt == havro.Double
	case havro.Float:
		return rt == havro.Float || rt == havro.Double
	case havro.String, havro.Bytes:
		return rt == havro.String || rt == havro.Bytes
	case havro.Fixed:
		return rt == havro.Fixed && w.(*havro.FixedSchema).Size() == r.(*havro.FixedSchema).Size()
	case havro.Enum, havro.Record:
		// Names are not compared: registries already check what they
		// accept, and a renamed record still reads field by field.
		return rt == wt
	}
	return wt == rt
}

// pickBranch returns the reader union branch a writer value of type w is
// read as: the first of the same type (and name, for named types), else
// the first of the same type, else the first it promotes to.
func pickBranch(w havro.Schema, ru *havro.UnionSchema) havro.Schema {
	var sameType, promoted havro.Schema
	for _, b := range ru.Types() {
		b = deref(b)
		if b.Type() == w.Type() {
			wn, wok := w.(havro.NamedSchema)
			bn, bok := b.(havro.NamedSchema)
			if !wok || !bok || wn.Name() == bn.Name() {
				if w.Type() != havro.Fixed || promotes(w, b) {
					return b
				}
			}
			if sameType == nil && promotes(w, b) {
				sameType = b
			}
			continue
		}
		if promoted == nil && promotes(w, b) {
			promoted = b
		}
	}
	if sameType != nil {
		return sameType
	}
	return promoted
}

func typeName(s havro.Schema) string {
	if n, ok := s.(havro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	if l := logicalOf(s); l != "" {
		return string(s.Type()) + " (" + string(l) + ")"
	}
	return string(s.Type())
}

// setMinSizes sets the min of every node compiled.
func (c *compiler) setMinSizes() {
	sizes := map[*node]int{}
	for _, n := range c.memo {
		n.min = minSize(n, map[*node]bool{}, sizes)
	}
}

// maxMin caps minimum sizes: a lower bound stays one when lowered, and
// records of records (2^k values for k levels) must not overflow.
const maxMin = 1 << 40

// minSize returns the fewest bytes a value of n takes (at most maxMin), 0
// where a cycle makes that unknown. sizes holds the nodes done: a node
// reached along many paths is sized once.
func minSize(n *node, visiting map[*node]bool, sizes map[*node]int) int {
	if s, ok := sizes[n]; ok {
		return s
	}
	if visiting[n] {
		return 0
	}
	visiting[n] = true
	s := min(nodeMin(n, visiting, sizes), maxMin)
	delete(visiting, n)
	sizes[n] = s
	return s
}

func nodeMin(n *node, visiting map[*node]bool, sizes map[*node]int) int {
	switch n.w {
	case wNull, wFail:
		return 0
	case wFloat:
		return 4
	case wDouble:
		return 8
	case wFixed:
		return n.size
	case wRecord:
		s := 0
		for _, f := range n.fields {
			s = min(s+minSize(f.n, visiting, sizes), maxMin)
		}
		return s
	case wUnion:
		m := -1
		for _, b := range n.branches {
			if s := minSize(b, visiting, sizes); m < 0 || s < m {
				m = s
			}
		}
		return 1 + max(m, 0)
	}
	return 1
}
