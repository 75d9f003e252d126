package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluicehq/sluice/row"
)

// Protobuf records (docs/pipeline-spec.md, "format: protobuf"). A source
// reads them with the message of its .proto file (the reader's schema:
// fields by number, as every protobuf reader does, so records of older
// and newer compatible versions read alike) or, without a file, with the
// writer's schema that each record's Confluent header names, fetched
// from the registry and compiled once per id. Either way the fields the
// steps use are resolved to row positions once per schema, and the
// decoder (row.ProtoDecoder) walks the wire bytes into those positions.

// protoInput is how an input's protobuf records are read. It is shared
// by the input's splits.
type protoInput struct {
	md      protoreflect.MessageDescriptor // the reader's message; nil: each record's writer's
	framing bool                           // records carry the Confluent header
	reg     *schemaRegistry                // nil: no registry
	want    string                         // with md nil: the message records must be, or ""
}

// protoSplit decodes one split's protobuf records. Not safe for
// concurrent use.
type protoSplit struct {
	in     *protoInput
	schema *row.Schema
	keep   bool
	fixed  *row.ProtoDecoder
	byID   map[uint32]*protoByID
	known  map[uint32]bool // ids the registry confirmed (with md set)
}

// protoByID holds the decoders of one writer schema id: the first
// message of the file (index [0], by far the most common) and the others
// by their encoded message indexes.
type protoByID struct {
	first *row.ProtoDecoder
	other map[string]*row.ProtoDecoder
}

func newProtoSplit(in *inputPlan) *protoSplit {
	ps := &protoSplit{in: in.pb, schema: in.schema(), keep: in.keepRest}
	if in.pb.md != nil {
		// Fields no step names stay as they were on the wire: a protobuf
		// sink copies them, other sinks convert them (restJSON).
		rest := row.ProtoRestDrop
		if ps.keep {
			rest = row.ProtoRestWire
		}
		ps.fixed = row.NewProtoDecoder(in.pb.md, ps.schema, rest)
	}
	return ps
}

var errFraming = errors.New("not in the Confluent wire format")

// confluentHeader splits a framed record into its schema id, the bytes of
// its message indexes and its payload.
func confluentHeader(b []byte) (id uint32, idx, payload []byte, err error) {
	if len(b) < 6 {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes, too short for the header (magic byte, 4-byte schema id, message indexes)", errFraming, len(b))
	}
	if b[0] != 0 {
		return 0, nil, nil, fmt.Errorf("%w: magic byte %d, want 0", errFraming, b[0])
	}
	id = binary.BigEndian.Uint32(b[1:5])
	rest := b[5:]
	n, k := binary.Varint(rest)
	if k <= 0 || n < 0 || n > 64 {
		return 0, nil, nil, fmt.Errorf("%w: bad message index count", errFraming)
	}
	off := k
	for i := int64(0); i < n; i++ {
		v, k := binary.Varint(rest[off:])
		if k <= 0 || v < 0 || v > 1<<20 {
			return 0, nil, nil, fmt.Errorf("%w: bad message index", errFraming)
		}
		off += k
	}
	return id, rest[:off], rest[off:], nil
}

// messageIndexes decodes the message indexes of a header ([0] when the
// count is 0).
func messageIndexes(idx []byte) []int {
	n, k := binary.Varint(idx)
	if n == 0 {
		return []int{0}
	}
	out := make([]int, 0, n)
	for off := k; off < len(idx); {
		v, k := binary.Varint(idx[off:])
		out = append(out, int(v))
		off += k
	}
	return out
}

// messageAt finds the message of fd at the index path idx.
func messageAt(fd protoreflect.FileDescriptor, idx []int) (protoreflect.MessageDescriptor, error) {
	msgs := fd.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range idx {
		if i < 0 || i >= msgs.Len() {
			return nil, fmt.Errorf("message indexes %v: no such message in the schema", idx)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	if md == nil {
		return nil, errors.New("empty message indexes")
	}
	return md, nil
}

// indexesOf is the message index path of md in its file.
func indexesOf(md protoreflect.MessageDescriptor) []int {
	var idx []int
	for d := protoreflect.Descriptor(md); ; {
		m, ok := d.(protoreflect.MessageDescriptor)
		if !ok {
			break
		}
		idx = append(idx, m.Index())
		d = m.Parent()
	}
	for i, j := 0, len(idx)-1; i < j; i, j = i+1, j-1 {
		idx[i], idx[j] = idx[j], idx[i]
	}
	return idx
}

// appendConfluentHeader appends the header of schema id and message
// indexes idx.
func appendConfluentHeader(dst []byte, id int, idx []int) []byte {
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	if len(idx) == 1 && idx[0] == 0 {
		return append(dst, 0)
	}
	dst = binary.AppendVarint(dst, int64(len(idx)))
	for _, i := range idx {
		dst = binary.AppendVarint(dst, int64(i))
	}
	return dst
}

func (ps *protoSplit) decode(b []byte) (row.Row, error) {
	in := ps.in
	if !in.framing {
		return ps.fixed.Decode(b)
	}
	id, idx, payload, err := confluentHeader(b)
	if err != nil {
		return row.Row{}, err
	}
	if ps.fixed != nil {
		if in.reg != nil && !ps.known[id] {
			if _, err := in.reg.protoFile(context.Background(), int(id)); err != nil {
				return row.Row{}, err
			}
			if ps.known == nil {
				ps.known = map[uint32]bool{}
			}
			ps.known[id] = true
		}
		return ps.fixed.Decode(payload)
	}
	e := ps.byID[id]
	var d *row.ProtoDecoder
	first := len(idx) == 1 && idx[0] == 0
	if e != nil {
		if first {
			d = e.first
		} else {
			d = e.other[string(idx)]
		}
	}
	if d == nil {
		if d, err = ps.newDecoder(id, idx); err != nil {
			return row.Row{}, err
		}
		if e == nil {
			if ps.byID == nil {
				ps.byID = map[uint32]*protoByID{}
			}
			e = &protoByID{}
			ps.byID[id] = e
		}
		if first {
			e.first = d
		} else {
			if e.other == nil {
				e.other = map[string]*row.ProtoDecoder{}
			}
			e.other[string(idx)] = d
		}
	}
	return d.Decode(payload)
}

// newDecoder makes the decoder of writer schema id's message at idx.
func (ps *protoSplit) newDecoder(id uint32, idx []byte) (*row.ProtoDecoder, error) {
	fd, err := ps.in.reg.protoFile(context.Background(), int(id))
	if err != nil {
		return nil, err
	}
	md, err := messageAt(fd, messageIndexes(idx))
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d: %w", errUnknownSchema, id, err)
	}
	if w := ps.in.want; w != "" && string(md.FullName()) != w {
		return nil, fmt.Errorf("%w: schema id %d is message %s; this source reads %s", errUnknownSchema, id, md.FullName(), w)
	}
	rest := row.ProtoRestDrop
	if ps.keep {
		rest = row.ProtoRestJSON // each writer's own fields, as JSON
	}
	return row.NewProtoDecoder(md, ps.schema, rest), nil
}

// loadProto compiles the .proto file of a schema block and returns its
// message and the file's text.
func loadProto(sc *FormatSchemaSpec) (protoreflect.MessageDescriptor, string, error) {
	text, err := os.ReadFile(sc.File)
	if err != nil {
		return nil, "", fmt.Errorf("schema file: %w", err)
	}
	dir, base := filepath.Split(sc.File)
	if dir == "" {
		dir = "."
	}
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: append([]string{dir}, sc.ImportPaths...)}),
		MaxParallelism: 1,
	}
	files, err := c.Compile(context.Background(), base)
	if err != nil {
		return nil, "", fmt.Errorf("schema file %s: %w", sc.File, err)
	}
	fd := files[0]
	if sc.Message == "" {
		if fd.Messages().Len() != 1 {
			return nil, "", fmt.Errorf("schema file %s has %d messages: name the records' one with message: (%s)", sc.File, fd.Messages().Len(), messageNames(fd))
		}
		return fd.Messages().Get(0), string(text), nil
	}
	d := fd.FindDescriptorByName(protoreflect.FullName(sc.Message))
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, "", fmt.Errorf("schema file %s has no message %s (messages: %s; give the full name with the package)", sc.File, sc.Message, messageNames(fd))
	}
	return md, string(text), nil
}

func messageNames(fd protoreflect.FileDescriptor) string {
	var names []string
	var add func(ms protoreflect.MessageDescriptors)
	add = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			if ms.Get(i).IsMapEntry() {
				continue
			}
			names = append(names, string(ms.Get(i).FullName()))
			add(ms.Get(i).Messages())
		}
	}
	add(fd.Messages())
	return strings.Join(names, ", ")
}

// planProtoInput sets up a protobuf input and returns its fields: with
// a .proto file, the message's fields that the steps name (a step naming
// another is an error), the others passed through undecoded; with only a
// registry, whatever the steps name (null where a record's schema lacks
// it), as for json.
func planProtoInput(e *errs, s SourceSpec, in *inputPlan) *fieldSet {
	sc := s.Schema
	if sc == nil { // reported by Parse
		return newFieldSet(true)
	}
	pi := &protoInput{framing: sc.Framing == FramingConfluent, want: sc.Message}
	in.pb = pi
	if sc.Registry != nil {
		reg, err := sc.Registry.client()
		if err != nil {
			e.list = append(e.list, sc.Pos.errorf("%v", err))
		}
		pi.reg = reg
	}
	if sc.File == "" {
		return newFieldSet(true)
	}
	md, _, err := loadProto(sc)
	if err != nil {
		e.list = append(e.list, sc.Pos.errorf("%v", err))
		return newFieldSet(true)
	}
	pi.md = md
	fs := newFieldSet(true)
	fs.allow = map[string]row.Kind{}
	for _, f := range row.ProtoFields(md) {
		fs.allow[f.Name] = f.Kind
		fs.allowNames = append(fs.allowNames, f.Name)
	}
	return fs
}

// rowEncoder encodes a row as the bytes of one message of a byte sink.
type rowEncoder interface {
	appendRow(dst []byte, r row.Row) ([]byte, error)
}

type jsonRowEncoder struct{ enc *row.JSONEncoder }

func (j jsonRowEncoder) appendRow(dst []byte, r row.Row) ([]byte, error) {
	return j.enc.Append(dst, r), nil
}

// protoSinkPlan is a protobuf sink's message and, with a registry, its
// registration (done once, when the first subtask opens).
type protoSinkPlan struct {
	sc      *FormatSchemaSpec
	md      protoreflect.MessageDescriptor
	text    string
	subject string
	reg     *schemaRegistry

	once   sync.Once
	header []byte
	err    error
}

// planSinkFormats loads the schema of every protobuf sink and checks
// that the rows reaching it fit its message. The result is parallel to
// spec.Sinks (nil for json sinks).
func planSinkFormats(e *errs, spec *Spec, out schemaRef, open bool) []*protoSinkPlan {
	plans := make([]*protoSinkPlan, len(spec.Sinks))
	for i := range spec.Sinks {
		sk := &spec.Sinks[i]
		if sk.Format != "protobuf" || sk.Schema == nil || sk.Schema.File == "" {
			continue
		}
		sc := sk.Schema
		md, text, err := loadProto(sc)
		if err != nil {
			e.list = append(e.list, sc.Pos.errorf("%v", err))
			continue
		}
		ps := &protoSinkPlan{sc: sc, md: md, text: text}
		if sc.Framing == FramingConfluent && sc.Registry != nil {
			if imp := nonStandardImports(md.ParentFile()); len(imp) > 0 {
				e.list = append(e.list, sc.Pos.errorf("%s imports %s: registering a schema with imports other than google/protobuf/*.proto (schema references) is not supported yet", sc.File, strings.Join(imp, ", ")))
			}
			reg, err := sc.Registry.client()
			if err != nil {
				e.list = append(e.list, sc.Pos.errorf("%v", err))
			}
			ps.reg = reg
			ps.subject = sc.Subject
			if ps.subject == "" {
				switch sc.SubjectStrategy {
				case SubjectRecordName:
					ps.subject = string(md.FullName())
				case SubjectTopicRecordName:
					ps.subject = sinkTopic(sk) + "-" + string(md.FullName())
				default:
					ps.subject = sinkTopic(sk) + "-value"
				}
			}
		}
		if len(e.list) == 0 {
			if _, err := row.NewProtoEncoder(md, out()); err != nil {
				hint := ""
				if open {
					hint = "; records here still have the input's shape: add a map: step naming the fields to write"
				}
				e.list = append(e.list, sk.Pos.errorf("the records here do not fit: %v%s", err, hint))
			}
		}
		plans[i] = ps
	}
	return plans
}

func nonStandardImports(fd protoreflect.FileDescriptor) []string {
	var out []string
	imps := fd.Imports()
	for i := 0; i < imps.Len(); i++ {
		if p := imps.Get(i).Path(); !strings.HasPrefix(p, "google/protobuf/") {
			out = append(out, p)
		}
	}
	return out
}

// prepare registers the sink's schema (or looks it up) and fixes the
// header of its records; it runs once, and every later call returns the
// first one's result.
func (ps *protoSinkPlan) prepare(ctx context.Context) error {
	ps.once.Do(func() {
		if ps.reg == nil {
			if ps.sc.Framing == FramingConfluent {
				ps.err = errors.New("framing confluent needs a registry")
			}
			return
		}
		id, err := ps.reg.register(ctx, ps.subject, ps.text, ps.sc.Register)
		if err != nil {
			ps.err = err
			return
		}
		ps.header = appendConfluentHeader(nil, id, indexesOf(ps.md))
	})
	return ps.err
}

// encoder returns the row encoder of the sink for rows of out.
func (ps *protoSinkPlan) encoder(out *row.Schema) (*protoRowEncoder, error) {
	enc, err := row.NewProtoEncoder(ps.md, out)
	if err != nil {
		return nil, err
	}
	return &protoRowEncoder{ps: ps, enc: enc}, nil
}

type protoRowEncoder struct {
	ps  *protoSinkPlan
	enc *row.ProtoEncoder
}

// preparer is a rowEncoder with work to do before the first row (schema
// registration).
type preparer interface {
	prepare(ctx context.Context) error
}

func (p *protoRowEncoder) prepare(ctx context.Context) error { return p.ps.prepare(ctx) }

func (p *protoRowEncoder) appendRow(dst []byte, r row.Row) ([]byte, error) {
	if err := p.ps.prepare(context.Background()); err != nil {
		return dst, fmt.Errorf("%w: %w", errRegistry, err)
	}
	start := len(dst)
	dst = append(dst, p.ps.header...)
	out, err := p.enc.Append(dst, r)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// sinkEncoder returns the encoder of byte sink i for rows of out.
func (p *Plan) sinkEncoder(i int, out *row.Schema) (rowEncoder, error) {
	// Rows of a protobuf input read with a file carry the fields no step
	// named as protobuf (row.ProtoRestWire).
	var restMsg protoreflect.MessageDescriptor
	if in := p.input; in.keepRest && in.pb != nil && in.pb.md != nil {
		restMsg = in.pb.md
	}
	if i < len(p.sinkFmt) && p.sinkFmt[i] != nil {
		enc, err := p.sinkFmt[i].encoder(out)
		if err != nil {
			return nil, err
		}
		if restMsg != nil {
			enc.enc.RestWire(restMsg)
		}
		return enc, nil
	}
	je := row.NewJSONEncoder(out)
	if restMsg != nil {
		return &restJSONEncoder{enc: je, conv: row.NewProtoRestToJSON(restMsg)}, nil
	}
	return jsonRowEncoder{je}, nil
}

// restJSONEncoder writes rows whose Rest is protobuf as JSON.
type restJSONEncoder struct {
	enc  *row.JSONEncoder
	conv *row.ProtoRestToJSON
}

func (j *restJSONEncoder) appendRow(dst []byte, r row.Row) ([]byte, error) {
	if len(r.Rest) > 0 {
		rest, err := j.conv.AppendMembers(nil, r.Rest)
		if err != nil {
			return dst, err
		}
		r.Rest = rest
	}
	return j.enc.Append(dst, r), nil
}
