package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// protoInput is how an input's protobuf records are read, made when the
// job starts (the registry may be the host's). It is shared by the
// input's splits.
type protoInput struct {
	md      protoreflect.MessageDescriptor // the reader's message; nil: each record's writer's
	framing bool                           // records carry the Confluent header
	schemas *protoSchemas                  // nil: no registry
	want    string                         // with md nil: the message records must be, or ""
	// delimited: records come from length-delimited files, and a
	// message may hold bytes that could not be framed (pbErrorHeader).
	delimited bool
}

// bareByDefault reports whether protobuf records on connector are bare
// messages unless framing confluent is set: files and HTTP bodies come
// from outside Kafka's ecosystem, where the Confluent header is rare.
func bareByDefault(connector string) bool {
	return connector == "file" || connector == "http"
}

func newProtoInput(in *inputPlan, top *RegistrySpec, host *Host) (*protoInput, error) {
	sc := in.spec.Schema
	if sc == nil {
		return nil, fmt.Errorf("%s: format protobuf: no schema settings", in.name)
	}
	reg, name, err := protoRegistryFor(sc, top, host, in.spec.Connector)
	if err != nil {
		return nil, err
	}
	pi := &protoInput{md: in.pbMD, want: sc.Message}
	bare := bareByDefault(in.spec.Connector)
	pi.delimited = in.spec.Connector == "file"
	switch sc.Framing {
	case FramingConfluent:
		pi.framing = true
		if reg == nil {
			return nil, errors.New("format protobuf with framing confluent needs a schema registry: add registry: {url: http://...} (or set protobuf: {framing: none} and a schema file)")
		}
	case "":
		pi.framing = reg != nil && !bare
	}
	if reg != nil && pi.framing {
		pi.schemas = newProtoSchemas(reg, name)
	}
	if pi.md == nil && pi.schemas == nil {
		return nil, errors.New("format protobuf needs schema: {file: order.proto, message: shop.Order}, or a schema registry (registry: {url: ...}) to take each record's schema from")
	}
	return pi, nil
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

func newProtoSplit(in *inputPlan, pi *protoInput) *protoSplit {
	ps := &protoSplit{in: pi, schema: in.schema(), keep: in.keepRest}
	if pi.md != nil {
		// Fields no step names stay as they were on the wire: a protobuf
		// sink copies them, other sinks convert them (restJSONRows).
		rest := row.ProtoRestDrop
		if ps.keep {
			rest = row.ProtoRestWire
		}
		ps.fixed = row.NewProtoDecoder(pi.md, ps.schema, rest)
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
		if in.schemas != nil && !ps.known[id] {
			if _, err := in.schemas.file(int(id)); err != nil {
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
	fd, err := ps.in.schemas.file(int(id))
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

// planProtoInput loads a protobuf input's .proto file, if it has one,
// and returns its fields: with a file, the message's fields that the
// steps name (a step naming another is an error), the others passed
// through undecoded; with only a registry, whatever the steps name (null
// where a record's schema lacks it), as for json.
func planProtoInput(e *errs, s SourceSpec, in *inputPlan) *fieldSet {
	sc := s.Schema
	if sc == nil || sc.File == "" {
		return newFieldSet(true)
	}
	md, _, err := loadProto(sc)
	if err != nil {
		e.list = append(e.list, sc.Pos.errorf("%v", err))
		return newFieldSet(true)
	}
	in.pbMD = md
	fs := newFieldSet(true)
	fs.allow = map[string]row.Kind{}
	for _, f := range row.ProtoFields(md) {
		fs.allow[f.Name] = f.Kind
		fs.allowNames = append(fs.allowNames, f.Name)
	}
	return fs
}

// protoSinkPlan is a protobuf sink's message, loaded when the pipeline
// is planned.
type protoSinkPlan struct {
	sc   *FormatSchemaSpec
	md   protoreflect.MessageDescriptor
	text string
	deps []protoDep // the files it imports, dependencies first
}

// protoDep is a .proto file a sink's file imports (directly or not),
// other than google/protobuf/*.proto: registered as a schema of its own
// that the sink's schema references.
type protoDep struct {
	path    string   // the import path: the reference's name and subject
	text    string   // the file's text
	imports []string // its own imports that are deps, by path
}

// protoDeps returns the files fd imports, other than the well-known
// types, each after the files it imports, with their text read from the
// directories the compiler searched (the main file's, then
// import_paths).
func protoDeps(sc *FormatSchemaSpec, fd protoreflect.FileDescriptor) ([]protoDep, error) {
	dir := filepath.Dir(sc.File)
	dirs := append([]string{dir}, sc.ImportPaths...)
	var out []protoDep
	seen := map[string]bool{}
	var walk func(fd protoreflect.FileDescriptor) error
	walk = func(fd protoreflect.FileDescriptor) error {
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			imp := imps.Get(i)
			p := imp.Path()
			if strings.HasPrefix(p, "google/protobuf/") || seen[p] {
				continue
			}
			seen[p] = true
			if err := walk(imp.FileDescriptor); err != nil {
				return err
			}
			var text []byte
			var err error
			for _, d := range dirs {
				if text, err = os.ReadFile(filepath.Join(d, filepath.FromSlash(p))); err == nil {
					break
				}
			}
			if err != nil {
				return fmt.Errorf("schema file %s imports %s, which was compiled but cannot be read again: %w", sc.File, p, err)
			}
			out = append(out, protoDep{path: p, text: string(text), imports: nonStandardImports(imp.FileDescriptor)})
		}
		return nil
	}
	return out, walk(fd)
}

// planSinkFormats loads the schema of every protobuf sink and checks
// that the rows reaching it fit its message. The result is parallel to
// spec.Sinks (nil for other sinks).
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
		deps, err := protoDeps(sc, md.ParentFile())
		if err != nil {
			e.list = append(e.list, sc.Pos.errorf("%v", err))
			continue
		}
		if _, err := row.NewProtoEncoder(md, out()); err != nil {
			hint := ""
			if open {
				hint = "; the records here still have the input's shape: add a map: step naming the fields to write"
			}
			e.list = append(e.list, sk.Pos.errorf("the records here do not fit: %v%s", err, hint))
		}
		plans[i] = &protoSinkPlan{sc: sc, md: md, text: text, deps: deps}
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

// protoRows encodes rows as protobuf messages, after the Confluent
// header if any.
type protoRows struct {
	enc    *row.ProtoEncoder
	header []byte
}

func (p *protoRows) Append(dst []byte, r row.Row) ([]byte, error) {
	start := len(dst)
	dst = append(dst, p.header...)
	out, err := p.enc.Append(dst, r)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// protoRowEncoder returns the encoder of protobuf sink sk and, with a
// registry, registers its schema (or looks it up) under its subject.
func (p *Plan) protoRowEncoder(ctx context.Context, host *Host, sk SinkSpec, out *row.Schema) (rowEncoder, error) {
	var ps *protoSinkPlan
	for i := range p.Spec.Sinks {
		if p.Spec.Sinks[i].Pos == sk.Pos && i < len(p.sinkFmt) {
			ps = p.sinkFmt[i]
		}
	}
	if ps == nil {
		return nil, errors.New("format protobuf: the sink's schema was not loaded")
	}
	enc, err := row.NewProtoEncoder(ps.md, out)
	if err != nil {
		return nil, err
	}
	if md := p.restMessage(); md != nil {
		enc.RestWire(md)
	}
	pr := &protoRows{enc: enc}
	sc := ps.sc
	reg, name, err := protoRegistryFor(sc, p.Spec.Registry, host, sk.Connector)
	if err != nil {
		return nil, err
	}
	framing := sc.Framing
	if framing == "" {
		framing = FramingNone
		if reg != nil && !bareByDefault(sk.Connector) {
			framing = FramingConfluent
		}
	}
	var res rowEncoder = pr
	if sk.Connector == "file" {
		res = delimRows{pr} // a length-delimited stream
	}
	if framing == FramingNone {
		return res, nil
	}
	if reg == nil {
		return nil, errors.New("format protobuf with framing confluent needs a schema registry: add registry: {url: http://...} (or set protobuf: {framing: none})")
	}
	subject := sc.Subject
	if subject == "" {
		topic := sinkTopic(sk.cfg)
		switch sc.SubjectStrategy {
		case SubjectRecordName:
			subject = string(ps.md.FullName())
		case SubjectTopicRecordName:
			subject = topic + "-" + string(ps.md.FullName())
		default:
			subject = topic + "-value"
		}
	}
	id, err := registerProto(ctx, reg, name, subject, ps.text, nonStandardImports(ps.md.ParentFile()), ps.deps, sc.Register)
	if err != nil {
		return nil, err
	}
	pr.header = appendConfluentHeader(nil, id, indexesOf(ps.md))
	return res, nil
}

// restMessage is the message whose wire fields the rows reaching the
// sinks carry in Row.Rest (a protobuf input read with a file, rows still
// of its shape), or nil.
func (p *Plan) restMessage() protoreflect.MessageDescriptor {
	if in := p.input; in.keepRest && in.spec.Format == "protobuf" && in.pbMD != nil {
		return in.pbMD
	}
	return nil
}

// restJSONRows writes rows whose Rest is protobuf as JSON.
type restJSONRows struct {
	enc  *row.JSONEncoder
	conv *row.ProtoRestToJSON
}

func (j *restJSONRows) Append(dst []byte, r row.Row) ([]byte, error) {
	if len(r.Rest) > 0 {
		rest, err := j.conv.AppendMembers(nil, r.Rest)
		if err != nil {
			return dst, err
		}
		r.Rest = rest
	}
	return j.enc.Append(dst, r), nil
}

// jsonRowEncoder returns the encoder of a json byte sink.
func (p *Plan) jsonRowEncoder(out *row.Schema) (rowEncoder, error) {
	je := row.NewJSONEncoder(out)
	if md := p.restMessage(); md != nil {
		return &restJSONRows{enc: je, conv: row.NewProtoRestToJSON(md)}, nil
	}
	if p.input.avroRaw {
		return p.avroRestJSONEncoder(je)
	}
	return jsonRows{je}, nil
}
