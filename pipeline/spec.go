package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sluicehq/sluice/objstore"
	"gopkg.in/yaml.v3"
)

// Spec is a parsed pipeline spec (see docs/pipeline-spec.md): a source,
// a list of steps and one or more sinks, with the job's settings.
type Spec struct {
	// File is the name the spec was read from, used in messages.
	File        string
	Name        string
	Description string
	Source      SourceSpec
	Steps       []StepSpec
	Sinks       []SinkSpec
	// Parallelism is the job's default parallelism; 0 means the number of
	// cores.
	Parallelism int
	// Delivery is DeliveryAtLeastOnce or DeliveryExactlyOnce.
	Delivery   string
	Checkpoint *CheckpointSpec
	// State chooses where keyed state (windows, dedup, joins of the
	// stream API) lives; nil keeps it in memory.
	State  *StateSpec
	Errors ErrorsSpec
	// Latency tunes batching against latency; nil keeps the defaults.
	Latency *LatencySpec
	// Cluster runs the pipeline over many processes through a Kafka
	// cluster (docs/cluster.md); nil runs it in this process.
	Cluster *ClusterSpec
	// Registry is the schema registry of every avro and protobuf source
	// and sink that names none of its own; nil: none (or the host's).
	Registry *RegistrySpec
}

// ClusterSpec is the cluster section.
type ClusterSpec struct {
	Pos            Pos
	Brokers        []string
	ApplicationID  string
	CommitInterval time.Duration
	SessionTimeout time.Duration
	// DeliveryTimeout bounds how long an at-least-once commit waits for
	// the brokers to acknowledge its writes; 0: the default (2 min).
	DeliveryTimeout time.Duration
	// Partitions of the repartition and changelog topics; 0: the
	// source topic's.
	Partitions int
	// StandbyReplicas is how many other instances keep a warm copy of
	// each stateful task (docs/cluster.md).
	StandbyReplicas int
}

// LatencySpec is the latency section: how long records may wait in partly
// filled batches, and latency markers.
type LatencySpec struct {
	// BufferTimeout bounds how long a record waits in a partly filled
	// batch while its task is busy (stream.WithBufferTimeout); nil keeps
	// stream.DefaultBufferTimeout.
	BufferTimeout *time.Duration
	// Markers is the interval of latency markers
	// (stream.WithLatencyMarkers); 0 sends none.
	Markers time.Duration
}

// Delivery modes.
const (
	DeliveryAtLeastOnce = "at_least_once"
	DeliveryExactlyOnce = "exactly_once"
)

// Error tolerances.
const (
	ToleranceNone = "none"
	ToleranceAll  = "all"
)

// SourceSpec is an input: a connector block and how to read its bytes.
type SourceSpec struct {
	Pos Pos
	// Connector names the connector block (file, generate, kafka, ...).
	Connector string
	// Format is json, csv, raw, avro or protobuf.
	Format string
	CSV    CSVSpec
	// Avro holds the avro format's settings (nil for other formats).
	Avro *AvroSpec
	// Schema holds protobuf's settings, or json's JSON Schema (nil for
	// other formats, and for json without one).
	Schema    *FormatSchemaSpec
	EventTime *EventTimeSpec
	// Types declares kinds of input fields (optional): name -> kind.
	Types map[string]string
	// Changelog, if set, reads each record as a change event of a table
	// (changelog.go).
	Changelog *ChangelogSpec
	cfg       sourceConfig
}

// CSVSpec configures the csv format.
type CSVSpec struct {
	// Delimiter is the cell separator; default ",".
	Delimiter byte
	// Columns names the columns; when empty, the first line of each file
	// (or message stream) is the header.
	Columns []string
}

// EventTimeSpec says where a record's event time is and how watermarks
// follow it.
type EventTimeSpec struct {
	// Field is the record field holding the event time; SourceTime
	// takes the time the connector gives each record instead (a change's
	// commit time for postgres_cdc and mysql_cdc, a Kafka record's
	// timestamp). Exactly one is set.
	Field             string
	SourceTime        bool
	MaxOutOfOrderness time.Duration
	IdleTimeout       time.Duration
}

// Assign is one `name: expression` entry of a map or set step.
type Assign struct {
	Name string
	Expr string
	Pos  Pos
}

// StepSpec is one step; exactly one of its fields is set, as Kind says.
type StepSpec struct {
	Pos    Pos
	Kind   string // filter, map, set, window, dedup, join, sql, lookup
	Filter string
	Map    []Assign
	Set    []Assign
	Window *WindowSpec
	Dedup  *DedupSpec
	Join   *JoinSpec
	SQL    *SQLStepSpec
	Detect *DetectSpec
	Score  *ScoreSpec
	Lookup *LookupSpec
	Enrich *EnrichSpec
}

// WindowSpec is a window step.
type WindowSpec struct {
	Key []string
	// Type is tumbling, sliding or session.
	Type            string
	Size            time.Duration // tumbling and sliding
	Slide           time.Duration // sliding
	Gap             time.Duration // session
	AllowedLateness time.Duration
	Aggregates      []AggregateSpec
}

// AggregateSpec is one `name: fn(arg)` entry of a window's aggregate.
type AggregateSpec struct {
	Name string
	Func string // count sum min max avg first last count_distinct
	Arg  string // expression; empty for count()
	Pos  Pos
}

// DedupSpec is a dedup step: drop a record whose key was seen within the
// interval before it.
type DedupSpec struct {
	Key    []string
	Within time.Duration
}

// JoinSpec is a join step: the stream so far (left) joined with a second
// input (right) on equal keys, where the right record's event time is
// within Within of the left record's.
type JoinSpec struct {
	Input SourceSpec
	// Key lists the left fields; RightKey the right fields (default Key).
	Key      []string
	RightKey []string
	Within   time.Duration
	// Fields lists the right input's fields added to the output, renamed
	// with Prefix.
	Fields []string
	Prefix string
	// Type is inner or left.
	Type string
}

// SinkSpec is an output: a connector block and a format.
type SinkSpec struct {
	Pos       Pos
	Connector string
	// Format is json, avro or protobuf.
	Format string
	// Avro holds the avro format's settings (nil for other formats).
	Avro *AvroSpec
	// Schema holds protobuf's settings (nil for other formats).
	Schema *FormatSchemaSpec
	cfg    sinkConfig
}

// CheckpointSpec configures checkpoints.
type CheckpointSpec struct {
	Interval time.Duration
	// Dir is a local directory or an s3://BUCKET/PREFIX URL.
	Dir string
	// Endpoint and Region reach an s3:// Dir's store (other than AWS S3:
	// MinIO, SeaweedFS, ...); "" means $AWS_ENDPOINT_URL and $AWS_REGION.
	Endpoint, Region string
}

// State backends of StateSpec.Backend.
const (
	StateMemory = "memory"
	StatePebble = "pebble"
)

// StateSpec configures the state backend.
type StateSpec struct {
	// Backend is StateMemory or StatePebble.
	Backend string
	// Dir is Pebble's local working directory (disposable: state
	// survives through checkpoints); "" means under the host's data
	// directory.
	Dir string
}

// ErrorsSpec says what happens to records that cannot be processed.
type ErrorsSpec struct {
	// Tolerance is none (fail the job) or all (dead-letter and go on).
	Tolerance string
	// DeadLetter is where failed records go; nil means they are only
	// counted (and logged) under tolerance all.
	DeadLetter *SinkSpec
}

// ParseFile reads and parses the spec in file.
func ParseFile(file string) (*Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pipeline spec: %w", err)
	}
	return Parse(file, data)
}

var (
	identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	aggRe   = regexp.MustCompile(`^\s*([a-z_]+)\s*\((.*)\)\s*$`)
)

// Parse parses a spec. file names it in errors. The returned error lists
// every problem found, each as a *SpecError naming the line and the field.
// Parse also validates what can be checked without planning (Validate
// checks the rest: field references and expressions).
func Parse(file string, data []byte) (*Spec, error) {
	e := &errs{file: file, src: data}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, &SpecError{File: file, Msg: "is empty (no YAML document): a pipeline needs at least a source and a sink"}
	} else if err != nil {
		line := 0
		msg := err.Error()
		if _, err2 := fmt.Sscanf(msg, "yaml: line %d:", &line); err2 == nil {
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
			if yamlParserError(msg) {
				line++ // yaml.v3 reports a parser error's line 0-based
			}
		}
		return nil, &SpecError{File: file, Line: line, Msg: "not valid YAML: " + msg}
	}
	// One file holds one pipeline: a second document (after ---) would
	// otherwise be ignored without a word.
	// (An empty one, as a trailing --- makes, is no pipeline.)
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && len(next.Content) == 1 && next.Content[0].Kind == yaml.ScalarNode && next.Content[0].Tag == "!!null" && next.Content[0].Value == "" {
			continue
		}
		at := &next
		if len(next.Content) > 0 {
			at = next.Content[0]
		}
		e.at(at, "", "a second YAML document (after ---): a spec file holds one pipeline; put each in its own file")
		break
	}
	root := newObj(e, &doc, "", "the pipeline: name, source, steps, sink or sinks, ...")
	if root == nil {
		return nil, e.err()
	}
	s := &Spec{File: file}
	s.Name = root.str("name", "")
	if n := s.Name; n != "" && (strings.TrimSpace(n) == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00")) {
		// The name is a directory of the checkpoints and the state
		// (<data-dir>/checkpoints/<name>): "a/b" or ".." would put them
		// elsewhere, and share them with another pipeline's.
		e.at(root.get("name"), "name", "%q cannot name a directory (the default checkpoint and state directories are named after the pipeline): no / or \\, not blank, . or ..", n)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(baseName(file), ".yaml")
	}
	s.Description = root.str("description", "")
	if co := root.object("cluster", "brokers and application_id"); co != nil {
		e.cluster = true
		s.Cluster = &ClusterSpec{
			Pos:             Pos{Line: co.node.Line, Field: "cluster"},
			Brokers:         co.strList("brokers"),
			ApplicationID:   co.str("application_id", s.Name),
			CommitInterval:  co.duration("commit_interval", 0, true),
			SessionTimeout:  co.duration("session_timeout", 0, true),
			DeliveryTimeout: co.duration("delivery_timeout", 0, true),
			Partitions:      int(co.integer("partitions", 0, 1, 10000)),
			StandbyReplicas: int(co.integer("standby_replicas", 0, 0, 10)),
		}
		co.done("brokers", "application_id", "commit_interval", "session_timeout", "delivery_timeout", "partitions", "standby_replicas")
	}
	if ro := root.object("registry", "url and credentials of a schema registry"); ro != nil {
		s.Registry = parseRegistry(e, ro)
	}
	if so := root.object("source", "a connector block and format"); so != nil {
		s.Source = parseSource(e, so, true)
	} else if !root.has("source") {
		e.at(root.node, "source", "is required: where records come from, a block of one connector (%s) and format", strings.Join(sourceConnectors(), ", "))
	}
	if st := root.get("steps"); st != nil {
		if st.Kind != yaml.SequenceNode {
			e.at(st, "steps", "must be a list of steps (%s), not %s", strings.Join(stepKinds, ", "), describe(st))
		} else {
			for i, it := range st.Content {
				s.Steps = append(s.Steps, parseStep(e, it, fmt.Sprintf("steps[%d]", i)))
			}
		}
	}
	switch {
	case root.has("sink") && root.has("sinks"):
		e.at(root.knod["sinks"], "sinks", "give either sink or sinks, not both")
	case root.has("sink"):
		if so := root.object("sink", "a connector block and format"); so != nil {
			s.Sinks = append(s.Sinks, parseSink(e, so))
		}
	case root.has("sinks"):
		v := root.get("sinks")
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			e.at(v, "sinks", "must be a non-empty list of sinks, not %s", describe(v))
		} else {
			for i, it := range v.Content {
				if so := newObj(e, it, fmt.Sprintf("sinks[%d]", i), "a connector block and format"); so != nil {
					s.Sinks = append(s.Sinks, parseSink(e, so))
				}
			}
		}
	default:
		e.at(root.node, "sink", "is required: where results go, a block of one connector (%s), or sinks: a list of them", strings.Join(sinkConnectors(), ", "))
	}
	s.Parallelism = int(root.integer("parallelism", 0, 1, 1024))
	if cp := root.object("checkpoint", "interval and dir"); cp != nil {
		s.Checkpoint = &CheckpointSpec{
			Interval: cp.duration("interval", 10*time.Second, true),
			Dir:      cp.str("dir", ""),
			Endpoint: cp.str("endpoint", ""),
			Region:   cp.str("region", ""),
		}
		for _, k := range []string{"endpoint", "region"} {
			if cp.has(k) && !objstore.IsURL(s.Checkpoint.Dir) {
				e.at(cp.get(k), "checkpoint."+k, "is only used with an object store dir (dir: s3://BUCKET/PREFIX)")
			}
		}
		cp.done("interval", "dir", "endpoint", "region")
	}
	if so := root.object("state", "backend (memory or pebble) and dir"); so != nil {
		s.State = &StateSpec{Backend: so.enum("backend", StateMemory, StateMemory, StatePebble), Dir: so.str("dir", "")}
		if s.State.Dir != "" && s.State.Backend == StateMemory {
			e.at(so.get("dir"), "state.dir", "is only used with backend: pebble (the memory backend has no directory)")
		}
		so.done("backend", "dir")
	}
	if s.Cluster != nil {
		// Cluster mode keeps state and offsets in Kafka: these sections
		// would be ignored (and checkpoint would turn on exactly_once).
		for _, k := range []string{"checkpoint", "state"} {
			if root.has(k) {
				e.at(root.get(k), k, "does not apply in cluster mode: a task's state lives in its changelog topic and offsets commit every cluster.commit_interval (delivery: exactly_once in Kafka transactions); remove it")
			}
		}
		// Nor do these: the cluster runtime has no stream environment
		// to tune (it runs a task per partition and produces at once).
		if root.has("parallelism") {
			e.at(root.get("parallelism"), "parallelism", "does not apply in cluster mode: the work is split by partition (cluster.partitions) among the instances, each running one task per partition it owns; start more instances for more parallelism, and remove it")
		}
		if root.has("latency") {
			e.at(root.get("latency"), "latency", "does not apply in cluster mode: each task writes its results as it processes a record (no batch buffers between subtasks, no latency markers); remove it")
		}
	}
	def := DeliveryAtLeastOnce
	if s.Checkpoint != nil {
		def = DeliveryExactlyOnce
	}
	s.Delivery = root.enum("delivery", def, DeliveryExactlyOnce, DeliveryAtLeastOnce)
	if s.Delivery == DeliveryExactlyOnce && s.Checkpoint == nil && s.Cluster == nil && root.has("delivery") {
		e.at(root.get("delivery"), "delivery", "exactly_once needs checkpoints: add checkpoint: {interval: 5s, dir: ./data/checkpoints}")
	}
	s.Errors.Tolerance = ToleranceNone
	if eo := root.object("errors", "tolerance and dead_letter"); eo != nil {
		s.Errors.Tolerance = eo.enum("tolerance", ToleranceNone, ToleranceNone, ToleranceAll)
		if dl := eo.object("dead_letter", "a sink block such as {file: {path: ./dead.jsonl}}"); dl != nil {
			sk := parseSink(e, dl)
			s.Errors.DeadLetter = &sk
			if sk.Format == "avro" {
				e.at(dl.node, dl.path, "dead letters are JSON lines: format avro is not allowed here")
			}
			if sk.cfg != nil && !sk.cfg.bytes() {
				e.at(dl.node, dl.path, "dead letters are JSON lines: use a byte sink (file, stdout, kafka or log), not %s", sk.Connector)
			}
		}
		eo.done("tolerance", "dead_letter")
		if s.Errors.DeadLetter != nil && s.Errors.Tolerance == ToleranceNone {
			e.at(eo.node, "errors.dead_letter", "is only used with tolerance: all (tolerance none fails the job on the first bad record)")
		}
	}
	if lo := root.object("latency", "buffer_timeout and markers"); lo != nil {
		s.Latency = &LatencySpec{Markers: lo.duration("markers", 0, false)}
		if lo.has("buffer_timeout") {
			d := lo.duration("buffer_timeout", 0, false)
			s.Latency.BufferTimeout = &d
		}
		lo.done("buffer_timeout", "markers")
	}
	root.done("name", "description", "cluster", "registry", "source", "steps", "sink", "sinks", "parallelism", "delivery", "checkpoint", "state", "errors", "latency")
	checkFormats(e, s)
	if err := e.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// yamlParserError reports whether msg is one of the YAML parser's (not
// scanner's) errors, whose line gopkg.in/yaml.v3 gives 0-based.
func yamlParserError(msg string) bool {
	switch msg {
	case "did not find expected node content", "did not find expected key",
		"did not find expected '-' indicator", "did not find expected ',' or ']'",
		"did not find expected ',' or '}'", "did not find expected <document start>":
		return true
	}
	return false
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// connectorKey finds the one connector block among o's keys.
func connectorKey(e *errs, o *obj, known []string, what string) string {
	var found []string
	for _, k := range o.keys {
		for _, c := range known {
			if k == c {
				found = append(found, k)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0]
	case 0:
		e.at(o.node, o.path, "needs a connector block; allowed %s connectors: %s", what, strings.Join(known, ", "))
	default:
		e.at(o.knod[found[1]], o.sub(found[1]), "only one connector per %s; found %s", what, strings.Join(found, " and "))
		for _, f := range found {
			o.used[f] = true
		}
	}
	return ""
}

func parseSource(e *errs, o *obj, main bool) SourceSpec {
	s := SourceSpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	s.Connector = connectorKey(e, o, sourceConnectors(), "source")
	if s.Connector != "" {
		s.cfg = parseSourceConnector(e, s.Connector, o)
	}
	s.Format = o.enum("format", "json", "json", "csv", "raw", "avro", "protobuf")
	s.Avro = parseAvro(e, o, s.Format, false)
	s.Schema = parseFormatSchema(e, o, s.Format, false)
	checkAvroConnector(e, o, s.Format, s.Connector, false)
	if c := o.object("csv", "delimiter and columns"); c != nil {
		d := c.str("delimiter", ",")
		if d == `\t` || d == "tab" {
			d = "\t"
		}
		if len(d) != 1 || d == "\"" || d == "\n" || d == "\r" {
			e.at(c.get("delimiter"), c.sub("delimiter"), "must be one character (not a quote or newline), like \",\", \";\" or \"\\t\"")
		}
		if len(d) > 0 {
			s.CSV.Delimiter = d[0]
		}
		s.CSV.Columns = c.strList("columns")
		c.done("delimiter", "columns")
		if s.Format != "csv" {
			e.at(c.node, c.path, "is only allowed with format: csv")
		}
	}
	if et := o.object("event_time", "field or source_time, max_out_of_orderness, idle_timeout"); et != nil {
		s.EventTime = &EventTimeSpec{
			SourceTime:        et.boolean("source_time", false),
			MaxOutOfOrderness: et.duration("max_out_of_orderness", 0, false),
			IdleTimeout:       et.duration("idle_timeout", 0, false),
		}
		if s.EventTime.SourceTime {
			if et.get("field") != nil {
				e.at(et.get("field"), et.sub("field"), "is not allowed with source_time: true (the event time is either a field or the connector's time of each record)")
			}
		} else {
			s.EventTime.Field = et.reqStr("field", "the record field holding the event time, epoch milliseconds or RFC 3339; or source_time: true for the connector's time of each record, such as a change's commit time")
		}
		if f := s.EventTime.Field; f != "" && !identRe.MatchString(f) {
			e.at(et.get("field"), et.sub("field"), "%q is not a field name (letters, digits and _)", f)
		}
		et.done("field", "source_time", "max_out_of_orderness", "idle_timeout")
	}
	if ty := o.object("types", "field: type (bool, int, float, string, timestamp)"); ty != nil {
		s.Types = map[string]string{}
		for _, k := range ty.keys {
			v := ty.enum(k, "", "bool", "int", "float", "string", "timestamp", "json")
			if v != "" {
				s.Types[k] = v
			}
			if !identRe.MatchString(k) {
				e.at(ty.knod[k], ty.sub(k), "%q is not a field name (letters, digits and _)", k)
			}
		}
	}
	s.Changelog = parseChangelog(e, o, s.Format)
	if s.Changelog != nil && !main {
		e.at(o.get("changelog"), o.sub("changelog"), "is only allowed on the main source")
	}
	if s.Format == "raw" && s.EventTime != nil && !s.EventTime.SourceTime && s.EventTime.Field != "timestamp" {
		e.at(o.node, o.sub("event_time"), "with format raw the only fields are key, value and timestamp")
	}
	allowed := append([]string{"format", "csv", "event_time", "types", "changelog"}, sourceConnectors()...)
	allowed = append(append(allowed, avroKeys...), formatKeys...)
	o.done(allowed...)
	return s
}

func parseSink(e *errs, o *obj) SinkSpec {
	s := SinkSpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	s.Connector = connectorKey(e, o, sinkConnectors(), "sink")
	if s.Connector != "" {
		s.cfg = parseSinkConnector(e, s.Connector, o)
	}
	s.Format = o.enum("format", "json", "json", "avro", "protobuf")
	s.Avro = parseAvro(e, o, s.Format, true)
	s.Schema = parseFormatSchema(e, o, s.Format, true)
	checkAvroConnector(e, o, s.Format, s.Connector, true)
	o.done(append(append(append([]string{"format"}, avroKeys...), formatKeys...), sinkConnectors()...)...)
	return s
}

func parseAssigns(e *errs, n *yaml.Node, path, what string) []Assign {
	o := newObj(e, n, path, what)
	if o == nil {
		return nil
	}
	var out []Assign
	for _, k := range o.keys {
		v := o.get(k)
		p := Pos{File: e.file, Line: v.Line, Column: v.Column, Field: o.sub(k)}
		if !identRe.MatchString(k) {
			e.at(o.knod[k], o.sub(k), "%q is not a field name (letters, digits and _, not starting with a digit)", k)
			continue
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			e.at(v, o.sub(k), "must be an expression (a string such as price * qty), not %s", describe(v))
			continue
		}
		// The value is an expression even when quoted in YAML: write a
		// string literal as '"text"'.
		out = append(out, Assign{Name: k, Expr: v.Value, Pos: p})
	}
	return out
}

var stepKinds = []string{"filter", "map", "set", "window", "dedup", "join", "sql", "enrich", "lookup", "detect", "score"}

func parseStep(e *errs, n *yaml.Node, path string) StepSpec {
	st := StepSpec{}
	o := newObj(e, n, path, "one of "+strings.Join(stepKinds, ", "))
	if o == nil {
		return st
	}
	st.Pos = Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: path}
	if len(o.keys) != 1 {
		e.at(o.node, path, "a step has exactly one key, one of: %s (found %d keys)", strings.Join(stepKinds, ", "), len(o.keys))
		if len(o.keys) == 0 {
			return st
		}
	}
	st.Kind = o.keys[0]
	v := o.get(st.Kind)
	p := o.sub(st.Kind)
	st.Pos.Field = p
	switch st.Kind {
	case "filter":
		if v.Kind != yaml.ScalarNode || v.Value == "" {
			e.at(v, p, "must be a boolean expression such as status == \"paid\", not %s", describe(v))
		}
		st.Filter = v.Value
	case "map":
		st.Map = parseAssigns(e, v, p, "new field: expression; the record becomes exactly these fields")
		if len(st.Map) == 0 && resolve(v).Kind == yaml.MappingNode {
			e.at(v, p, "must have at least one field")
		}
	case "set":
		st.Set = parseAssigns(e, v, p, "field: expression; fields added or replaced, the rest kept")
	case "window":
		st.Window = parseWindow(e, newObj(e, v, p, "key, tumbling|sliding|session, allowed_lateness, aggregate"))
	case "dedup":
		if d := newObj(e, v, p, "key and within"); d != nil {
			st.Dedup = &DedupSpec{Key: d.strList("key"), Within: d.duration("within", 0, true)}
			if len(st.Dedup.Key) == 0 {
				e.at(d.node, d.sub("key"), "is required: the fields that identify duplicates")
			}
			if !d.has("within") {
				e.at(d.node, d.sub("within"), "is required: how long (event time) a key is remembered, like 10m")
			}
			d.done("key", "within")
		}
	case "join":
		st.Join = parseJoin(e, newObj(e, v, p, "input, key, within, fields"))
	case "sql":
		st.SQL = parseSQLStep(e, v, p)
	case "lookup":
		st.Lookup = parseLookup(e, newObj(e, v, p, "postgres or redis, fields, cache, into, on_missing"))
	case "detect":
		st.Detect = parseDetect(e, newObj(e, v, p, "key, value, method, half_life or window, season, threshold, min_samples, emit"))
	case "score":
		st.Score = parseScore(e, newObj(e, v, p, "model, kind, into"))
	case "enrich":
		st.Enrich = parseEnrich(e, newObj(e, v, p, "http, into, on_error"))
	default:
		e.at(o.knod[st.Kind], p, "unknown step; allowed: %s", strings.Join(stepKinds, ", "))
	}
	for _, k := range o.keys[1:] {
		o.used[k] = true
	}
	return st
}

func parseWindow(e *errs, o *obj) *WindowSpec {
	if o == nil {
		return nil
	}
	w := &WindowSpec{}
	w.Key = o.strList("key")
	kinds := 0
	if o.has("tumbling") {
		kinds++
		w.Type = "tumbling"
		w.Size = o.duration("tumbling", 0, true)
	}
	if sl := o.object("sliding", "size and slide"); sl != nil {
		kinds++
		w.Type = "sliding"
		w.Size = sl.duration("size", 0, true)
		w.Slide = sl.duration("slide", 0, true)
		if !sl.has("size") || !sl.has("slide") {
			e.at(sl.node, sl.path, "needs size and slide, like {size: 1m, slide: 10s}")
		} else if w.Slide > w.Size {
			e.at(sl.get("slide"), sl.sub("slide"), "must not exceed size %s", w.Size)
		}
		sl.done("size", "slide")
	}
	if se := o.object("session", "gap"); se != nil {
		kinds++
		w.Type = "session"
		w.Gap = se.duration("gap", 0, true)
		if !se.has("gap") {
			e.at(se.node, se.path, "needs gap, like {gap: 30s}")
		}
		se.done("gap")
	}
	if kinds != 1 {
		e.at(o.node, o.path, "needs exactly one of tumbling: SIZE, sliding: {size, slide} or session: {gap} (found %d)", kinds)
	}
	w.AllowedLateness = o.duration("allowed_lateness", 0, false)
	if ag := o.object("aggregate", "name: count() | sum(x) | min(x) | max(x) | avg(x) | first(x) | last(x) | count_distinct(x)"); ag != nil {
		for _, k := range ag.keys {
			v := ag.get(k)
			p := Pos{File: e.file, Line: v.Line, Column: v.Column, Field: ag.sub(k)}
			if !identRe.MatchString(k) {
				e.at(ag.knod[k], ag.sub(k), "%q is not a field name (letters, digits and _)", k)
				continue
			}
			m := aggRe.FindStringSubmatch(v.Value)
			if v.Kind != yaml.ScalarNode || m == nil {
				e.at(v, ag.sub(k), "must be an aggregate call such as count(), sum(amount) or max(price * qty); allowed functions: %s", strings.Join(aggFuncs, ", "))
				continue
			}
			fn, arg := m[1], strings.TrimSpace(m[2])
			if !isAggFunc(fn) {
				e.at(v, ag.sub(k), "unknown aggregate function %q; allowed: %s", fn, strings.Join(aggFuncs, ", "))
				continue
			}
			if fn == "count" && arg == "*" {
				arg = ""
			}
			if arg == "" && fn != "count" {
				e.at(v, ag.sub(k), "%s needs an argument, like %s(amount)", fn, fn)
				continue
			}
			w.Aggregates = append(w.Aggregates, AggregateSpec{Name: k, Func: fn, Arg: arg, Pos: p})
		}
	} else {
		e.at(o.node, o.sub("aggregate"), "is required: name: function(...) pairs, like {orders: count(), revenue: sum(amount)}")
	}
	o.done("key", "tumbling", "sliding", "session", "allowed_lateness", "aggregate")
	return w
}

var aggFuncs = []string{"count", "sum", "min", "max", "avg", "first", "last", "count_distinct"}

func isAggFunc(f string) bool {
	for _, a := range aggFuncs {
		if a == f {
			return true
		}
	}
	return false
}

func parseJoin(e *errs, o *obj) *JoinSpec {
	if o == nil {
		return nil
	}
	j := &JoinSpec{}
	if in := o.object("input", "a source block: connector, format, event_time"); in != nil {
		j.Input = parseSource(e, in, false)
		if j.Input.EventTime == nil {
			e.at(in.node, in.path, "needs event_time: a join matches records by event time")
		}
	} else {
		e.at(o.node, o.sub("input"), "is required: the second input, a source block like the pipeline's source")
	}
	j.Key = o.strList("key")
	if len(j.Key) == 0 {
		e.at(o.node, o.sub("key"), "is required: the fields of this stream to join on")
	}
	j.RightKey = o.strList("input_key")
	if j.RightKey == nil {
		j.RightKey = j.Key
	} else if len(j.RightKey) != len(j.Key) {
		e.at(o.get("input_key"), o.sub("input_key"), "must list as many fields as key (%d)", len(j.Key))
	}
	j.Within = o.duration("within", 0, false)
	if !o.has("within") {
		e.at(o.node, o.sub("within"), "is required: how far apart in event time joined records may be, like 5m")
	}
	j.Fields = o.strList("fields")
	if len(j.Fields) == 0 {
		e.at(o.node, o.sub("fields"), "is required: the fields of the input to add to each record")
	}
	j.Prefix = o.str("prefix", "")
	j.Type = o.enum("type", "inner", "inner")
	o.done("input", "key", "input_key", "within", "fields", "prefix", "type")
	return j
}
