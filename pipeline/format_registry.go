package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluicehq/sluice/schema"
)

// protoSchemas fetches Protobuf schemas from a registry by id and keeps
// them compiled, so that lookups leave the hot path: a schema is fetched
// and compiled once per id (concurrent askers wait for the one fetch),
// and an id the registry does not know is asked again only after
// unknownIDRetry. It keeps at most maxCachedSchemas ids. It is safe for
// concurrent use.
type protoSchemas struct {
	reg  registryClient
	name string // for messages

	mu      sync.Mutex
	byID    map[int]*protoEntry
	pending map[int]chan struct{}
}

type protoEntry struct {
	file  protoreflect.FileDescriptor
	err   error     // why records of this id are bad
	until time.Time // when a "not found" expires (zero: never)
}

// errUnknownSchema wraps answers that a record's schema id is unusable:
// the record goes to the dead letters.
var errUnknownSchema = errors.New("unknown schema")

func newProtoSchemas(reg registryClient, name string) *protoSchemas {
	return &protoSchemas{reg: reg, name: name, byID: map[int]*protoEntry{}, pending: map[int]chan struct{}{}}
}

// file returns the compiled schema of id. An error wrapping
// errUnknownSchema is about the id (dead-letter the record); a
// *fatalError is about the registry (fail the job).
func (r *protoSchemas) file(id int) (protoreflect.FileDescriptor, error) {
	for {
		r.mu.Lock()
		if e, ok := r.byID[id]; ok && (e.until.IsZero() || time.Now().Before(e.until)) {
			r.mu.Unlock()
			return e.file, e.err
		}
		if ch, ok := r.pending[id]; ok {
			r.mu.Unlock()
			<-ch
			continue
		}
		ch := make(chan struct{})
		r.pending[id] = ch
		r.mu.Unlock()
		e := r.fetch(id)
		r.mu.Lock()
		delete(r.pending, id)
		close(ch)
		if e != nil {
			makeRoom(r.byID, func(e *protoEntry) bool { return expiredNotFound(e.until) })
			r.byID[id] = e
		}
		r.mu.Unlock()
		if e == nil {
			return nil, &fatalError{fmt.Errorf("schema registry %s: schema id %d: unreachable", r.name, id)}
		}
		return e.file, e.err
	}
}

// fetch asks the registry for schema id; nil when it cannot be reached.
func (r *protoSchemas) fetch(id int) *protoEntry {
	ctx, cancel := context.WithTimeout(context.Background(), registryAttempts*registryTimeout)
	defer cancel()
	s, err := withRetry(ctx, func(ctx context.Context) (sr.Schema, error) { return r.reg.SchemaByID(ctx, id) })
	switch {
	case err != nil && notFound(err):
		return &protoEntry{err: fmt.Errorf("%w: schema id %d is unknown to the schema registry (%s)", errUnknownSchema, id, r.name), until: time.Now().Add(unknownIDRetry)}
	case err != nil:
		return nil
	case s.Type != sr.TypeProtobuf:
		return &protoEntry{err: fmt.Errorf("%w: schema id %d is a %s schema, not PROTOBUF", errUnknownSchema, id, s.Type)}
	}
	srcs := map[string]string{}
	main := fmt.Sprintf("registry-schema-%d.proto", id)
	srcs[main] = s.Schema
	if err := r.addReferences(ctx, s.References, srcs, 0); err != nil {
		if errors.Is(err, errUnknownSchema) {
			return &protoEntry{err: err}
		}
		return nil
	}
	fd, err := compileProtoSources(srcs, main)
	if err != nil {
		return &protoEntry{err: fmt.Errorf("%w: schema id %d does not compile: %s", errUnknownSchema, id, oneLine(err.Error()))}
	}
	return &protoEntry{file: fd}
}

// addReferences fetches the schemas a schema references (its imports),
// by subject and version, into srcs keyed by their import names.
func (r *protoSchemas) addReferences(ctx context.Context, refs []sr.SchemaReference, srcs map[string]string, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: references nested more than 32 deep", errUnknownSchema)
	}
	for _, ref := range refs {
		if _, ok := srcs[ref.Name]; ok {
			continue
		}
		ss, err := withRetry(ctx, func(ctx context.Context) (sr.SubjectSchema, error) {
			return r.reg.SchemaByVersion(ctx, ref.Subject, ref.Version)
		})
		if err != nil {
			if clientError(err) {
				return fmt.Errorf("%w: reference %s (subject %s version %d): %v", errUnknownSchema, ref.Name, ref.Subject, ref.Version, err)
			}
			return err
		}
		srcs[ref.Name] = ss.Schema.Schema
		if err := r.addReferences(ctx, ss.References, srcs, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// registerProto registers (or, with register false, looks up) a Protobuf
// schema under subject and returns its id. The files it imports (deps,
// dependencies first) are registered (or looked up) before it, each
// under its import path as subject, as Confluent's serializers do by
// default, and referenced by name (the import path), subject and the
// version the registry gave.
// imports are the file's own imports among deps.
func registerProto(ctx context.Context, reg registryClient, name, subject, text string, imports []string, deps []protoDep, register bool) (int, error) {
	versions := map[string]int{}
	refsOf := func(imports []string) []sr.SchemaReference {
		var refs []sr.SchemaReference
		for _, p := range imports {
			refs = append(refs, sr.SchemaReference{Name: p, Subject: p, Version: versions[p]})
		}
		return refs
	}
	for _, d := range deps {
		ss, err := registerOne(ctx, reg, name, d.path, sr.Schema{Schema: d.text, Type: sr.TypeProtobuf, References: refsOf(d.imports)}, register)
		if err != nil {
			return 0, fmt.Errorf("%w (the import %s, a reference of the output schema)", err, d.path)
		}
		versions[d.path] = ss.Version
	}
	ss, err := registerOne(ctx, reg, name, subject, sr.Schema{Schema: text, Type: sr.TypeProtobuf, References: refsOf(imports)}, register)
	if err != nil {
		return 0, err
	}
	return ss.ID, nil
}

func registerOne(ctx context.Context, reg registryClient, name, subject string, s sr.Schema, register bool) (sr.SubjectSchema, error) {
	if register {
		ss, err := withRetry(ctx, func(ctx context.Context) (sr.SubjectSchema, error) { return reg.CreateSchema(ctx, subject, s) })
		if err != nil {
			return ss, fmt.Errorf("schema registry %s: registering the output schema under %s: %w", name, subject, err)
		}
		return ss, nil
	}
	lk, ok := reg.(interface {
		LookupSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error)
	})
	if !ok {
		return sr.SubjectSchema{}, fmt.Errorf("schema registry %s: cannot look schemas up (register: false)", name)
	}
	ss, err := withRetry(ctx, func(ctx context.Context) (sr.SubjectSchema, error) { return lk.LookupSchema(ctx, subject, s) })
	if err != nil {
		return ss, fmt.Errorf("schema registry %s: looking up the output schema under %s (register: false): %w", name, subject, err)
	}
	return ss, nil
}

// protoRegistryFor returns the registry client of a protobuf source or
// sink (its own, the spec's, or the host's), or nil when none applies.
//
// The embedded registry of `sluice run` (host.Registry) serves log:
// connectors only, as for avro: the schema ids of a Kafka topic belong to
// the registry its producers and consumers use, which must be named.
func protoRegistryFor(sc *FormatSchemaSpec, top *RegistrySpec, host *Host, connector string) (registryClient, string, error) {
	r := sc.Registry
	if r == nil {
		r = top
	}
	if r != nil {
		c, err := r.client()
		if err != nil {
			return nil, "", err
		}
		return c, strings.Join(r.URLs, ","), nil
	}
	if connector != "kafka" && host != nil && host.Registry != nil {
		return host.Registry, "the embedded registry", nil
	}
	return nil, "", nil
}

// compileProtoSources compiles the file main of srcs (name -> schema
// text: .proto source, or a base64 FileDescriptorProto as Confluent's
// Python serializer registers); google/protobuf/*.proto are built in.
func compileProtoSources(srcs map[string]string, main string) (protoreflect.FileDescriptor, error) {
	return schema.CompileProtobuf(srcs, main)
}
