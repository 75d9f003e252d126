package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/row/avro"
)

// The avro format: sources decode Avro records into rows and sinks encode
// rows as Avro, either in the Confluent wire format with a schema
// registry (each record names its writer schema's id) or as bare Avro
// binary with a schema given in the spec. See docs/pipeline-spec.md.

// Avro framings.
const (
	FramingConfluent = "confluent"
	FramingNone      = "none"
	// framingContainer is the framing of files and HTTP bodies: Avro
	// object container files (not a setting).
	framingContainer = "container"
)

// Subject naming strategies of avro sinks, as Confluent's serializers
// name them.
const (
	SubjectTopicName       = "topic_name"
	SubjectRecordName      = "record_name"
	SubjectTopicRecordName = "topic_record_name"
)

// AvroSpec is the avro format's settings of a source or a sink: the
// `schema:`, `registry:` and `avro:` keys beside `format: avro`.
type AvroSpec struct {
	Pos Pos
	// Schema is the schema given by file or inline: a source's reader
	// schema, a sink's writer schema. Nil when none is given.
	Schema    *avro.Schema
	SchemaPos Pos
	// Subject and Version name a registered schema to use instead (read
	// when the job starts; Version 0 is the latest).
	Subject string
	Version int
	// Registry overrides the spec's top-level registry.
	Registry *RegistrySpec
	// Framing is confluent (magic byte and schema id before each record)
	// or none (bare Avro binary; needs Schema). Default: confluent on
	// kafka, and on log when a registry applies (the spec's or the
	// host's), else none.
	Framing string
	// Decimal is float (default) or string.
	Decimal string
	// Sinks: the subject to register under (overrides SubjectStrategy),
	// the strategy, and the record name of a derived schema.
	RegisterSubject string
	SubjectStrategy string
	RecordName      string
}

var avroNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// avroKeys are the keys of a source or sink block that belong to the avro
// format.
var avroKeys = []string{"schema", "registry", "avro"}

// parseAvro reads the avro keys of a source (sink false) or sink block.
func parseAvro(e *errs, o *obj, format string, sink bool) *AvroSpec {
	if format != "avro" {
		for _, k := range avroKeys {
			if o.has(k) && !formatKeyAllowed(format, k) {
				e.at(o.get(k), o.sub(k), "is only allowed with format: %s", formatsOfKey(k))
			}
		}
		return nil
	}
	a := &AvroSpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	if so := o.object("schema", "file, inline, or subject and version"); so != nil {
		a.SchemaPos = Pos{File: e.file, Line: so.node.Line, Column: so.node.Column, Field: so.path}
		file, inline := so.str("file", ""), so.str("inline", "")
		a.Subject = so.str("subject", "")
		if so.has("version") {
			if v := so.get("version"); v != nil && v.Value == "latest" {
				a.Version = 0
			} else {
				a.Version = int(so.integer("version", 0, 1, 1<<31-1))
			}
		}
		n := 0
		for _, s := range []string{file, inline, a.Subject} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			e.at(so.node, so.path, "give exactly one of file (an .avsc file, relative to the spec's directory), inline (the schema's JSON) or subject (a registered schema)")
		}
		if so.has("version") && a.Subject == "" {
			e.at(so.get("version"), so.sub("version"), "is only allowed with subject")
		}
		text := inline
		if file != "" {
			path := file
			if !filepath.IsAbs(path) && e.file != "" {
				path = filepath.Join(filepath.Dir(e.file), path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				e.at(so.get("file"), so.sub("file"), "cannot read the schema: %v", err)
			}
			text = string(b)
		}
		if text != "" {
			s, err := avro.Parse(text)
			if err != nil {
				key := "inline"
				if file != "" {
					key = "file"
				}
				e.at(so.get(key), so.sub(key), "%v", err)
			}
			a.Schema = s
		}
		so.done("file", "inline", "subject", "version")
	}
	if ro := o.object("registry", "url and credentials"); ro != nil {
		a.Registry = parseRegistry(e, ro)
	}
	if ao := o.object("avro", "avro settings"); ao != nil {
		a.Framing = ao.enum("framing", "", FramingConfluent, FramingNone)
		allowed := []string{"framing"}
		if sink {
			a.RegisterSubject = ao.str("subject", "")
			a.SubjectStrategy = ao.enum("subject_strategy", SubjectTopicName, SubjectTopicName, SubjectRecordName, SubjectTopicRecordName)
			a.RecordName = ao.str("record_name", "")
			if a.RecordName != "" && !avroNameRe.MatchString(a.RecordName) {
				e.at(ao.get("record_name"), ao.sub("record_name"), "%q is not an Avro full name (namespace.Name)", a.RecordName)
			}
			allowed = append(allowed, "subject", "subject_strategy", "record_name")
		} else {
			a.Decimal = ao.enum("decimal", "float", "float", "string")
			allowed = append(allowed, "decimal")
		}
		ao.done(allowed...)
	}
	if a.SubjectStrategy == "" {
		a.SubjectStrategy = SubjectTopicName
	}
	if a.Framing == FramingNone && a.Subject == "" && a.Schema == nil && !sink {
		e.at(o.node, o.sub("schema"), "is required with framing: none (bare Avro records do not say how they were written)")
	}
	return a
}

// checkAvroConnector reports format avro on a connector that cannot
// carry it: stdout writes lines, which cannot hold binary Avro, and row
// sinks take rows. Files and HTTP request bodies hold Avro object container
// files, which carry their own schema: the framing setting does not
// apply to them.
func checkAvroConnector(e *errs, o *obj, format, connector string, sink bool) {
	if format != "avro" || connector == "" || connector == "kafka" || connector == "log" {
		return
	}
	if connector == "file" || (connector == "http" && !sink) {
		if ao := o.get("avro"); ao != nil && ao.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(ao.Content); i += 2 {
				if ao.Content[i].Value == "framing" {
					e.at(ao.Content[i], o.sub("avro")+".framing", "does not apply to %s: format avro there means Avro object container files, which carry their writer schema", connector)
				}
			}
		}
		return
	}
	e.at(o.get("format"), o.sub("format"), "format avro is for kafka, log and file connectors and http sources: %s records are lines, which cannot hold binary Avro", connector)
}

// framing returns the framing in force on a connector given the registry
// that applies. Kafka connectors default to the Confluent wire format, as
// Avro on Kafka almost always is; log connectors to it when a registry is
// at hand (the spec's, or the host's: in `sluice run`, always).
func (a *AvroSpec) framing(reg *RegistrySpec, host *Host, connector string) string {
	if connector == "file" || connector == "http" {
		return framingContainer
	}
	if a.Framing != "" {
		return a.Framing
	}
	if a.registry(reg) != nil || connector == "kafka" || (host != nil && host.Registry != nil) {
		return FramingConfluent
	}
	return FramingNone
}

func (a *AvroSpec) registry(top *RegistrySpec) *RegistrySpec {
	if a.Registry != nil {
		return a.Registry
	}
	return top
}

// registryFor returns the client of the registry an avro source or sink
// uses: its own, the spec's, or for a log connector the host's (the
// embedded log's registry). A kafka connector never falls back to the
// host's: the ids in a Kafka topic belong to the registry of the
// cluster's producers and consumers, which the spec has to name.
func registryFor(a *AvroSpec, top *RegistrySpec, host *Host, connector string) (registryClient, string, error) {
	if r := a.registry(top); r != nil {
		c, err := r.client()
		if err != nil {
			return nil, "", err
		}
		return c, strings.Join(r.URLs, ","), nil
	}
	if connector == "kafka" {
		return nil, "", a.Pos.errorf("format avro on kafka is in the Confluent wire format, whose schema ids belong to the registry " +
			"that the topic's producers and consumers use: add registry: {url: http://HOST:PORT} at the top of the spec or in this block " +
			"(`sluice serve` serves its registry on its --http-addr; add token: if it runs with --http-token), " +
			"or set avro: {framing: none} and a schema for bare Avro records; the embedded registry of `sluice run` serves log: connectors only")
	}
	if host != nil && host.Registry != nil {
		return host.Registry, "the embedded registry", nil
	}
	return nil, "", a.Pos.errorf("format avro in the Confluent wire format needs a schema registry: add registry: {url: http://...} (or set avro: {framing: none} with a schema)")
}

// avroHint returns the kind of an input field from an avro source's
// reader schema, for planning.
func avroHint(s *avro.Schema, decimalString bool) func(string) row.Kind {
	return func(name string) row.Kind {
		f, ok := s.Field(name)
		if !ok {
			return row.KindNull
		}
		if f.Kind == row.KindFloat && decimalString && isDecimal(s, name) {
			return row.KindString
		}
		return f.Kind
	}
}

func isDecimal(s *avro.Schema, name string) bool {
	return strings.Contains(fieldTypeJSON(s, name), `"decimal"`)
}

// fieldTypeJSON returns the JSON of a top-level field's type in s.
func fieldTypeJSON(s *avro.Schema, name string) string {
	var rec struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(s.Text()), &rec); err != nil {
		return ""
	}
	for _, f := range rec.Fields {
		if f.Name == name {
			return string(f.Type)
		}
	}
	return ""
}

// checkAvroFields reports input fields a pipeline names that the avro
// reader schema lacks (they would always be null).
func checkAvroFields(e *errs, in *inputPlan) {
	a := in.spec.Avro
	if a == nil || a.Schema == nil {
		return
	}
	var have []string
	for _, f := range a.Schema.Fields() {
		have = append(have, f.Name)
	}
	for _, n := range in.fields.names {
		if _, ok := a.Schema.Field(n); !ok {
			e.list = append(e.list, a.SchemaPos.errorf("the pipeline uses field %q, which the avro schema %s does not have; its fields: %s", n, a.Schema.Name(), strings.Join(have, ", ")))
		}
	}
}

// --- decoding ---

// avroInput is what the splits of an avro input share: the reader schema,
// the registry and the programs compiled per writer schema id.
type avroInput struct {
	target  *row.Schema
	opts    avro.Options
	reader  *avro.Schema
	raw     *avro.Program // framing none
	reg     registryClient
	regName string

	// container: records come from object container files, with
	// programs per writer schema text.
	container bool

	mu     sync.Mutex
	byID   map[uint32]*avroProg
	byText map[[sha256.Size]byte]*avroProg // by the SHA-256 of the text
}

// avroProg is the program of one writer schema id, or why records of that
// id are bad.
type avroProg struct {
	p   *avro.Program
	bad error
	// until is when a "not found" answer expires (the schema may be
	// registered since).
	until time.Time
}

// unknownIDRetry is how long an unknown schema id is remembered as such.
const unknownIDRetry = 10 * time.Second

// maxCachedSchemas bounds each input's caches of writer schemas (by
// schema id, by container schema text): ids and texts come from the
// records, and a producer of endlessly many distinct ones must not grow
// them without bound.
const maxCachedSchemas = 1024

// makeRoom drops entries of a writer schema cache until one more fits
// under maxCachedSchemas: expired ones first, then any (a map's order is
// random). The caller holds the cache's lock.
func makeRoom[K comparable, V any](m map[K]V, expired func(V) bool) {
	if len(m) < maxCachedSchemas {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < maxCachedSchemas {
			return
		}
		delete(m, k)
	}
}

// expiredNotFound reports whether a cached "not found" answer has
// expired.
func expiredNotFound(until time.Time) bool {
	return !until.IsZero() && !time.Now().Before(until)
}

// fatalError is a decoding failure that is not the record's fault (the
// registry cannot be reached): it fails the job under any tolerance.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

func newAvroInput(ctx context.Context, in *inputPlan, top *RegistrySpec, host *Host) (*avroInput, error) {
	a := in.spec.Avro
	ai := &avroInput{target: in.schema(), opts: avro.Options{KeepRest: in.keepRest, RawRest: in.avroRaw, DecimalAsString: a.Decimal == "string"}, reader: a.Schema}
	framing := a.framing(top, host, in.spec.Connector)
	if framing == FramingConfluent || a.Subject != "" {
		reg, name, err := registryFor(a, top, host, in.spec.Connector)
		if err != nil {
			return nil, err
		}
		ai.reg, ai.regName = reg, name
	}
	if a.Subject != "" {
		s, err := fetchSubject(ctx, ai.reg, a.Subject, a.Version)
		if err != nil {
			return nil, fmt.Errorf("reader schema: %w", err)
		}
		ai.reader = s
		e := &errs{}
		// The fields the pipeline uses must be in the schema read now.
		tmp := *in
		tmp.spec.Avro = &AvroSpec{Schema: s, SchemaPos: a.SchemaPos}
		checkAvroFields(e, &tmp)
		if err := e.err(); err != nil {
			return nil, err
		}
	}
	if framing == framingContainer {
		ai.container = true
		ai.byText = map[[sha256.Size]byte]*avroProg{}
		return ai, nil
	}
	if framing == FramingNone {
		if ai.reader == nil {
			return nil, errors.New("format avro with framing none needs a schema")
		}
		p, err := avro.Compile(ai.reader, nil, ai.target, ai.opts)
		if err != nil {
			return nil, err
		}
		ai.raw = p
		return ai, nil
	}
	ai.byID = map[uint32]*avroProg{}
	return ai, nil
}

// fetchSubject reads a registered schema (version 0: the latest).
func fetchSubject(ctx context.Context, reg registryClient, subject string, version int) (*avro.Schema, error) {
	if version == 0 {
		version = -1
	}
	ss, err := withRetry(ctx, func(ctx context.Context) (sr.SubjectSchema, error) {
		return reg.SchemaByVersion(ctx, subject, version)
	})
	if err != nil {
		return nil, fmt.Errorf("schema registry: subject %s: %w", subject, err)
	}
	if ss.Type != sr.TypeAvro {
		return nil, fmt.Errorf("schema registry: subject %s holds a %s schema, not AVRO", subject, ss.Type)
	}
	s, err := avro.Parse(ss.Schema.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema registry: subject %s version %d: %w", subject, ss.Version, err)
	}
	return s, nil
}

// program returns the program for writer schema id, fetching the schema
// the first time. A bad record error (unknown id, a schema that does not
// resolve) is returned as is; a registry failure as *fatalError.
func (ai *avroInput) program(id uint32) (*avro.Program, error) {
	ai.mu.Lock()
	e, ok := ai.byID[id]
	ai.mu.Unlock()
	if ok && (e.until.IsZero() || time.Now().Before(e.until)) {
		return e.p, e.bad
	}
	e = ai.fetch(id)
	if e == nil {
		return nil, &fatalError{fmt.Errorf("schema registry %s: schema id %d: unreachable", ai.regName, id)}
	}
	return e.p, e.bad
}

func (ai *avroInput) fetch(id uint32) *avroProg {
	ctx, cancel := context.WithTimeout(context.Background(), registryAttempts*registryTimeout)
	defer cancel()
	s, err := withRetry(ctx, func(ctx context.Context) (sr.Schema, error) { return ai.reg.SchemaByID(ctx, int(id)) })
	e := &avroProg{}
	switch {
	case err != nil && notFound(err):
		e.bad = fmt.Errorf("avro: schema id %d is unknown to the schema registry (%s)", id, ai.regName)
		e.until = time.Now().Add(unknownIDRetry)
	case err != nil:
		return nil
	case s.Type != sr.TypeAvro:
		e.bad = fmt.Errorf("avro: schema id %d is a %s schema", id, s.Type)
	default:
		w, perr := avro.Parse(s.Schema)
		if perr != nil {
			e.bad = fmt.Errorf("schema id %d: %w", id, perr)
			break
		}
		p, cerr := avro.Compile(w, ai.reader, ai.target, ai.opts)
		if cerr != nil {
			e.bad = fmt.Errorf("schema id %d cannot be read with the reader schema: %w", id, cerr)
			break
		}
		e.p = p
	}
	ai.mu.Lock()
	makeRoom(ai.byID, func(e *avroProg) bool { return expiredNotFound(e.until) })
	ai.byID[id] = e
	ai.mu.Unlock()
	return e
}

// avroDecoder decodes one split's messages.
type avroDecoder struct {
	in     *avroInput
	d      avro.Decoder
	lastID uint32
	last   *avro.Program
	// lastSchema is the schema header of the last container record.
	lastSchema []byte
}

func (a *avroDecoder) decode(b []byte) (row.Row, error) {
	if a.in.raw != nil {
		return a.d.Decode(a.in.raw, b)
	}
	id, payload, err := avro.SplitHeader(b)
	if err != nil {
		return row.Row{}, err
	}
	p := a.last
	if p == nil || id != a.lastID {
		if p, err = a.in.program(id); err != nil {
			return row.Row{}, err
		}
		a.last, a.lastID = p, id
	}
	return a.d.Decode(p, payload)
}

// --- encoding ---

// rowEncoder writes a row as a message's bytes.
type rowEncoder interface {
	Append(dst []byte, r row.Row) ([]byte, error)
}

type jsonRows struct{ e *row.JSONEncoder }

func (j jsonRows) Append(dst []byte, r row.Row) ([]byte, error) { return j.e.Append(dst, r), nil }

// avroRows encodes rows as Avro, after the wire-format header if any.
type avroRows struct {
	enc    *avro.Encoder
	header []byte
}

func (a *avroRows) Append(dst []byte, r row.Row) ([]byte, error) {
	start := len(dst)
	dst = append(dst, a.header...)
	out, err := a.enc.Append(dst, r)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// sinkTopic returns the topic a sink writes, or "".
func sinkTopic(c sinkConfig) string {
	switch c := c.(type) {
	case *kafkaSinkConfig:
		return c.cfg.Topic
	case *logSinkConfig:
		return c.cfg.Topic
	}
	return ""
}

// rowEncoderFor returns the encoder of a byte sink's format. For avro it
// settles the writer schema and, with a registry, registers it (or looks
// it up) under the sink's subject.
func (p *Plan) rowEncoderFor(ctx context.Context, host *Host, sk SinkSpec, out *row.Schema) (rowEncoder, error) {
	switch sk.Format {
	case "protobuf":
		return p.protoRowEncoder(ctx, host, sk, out)
	case "avro":
	default:
		return p.jsonRowEncoder(out)
	}
	a := sk.Avro
	top := p.Spec.Registry
	framing := a.framing(top, host, sk.Connector)
	var reg registryClient
	var regName string
	if framing == FramingConfluent || a.Subject != "" {
		var err error
		if reg, regName, err = registryFor(a, top, host, sk.Connector); err != nil {
			return nil, err
		}
	}
	s := a.Schema
	id := -1
	switch {
	case a.Subject != "":
		v := a.Version
		if v == 0 {
			v = -1
		}
		ss, err := withRetry(ctx, func(ctx context.Context) (sr.SubjectSchema, error) { return reg.SchemaByVersion(ctx, a.Subject, v) })
		if err != nil {
			return nil, fmt.Errorf("schema registry %s: subject %s: %w", regName, a.Subject, err)
		}
		if s, err = avro.Parse(ss.Schema.Schema); err != nil {
			return nil, fmt.Errorf("schema registry %s: subject %s: %w", regName, a.Subject, err)
		}
		id = ss.ID
	case s == nil:
		full := out
		if p.input.avroRaw {
			var err error
			if full, err = p.rawFullSchema(out); err != nil {
				return nil, err
			}
		}
		var err error
		if s, err = p.deriveSinkSchema(a, full); err != nil {
			return nil, err
		}
	}
	var enc *avro.Encoder
	var err error
	if p.input.avroRaw {
		enc, err = p.avroRestEncoder(s, out)
	} else {
		enc, err = avro.NewEncoder(s, out)
	}
	if err != nil {
		return nil, err
	}
	ar := &avroRows{enc: enc}
	if framing != FramingConfluent {
		return ar, nil
	}
	if id < 0 {
		subject := a.RegisterSubject
		if subject == "" {
			topic := sinkTopic(sk.cfg)
			switch a.SubjectStrategy {
			case SubjectRecordName:
				subject = s.Name()
			case SubjectTopicRecordName:
				subject = topic + "-" + s.Name()
			default:
				subject = topic + "-value"
			}
		}
		ss, err := withRetry(ctx, func(ctx context.Context) (sr.SubjectSchema, error) {
			return reg.CreateSchema(ctx, subject, sr.Schema{Schema: s.Text(), Type: sr.TypeAvro})
		})
		if err != nil {
			return nil, fmt.Errorf("schema registry %s: registering the output schema under %s: %w", regName, subject, err)
		}
		id = ss.ID
	}
	ar.header = avro.AppendHeader(nil, uint32(id))
	return ar, nil
}

// avroRestEncoder returns the encoder of an avro sink writing the avro
// input's schema s (avroRawRest) to rows of out whose Row.Rest holds the
// input schema's fields that out lacks.
func (p *Plan) avroRestEncoder(s *avro.Schema, out *row.Schema) (*avro.Encoder, error) {
	in := p.input
	if err := avro.CheckRest(in.spec.Avro.Schema, in.schema(), s, out); err != nil {
		return nil, fmt.Errorf("avro sink: %w", err)
	}
	return avro.NewRestEncoder(s, out)
}

// rawFullSchema returns out with the avro input's fields that travel in
// Row.Rest (avroRawRest) put back: the fields a derived sink schema
// writes, in the order deriveSinkSchema gives them.
func (p *Plan) rawFullSchema(out *row.Schema) (*row.Schema, error) {
	fields := out.Fields()
	for _, f := range p.input.spec.Avro.Schema.Fields() {
		if _, ok := out.Index(f.Name); !ok {
			fields = append(fields, row.Field{Name: f.Name, Kind: f.Kind})
		}
	}
	return row.NewSchema(fields...)
}

// avroRestJSON writes rows whose Rest is Avro binary (avroRawRest) as
// JSON.
type avroRestJSON struct {
	enc  *row.JSONEncoder
	conv *avro.RestJSON
	buf  []byte
	mu   sync.Mutex
}

func (p *Plan) avroRestJSONEncoder(je *row.JSONEncoder) (rowEncoder, error) {
	in := p.input
	conv, err := avro.NewRestJSON(in.spec.Avro.Schema, in.schema(), avro.Options{DecimalAsString: in.spec.Avro.Decimal == "string"})
	if err != nil {
		return nil, err
	}
	return &avroRestJSON{enc: je, conv: conv}, nil
}

func (j *avroRestJSON) Append(dst []byte, r row.Row) ([]byte, error) {
	if len(r.Rest) == 0 {
		return j.enc.Append(dst, r), nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	rest, err := j.conv.AppendMembers(j.buf[:0], r.Rest)
	j.buf = rest
	if err != nil {
		return dst, err
	}
	r.Rest = rest
	return j.enc.Append(dst, r), nil
}

// deriveSinkSchema makes the writer schema of an avro sink given none:
// a record of the output fields. Fields that still hold the avro input's
// values unchanged keep the input schema's types.
func (p *Plan) deriveSinkSchema(a *AvroSpec, out *row.Schema) (*avro.Schema, error) {
	name := a.RecordName
	if name == "" {
		name = "sluice." + avroIdent(p.Spec.Name)
	}
	if types := p.passthroughTypes(out); len(types) > 0 {
		// The input schema's fields in its order, then the others: a
		// pipeline that only filters writes what it read.
		var fields []row.Field
		for _, f := range p.input.spec.Avro.Schema.Fields() {
			if i, ok := out.Index(f.Name); ok {
				fields = append(fields, out.Field(i))
			}
		}
		for _, f := range out.Fields() {
			if _, ok := p.input.spec.Avro.Schema.Field(f.Name); !ok {
				fields = append(fields, f)
			}
		}
		if ordered, err := row.NewSchema(fields...); err == nil {
			if s, err := deriveWith(ordered, name, types); err == nil {
				return s, nil
			}
		}
	}
	return avro.Derive(out, name)
}

// passthroughTypes returns the avro types of output fields that are input
// fields no step assigned, when the input is avro with a known schema and
// the rows still have the input's shape.
func (p *Plan) passthroughTypes(out *row.Schema) map[string]string {
	in := p.input
	if !p.inputShaped || in.spec.Avro == nil || in.spec.Avro.Schema == nil {
		return nil
	}
	types := map[string]string{}
	for _, n := range out.Names() {
		if p.assigned[n] {
			continue
		}
		if t := fieldTypeJSON(in.spec.Avro.Schema, n); t != "" {
			types[n] = t
		}
	}
	return types
}

// deriveWith derives a schema for out taking the given fields' types
// verbatim.
func deriveWith(out *row.Schema, name string, types map[string]string) (*avro.Schema, error) {
	base, err := avro.Derive(out, name)
	if err != nil {
		return nil, err
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(base.Text()), &rec); err != nil {
		return nil, err
	}
	fields, _ := rec["fields"].([]any)
	for _, f := range fields {
		fm := f.(map[string]any)
		if t, ok := types[fm["name"].(string)]; ok {
			fm["type"] = json.RawMessage(t)
			delete(fm, "default")
			if strings.HasPrefix(strings.TrimSpace(t), `["null"`) {
				fm["default"] = nil
			}
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return avro.Parse(string(b))
}

// avroIdent turns s into an Avro name part.
func avroIdent(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "pipeline"
	}
	return b.String()
}

// planAvroSinks checks avro sinks against the rows they receive and, while
// rows still have the input's shape, makes the input extract the fields
// they write. It runs at the end of Compile; cur is the output field set.
func planAvroSinks(e *errs, p *Plan, cur *fieldSet) {
	p.input.avroRaw = avroRawRest(p.Spec, p.input, cur)
	for _, sk := range p.Spec.Sinks {
		a := sk.Avro
		if sk.Format != "avro" || a == nil {
			continue
		}
		if p.input.avroRaw {
			// The fields no step names pass through in Row.Rest.
			continue
		}
		if cur.open {
			switch {
			case a.Schema != nil:
				for _, f := range a.Schema.Fields() {
					cur.resolve(f.Name)
				}
			case a.Subject == "" && p.input.spec.Avro != nil && p.input.spec.Avro.Schema != nil:
				for _, f := range p.input.spec.Avro.Schema.Fields() {
					cur.resolve(f.Name)
				}
			default:
				e.list = append(e.list, sk.Pos.errorf("format avro writes fixed fields, but the records here still have the input's shape (fields other than %s would be lost): add a map: step naming the fields to write, or give the sink a schema: {file: ...}",
					strings.Join(cur.names, ", ")))
			}
			continue
		}
		if a.Schema != nil {
			var missing []string
			for _, f := range a.Schema.Fields() {
				if _, ok := cur.idx[f.Name]; !ok && !schemaFieldHasDefault(a.Schema, f.Name) {
					missing = append(missing, f.Name)
				}
			}
			if len(missing) > 0 {
				sort.Strings(missing)
				e.list = append(e.list, a.SchemaPos.errorf("the schema's fields %s are not output fields and have no default; output fields: %s", strings.Join(missing, ", "), strings.Join(cur.names, ", ")))
			}
		}
	}
}

// avroRawRest says whether the input's unreferenced fields can travel as
// Avro binary in Row.Rest: the input is avro read with a schema from the
// spec, the rows reach the sinks with the input's shape, every sink is a
// byte sink writing json or avro, and every avro sink writes the input's
// schema (the same canonical form) or derives its schema from it. Avro sinks then copy those fields
// without decoding them; json sinks convert them. Records of another
// writer schema (with a registry) are resolved to the input's schema as
// they are decoded, so their rest is in its encoding too.
func avroRawRest(spec *Spec, in *inputPlan, cur *fieldSet) bool {
	a := in.spec.Avro
	if !cur.open || in.spec.Format != "avro" || a == nil || a.Schema == nil || a.Subject != "" || spec.Errors.DeadLetter != nil {
		return false
	}
	avroSinks := 0
	for _, sk := range spec.Sinks {
		if sk.cfg == nil || !sk.cfg.bytes() {
			return false
		}
		switch sk.Format {
		case "json":
		case "avro":
			// A sink with no schema derives one keeping the types of
			// the fields that pass through.
			if sk.Avro == nil || sk.Avro.Subject != "" || (sk.Avro.Schema != nil && sk.Avro.Schema.Fingerprint() != a.Schema.Fingerprint()) {
				return false
			}
			avroSinks++
		default:
			return false
		}
	}
	return avroSinks > 0
}

func schemaFieldHasDefault(s *avro.Schema, name string) bool {
	var rec struct {
		Fields []map[string]json.RawMessage `json:"fields"`
	}
	if json.Unmarshal([]byte(s.Text()), &rec) != nil {
		return false
	}
	for _, f := range rec.Fields {
		var n string
		_ = json.Unmarshal(f["name"], &n)
		if n == name {
			_, ok := f["default"]
			return ok
		}
	}
	return false
}
