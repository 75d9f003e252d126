package schema

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protobuf compatibility as Confluent's registry checks it: the registry
// lists the differences between the writer's schema (the original) and
// the reader's (the update) and accepts the pair when every difference is
// one it documents as compatible. Checked here:
//
//   - the package changed: incompatible;
//   - a message removed (top-level or nested): incompatible; a message
//     added or moved: compatible; enums added, removed or changed:
//     compatible (an unknown enum number is preserved on the wire);
//   - fields matched by number: added or removed, compatible; a required
//     (proto2) field added or removed, incompatible; renamed, compatible;
//   - a field's kind (scalar, message, map) changed: incompatible; a
//     scalar changed outside its wire-compatible group (int32, int64,
//     uint32, uint64, bool and enums; sint32, sint64; fixed32, sfixed32;
//     fixed64, sfixed64; string, bytes; float; double): incompatible; a
//     message field whose type has another name (package aside), or whose
//     message changed incompatibly: incompatible; map keys and values
//     compared the same way;
//   - singular and repeated swapped: incompatible for numeric fields
//     (packed encodings differ), compatible for string, bytes and message
//     fields, as Protobuf's own guide says;
//   - oneofs: added or removed, compatible; a field added to a oneof,
//     compatible; a field removed from a oneof (and not kept elsewhere),
//     incompatible; several existing fields moved into one oneof, or one
//     moved into a oneof that already had fields, incompatible.
//
// Proto3 optional fields live in synthetic oneofs in descriptors; they
// are treated as plain fields, as .proto source reads.

type protoDiff struct {
	seen map[protoreflect.FullName]bool
	done checked[[2]protoreflect.FullName] // (writer, reader) messages
	msgs []string
}

func (d *protoDiff) fail(path, format string, args ...any) {
	d.msgs = append(d.msgs, path+": "+fmt.Sprintf(format, args...))
}

// file compares the writer's file o with the reader's u.
func (d *protoDiff) file(o, u protoreflect.FileDescriptor) {
	if o.Package() != u.Package() {
		d.fail("#", "package changed from %q to %q", o.Package(), u.Package())
	}
	d.messages("#", o.Messages(), u.Messages())
}

// messages compares the messages declared in one scope, matched by name;
// map entry messages are compared through their map fields.
func (d *protoDiff) messages(path string, o, u protoreflect.MessageDescriptors) {
	for i := range o.Len() {
		om := o.Get(i)
		if om.IsMapEntry() {
			continue
		}
		um := u.ByName(om.Name())
		if um == nil {
			d.fail(path+"/"+string(om.Name()), "message removed")
			continue
		}
		d.message(path+"/"+string(om.Name()), om, um)
	}
}

// fieldSet is a message's fields by number: the plain ones (proto3
// optional ones included) and those of real oneofs, with their oneof.
type fieldSet struct {
	plain   map[protoreflect.FieldNumber]protoreflect.FieldDescriptor
	inOneof map[protoreflect.FieldNumber]protoreflect.OneofDescriptor
	all     map[protoreflect.FieldNumber]protoreflect.FieldDescriptor
}

func fieldsOf(m protoreflect.MessageDescriptor) fieldSet {
	fs := fieldSet{plain: map[protoreflect.FieldNumber]protoreflect.FieldDescriptor{}, inOneof: map[protoreflect.FieldNumber]protoreflect.OneofDescriptor{}, all: map[protoreflect.FieldNumber]protoreflect.FieldDescriptor{}}
	for i := range m.Fields().Len() {
		f := m.Fields().Get(i)
		fs.all[f.Number()] = f
		if od := f.ContainingOneof(); od != nil && !od.IsSynthetic() {
			fs.inOneof[f.Number()] = od
		} else {
			fs.plain[f.Number()] = f
		}
	}
	return fs
}

func (d *protoDiff) message(path string, o, u protoreflect.MessageDescriptor) {
	pair := [2]protoreflect.FullName{o.FullName(), u.FullName()}
	if d.seen[o.FullName()] || d.done.seenBefore(pair, path, d.fail) {
		return
	}
	d.seen[o.FullName()] = true
	before := len(d.msgs)
	defer func() {
		delete(d.seen, o.FullName())
		d.done.record(pair, path, before, len(d.msgs))
	}()

	of, uf := fieldsOf(o), fieldsOf(u)
	movedIntoOneof := map[protoreflect.FieldNumber]bool{}
	for i := range u.Oneofs().Len() {
		uo := u.Oneofs().Get(i)
		if uo.IsSynthetic() {
			continue
		}
		moved, existing := 0, 0
		for j := range uo.Fields().Len() {
			n := uo.Fields().Get(j).Number()
			if _, ok := of.plain[n]; ok {
				moved++
				movedIntoOneof[n] = true
			} else if _, ok := of.inOneof[n]; ok {
				existing++
			}
		}
		opath := path + "/" + string(uo.Name())
		if moved > 1 {
			d.fail(opath, "%d existing fields moved into one oneof", moved)
		} else if moved == 1 && existing > 0 {
			d.fail(opath, "a field moved into a oneof that already had fields")
		}
	}
	for i := range o.Oneofs().Len() {
		oo := o.Oneofs().Get(i)
		if oo.IsSynthetic() {
			continue
		}
		uo := u.Oneofs().ByName(oo.Name())
		if uo == nil || uo.IsSynthetic() {
			continue // a oneof removed is compatible; its fields are compared by number below
		}
		for j := range oo.Fields().Len() {
			ofd := oo.Fields().Get(j)
			ufd := uo.Fields().ByNumber(ofd.Number())
			fpath := fmt.Sprintf("%s/%s/%d", path, oo.Name(), ofd.Number())
			if ufd == nil {
				if _, elsewhere := uf.all[ofd.Number()]; !elsewhere {
					d.fail(fpath, "field removed from oneof %s", oo.Name())
				}
				continue
			}
			d.field(fpath, ofd, ufd)
		}
	}
	for n, ofd := range of.plain {
		fpath := fmt.Sprintf("%s/%d", path, n)
		ufd, ok := uf.plain[n]
		if !ok {
			if movedIntoOneof[n] {
				d.field(fpath, ofd, uf.all[n])
			} else if ofd.Cardinality() == protoreflect.Required {
				d.fail(fpath, "required field %s removed", ofd.Name())
			} else if u2, ok := uf.all[n]; ok {
				d.field(fpath, ofd, u2)
			}
			continue
		}
		d.field(fpath, ofd, ufd)
	}
	for n, ufd := range uf.plain {
		if _, ok := of.all[n]; !ok && ufd.Cardinality() == protoreflect.Required {
			d.fail(fmt.Sprintf("%s/%d", path, n), "required field %s added", ufd.Name())
		}
	}
	// Fields that left a oneof for plain ground or another oneof.
	for n, oo := range of.inOneof {
		ufd, ok := uf.all[n]
		if !ok {
			continue
		}
		if uo := ufd.ContainingOneof(); uo != nil && !uo.IsSynthetic() && uo.Name() == oo.Name() {
			continue // compared with its oneof above
		}
		d.field(fmt.Sprintf("%s/%d", path, n), of.all[n], ufd)
	}
	d.messages(path, o.Messages(), u.Messages())
}

type protoKind int

const (
	kindScalar protoKind = iota
	kindMessage
	kindMap
)

func kindOf(f protoreflect.FieldDescriptor) protoKind {
	switch {
	case f.IsMap():
		return kindMap
	case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
		return kindMessage
	}
	return kindScalar
}

// scalarGroup is a scalar's wire-compatible group: values of one group
// can be read as another type of the same group.
func scalarGroup(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.BoolKind, protoreflect.EnumKind:
		return "varint"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "zigzag"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "length-delimited"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	}
	return k.String()
}

func (d *protoDiff) field(path string, o, u protoreflect.FieldDescriptor) {
	if o.IsList() != u.IsList() && !o.IsMap() && !u.IsMap() {
		switch o.Kind() {
		case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		default:
			d.fail(path, "numeric field %s changed between singular and repeated", o.Name())
		}
	}
	d.types(path, o, u)
}

// types compares the types of two fields (map entries' keys and values
// included).
func (d *protoDiff) types(path string, o, u protoreflect.FieldDescriptor) {
	ok, uk := kindOf(o), kindOf(u)
	if ok != uk {
		d.fail(path, "field %s changed kind", o.Name())
		return
	}
	switch ok {
	case kindScalar:
		if scalarGroup(o.Kind()) != scalarGroup(u.Kind()) {
			d.fail(path, "field %s changed type from %s to %s", o.Name(), o.Kind(), u.Kind())
		}
	case kindMap:
		d.types(path+"/key", o.MapKey(), u.MapKey())
		d.types(path+"/value", o.MapValue(), u.MapValue())
	case kindMessage:
		om, um := o.Message(), u.Message()
		if localName(om) != localName(um) {
			d.fail(path, "field %s changed type from %s to %s", o.Name(), om.FullName(), um.FullName())
			return
		}
		before := len(d.msgs)
		d.message(path, om, um)
		if len(d.msgs) > before {
			d.fail(path, "field %s's message %s changed incompatibly", o.Name(), localName(om))
		}
	}
}

// localName is a message's name within its package.
func localName(m protoreflect.MessageDescriptor) string {
	pkg := string(m.ParentFile().Package())
	name := string(m.FullName())
	if pkg != "" {
		name = strings.TrimPrefix(name, pkg+".")
	}
	return name
}
