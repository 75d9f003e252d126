package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector/lookup"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// This file is the lookup step: each record joined with the current row
// of its key in PostgreSQL or Redis (connector/lookup), batched per
// record batch and cached.

// What a lookup step does with a record whose key has no row.
const (
	OnMissingKeep  = "keep"  // the record goes on, the looked-up fields null
	OnMissingDrop  = "drop"  // the record is dropped
	OnMissingError = "error" // the record fails (dead letter or job failure)
)

// LookupSpec is a lookup step.
type LookupSpec struct {
	Postgres *PostgresLookupSpec
	Redis    *RedisLookupSpec
	// Fields are the looked-up columns added to the record (or to the
	// Into object); for postgres they default to the query's select list.
	Fields []string
	// CacheSize and CacheTTL configure the cache; CacheSize 0: none.
	CacheSize int
	CacheTTL  time.Duration
	// Into, if set, is one field receiving the columns as a JSON object;
	// otherwise each column becomes a field of its own.
	Into      string
	OnMissing string
	Retries   int
	Backoff   time.Duration
	Timeout   time.Duration
	Pos       Pos
	// lookuper, when set (tests), replaces the connector.
	lookuper lookup.Lookuper
	// now, when set (tests), is the cache's clock.
	now func() time.Time
}

// PostgresLookupSpec is the postgres block of a lookup step.
type PostgresLookupSpec struct {
	DSN      string
	Query    string
	Key      []string
	MaxConns int
}

// RedisLookupSpec is the redis block of a lookup step.
type RedisLookupSpec struct {
	Options redis.Options
	Key     string // a template such as "user:{user}"
	Type    string
}

func parseLookup(e *errs, o *obj) *LookupSpec {
	if o == nil {
		return nil
	}
	l := &LookupSpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	pg, rd := o.object("postgres", "dsn, query and key"), o.object("redis", "addr, key and type")
	switch {
	case pg != nil && rd != nil:
		e.at(rd.node, rd.path, "give either postgres or redis, not both")
	case pg == nil && rd == nil:
		e.at(o.node, o.path, "needs a postgres: {dsn, query, key} or redis: {addr, key, type} block")
	}
	if pg != nil {
		p := &PostgresLookupSpec{
			DSN:      pg.reqStr("dsn", "the connection string, like postgres://user@127.0.0.1:5432/db"),
			Query:    pg.reqStr("query", "the SELECT of one key's row, like SELECT name, tier FROM users WHERE id = $1"),
			Key:      pg.strList("key"),
			MaxConns: int(pg.integer("max_conns", 4, 1, 256)),
		}
		if len(p.Key) == 0 {
			e.at(pg.node, pg.sub("key"), "is required: the record fields whose values are the query's $1, $2, ...")
		}
		for i, k := range p.Key {
			if !identRe.MatchString(k) {
				e.at(pg.get("key"), fmt.Sprintf("%s[%d]", pg.sub("key"), i), "%q is not a field name (letters, digits and _)", k)
			}
		}
		if p.Query != "" {
			if n, err := lookup.Params(p.Query); err != nil {
				e.at(pg.get("query"), pg.sub("query"), "%v", err)
			} else if n != len(p.Key) && len(p.Key) > 0 {
				e.at(pg.get("query"), pg.sub("query"), "has %d parameters ($1..$%d) but key lists %d fields: one field per parameter, in order", n, n, len(p.Key))
			}
		}
		pg.done("dsn", "query", "key", "max_conns")
		l.Postgres = p
	}
	if rd != nil {
		r := &RedisLookupSpec{Options: parseRedisOptions(rd)}
		r.Key = rd.reqStr("key", "the Redis key of a record, with {field} placeholders, like user:{user}")
		if r.Key != "" {
			if _, err := lookup.ParseTemplate(r.Key); err != nil {
				e.at(rd.get("key"), rd.sub("key"), "%v", err)
			}
		}
		r.Type = rd.enum("type", lookup.RedisHash, lookup.RedisHash, lookup.RedisString)
		rd.done(append([]string{"key", "type"}, redisConnKeys...)...)
		l.Redis = r
	}
	l.Fields = o.strList("fields")
	for i, f := range l.Fields {
		if !identRe.MatchString(f) {
			e.at(o.get("fields"), fmt.Sprintf("%s[%d]", o.sub("fields"), i), "%q is not a field name (letters, digits and _)", f)
		}
	}
	if l.Redis != nil && len(l.Fields) == 0 && !o.has("fields") {
		e.at(o.node, o.sub("fields"), "is required with redis: the hash fields (or JSON members) to read, like [name, tier]")
	}
	if l.Postgres != nil && l.Postgres.Query != "" {
		cols, ok := lookup.QueryColumns(l.Postgres.Query)
		switch {
		case len(l.Fields) == 0 && !ok:
			e.at(o.node, o.sub("fields"), "is required: the query's columns cannot be read from its select list (SELECT * or an expression without AS); list them, like [name, tier]")
		case len(l.Fields) > 0 && ok && !slices.Equal(cols, l.Fields):
			e.at(o.get("fields"), o.sub("fields"), "lists %s but the query selects %s: leave fields out, or name the query's columns in order", strings.Join(l.Fields, ", "), strings.Join(cols, ", "))
		}
	}
	if co := o.object("cache", "size and ttl"); co != nil {
		l.CacheSize = int(co.integer("size", 10000, 1, 1<<30))
		l.CacheTTL = co.duration("ttl", 0, true)
		if !co.has("ttl") {
			e.at(co.node, co.sub("ttl"), "is required: how long a looked-up value may be served from the cache (it may be that stale), like 1m")
		}
		co.done("size", "ttl")
	}
	l.Into = o.str("into", "")
	if l.Into != "" && !identRe.MatchString(l.Into) {
		e.at(o.get("into"), o.sub("into"), "%q is not a field name (letters, digits and _)", l.Into)
	}
	l.OnMissing = o.enum("on_missing", OnMissingKeep, OnMissingKeep, OnMissingDrop, OnMissingError)
	l.Retries = int(o.integer("retries", 3, 0, 100))
	l.Backoff = o.duration("backoff", 100*time.Millisecond, true)
	l.Timeout = o.duration("timeout", 10*time.Second, true)
	o.done("postgres", "redis", "fields", "cache", "into", "on_missing", "retries", "backoff", "timeout")
	return l
}

// columns returns the looked-up columns as planned.
func (l *LookupSpec) columns() []string {
	if len(l.Fields) > 0 {
		return l.Fields
	}
	if l.Postgres != nil {
		c, _ := lookup.QueryColumns(l.Postgres.Query)
		return c
	}
	return nil
}

// keyFields returns the record fields that make the key.
func (l *LookupSpec) keyFields() []string {
	if l.Postgres != nil {
		return l.Postgres.Key
	}
	t, err := lookup.ParseTemplate(l.Redis.Key)
	if err != nil {
		return nil
	}
	return t.Names()
}

type lookupPlan struct {
	spec   *LookupSpec
	cols   []string
	keyIdx []int
	// targets are the output positions of the columns (merge), or one
	// position (into).
	targets []int
	outLen  int // 0: the input's length (open field set)
	stage   string
}

func planLookup(e *errs, st StepSpec, path string, cur *fieldSet) *lookupPlan {
	l := st.Lookup
	if l == nil {
		return nil
	}
	lp := &lookupPlan{spec: l, cols: l.columns(), stage: path}
	lp.keyIdx = resolveKeys(e, l.Pos, "key", l.keyFields(), cur)
	if l.Into != "" {
		lp.targets = []int{cur.add(l.Into)}
		cur.kinds[lp.targets[0]] = row.KindJSON
	} else {
		for _, c := range lp.cols {
			lp.targets = append(lp.targets, cur.add(c))
		}
	}
	if !cur.open {
		lp.outLen = len(cur.names)
	}
	return lp
}

// lookupRun is a lookup step of a running job.
type lookupRun struct {
	stage  string
	client *lookup.Client
}

// openLookup connects the step's Lookuper and checks its columns.
func openLookup(ctx context.Context, lp *lookupPlan) (*lookup.Client, error) {
	l := lp.spec
	lk := l.lookuper
	if lk == nil {
		octx, cancel := context.WithTimeout(ctx, l.Timeout)
		defer cancel()
		switch {
		case l.Postgres != nil:
			p, err := lookup.OpenPostgres(octx, lookup.PostgresConfig{DSN: l.Postgres.DSN, Query: l.Postgres.Query, MaxConns: l.Postgres.MaxConns})
			if err != nil {
				return nil, err
			}
			if got := p.Columns(); !slices.Equal(got, lp.cols) {
				p.Close()
				return nil, fmt.Errorf("the query returns the columns %s, but the step adds %s: make fields: list the query's columns in order", strings.Join(got, ", "), strings.Join(lp.cols, ", "))
			}
			lk = p
		case l.Redis != nil:
			t, err := lookup.ParseTemplate(l.Redis.Key)
			if err != nil {
				return nil, err
			}
			r, err := lookup.OpenRedis(octx, lookup.RedisConfig{Options: l.Redis.Options, Key: t, Type: l.Redis.Type, Fields: lp.cols})
			if err != nil {
				return nil, err
			}
			lk = r
		}
	}
	retries := l.Retries
	if retries == 0 {
		retries = -1 // lookup.Config: 0 is its default
	}
	return lookup.NewClient(lk, lookup.Config{
		CacheSize: l.CacheSize, CacheTTL: l.CacheTTL, Retries: retries,
		Backoff: l.Backoff, Timeout: l.Timeout, Now: l.now,
	})
}

// buildLookup adds the lookup operator: one Client.Get per record batch.
func buildLookup(ctx context.Context, rows stream.Stream[row.Row], lp *lookupPlan, in schemaRef, dl *deadLetters, pj *Job) (stream.Stream[row.Row], error) {
	client, err := openLookup(ctx, lp)
	if err != nil {
		return rows, fmt.Errorf("%s: %s: %w", lp.spec.Pos.File, lp.stage, err)
	}
	pj.lookups = append(pj.lookups, lookupRun{stage: lp.stage, client: client})
	nk := len(lp.keyIdx)
	fail := func(r row.Row, err error) {
		rr := r
		if ferr := dl.report(ctx, failure{Stage: lp.stage, Origin: lp.stage, Offset: -1, Err: err, Row: &rr, Schema: in()}); ferr != nil {
			panic(ferr)
		}
	}
	return stream.FlatMapBatch(rows, func(vals []row.Row, ts []int64, out *stream.Emitter[row.Row]) {
		flat := make([]row.Value, len(vals)*nk)
		keys := make([]lookup.Key, len(vals))
		for i, r := range vals {
			k := flat[i*nk : (i+1)*nk : (i+1)*nk]
			for j, p := range lp.keyIdx {
				if p < len(r.Vals) {
					k[j] = r.Vals[p]
				}
			}
			keys[i] = k
		}
		res, err := client.Get(ctx, keys)
		var bad *lookup.KeyErrors
		if err != nil && !errors.As(err, &bad) {
			if ctx.Err() != nil {
				// The job is stopping: the lookups were cut short, they
				// did not fail; the records are read again after a restart.
				panic(ctx.Err())
			}
			for _, r := range vals {
				fail(r, err)
			}
			return
		}
		for i, r := range vals {
			if bad != nil && bad.Errs[i] != nil {
				// This key alone cannot be looked up.
				fail(r, fmt.Errorf("key %s: %w", keyText(keys[i]), bad.Errs[i]))
				continue
			}
			var found lookup.Row
			if len(res[i]) > 0 {
				found = res[i][0]
			} else {
				switch lp.spec.OnMissing {
				case OnMissingDrop:
					continue
				case OnMissingError:
					fail(r, fmt.Errorf("no row for key %s", keyText(keys[i])))
					continue
				}
			}
			out.EmitAt(lp.apply(r, found), ts[i])
		}
	}, stream.Name(lp.stage)), nil
}

// apply returns a copy of r with the looked-up columns (nulls when found
// is nil).
func (lp *lookupPlan) apply(r row.Row, found lookup.Row) row.Row {
	n := max(lp.outLen, len(r.Vals))
	for _, t := range lp.targets {
		n = max(n, t+1)
	}
	vals := make([]row.Value, n)
	copy(vals, r.Vals)
	if lp.spec.Into != "" {
		v := row.Null()
		if found != nil {
			b := []byte{'{'}
			for j, c := range lp.cols {
				if j > 0 {
					b = append(b, ',')
				}
				b = row.AppendQuoted(b, c)
				b = append(b, ':')
				b = found[j].AppendJSON(b)
			}
			v = row.JSON(string(append(b, '}')))
		}
		vals[lp.targets[0]] = v
	} else {
		for j, t := range lp.targets {
			if found != nil {
				vals[t] = found[j]
			} else {
				vals[t] = row.Null()
			}
		}
	}
	return row.Row{Vals: vals, Rest: r.Rest}
}

func keyText(k lookup.Key) string {
	parts := make([]string, len(k))
	for i, v := range k {
		parts[i] = string(v.AppendJSON(nil))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// closeLookups closes the job's lookup clients.
func (j *Job) closeLookups() error {
	var errs []error
	for _, l := range j.lookups {
		if err := l.client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.stage, err))
		}
	}
	return errors.Join(errs...)
}
