package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

// SchemasTopic is the compacted internal topic of the log that holds the
// registry, named as Confluent's registry names its own.
const SchemasTopic = "_schemas"

// Registry is a schema registry kept in SchemasTopic. It is safe for
// concurrent use; writes are serialised and durable (fsynced) before they
// return and before anyone can read them.
type Registry struct {
	kv     kvStore
	logger *slog.Logger

	mu sync.RWMutex
	st *state
	// stale is set when a write failed without a known outcome: its
	// records may be in the topic although memory does not have them.
	// The next write re-reads the topic first (refresh). fenced are the
	// ids that failed writes tried to give, with the identity of their
	// schema: never given to another schema in this process, whether or
	// not the write landed.
	stale  bool
	fenced map[int]string

	pmu    sync.Mutex
	parsed map[int]parsed // compiled schemas by id, filled on demand

	parseHook func() // tests: called before a client's schema is parsed
}

// Open opens the registry of l, creating its topic when it does not
// exist, and replays it. Records it cannot read (the topic is a topic like
// any other, which a Kafka client could write to) are logged and skipped.
func Open(ctx context.Context, l *logstore.Log, logger *slog.Logger) (*Registry, error) {
	kv, err := kvtopic.Open(l, SchemasTopic)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	return openStore(ctx, kv, logger)
}

// kvStore is what the registry needs of its topic (kvtopic.Topic); tests
// put faults between the two.
type kvStore interface {
	Replay(ctx context.Context, fn func(key, value []byte)) error
	PutAll(ctx context.Context, entries []kvtopic.Entry) error
}

// openStore opens the registry kept in kv.
func openStore(ctx context.Context, kv kvStore, logger *slog.Logger) (*Registry, error) {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Registry{kv: kv, logger: logger, parsed: map[int]parsed{}}
	skipped, err := r.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	logger.Info("schema registry open", "subjects", len(r.st.subjects), "schemas", len(r.st.schemas), "skipped_records", skipped)
	return r, nil
}

// load replays the whole topic into a new state and makes it the
// registry's (mu held for writing, or r not shared yet). It returns how
// many records it skipped.
func (r *Registry) load(ctx context.Context) (int, error) {
	st := newState()
	skipped := 0
	err := r.kv.Replay(ctx, func(k, v []byte) {
		if err := st.apply(k, v); err != nil {
			skipped++
			r.logger.Warn("schema registry: skipping a record of "+SchemasTopic, "err", err)
		}
	})
	if err != nil {
		return 0, err
	}
	r.st = st
	r.pmu.Lock()
	clear(r.parsed) // an id's schema may differ from the one compiled
	r.pmu.Unlock()
	// Identity keys need compiled schemas, which need their references:
	// computed once everything is loaded (compaction does not keep a
	// referenced version's record ahead of the records referring to it).
	for id, e := range st.schemas {
		p, err := r.compile(id)
		if err != nil {
			r.logger.Warn("schema registry: a stored schema does not compile", "id", id, "err", err)
			continue
		}
		e.key = identity(e.Schema, p)
		if _, dup := st.byKey[e.key]; !dup || id < st.byKey[e.key] {
			st.byKey[e.key] = id
		}
	}
	return skipped, nil
}

// nextID is the id a new schema gets: above every id the topic has
// given and every id a failed write tried to give (mu held).
func (r *Registry) nextID() int {
	id := r.st.maxID
	for f := range r.fenced {
		id = max(id, f)
	}
	return id + 1
}

// fencedFor reports whether id is fenced off for a schema of another
// identity than key (mu held).
func (r *Registry) fencedFor(id int, key string) bool {
	k, ok := r.fenced[id]
	return ok && k != key
}

// lockForWrite takes mu for writing and brings memory up to date with
// the topic after a failed write; on an error mu is not held.
func (r *Registry) lockForWrite(ctx context.Context) error {
	r.mu.Lock()
	if err := r.refresh(ctx); err != nil {
		r.mu.Unlock()
		return err
	}
	return nil
}

// refreshTimeout bounds the re-read of the topic right after a failed
// write (a later write re-reads it under its own context).
const refreshTimeout = 10 * time.Second

// refresh re-reads the topic after a write whose outcome is unknown
// (mu held for writing): memory then has whatever of it reached the
// log. Writes are refused until it succeeds.
func (r *Registry) refresh(ctx context.Context) error {
	if !r.stale {
		return nil
	}
	if _, err := r.load(ctx); err != nil {
		return errorf(CodeStoreError, "Error while re-reading the schema registry's state after a failed write (%v): retry later", err)
	}
	r.stale = false
	return nil
}

// identity is what makes two registrations the same schema: type,
// canonical form and references (an empty list of references is none:
// clients send either, and a stored record drops an empty list).
func identity(s Schema, p parsed) string {
	var refs []byte
	if len(s.References) > 0 {
		refs, _ = json.Marshal(s.References)
	}
	return string(s.Type) + "\x00" + p.canonical() + "\x00" + string(refs)
}

// commit writes entries durably, then applies them to memory.
//
// A write that fails may still have reached the log (an append that
// timed out after the batch was assigned its offset, an fsync error after
// the write): its outcome is unknown. The registry then re-reads the
// topic (at once, and before every later write until that succeeds), so
// that what did land is in memory before anything is allocated from it;
// and the ids of the failed write are fenced off (allocate never gives
// them again), for a record that lands after the re-read or shows only
// after a restart. The caller holds mu for writing and has called
// refresh.
func (r *Registry) commit(ctx context.Context, entries []kvtopic.Entry) error {
	if err := r.kv.PutAll(ctx, entries); err != nil {
		r.stale = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		rerr := r.refresh(rctx)
		cancel()
		if rerr != nil {
			r.logger.Warn("schema registry: re-reading "+SchemasTopic+" after a failed write", "err", rerr)
		}
		return errorf(CodeStoreError, "Error while storing the schema registry's state (it may or may not have been stored): %v", err)
	}
	deleted := false
	for _, e := range entries {
		if err := r.st.apply(e.Key, e.Value); err != nil {
			return errorf(CodeStoreError, "Error while applying the schema registry's state: %v", err)
		}
		deleted = deleted || e.Value == nil
	}
	if deleted {
		// A schema no version uses any more is gone, and its id may be
		// given again in IMPORT mode: forget its compiled form.
		r.pmu.Lock()
		for id := range r.parsed {
			if r.st.schemas[id] == nil {
				delete(r.parsed, id)
			}
		}
		r.pmu.Unlock()
	}
	return nil
}

// compile returns schema id compiled, from the cache when it can. The
// caller holds mu (read or write).
func (r *Registry) compile(id int) (parsed, error) {
	r.pmu.Lock()
	p, ok := r.parsed[id]
	r.pmu.Unlock()
	if ok {
		return p, nil
	}
	e := r.st.schemas[id]
	if e == nil {
		return nil, schemaNotFound(id)
	}
	deps, err := r.dependencies(e.References)
	if err != nil {
		return nil, err
	}
	p, err = parseSchema(e.Schema, deps)
	if err != nil {
		return nil, err
	}
	r.pmu.Lock()
	r.parsed[id] = p
	r.pmu.Unlock()
	return p, nil
}

// dependencies resolves references transitively, each dependency after
// its own. References form a graph (two schemas may refer to one): each
// subject version's own references are walked once. The caller holds mu.
func (r *Registry) dependencies(refs []Reference) ([]dependency, error) {
	var out []dependency
	named := map[string]bool{}
	visiting := map[string]bool{}
	walked := map[string]bool{}
	var walk func(refs []Reference) error
	walk = func(refs []Reference) error {
		for _, ref := range refs {
			if ref.Name == "" {
				return errorf(CodeInvalidSchema, "Invalid schema: a reference has no name")
			}
			e, err := r.versionEntry(ref.Subject, ref.Version, true)
			if err != nil {
				var re *Error
				msg := err.Error()
				if errors.As(err, &re) {
					msg = re.Message
				}
				return errorf(CodeInvalidSchema, "Invalid schema: reference %q to subject %q version %d: %s", ref.Name, ref.Subject, ref.Version, msg)
			}
			sv := fmt.Sprintf("%s\x00%d", ref.Subject, e.version)
			if visiting[sv] {
				return errorf(CodeInvalidSchema, "Invalid schema: reference cycle through subject %q version %d", ref.Subject, e.version)
			}
			s := r.st.schemas[e.id]
			if !walked[sv] {
				visiting[sv] = true
				if err := walk(s.References); err != nil {
					return err
				}
				delete(visiting, sv)
				walked[sv] = true
			}
			if !named[ref.Name] {
				named[ref.Name] = true
				out = append(out, dependency{name: ref.Name, schema: s.Schema})
			}
		}
		return nil
	}
	if err := walk(refs); err != nil {
		return nil, err
	}
	return out, nil
}

// versionEntry finds a subject's version (latestVersion: the latest one),
// soft-deleted ones too when deleted is set. The caller holds mu.
func (r *Registry) versionEntry(subject string, version int, deleted bool) (*versionEntry, error) {
	all := r.st.subjects[subject]
	vs := r.st.live(subject, deleted)
	if len(vs) == 0 {
		return nil, subjectNotFound(subject)
	}
	if version == latestVersion {
		return vs[len(vs)-1], nil
	}
	i, found := r.st.findVersion(subject, version)
	if !found || (all[i].deleted && !deleted) {
		return nil, versionNotFound(subject, version)
	}
	return all[i], nil
}

func (r *Registry) subjectSchema(subject string, e *versionEntry) SubjectSchema {
	return SubjectSchema{Subject: subject, Version: e.version, ID: e.id, Deleted: e.deleted, Schema: r.st.schemas[e.id].Schema}
}

// effectiveConfig is a subject's config, else the global one.
func (r *Registry) effectiveConfig(subject string) Config {
	if c, ok := r.st.config[subject]; ok {
		return c
	}
	if c, ok := r.st.config[""]; ok {
		return c
	}
	return Config{Compatibility: DefaultLevel}
}

// effectiveMode is a subject's mode, else the global one; a global
// READONLY_OVERRIDE wins over the subject's own mode (that is what it
// overrides, as in Confluent's registry).
func (r *Registry) effectiveMode(subject string) Mode {
	g, global := r.st.mode[""]
	if m, ok := r.st.mode[subject]; ok && g != ReadOnlyOverride {
		return m
	}
	if global {
		return g
	}
	return ReadWrite
}

// prepared is a schema from a request, compiled, with its identity.
type prepared struct {
	Schema
	p   parsed
	key string
}

// prepare checks and compiles a schema sent by a client. The caller holds
// mu.
func (r *Registry) prepare(s Schema) (prepared, error) {
	rs, err := r.resolve(s)
	if err != nil {
		return prepared{}, err
	}
	return r.compileResolved(rs)
}

// resolved is a schema sent by a client with its type checked and its
// references pinned and resolved.
type resolved struct {
	s    Schema
	deps []dependency
}

// same reports whether o resolved to the same texts as rs.
func (rs resolved) same(o resolved) bool {
	eq := func(a, b Schema) bool {
		return a.Type == b.Type && a.Text == b.Text && slices.Equal(a.References, b.References)
	}
	return eq(rs.s, o.s) && slices.EqualFunc(rs.deps, o.deps, func(a, b dependency) bool {
		return a.name == b.name && eq(a.schema, b.schema)
	})
}

// resolve checks a client's schema and resolves its references. The
// caller holds mu.
func (r *Registry) resolve(s Schema) (resolved, error) {
	if strings.TrimSpace(s.Text) == "" {
		return resolved{}, errorf(CodeInvalidSchema, "Invalid schema: the schema is empty")
	}
	t, err := parseType(string(s.Type))
	if err != nil {
		return resolved{}, err
	}
	s.Type = t
	s.References = r.pinReferences(s.References)
	deps, err := r.dependencies(s.References)
	if err != nil {
		return resolved{}, err
	}
	return resolved{s: s, deps: deps}, nil
}

// compileResolved refuses a schema over the limits (limits.go), else
// compiles it. It needs no lock.
func (r *Registry) compileResolved(rs resolved) (prepared, error) {
	var err error
	if rs.s.Type == Avro {
		var texts []string
		for _, d := range rs.deps {
			texts = append(texts, d.schema.Text)
		}
		err = checkAvroLimits(rs.s.Text, texts)
	} else {
		err = checkSizeLimit(rs.s.Text)
	}
	if err != nil {
		return prepared{}, errorf(CodeInvalidSchema, "Invalid schema: %v", err)
	}
	if r.parseHook != nil {
		r.parseHook()
	}
	p, err := parseSchema(rs.s, rs.deps)
	if err != nil {
		return prepared{}, err
	}
	return prepared{Schema: rs.s, p: p, key: identity(rs.s, p)}, nil
}

// pinReferences returns refs with each reference to the latest version
// (-1) replaced by that version's number (Confluent's registry resolves -1
// the same way when it looks a schema up): a registered schema then keeps
// meaning what it meant (its identity, the versions it holds on to and
// its compiled form do not move when the referenced subject gets a new
// version, nor across a restart). A reference to a subject without
// versions is left for dependencies to refuse. The caller holds mu.
func (r *Registry) pinReferences(refs []Reference) []Reference {
	var out []Reference
	for i, ref := range refs {
		if ref.Version != latestVersion {
			continue
		}
		e, err := r.versionEntry(ref.Subject, latestVersion, true)
		if err != nil {
			continue
		}
		if out == nil {
			out = slices.Clone(refs)
		}
		out[i].Version = e.version
	}
	if out == nil {
		return refs
	}
	return out
}

// previous compiles a subject's live versions, oldest first. The caller
// holds mu.
func (r *Registry) previous(subject string) ([]prior, error) {
	var out []prior
	for _, e := range r.st.live(subject, false) {
		p, err := r.compile(e.id)
		if err != nil {
			return nil, errorf(CodeStoreError, "Stored schema %d of subject '%s' version %d does not compile: %v", e.id, subject, e.version, err)
		}
		out = append(out, prior{version: e.version, schema: p})
	}
	return out, nil
}

// RegisterOptions are the optional parts of a registration. ID and
// Version (zero or negative: none) are for IMPORT mode, which keeps
// another registry's ids and versions.
type RegisterOptions struct {
	ID, Version int
}

// Register registers s under subject and returns the subject version it
// is at: an existing live version when the subject already has this
// schema, else a new version, under the schema's existing global id if the
// same schema is registered elsewhere, else a new id. A schema
// incompatible with the subject's earlier versions under its compatibility
// level is refused (error code 409).
func (r *Registry) Register(ctx context.Context, subject string, s Schema, opts RegisterOptions) (SubjectSchema, error) {
	if err := validSubject(subject); err != nil {
		return SubjectSchema{}, err
	}
	// The schema is parsed before the write lock is taken, so that a
	// slow parse holds up no one; under the lock its references are
	// resolved again, and in the rare case that they changed meanwhile
	// (a version deleted, the state re-read after a failed write) it is
	// parsed again.
	r.mu.RLock()
	rs, rerr := r.resolve(s)
	r.mu.RUnlock()
	var (
		ps   prepared
		perr error
	)
	if rerr == nil {
		ps, perr = r.compileResolved(rs)
	}
	if err := r.lockForWrite(ctx); err != nil {
		return SubjectSchema{}, err
	}
	defer r.mu.Unlock()
	mode := r.effectiveMode(subject)
	if mode.readOnly() {
		return SubjectSchema{}, errorf(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	if opts.ID > 0 && mode != Import {
		return SubjectSchema{}, errorf(CodeOperationNotPermitted, "Subject %s is not in import mode: a schema id cannot be given", subject)
	}
	now, err := r.resolve(s)
	if err != nil {
		return SubjectSchema{}, err
	}
	if rerr != nil || !now.same(rs) {
		ps, perr = r.compileResolved(now)
	}
	if perr != nil {
		return SubjectSchema{}, perr
	}
	vs := r.st.subjects[subject]
	// The same schema already live under the subject: nothing to write.
	for i := len(vs) - 1; i >= 0; i-- {
		e := vs[i]
		if !e.deleted && r.st.schemas[e.id].key == ps.key && (opts.ID <= 0 || opts.ID == e.id) {
			return r.subjectSchema(subject, e), nil
		}
	}
	id, known := r.st.byKey[ps.key]
	switch {
	case opts.ID > 0 && known && opts.ID != id:
		return SubjectSchema{}, errorf(CodeIDDoesNotMatch, "Schema already registered with id %d instead of input id %d", id, opts.ID)
	case opts.ID > 0 && !known:
		if _, used := r.st.schemas[opts.ID]; used || r.fencedFor(opts.ID, ps.key) {
			return SubjectSchema{}, errorf(CodeIDDoesNotMatch, "Schema id %d is already used by another schema", opts.ID)
		}
		id = opts.ID
	case !known:
		id = r.nextID()
		// The same schema again after a failed write: the id that
		// write gave it, which it may have in the topic.
		for f, k := range r.fenced {
			if k == ps.key && r.st.schemas[f] == nil && f < id {
				id = f
			}
		}
	}
	latest := 0
	if len(vs) > 0 {
		latest = vs[len(vs)-1].version
	}
	version := latest + 1
	if opts.Version > 0 {
		if _, found := r.st.findVersion(subject, opts.Version); found {
			return SubjectSchema{}, errorf(CodeInvalidVersion, "Version %d of subject '%s' already exists", opts.Version, subject)
		}
		if mode != Import && opts.Version != version {
			return SubjectSchema{}, errorf(CodeInvalidVersion, "Version %d is not the next version (%d) of subject '%s'", opts.Version, version, subject)
		}
		version = opts.Version
	}
	if mode != Import {
		prev, err := r.previous(subject)
		if err != nil {
			return SubjectSchema{}, err
		}
		if msgs := checkCompatibility(r.effectiveConfig(subject).Compatibility, ps.p, prev); len(msgs) > 0 {
			return SubjectSchema{}, errorf(CodeIncompatibleSchema, "Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]", subject, strings.Join(msgs, "; "))
		}
	}
	rec, _ := json.Marshal(versionRecord{Subject: subject, Version: version, ID: id, Type: ps.Type, Schema: ps.Text, References: ps.References})
	entries := []kvtopic.Entry{{Key: versionKey(subject, version), Value: rec}}
	if id > r.st.maxID {
		m, _ := json.Marshal(maxIDRecord{MaxID: id})
		entries = append(entries, kvtopic.Entry{Key: []byte(keyMaxID), Value: m})
	}
	if err := r.commit(ctx, entries); err != nil {
		if r.fenced == nil {
			r.fenced = map[int]string{}
		}
		r.fenced[id] = ps.key
		return SubjectSchema{}, err
	}
	if e := r.st.schemas[id]; e.key == "" {
		e.key = ps.key
		r.st.byKey[ps.key] = id
		r.pmu.Lock()
		r.parsed[id] = ps.p
		r.pmu.Unlock()
	}
	i, _ := r.st.findVersion(subject, version)
	return r.subjectSchema(subject, r.st.subjects[subject][i]), nil
}

// Lookup finds s among the versions of subject (soft-deleted ones too
// with deleted), the latest matching version first.
func (r *Registry) Lookup(subject string, s Schema, deleted bool) (SubjectSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.st.live(subject, deleted)
	if len(vs) == 0 {
		return SubjectSchema{}, subjectNotFound(subject)
	}
	ps, err := r.prepare(s)
	if err != nil {
		return SubjectSchema{}, err
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if r.st.schemas[vs[i].id].key == ps.key {
			return r.subjectSchema(subject, vs[i]), nil
		}
	}
	return SubjectSchema{}, errorf(CodeSchemaNotFound, "Schema not found under subject '%s'", subject)
}

// Subjects lists subjects with a live version (with deleted: with any
// version; with deletedOnly: with soft-deleted versions only), sorted,
// those starting with prefix.
func (r *Registry) Subjects(prefix string, deleted, deletedOnly bool) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for s, vs := range r.st.subjects {
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		live := len(r.st.live(s, false)) > 0
		if deletedOnly && !live || !deletedOnly && (live || deleted) && len(vs) > 0 {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// Versions lists a subject's version numbers, ascending.
func (r *Registry) Versions(subject string, deleted bool) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.st.live(subject, deleted)
	if len(vs) == 0 {
		return nil, subjectNotFound(subject)
	}
	out := make([]int, len(vs))
	for i, e := range vs {
		out[i] = e.version
	}
	return out, nil
}

// Version returns a subject's version (-1: the latest).
func (r *Registry) Version(subject string, version int, deleted bool) (SubjectSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, err := r.versionEntry(subject, version, deleted)
	if err != nil {
		return SubjectSchema{}, err
	}
	return r.subjectSchema(subject, e), nil
}

// AllSchemas returns the versions of every subject starting with prefix
// (only each subject's latest with latestOnly), by subject then version.
func (r *Registry) AllSchemas(prefix string, deleted, latestOnly bool) []SubjectSchema {
	r.mu.RLock()
	defer r.mu.RUnlock()
	subjects := make([]string, 0, len(r.st.subjects))
	for s := range r.st.subjects {
		if strings.HasPrefix(s, prefix) {
			subjects = append(subjects, s)
		}
	}
	sort.Strings(subjects)
	out := []SubjectSchema{}
	for _, s := range subjects {
		vs := r.st.live(s, deleted)
		if latestOnly && len(vs) > 0 {
			vs = vs[len(vs)-1:]
		}
		for _, e := range vs {
			out = append(out, r.subjectSchema(s, e))
		}
	}
	return out
}

// SchemaByID returns the schema with a global id.
func (r *Registry) SchemaByID(id int) (Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.st.schemas[id]
	if e == nil {
		return Schema{}, schemaNotFound(id)
	}
	return e.Schema, nil
}

// SubjectVersion names a version of a subject.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// VersionsByID lists the subject versions that use schema id.
func (r *Registry) VersionsByID(id int, deleted bool) ([]SubjectVersion, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.st.schemas[id] == nil {
		return nil, schemaNotFound(id)
	}
	out := []SubjectVersion{}
	for s := range r.st.subjects {
		for _, e := range r.st.live(s, deleted) {
			if e.id == id {
				out = append(out, SubjectVersion{Subject: s, Version: e.version})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Subject < out[j].Subject || out[i].Subject == out[j].Subject && out[i].Version < out[j].Version
	})
	return out, nil
}

// ReferencedBy lists the ids of the schemas of live versions that refer
// to a subject's version, ascending.
func (r *Registry) ReferencedBy(subject string, version int) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, err := r.versionEntry(subject, version, false)
	if err != nil {
		return nil, err
	}
	return r.referencedBy(subject, e.version, false), nil
}

// referencedBy lists the ids of the schemas of versions (soft-deleted
// ones too with deleted) that refer to subject's version. The caller holds
// mu.
func (r *Registry) referencedBy(subject string, version int, deleted bool) []int {
	ids := map[int]bool{}
	for s := range r.st.subjects {
		for _, e := range r.st.live(s, deleted) {
			for _, ref := range r.st.schemas[e.id].References {
				if ref.Subject != subject {
					continue
				}
				v := ref.Version
				if v == latestVersion {
					if l := r.st.live(subject, true); len(l) > 0 {
						v = l[len(l)-1].version
					}
				}
				if v == version {
					ids[e.id] = true
				}
			}
		}
	}
	out := make([]int, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// DeleteSubject soft deletes a subject's live versions, or, with
// permanent, removes a soft-deleted subject's versions (and its config and
// mode) for good; it returns the versions deleted. Versions that other
// schemas refer to cannot be deleted (error code 42206).
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	if err := r.lockForWrite(ctx); err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	if r.effectiveMode(subject).readOnly() {
		return nil, errorf(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	all := r.st.subjects[subject]
	if len(all) == 0 {
		return nil, subjectNotFound(subject)
	}
	live := r.st.live(subject, false)
	if permanent && len(live) > 0 {
		return nil, errorf(CodeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subject)
	}
	if !permanent && len(live) == 0 {
		return nil, errorf(CodeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)
	}
	targets := live
	if permanent {
		targets = all
	}
	var entries []kvtopic.Entry
	var versions []int
	for _, e := range targets {
		if refs := r.referencedBy(subject, e.version, permanent); len(refs) > 0 {
			return nil, errorf(CodeReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}: schema ids %v", subject, e.version, refs)
		}
		versions = append(versions, e.version)
		entries = append(entries, r.deletion(subject, e, permanent))
	}
	if permanent {
		entries = append(entries, r.settingsDeletion(subject)...)
	}
	if err := r.commit(ctx, entries); err != nil {
		return nil, err
	}
	return versions, nil
}

// settingsDeletion is the records that remove a subject's own config and
// mode, written when its last version is permanently deleted (as
// Confluent's registry does): a subject registered again under that name
// starts from the global settings. The caller holds mu.
func (r *Registry) settingsDeletion(subject string) []kvtopic.Entry {
	var out []kvtopic.Entry
	if _, ok := r.st.config[subject]; ok {
		out = append(out, kvtopic.Entry{Key: configKey(subject)})
	}
	if _, ok := r.st.mode[subject]; ok {
		out = append(out, kvtopic.Entry{Key: modeKey(subject)})
	}
	return out
}

// deletion is the record that deletes a version: the version marked
// deleted, or a tombstone.
func (r *Registry) deletion(subject string, e *versionEntry, permanent bool) kvtopic.Entry {
	if permanent {
		return kvtopic.Entry{Key: versionKey(subject, e.version)}
	}
	s := r.st.schemas[e.id]
	rec, _ := json.Marshal(versionRecord{Subject: subject, Version: e.version, ID: e.id, Type: s.Type, Schema: s.Text, References: s.References, Deleted: true})
	return kvtopic.Entry{Key: versionKey(subject, e.version), Value: rec}
}

// DeleteVersion soft deletes a subject's version (-1: the latest), or,
// with permanent, removes a soft-deleted version for good (the subject's
// config and mode with its last version); it returns the version deleted.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	if err := r.lockForWrite(ctx); err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	if r.effectiveMode(subject).readOnly() {
		return 0, errorf(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	e, err := r.versionEntry(subject, version, true)
	if err != nil {
		return 0, err
	}
	if version == latestVersion && !permanent {
		if e, err = r.versionEntry(subject, version, false); err != nil {
			return 0, err
		}
	}
	switch {
	case permanent && !e.deleted:
		return 0, errorf(CodeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, e.version)
	case !permanent && e.deleted:
		return 0, errorf(CodeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, e.version)
	}
	if refs := r.referencedBy(subject, e.version, permanent); len(refs) > 0 {
		return 0, errorf(CodeReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}: schema ids %v", subject, e.version, refs)
	}
	v := e.version
	entries := []kvtopic.Entry{r.deletion(subject, e, permanent)}
	if permanent && len(r.st.subjects[subject]) == 1 {
		entries = append(entries, r.settingsDeletion(subject)...)
	}
	if err := r.commit(ctx, entries); err != nil {
		return 0, err
	}
	return v, nil
}

// Config returns a subject's config ("": the global one). A subject
// without its own config is error 40408, unless defaultToGlobal.
func (r *Registry) Config(subject string, defaultToGlobal bool) (Config, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.st.config[subject]; ok {
		return c, nil
	}
	if subject != "" && !defaultToGlobal {
		return Config{}, errorf(CodeSubjectCompatNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
	}
	return r.effectiveConfig(""), nil
}

// SetConfig sets a subject's config ("": the global one).
func (r *Registry) SetConfig(ctx context.Context, subject string, c Config) error {
	if subject != "" {
		if err := validSubject(subject); err != nil {
			return err
		}
	}
	if _, err := ParseLevel(string(c.Compatibility)); err != nil {
		return err
	}
	if err := r.lockForWrite(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	v, _ := json.Marshal(c)
	return r.commit(ctx, []kvtopic.Entry{{Key: configKey(subject), Value: v}})
}

// DeleteConfig removes a subject's config (the global one: back to the
// default) and returns what it was.
func (r *Registry) DeleteConfig(ctx context.Context, subject string) (Config, error) {
	if err := r.lockForWrite(ctx); err != nil {
		return Config{}, err
	}
	defer r.mu.Unlock()
	c, ok := r.st.config[subject]
	if !ok {
		if subject != "" {
			return Config{}, errorf(CodeSubjectCompatNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
		}
		return Config{Compatibility: DefaultLevel}, nil
	}
	return c, r.commit(ctx, []kvtopic.Entry{{Key: configKey(subject)}})
}

// Mode returns a subject's mode ("": the global one). A subject without
// its own mode is error 40409, unless defaultToGlobal; under a global
// READONLY_OVERRIDE every subject's mode is READONLY_OVERRIDE.
func (r *Registry) Mode(subject string, defaultToGlobal bool) (Mode, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.st.mode[""] == ReadOnlyOverride {
		return ReadOnlyOverride, nil
	}
	if m, ok := r.st.mode[subject]; ok {
		return m, nil
	}
	if subject != "" && !defaultToGlobal {
		return "", errorf(CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", subject)
	}
	return r.effectiveMode(""), nil
}

// SetMode sets a subject's mode ("": the global one). IMPORT needs the
// subject (the registry, for the global mode) to be empty, unless force.
func (r *Registry) SetMode(ctx context.Context, subject string, m Mode, force bool) error {
	if subject != "" {
		if err := validSubject(subject); err != nil {
			return err
		}
	}
	if _, err := ParseMode(string(m)); err != nil {
		return err
	}
	if err := r.lockForWrite(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if m == Import && !force {
		empty := len(r.st.subjects) == 0
		if subject != "" {
			empty = len(r.st.subjects[subject]) == 0
		}
		if !empty {
			return errorf(CodeOperationNotPermitted, "Cannot import since found existing subjects")
		}
	}
	v, _ := json.Marshal(modeRecord{Mode: m})
	return r.commit(ctx, []kvtopic.Entry{{Key: modeKey(subject), Value: v}})
}

// DeleteMode removes a subject's mode (the global one: back to READWRITE)
// and returns what it was.
func (r *Registry) DeleteMode(ctx context.Context, subject string) (Mode, error) {
	if err := r.lockForWrite(ctx); err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	m, ok := r.st.mode[subject]
	if !ok {
		if subject != "" {
			return "", errorf(CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", subject)
		}
		return ReadWrite, nil
	}
	return m, r.commit(ctx, []kvtopic.Entry{{Key: modeKey(subject)}})
}

// CheckCompatibility checks s against a subject's version under the
// subject's compatibility level and returns why it is incompatible
// (nothing: compatible). version -1 (latest) and 0 (all) check the
// versions the level names (the latest, or all for a transitive level); a
// version number checks that version only. A subject with no version is
// compatible with anything when version is 0.
func (r *Registry) CheckCompatibility(subject string, version int, s Schema) ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ps, err := r.prepare(s)
	if err != nil {
		return nil, err
	}
	level := r.effectiveConfig(subject).Compatibility
	if version == 0 && len(r.st.live(subject, false)) == 0 {
		return nil, nil
	}
	if version > 0 {
		e, err := r.versionEntry(subject, version, false)
		if err != nil {
			return nil, err
		}
		p, err := r.compile(e.id)
		if err != nil {
			return nil, err
		}
		return checkCompatibility(level, ps.p, []prior{{version: e.version, schema: p}}), nil
	}
	if _, err := r.versionEntry(subject, latestVersion, false); err != nil {
		return nil, err
	}
	prev, err := r.previous(subject)
	if err != nil {
		return nil, err
	}
	return checkCompatibility(level, ps.p, prev), nil
}
