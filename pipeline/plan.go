package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluicehq/sluice/row"
)

// Plan is a spec compiled against field positions: every field a step
// names is resolved to its position in the rows at that step, every
// expression is compiled, and the input decoders know exactly which fields
// to extract. A Plan is immutable; Build turns it into a stream dataflow
// (any number of times).
type Plan struct {
	Spec   *Spec
	input  *inputPlan
	stages []stage
	out    schemaRef
	// inputShaped: the rows the sinks get still have the input's shape
	// (no map or window); assigned names the fields steps set there.
	inputShaped bool
	assigned    map[string]bool
	// sinkFmt is parallel to Spec.Sinks: the protobuf sinks' messages.
	sinkFmt []*protoSinkPlan
	// changelog: the rows are an updating sql step's result, the
	// change (+I, -U, +U, -D) in their first field.
	changelog bool
}

// schemaRef yields the schema at a point of the pipeline. During planning
// the input schema can still grow, so schemas are taken once planning is
// done.
type schemaRef func() *row.Schema

// inputPlan is a source with its decoding and the stateless steps that
// run in its splits.
type inputPlan struct {
	spec     SourceSpec
	fields   *fieldSet
	frozen   *row.Schema
	keepRest bool
	tsField  int // -1: no event-time field
	// srcTime: the event time is the connector's time of each record
	// (event_time: {source_time: true}).
	srcTime bool
	chain   *chain
	name    string
	// pbMD is a protobuf input's message from its .proto file (nil:
	// none; records are read with their writers' schemas); jsonSchema
	// validates a json input (nil: none).
	pbMD       protoreflect.MessageDescriptor
	jsonSchema *jsonschema.Schema
	// avroRaw: an avro input whose unreferenced fields travel in Row.Rest
	// as Avro binary (avro.Options.RawRest), for avro sinks writing the
	// input's schema to copy (see avroRawRest).
	avroRaw bool
}

func (in *inputPlan) schema() *row.Schema {
	if in.frozen == nil {
		in.frozen = in.fields.schema()
	}
	return in.frozen
}

// stage is one operator group after the input: a stateless chain or a
// keyed step.
type stage struct {
	kind  string // chain, window, dedup, join, sql, normalize, lookup
	chain *chain
	// norm: a normalize stage (a changelog's rows).
	norm   normalizePlan
	window *windowPlan
	dedup  *dedupPlan
	join   *joinPlan
	sql    *sqlPlan
	detect *detectPlan
	score  *scorePlan
	lookup *lookupPlan
	enrich *enrichPlan
	name   string
	in     schemaRef
}

type windowPlan struct {
	spec    *WindowSpec
	keyIdx  []int
	keyName []string
	aggs    []aggPlan
	out     *row.Schema
	stage   string
	// changelog: the rows are a changelog's, their change in field
	// opIdx (window_changelog.go).
	changelog bool
	opIdx     int
}

type aggPlan struct {
	name string
	fn   string
	arg  *expression // nil for count()
}

type dedupPlan struct {
	keyIdx []int
	within time.Duration
}

type joinPlan struct {
	spec     *JoinSpec
	right    *inputPlan
	leftKey  []int
	rightKey []int
	// fieldsFrom are positions in the right rows; fieldsTo in the output.
	fieldsFrom []int
	fieldsTo   []int
	outLen     func() int
	stage      string
}

// Compile plans spec: it resolves fields and compiles expressions, and
// reports every problem as a *SpecError naming file, line and field.
func Compile(spec *Spec) (*Plan, error) {
	e := &errs{file: spec.File}
	p := &Plan{Spec: spec, assigned: map[string]bool{}}
	in := planInput(e, spec.Source, "source")
	p.input = in
	checkCDCCheckpoint(e, spec)
	cur := in.fields // the fields of the rows at the current step
	curRef := schemaRef(in.schema)
	var pending *chain // stateless ops collected since the last keyed step
	inSource := true   // stateless ops still run in the source splits
	flush := func() {
		if pending == nil || pending.empty() {
			pending = nil
			return
		}
		if inSource {
			in.chain = pending
		} else {
			p.stages = append(p.stages, stage{kind: "chain", chain: pending, name: "steps", in: curRef})
		}
		pending = nil
	}
	var updating *sqlPlan // an updating sql step: nothing may follow it
	chg := spec.Source.Changelog != nil
	p.changelog = chg
	normalized := false
	// normAt is the step before which a changelog with its key is
	// normalised (-1: none): the step that aggregates the changes (the
	// first window or sql step) needs whole-row retractions from the
	// latest row per key. The normalisation runs before the filter, map
	// and set steps that lead to that step, so that they take a
	// retraction as they took the row's insertion (an event's before
	// image may hold the key alone, on which a filter on another field
	// would drop it); not before an enrich or score step, which would
	// compute the retraction's fields anew. It keeps the name it had when
	// it ran just before that step (its state's).
	normAt, normName := -1, ""
	if ck := spec.Source.Changelog; chg && len(ck.Key) > 0 {
		for i, st := range spec.Steps {
			if st.Kind != "window" && st.Kind != "sql" {
				continue
			}
			normAt, normName = i, fmt.Sprintf("steps[%d].%s.changelog", i, st.Kind)
			for normAt > 0 && slices.Contains([]string{"filter", "map", "set"}, spec.Steps[normAt-1].Kind) {
				normAt--
			}
			break
		}
	}
	// mapped: a step before the current one may have changed the
	// event-time field's value (a map, or a set of it).
	mapped := false
	for i, st := range spec.Steps {
		path := fmt.Sprintf("steps[%d].%s", i, st.Kind)
		if i == normAt {
			flush()
			p.stages = append(p.stages, stage{kind: "normalize", norm: planNormalize(e, spec, cur, mapped), name: normName, in: curRef})
			inSource = false
			normalized = true
		}
		if chg && updating == nil && !checkChangelogStep(e, st, spec.Source.Changelog) {
			continue
		}
		if updating != nil {
			e.list = append(e.list, st.Pos.errorf("cannot follow %s, whose result is updating (%s): an updating result goes only to sinks (postgres with key, or byte sinks writing each change with its %s field); put this step inside the query, or make the query append-only (a window aggregation)", updating.stage, updating.why, sqlOpField))
			continue
		}
		switch st.Kind {
		case "filter", "map", "set":
			if pending == nil {
				pending = &chain{}
			}
			op := chainOp{stage: path, in: curRef}
			switch st.Kind {
			case "filter":
				op.kind = opFilter
				op.pred = compileAt(e, st.Pos, st.Filter, cur)
			case "map":
				op.kind = opMap
				mapped = true
				next := newFieldSet(false)
				if chg {
					// The change travels with the row through a map.
					op.exprs = append(op.exprs, compileAt(e, st.Pos, changelogField, cur))
					op.names = append(op.names, changelogField)
					next.kinds[next.add(changelogField)] = row.KindString
				}
				for _, a := range st.Map {
					x := compileAt(e, a.Pos, a.Expr, cur)
					op.exprs = append(op.exprs, x)
					op.names = append(op.names, a.Name)
					next.kinds[next.add(a.Name)] = refKind(a.Expr, cur)
				}
				op.outLen = len(op.names)
				cur = next
				s := next.schema()
				curRef = func() *row.Schema { return s }
			case "set":
				op.kind = opSet
				var xs []*expression
				for _, a := range st.Set {
					xs = append(xs, compileAt(e, a.Pos, a.Expr, cur))
				}
				// The kinds of the assigned values, as the record before
				// the step has them (a field replaced by an expression of
				// another kind must not keep its old kind: a row sink
				// would make its column of that kind and refuse the rows).
				kinds := make([]row.Kind, len(st.Set))
				for j, a := range st.Set {
					kinds[j] = refKind(a.Expr, cur)
				}
				if cur.open {
					op.inPlace = true
				} else {
					cur = cur.clone()
				}
				seen := map[string]bool{}
				for j, a := range st.Set {
					if seen[a.Name] {
						e.at(nil, a.Pos.Field, "set twice in one step")
					}
					seen[a.Name] = true
					if et := spec.Source.EventTime; et != nil && a.Name == et.Field {
						mapped = true
					}
					op.exprs = append(op.exprs, xs[j])
					op.names = append(op.names, a.Name)
					t := cur.add(a.Name)
					op.targets = append(op.targets, t)
					if !cur.open {
						// Open: the kinds are the input's, which its
						// decoder converts to (p.assigned marks the field).
						cur.kinds[t] = kinds[j]
					}
					p.assigned[a.Name] = true
				}
				if !cur.open {
					op.outLen = len(cur.names)
					s := cur.schema()
					curRef = func() *row.Schema { return s }
				}
			}
			pending.ops = append(pending.ops, op)
		case "window":
			flush()
			if chg && !normalized {
				// Whole-row retractions at their rows' times.
				p.stages = append(p.stages, stage{kind: "normalize", norm: planNormalize(e, spec, cur, mapped), name: path + ".changelog", in: curRef})
				normalized = true
			}
			w := planWindow(e, st, path, cur)
			if w == nil {
				continue
			}
			if chg {
				// The windows' results are append-only rows.
				w.opIdx = cur.idx[changelogField]
				w.changelog = true
				chg, p.changelog = false, false
			}
			p.stages = append(p.stages, stage{kind: "window", window: w, name: path, in: curRef})
			inSource = false
			cur = newFieldSet(false)
			for _, f := range w.out.Fields() {
				cur.kinds[cur.add(f.Name)] = f.Kind
			}
			out := w.out
			curRef = func() *row.Schema { return out }
		case "dedup":
			flush()
			d := &dedupPlan{within: st.Dedup.Within}
			d.keyIdx = resolveKeys(e, st.Pos, "key", st.Dedup.Key, cur)
			p.stages = append(p.stages, stage{kind: "dedup", dedup: d, name: path, in: curRef})
			inSource = false
		case "sql":
			flush()
			if ck := spec.Source.Changelog; chg && updating == nil && len(ck.Key) > 0 && !normalized {
				// Whole-row retractions from the latest row per key.
				p.stages = append(p.stages, stage{kind: "normalize", norm: planNormalize(e, spec, cur, mapped), name: path + ".changelog", in: curRef})
				inSource = false
				normalized = true
			}
			sp := planSQL(e, st, path, cur, spec.Source.EventTime != nil, chg)
			if sp == nil {
				continue
			}
			sp.normalized = chg && normalized
			if chg && !normalized && sp.query.WindowsUpdating() {
				e.list = append(e.list, st.SQL.QueryPos.errorf("a window aggregation over a changelog (changelog:) needs the rows' key, changelog: {key: [id]} (the table's primary key): the pipeline then keeps each key's latest row, so that a delete or an update retracts the whole old row from the window its insertion went to; without it a retraction holds only what the event's before image has and, with the commit time as event time, the time of the change rather than of the row"))
				continue
			}
			p.stages = append(p.stages, stage{kind: "sql", sql: sp, name: path, in: curRef})
			inSource = false
			cur = newFieldSet(false)
			for _, f := range sp.schema.Fields() {
				cur.kinds[cur.add(f.Name)] = f.Kind
			}
			out := sp.schema
			curRef = func() *row.Schema { return out }
			if sp.updating {
				updating = sp
				p.changelog = true
			} else if chg {
				// An append-only result over the changelog (a window
				// aggregation): plain rows, without the change field, for
				// the steps and sinks after it.
				chg, p.changelog = false, false
			}
		case "detect", "score":
			flush()
			if !cur.open {
				cur = cur.clone()
			}
			sg := stage{kind: st.Kind, name: path, in: curRef}
			if st.Kind == "detect" {
				sg.detect = planDetect(e, st, path, cur, spec.Source.EventTime != nil)
			} else {
				sg.score = planScore(e, st, path, cur, spec.File)
			}
			if sg.detect == nil && sg.score == nil {
				continue
			}
			p.stages = append(p.stages, sg)
			inSource = false
			if !cur.open {
				s := cur.schema()
				curRef = func() *row.Schema { return s }
			}
		case "lookup":
			flush()
			if !cur.open {
				cur = cur.clone()
			}
			lp := planLookup(e, st, path, cur)
			if lp == nil {
				continue
			}
			p.stages = append(p.stages, stage{kind: "lookup", lookup: lp, name: path, in: curRef})
			inSource = false
			for _, c := range lp.cols {
				p.assigned[c] = true
			}
			if lp.spec.Into != "" {
				p.assigned[lp.spec.Into] = true
			}
			if !cur.open {
				s := cur.schema()
				curRef = func() *row.Schema { return s }
			}
		case "enrich":
			flush()
			if !cur.open {
				cur = cur.clone()
			}
			if x := planEnrich(e, spec, st, path, cur); x != nil {
				p.stages = append(p.stages, stage{kind: "enrich", enrich: x, name: path, in: curRef})
				inSource = false
				if !cur.open {
					s := cur.schema()
					curRef = func() *row.Schema { return s }
				}
			}
		case "join":
			flush()
			if !cur.open {
				cur = cur.clone()
			}
			j := planJoin(e, st, path, cur)
			if j == nil {
				continue
			}
			p.stages = append(p.stages, stage{kind: "join", join: j, name: path, in: curRef})
			inSource = false
			if !cur.open {
				s := cur.schema()
				curRef = func() *row.Schema { return s }
			}
		}
	}
	flush()
	// Sink keys name output fields: check them here, so that validate
	// reports them, and, while the rows still have the input's shape,
	// extract them from the input like the fields steps use.
	for _, sk := range spec.Sinks {
		if sk.cfg == nil {
			continue
		}
		resolveKeys(e, sk.Pos, "key", sinkKeyFields(sk.cfg), cur)
		resolveTemplateFields(e, sk.cfg, cur)
	}
	if updating != nil {
		checkChangelogSinks(e, spec, updating.stage, updating.why)
	} else if chg {
		checkChangelogSinks(e, spec, "the source", "its records are change events (changelog:)")
	}
	planAvroSinks(e, p, cur)
	p.inputShaped = cur.open
	in.keepRest = cur.open && in.spec.Format != "raw" && (in.spec.Format != "avro" || restWritten(spec) || in.avroRaw)
	if in.keepRest {
		// Rows still carry the input's unreferenced members (Row.Rest),
		// which a row sink's fixed columns cannot hold: refuse rather than
		// drop them silently.
		for _, sk := range spec.Sinks {
			if sk.cfg != nil && !sk.cfg.bytes() {
				e.list = append(e.list, sk.Pos.errorf("%s writes fixed columns, but the records here still have the input's shape (fields other than %s would be lost): add a map: step naming the fields to write, like map: {user: user_id, amount: price * qty}",
					sk.Connector, strings.Join(cur.names, ", ")))
			}
		}
	}
	p.out = curRef
	if len(e.list) == 0 {
		p.sinkFmt = planSinkFormats(e, spec, curRef, in.keepRest)
	}
	checkAvroFields(e, in)
	for _, s := range p.stages {
		if s.join != nil {
			checkAvroFields(e, s.join.right)
		}
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	// Freeze the input schema now that every step has added its fields.
	in.schema()
	for _, s := range p.stages {
		if s.join != nil {
			s.join.right.schema()
		}
	}
	return p, nil
}

// OutputSchema returns the schema of the rows the sinks receive. Rows may
// carry more members in Row.Rest when the pipeline never maps or windows
// (set: keeps unreferenced fields).
func (p *Plan) OutputSchema() *row.Schema { return p.out() }

// InputSchema returns the fields extracted from the main input.
func (p *Plan) InputSchema() *row.Schema { return p.input.schema() }

func planInput(e *errs, s SourceSpec, name string) *inputPlan {
	in := &inputPlan{spec: s, tsField: -1, name: name}
	switch s.Format {
	case "raw":
		in.fields = newFieldSet(false)
		in.fields.add("key")
		in.fields.add("value")
		in.fields.add("timestamp")
	case "protobuf":
		in.fields = planProtoInput(e, s, in)
	default:
		in.fields = newFieldSet(true)
		if s.Changelog != nil {
			// The change is the rows' first field.
			in.fields.kinds[in.fields.add(changelogField)] = row.KindString
		}
		if a := s.Avro; a != nil && a.Schema != nil {
			in.fields.hint = avroHint(a.Schema, a.Decimal == "string")
		}
		planJSONSchema(e, s, in)
	}
	if s.EventTime != nil && s.EventTime.Field != "" {
		p, ok := in.fields.resolve(s.EventTime.Field)
		if !ok {
			e.at(nil, s.Pos.Field+".event_time.field", "unknown field %q; the fields are %s", s.EventTime.Field, strings.Join(in.fields.known(), ", "))
		}
		in.tsField = p
	}
	in.srcTime = s.EventTime != nil && s.EventTime.SourceTime
	names := make([]string, 0, len(s.Types))
	for n := range s.Types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k, err := row.ParseKind(s.Types[n])
		if err != nil {
			continue // reported by Parse
		}
		if i, ok := in.fields.resolve(n); ok {
			in.fields.kinds[i] = k
		}
	}
	return in
}

// compileAt compiles an expression, reporting errors at pos.
func compileAt(e *errs, pos Pos, src string, f *fieldSet) *expression {
	x, err := compileExpr(src, f.resolve)
	if err != nil {
		var uf *unknownFieldsError
		if errors.As(err, &uf) {
			e.list = append(e.list, pos.errorf("%v in %q; fields here: %s", err, src, strings.Join(f.known(), ", ")))
		} else {
			e.list = append(e.list, pos.errorf("%v", err))
		}
		return nil
	}
	return x
}

// sinkKeyFields returns the output fields a sink's configuration names as
// keys.
func sinkKeyFields(c sinkConfig) []string {
	if pg, ok := c.(*postgresConfig); ok {
		return pg.cfg.Key
	}
	if k := c.messageKey(); k != "" {
		return []string{k}
	}
	return nil
}

func resolveKeys(e *errs, pos Pos, what string, keys []string, f *fieldSet) []int {
	out := make([]int, 0, len(keys))
	for _, k := range keys {
		i, ok := f.resolve(k)
		if !ok {
			e.list = append(e.list, pos.errorf("%s: unknown field %q; fields here: %s", what, k, strings.Join(f.known(), ", ")))
			continue
		}
		out = append(out, i)
	}
	return out
}

func planWindow(e *errs, st StepSpec, path string, cur *fieldSet) *windowPlan {
	ws := st.Window
	if ws == nil {
		return nil
	}
	w := &windowPlan{spec: ws, stage: path}
	w.keyIdx = resolveKeys(e, st.Pos, "key", ws.Key, cur)
	w.keyName = ws.Key
	out := newFieldSet(false)
	dup := func(n string, pos Pos) {
		if _, ok := out.idx[n]; ok {
			e.list = append(e.list, pos.errorf("output field %q appears twice (window output: key fields, window_start, window_end, aggregates)", n))
		}
	}
	for _, k := range ws.Key {
		dup(k, st.Pos)
		i := out.add(k)
		if j, ok := cur.idx[k]; ok {
			out.kinds[i] = cur.kinds[j]
		}
	}
	dup("window_start", st.Pos)
	out.add("window_start")
	dup("window_end", st.Pos)
	out.add("window_end")
	for _, a := range ws.Aggregates {
		ap := aggPlan{name: a.Name, fn: a.Func}
		if a.Arg != "" {
			ap.arg = compileAt(e, a.Pos, a.Arg, cur)
		}
		dup(a.Name, a.Pos)
		out.add(a.Name)
		w.aggs = append(w.aggs, ap)
	}
	// Types known from the plan (row sinks use them for their columns;
	// the others are typed by the records).
	out.kinds[out.idx["window_start"]] = row.KindInt
	out.kinds[out.idx["window_end"]] = row.KindInt
	for _, a := range w.aggs {
		switch a.fn {
		case "count", "count_distinct":
			out.kinds[out.idx[a.name]] = row.KindInt
		case "avg":
			out.kinds[out.idx[a.name]] = row.KindFloat
		case "min", "max", "first", "last":
			out.kinds[out.idx[a.name]] = refKind(argOf(ws, a.name), cur)
		case "sum":
			if k := refKind(argOf(ws, a.name), cur); k == row.KindInt || k == row.KindFloat {
				out.kinds[out.idx[a.name]] = k
			}
		}
	}
	w.out = out.schema()
	return w
}

func planJoin(e *errs, st StepSpec, path string, cur *fieldSet) *joinPlan {
	js := st.Join
	if js == nil {
		return nil
	}
	j := &joinPlan{spec: js, stage: path}
	j.right = planInput(e, js.Input, path+".input")
	j.leftKey = resolveKeys(e, st.Pos, "key", js.Key, cur)
	j.rightKey = resolveKeys(e, st.Pos, "input_key", js.RightKey, j.right.fields)
	for _, f := range js.Fields {
		from, ok := j.right.fields.resolve(f)
		if !ok {
			e.list = append(e.list, st.Pos.errorf("fields: unknown field %q of the input", f))
			continue
		}
		name := js.Prefix + f
		if !identRe.MatchString(name) {
			e.list = append(e.list, st.Pos.errorf("fields: %q is not a field name", name))
			continue
		}
		if _, exists := cur.idx[name]; exists && !cur.open {
			e.list = append(e.list, st.Pos.errorf("fields: %q already exists in the stream; set prefix: to rename the joined fields", name))
			continue
		}
		j.fieldsFrom = append(j.fieldsFrom, from)
		j.fieldsTo = append(j.fieldsTo, cur.add(name))
	}
	f := cur
	j.outLen = func() int { return len(f.names) }
	return j
}

// Load reads, parses and compiles the spec in file: everything `sluice
// validate` checks.
func Load(file string) (*Plan, error) {
	s, err := ParseFile(file)
	if err != nil {
		return nil, err
	}
	return Compile(s)
}

// refKind returns the kind of the field an expression that is a bare field
// name refers to, KindNull for any other expression.
func refKind(src string, f *fieldSet) row.Kind {
	src = strings.TrimSpace(src)
	if !identRe.MatchString(src) {
		return row.KindNull
	}
	if i, ok := f.idx[src]; ok {
		return f.kinds[i]
	}
	return row.KindNull
}

func argOf(ws *WindowSpec, name string) string {
	for _, a := range ws.Aggregates {
		if a.Name == name {
			return a.Arg
		}
	}
	return ""
}

// restWritten reports whether some sink writes the members of the input
// that no step named (a JSON byte sink, or dead letters of step failures).
func restWritten(spec *Spec) bool {
	for _, sk := range spec.Sinks {
		if sk.cfg != nil && sk.cfg.bytes() && sk.Format != "avro" {
			return true
		}
	}
	return spec.Errors.DeadLetter != nil
}

// planNormalize plans the changelog's normalisation over the fields cur:
// its key, its state TTL and, when the event time is a field of the
// source that no step before changed (mapped), that field's position.
func planNormalize(e *errs, spec *Spec, cur *fieldSet, mapped bool) normalizePlan {
	ck := spec.Source.Changelog
	n := normalizePlan{keyIdx: resolveKeys(e, ck.Pos, "key", ck.Key, cur), tsIdx: -1, ttl: ck.StateTTL}
	if et := spec.Source.EventTime; et != nil && et.Field != "" && !mapped {
		if i, ok := cur.idx[et.Field]; ok {
			n.tsIdx = i
		}
	}
	return n
}
