package schema

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// Avro's schema resolution (the specification's "Schema Resolution"
// section), as Confluent's registry applies it through Avro's own
// SchemaCompatibility: a reader schema can read data written with a writer
// schema when, recursively,
//
//   - both are the same primitive, or the writer's is promotable to the
//     reader's: int to long, float or double; long to float or double;
//     float to double; string to bytes and bytes to string;
//   - both are records, enums or fixed with the same unqualified name, or
//     the reader lists the writer's full name among its aliases; fixed
//     sizes are equal; every symbol the writer may write is a reader
//     symbol, unless the reader enum has a default;
//   - for a record, every reader field is found in the writer by name or by
//     one of the reader field's aliases and the two types resolve; a reader
//     field the writer lacks needs a default; writer fields the reader lacks
//     are skipped;
//   - arrays by their items, maps by their values;
//   - a writer union: each of its branches must be readable by the reader;
//     a reader union (with a writer that is not one): some branch reads the
//     writer's type.
//
// Logical types are not compared, as Avro's own check does not: they are
// annotations of the underlying type. Recursive schemas terminate by
// assuming a pair under check resolves.

type avroPair struct{ r, w avro.Schema }

type avroCompat struct {
	seen map[avroPair]bool
	done checked[avroPair]
	msgs []string
}

func (c *avroCompat) fail(path, format string, args ...any) {
	if path == "" {
		path = "/"
	}
	c.msgs = append(c.msgs, path+": "+fmt.Sprintf(format, args...))
}

// avroDeref returns the named schema a reference stands for.
func avroDeref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// resolves reports whether r reads w, without recording why not.
func (c *avroCompat) resolves(r, w avro.Schema) bool {
	sub := avroCompat{seen: c.seen, done: c.done}
	sub.check(r, w, "")
	return len(sub.msgs) == 0
}

func (c *avroCompat) check(r, w avro.Schema, path string) {
	r, w = avroDeref(r), avroDeref(w)
	pair := avroPair{r, w}
	if c.seen[pair] || c.done.seenBefore(pair, path, c.fail) {
		return
	}
	c.seen[pair] = true
	before := len(c.msgs)
	defer func() {
		delete(c.seen, pair)
		c.done.record(pair, path, before, len(c.msgs))
	}()

	if wu, ok := w.(*avro.UnionSchema); ok {
		for i, b := range wu.Types() {
			c.check(r, b, fmt.Sprintf("%s/%d", path, i))
		}
		return
	}
	if ru, ok := r.(*avro.UnionSchema); ok {
		for _, b := range ru.Types() {
			if c.resolves(b, w) {
				return
			}
		}
		c.fail(path, "reader union lacks the writer's type %s", typeName(w))
		return
	}
	switch rs := r.(type) {
	case *avro.NullSchema:
		if w.Type() != avro.Null {
			c.mismatch(path, r, w)
		}
	case *avro.PrimitiveSchema:
		if !promotable(w.Type(), rs.Type()) {
			c.mismatch(path, r, w)
		}
	case *avro.FixedSchema:
		ws, ok := w.(*avro.FixedSchema)
		if !ok {
			c.mismatch(path, r, w)
			return
		}
		if !sameName(rs, ws) {
			c.fail(path, "name %s does not match the writer's %s", rs.FullName(), ws.FullName())
		}
		if rs.Size() != ws.Size() {
			c.fail(path, "fixed size %d does not match the writer's %d", rs.Size(), ws.Size())
		}
	case *avro.EnumSchema:
		ws, ok := w.(*avro.EnumSchema)
		if !ok {
			c.mismatch(path, r, w)
			return
		}
		if !sameName(rs, ws) {
			c.fail(path, "name %s does not match the writer's %s", rs.FullName(), ws.FullName())
		}
		if rs.HasDefault() {
			return
		}
		var missing []string
		for _, sym := range ws.Symbols() {
			if !slices.Contains(rs.Symbols(), sym) {
				missing = append(missing, sym)
			}
		}
		if len(missing) > 0 {
			c.fail(path, "reader enum lacks the writer's symbols %s and has no default", strings.Join(missing, ", "))
		}
	case *avro.ArraySchema:
		ws, ok := w.(*avro.ArraySchema)
		if !ok {
			c.mismatch(path, r, w)
			return
		}
		c.check(rs.Items(), ws.Items(), path+"/items")
	case *avro.MapSchema:
		ws, ok := w.(*avro.MapSchema)
		if !ok {
			c.mismatch(path, r, w)
			return
		}
		c.check(rs.Values(), ws.Values(), path+"/values")
	case *avro.RecordSchema:
		ws, ok := w.(*avro.RecordSchema)
		if !ok {
			c.mismatch(path, r, w)
			return
		}
		if !sameName(rs, ws) {
			c.fail(path, "name %s does not match the writer's %s", rs.FullName(), ws.FullName())
			return
		}
		for _, rf := range rs.Fields() {
			fpath := path + "/fields/" + rf.Name()
			wf := writerField(ws, rf)
			if wf == nil {
				if !rf.HasDefault() {
					c.fail(fpath, "reader field %s has no default and the writer has no such field", rf.Name())
				}
				continue
			}
			c.check(rf.Type(), wf.Type(), fpath)
		}
	default:
		c.mismatch(path, r, w)
	}
}

func (c *avroCompat) mismatch(path string, r, w avro.Schema) {
	c.fail(path, "reader type %s cannot read the writer's %s", typeName(r), typeName(w))
}

// typeName names a schema in messages: a named type by its full name,
// otherwise by its type.
func typeName(s avro.Schema) string {
	if n, ok := avroDeref(s).(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	return string(s.Type())
}

// promotable reports whether a writer's primitive type w resolves to the
// reader's r.
func promotable(w, r avro.Type) bool {
	if w == r {
		return true
	}
	switch r {
	case avro.Long:
		return w == avro.Int
	case avro.Float:
		return w == avro.Int || w == avro.Long
	case avro.Double:
		return w == avro.Int || w == avro.Long || w == avro.Float
	case avro.String:
		return w == avro.Bytes
	case avro.Bytes:
		return w == avro.String
	}
	return false
}

// sameName applies Avro's name matching: the unqualified names are equal,
// or the reader's aliases hold the writer's full name.
func sameName(r, w avro.NamedSchema) bool {
	return r.Name() == w.Name() || slices.Contains(r.Aliases(), w.FullName())
}

// writerField finds the writer field a reader field reads: the one of the
// same name, else one named by the reader field's aliases.
func writerField(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, wf := range w.Fields() {
		if wf.Name() == rf.Name() {
			return wf
		}
	}
	for _, wf := range w.Fields() {
		if slices.Contains(rf.Aliases(), wf.Name()) {
			return wf
		}
	}
	return nil
}
