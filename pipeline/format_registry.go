package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// schemaRegistry is a client of a Confluent-compatible schema registry
// with the caches that keep it off the hot path: a schema is fetched and
// compiled once per id, an id the registry does not know is asked again
// only after unknownIDRetry. It is safe for concurrent use.
type schemaRegistry struct {
	cl  *sr.Client
	url string

	mu      sync.Mutex
	byID    map[int]*registryEntry
	pending map[int]chan struct{}
}

type registryEntry struct {
	file protoreflect.FileDescriptor
	err  error // a permanent error: unknown id, not protobuf, does not compile
	at   time.Time
}

// unknownIDRetry is how long an id the registry did not know is
// remembered as unknown.
const unknownIDRetry = 10 * time.Second

// registryTries is how often a request the registry could not answer
// (network, 5xx) is tried before the job fails.
const registryTries = 4

// errRegistry wraps failures to reach the registry: they fail the job
// (the records are fine; the registry is not there).
var errRegistry = errors.New("schema registry unavailable")

// errUnknownSchema wraps answers that a record's schema id is unusable:
// the record goes to the dead letters.
var errUnknownSchema = errors.New("unknown schema")

// client returns the registry's client, made on first use and shared
// by every source and sink that names this registry block.
func (spec *RegistrySpec) client() (*schemaRegistry, error) {
	spec.once.Do(func() { spec.cl, spec.clErr = newSchemaRegistry(spec) })
	return spec.cl, spec.clErr
}

func newSchemaRegistry(spec *RegistrySpec) (*schemaRegistry, error) {
	opts := []sr.ClientOpt{sr.URLs(spec.URL), sr.HTTPClient(&http.Client{Timeout: 15 * time.Second}), sr.UserAgent("sluice")}
	switch {
	case spec.Username != "":
		pw := string(spec.Password)
		if spec.PasswordEnv != "" {
			pw = os.Getenv(spec.PasswordEnv)
			if pw == "" {
				return nil, spec.Pos.errorf("environment variable %s (the registry password) is empty or not set", spec.PasswordEnv)
			}
		}
		opts = append(opts, sr.BasicAuth(spec.Username, pw))
	case spec.Token != "" || spec.TokenEnv != "":
		tok := string(spec.Token)
		if spec.TokenEnv != "" {
			tok = os.Getenv(spec.TokenEnv)
			if tok == "" {
				return nil, spec.Pos.errorf("environment variable %s (the registry token) is empty or not set", spec.TokenEnv)
			}
		}
		opts = append(opts, sr.BearerToken(tok))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, spec.Pos.errorf("schema registry: %v", err)
	}
	return &schemaRegistry{cl: cl, url: spec.URL, byID: map[int]*registryEntry{}, pending: map[int]chan struct{}{}}, nil
}

// retry runs fn until it succeeds, fails with an answer of the registry
// (a *sr.ResponseError below 500), or has been tried registryTries times.
func (r *schemaRegistry) retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	backoff := 100 * time.Millisecond
	var err error
	for try := 0; try < registryTries; try++ {
		if try > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w: %s: %w", errRegistry, what, ctx.Err())
			case <-t.C:
			}
			backoff *= 4
		}
		err = fn(ctx)
		var re *sr.ResponseError
		if err == nil || (errors.As(err, &re) && re.StatusCode < 500) {
			return err
		}
	}
	return fmt.Errorf("%w: %s at %s: %w", errRegistry, what, r.url, err)
}

// protoFile returns the compiled Protobuf schema of id. An error wrapping
// errUnknownSchema is about the id (dead-letter the record); one wrapping
// errRegistry is about the registry (fail the job).
func (r *schemaRegistry) protoFile(ctx context.Context, id int) (protoreflect.FileDescriptor, error) {
	for {
		r.mu.Lock()
		if e, ok := r.byID[id]; ok && (e.err == nil || time.Since(e.at) < unknownIDRetry) {
			r.mu.Unlock()
			return e.file, e.err
		}
		if ch, ok := r.pending[id]; ok {
			r.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", errRegistry, ctx.Err())
			}
		}
		ch := make(chan struct{})
		r.pending[id] = ch
		r.mu.Unlock()
		fd, err := r.fetchProto(ctx, id)
		r.mu.Lock()
		delete(r.pending, id)
		close(ch)
		if err == nil || errors.Is(err, errUnknownSchema) {
			r.byID[id] = &registryEntry{file: fd, err: err, at: time.Now()}
		}
		r.mu.Unlock()
		return fd, err
	}
}

func (r *schemaRegistry) fetchProto(ctx context.Context, id int) (protoreflect.FileDescriptor, error) {
	var s sr.Schema
	err := r.retry(ctx, fmt.Sprintf("schema %d", id), func(ctx context.Context) error {
		var err error
		s, err = r.cl.SchemaByID(ctx, id)
		return err
	})
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%w: schema id %d: %s", errUnknownSchema, id, re.Message)
		}
		return nil, err
	}
	if s.Type != sr.TypeProtobuf {
		return nil, fmt.Errorf("%w: schema id %d is %s, not PROTOBUF", errUnknownSchema, id, s.Type)
	}
	srcs := map[string]string{}
	main := fmt.Sprintf("registry-schema-%d.proto", id)
	srcs[main] = s.Schema
	if err := r.addReferences(ctx, s.References, srcs, 0); err != nil {
		return nil, err
	}
	fd, err := compileProtoSources(srcs, main)
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d: %w", errUnknownSchema, id, err)
	}
	return fd, nil
}

// addReferences fetches the schemas a schema references (imports), by
// subject and version, into srcs keyed by their import names.
func (r *schemaRegistry) addReferences(ctx context.Context, refs []sr.SchemaReference, srcs map[string]string, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: references nested more than 32 deep", errUnknownSchema)
	}
	for _, ref := range refs {
		if _, ok := srcs[ref.Name]; ok {
			continue
		}
		var ss sr.SubjectSchema
		err := r.retry(ctx, fmt.Sprintf("reference %s (subject %s version %d)", ref.Name, ref.Subject, ref.Version), func(ctx context.Context) error {
			var err error
			ss, err = r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
			return err
		})
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) {
				return fmt.Errorf("%w: reference %s: %s", errUnknownSchema, ref.Name, re.Message)
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

// register registers (or, with register false, looks up) a Protobuf
// schema under subject and returns its id.
func (r *schemaRegistry) register(ctx context.Context, subject, text string, register bool) (int, error) {
	s := sr.Schema{Schema: text, Type: sr.TypeProtobuf}
	var id int
	what := "registering the schema under subject " + subject
	if !register {
		what = "looking up the schema under subject " + subject
	}
	err := r.retry(ctx, what, func(ctx context.Context) error {
		var ss sr.SubjectSchema
		var err error
		if register {
			ss, err = r.cl.CreateSchema(ctx, subject, s)
		} else {
			ss, err = r.cl.LookupSchema(ctx, subject, s)
		}
		id = ss.ID
		return err
	})
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) {
			return 0, fmt.Errorf("schema registry %s: %s: %s (error code %d)", r.url, what, re.Message, re.ErrorCode)
		}
		return 0, err
	}
	return id, nil
}

// compileProtoSources compiles the file main of srcs (name -> source
// text); google/protobuf/*.proto are built in.
func compileProtoSources(srcs map[string]string, main string) (protoreflect.FileDescriptor, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(srcs),
	}), MaxParallelism: 1}
	files, err := c.Compile(context.Background(), main)
	if err != nil {
		return nil, err
	}
	return files[0], nil
}
