package sql

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

// Options configure a Session.
type Options struct {
	// Out receives query results and statement messages (os.Stdout in
	// the CLI). Nil discards them.
	Out io.Writer
	// Format of query results: "table" (default) or "json" (JSON lines,
	// with an "op" field for updating results).
	Format string
	// Connect is what connectors need (data directory, brokers).
	Connect connect.Env
	// Logger for jobs; nil uses slog.Default().
	Logger *slog.Logger
	// StreamOptions are added to every job's stream.Env (tests use them
	// for small batches).
	StreamOptions []stream.Option
	// Pebble holds the cache and memtable settings of the Pebble state
	// backend (SET 'state.backend' = 'pebble'); its Dir is replaced by
	// the session's directory. Zero values keep Pebble's defaults.
	Pebble pebble.Options
	// OnJob, when set, is called with every job started (the CLI
	// registers it with the dashboard).
	OnJob func(name string, j *stream.Job, plan string)
}

// Session is a SQL session: a catalog of tables, views and functions,
// settings, and the jobs its statements run. It is not safe for
// concurrent use.
type Session struct {
	opts       Options
	tables     map[string]*table
	views      map[string]*view
	funcs      *expr.Registry
	aggregates map[string]userAggregate
	// goFuncs are functions registered through the Go API under an
	// identifier, which CREATE FUNCTION name AS 'identifier' binds.
	goFuncs  map[string]expr.ScalarFunc
	goAggs   map[string]userAggregate
	settings map[string]string
	sinks    map[string]SinkConnector
	// evalErrors counts run-time evaluation errors (evalError).
	evalErrors atomic.Int64
}

// SinkConnector is a sink connector registered through the Go API: a
// table WITH ('connector' = name) writes through Open.
type SinkConnector struct {
	// AcceptsUpdates: the sink takes updating results (-U/+U/-D).
	AcceptsUpdates bool
	Open           func(t connect.SinkTable) (stream.Sink[exec.Change], error)
}

// RegisterSink adds a sink connector under name (for example a test
// sink, or a system Sluice has no connector for).
func (s *Session) RegisterSink(name string, c SinkConnector) {
	s.sinks[strings.ToLower(name)] = c
}

// NewSession returns an empty session.
func NewSession(opts Options) *Session {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Session{
		opts: opts, tables: map[string]*table{}, views: map[string]*view{},
		funcs: expr.NewRegistry(), aggregates: map[string]userAggregate{},
		goFuncs: map[string]expr.ScalarFunc{}, goAggs: map[string]userAggregate{},
		settings: map[string]string{}, sinks: map[string]SinkConnector{},
	}
}

func (s *Session) compiler() *expr.Compiler {
	return &expr.Compiler{Funcs: s.funcs, OnError: s.evalError}
}

// evalError logs a run-time evaluation error (a failed CAST, a division
// by zero, a DECIMAL overflow: the value became NULL): the first ten,
// then every thousandth, with the count so far.
func (s *Session) evalError(err error) {
	n := s.evalErrors.Add(1)
	if n <= 10 || n%1000 == 0 {
		s.opts.Logger.Warn("SQL evaluation error; the value is NULL", "err", err, "errors_so_far", n)
	}
}

func (s *Session) connectEnv() connect.Env { return s.opts.Connect }

// RegisterFunction makes a Go scalar function callable from SQL under
// f.Name, and bindable by CREATE FUNCTION x AS 'identifier' under each
// identifier given (for example the Java class name a script names).
func (s *Session) RegisterFunction(f expr.ScalarFunc, identifiers ...string) error {
	if err := s.funcs.RegisterScalar(f.Name, f); err != nil {
		return err
	}
	for _, id := range append(identifiers, f.Name) {
		s.goFuncs[strings.ToLower(id)] = f
	}
	return nil
}

// userAggregate is a Go aggregate function with its typing.
type userAggregate struct {
	fn exec.AggregateFunction
	// result types a call from its argument types (an error refuses
	// them).
	result func(args []types.Type) (types.Type, error)
}

// RegisterAggregate makes a Go aggregate function callable from SQL
// under name (and bindable by CREATE FUNCTION under the identifiers);
// result gives the type of its result for its arguments' types, or an
// error saying what it takes.
func (s *Session) RegisterAggregate(name string, f exec.AggregateFunction, result func(args []types.Type) (types.Type, error), identifiers ...string) {
	ua := userAggregate{fn: f, result: result}
	s.aggregates[strings.ToUpper(name)] = ua
	for _, id := range append(identifiers, name) {
		s.goAggs[strings.ToLower(id)] = ua
	}
}

// Set changes a setting, as SET 'key' = 'value' does.
func (s *Session) Set(key, value string) error {
	k := strings.TrimSpace(key)
	if err := checkSetting(k, value); err != nil {
		return err
	}
	s.settings[k] = value
	return nil
}

// settingDocs lists the settings Sluice reads, with what they do.
var settingDocs = map[string]string{
	"parallelism.default":                        "parallel subtasks of every operator (default: the number of CPUs)",
	"execution.checkpointing.interval":           "checkpoint interval (e.g. 10s, 1 min); checkpoints are off without it",
	"execution.checkpointing.timeout":            "how long a checkpoint may take before it is aborted (default 10 x the interval, at least 10 s... see docs/checkpoints.md)",
	"execution.checkpointing.mode":               "EXACTLY_ONCE (default) or AT_LEAST_ONCE",
	"state.checkpoints.dir":                      "directory of checkpoints (a path or file:// URL, or s3://BUCKET/PREFIX with the AWS environment variables); a job restarts from the latest complete one",
	"execution.savepoint.path":                   "a checkpoint directory (chk-N), or its s3://BUCKET/PREFIX/chk-N URL, to start the next job from",
	"state.backend":                              "hashmap (memory, default) or rocksdb/pebble (disk)",
	"state.backend.dir":                          "working directory of the pebble state backend",
	"restart-strategy":                           "fixed-delay (default with checkpoints) or none",
	"restart-strategy.fixed-delay.attempts":      "restarts from the last checkpoint before the job fails (default 3)",
	"restart-strategy.fixed-delay.delay":         "wait before a restart (default 1 s)",
	"table.exec.state.ttl":                       "how long an unbounded aggregation, join or ranking keeps a key nobody updated (e.g. 1 h; 0 = forever)",
	"table.local-time-zone":                      "the session time zone; only UTC is supported",
	"pipeline.name":                              "the job name shown on the dashboard",
	"sql-client.execution.result-mode":           "TABLEAU (print changes as they come) or CHANGELOG; accepted for compatibility",
	"table.exec.source.idle-timeout":             "mark a source split idle after this long without data",
	"execution.runtime-mode":                     "STREAMING (the only mode; bounded sources end the job)",
	"table.exec.mini-batch.enabled":              "true: unbounded aggregations emit one update per changed key per watermark (or allow-latency) instead of one per record",
	"table.exec.mini-batch.allow-latency":        "with mini-batch: the longest a changed key waits before its update is emitted (default 1 s)",
	"table.exec.mini-batch.size":                 "accepted for compatibility",
	"table.optimizer.distinct-agg.split.enabled": "accepted for compatibility",
	"execution.buffer-timeout":                   "how long a partly filled batch between two operators may wait for more records while its task is busy (default 1 ms; 0: sent after every input batch); a batch whose input has nothing more leaves at once",
	"execution.buffer-timeout.interval":          "the same as execution.buffer-timeout (Flink 1.19's name)",
	"metrics.latency.interval":                   "emit a latency marker from every source split this often; each operator records its delay (default 0: none)",
}

func checkSetting(k, v string) error {
	if _, ok := settingDocs[k]; !ok {
		known := make([]string, 0, len(settingDocs))
		for n := range settingDocs {
			known = append(known, n)
		}
		sort.Strings(known)
		if n := nearest(k, known); n != "" {
			return fmt.Errorf("unknown setting '%s'; did you mean '%s'?", k, n)
		}
		return fmt.Errorf("unknown setting '%s'; known settings: %s", k, strings.Join(known, ", "))
	}
	switch k {
	case "parallelism.default":
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return fmt.Errorf("setting %s: '%s' is not a positive integer", k, v)
		}
	case "execution.checkpointing.interval", "execution.checkpointing.timeout", "table.exec.state.ttl", "table.exec.source.idle-timeout", "table.exec.mini-batch.allow-latency", "restart-strategy.fixed-delay.delay":
		if _, err := parseDuration(v); err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	case "execution.buffer-timeout", "execution.buffer-timeout.interval", "metrics.latency.interval":
		d, err := parseDuration(v)
		if err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
		if d < 0 {
			return fmt.Errorf("setting %s: '%s' is negative; use 0 (a batch leaves after every input batch) or a positive duration", k, v)
		}
	case "execution.checkpointing.mode":
		if u := strings.ToUpper(v); u != "EXACTLY_ONCE" && u != "AT_LEAST_ONCE" {
			return fmt.Errorf("setting %s: '%s' must be EXACTLY_ONCE or AT_LEAST_ONCE", k, v)
		}
	case "state.backend":
		switch strings.ToLower(v) {
		case "hashmap", "memory", "rocksdb", "pebble":
		default:
			return fmt.Errorf("setting %s: '%s' must be hashmap (memory) or rocksdb/pebble (disk)", k, v)
		}
	case "table.local-time-zone":
		if v != "UTC" && v != "Z" && v != "GMT" {
			return fmt.Errorf("setting %s: only UTC is supported, not '%s'", k, v)
		}
	case "execution.runtime-mode":
		if strings.ToUpper(v) != "STREAMING" {
			return fmt.Errorf("setting %s: only STREAMING is supported (bounded sources end the job by themselves)", k)
		}
	}
	return nil
}

// parseDuration reads Flink's duration syntax: "10s", "10 s", "1 min",
// "500 ms", "2 h", "1d", or a bare number of milliseconds.
func parseDuration(v string) (time.Duration, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a duration (e.g. 10 s, 500 ms, 1 min, 2 h)", v)
	}
	mult := map[string]time.Duration{
		"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
		"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
		"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("'%s' has an unknown unit '%s' (ms, s, min, h, d)", v, unit)
	}
	return time.Duration(f * float64(mult)), nil
}

// restartStrategy reads Flink's restart settings: 'restart-strategy' =
// 'fixed-delay' (the default once checkpoints are on: 3 attempts, 1 s
// apart, then the job fails) or 'none'.
func (s *Session) restartStrategy() (int, time.Duration, error) {
	switch strings.ToLower(s.settings["restart-strategy"]) {
	case "none", "off", "disable":
		return 0, 0, nil
	case "", "fixed-delay", "fixeddelay":
	default:
		return 0, 0, fmt.Errorf("restart-strategy '%s' is not supported: use fixed-delay or none", s.settings["restart-strategy"])
	}
	attempts, delay := 3, time.Second
	if v := s.settings["restart-strategy.fixed-delay.attempts"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("restart-strategy.fixed-delay.attempts: '%s' is not a non-negative integer", v)
		}
		attempts = n
	}
	if v := s.settings["restart-strategy.fixed-delay.delay"]; v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return 0, 0, fmt.Errorf("restart-strategy.fixed-delay.delay: %w", err)
		}
		delay = d
	}
	return attempts, delay, nil
}

// miniBatch is how long an aggregation may hold a key's update (0: no
// mini-batch).
func (s *Session) miniBatch() time.Duration {
	if !strings.EqualFold(s.settings["table.exec.mini-batch.enabled"], "true") {
		return 0
	}
	if d, err := parseDuration(s.settings["table.exec.mini-batch.allow-latency"]); err == nil && d > 0 {
		return d
	}
	return time.Second
}

func (s *Session) stateTTL() time.Duration {
	d, _ := parseDuration(s.settings["table.exec.state.ttl"])
	return d
}

// jobInfo names a job for the OnJob hook; it is filled in after the
// job's options are made.
type jobInfo struct {
	name, plan string
}

// jobOptions are the stream options the settings give.
func (s *Session) jobOptions(info *jobInfo) ([]stream.Option, error) {
	var opts []stream.Option
	if s.opts.OnJob != nil {
		opts = append(opts, stream.WithJobHook(func(j *stream.Job) { s.opts.OnJob(info.name, j, info.plan) }))
	}
	if v := s.settings["parallelism.default"]; v != "" {
		n, _ := strconv.Atoi(v)
		opts = append(opts, stream.WithParallelism(n))
	}
	opts = append(opts, stream.WithLogger(s.opts.Logger))
	for _, k := range []string{"execution.buffer-timeout", "execution.buffer-timeout.interval"} {
		if v := s.settings[k]; v != "" {
			d, _ := parseDuration(v)
			opts = append(opts, stream.WithBufferTimeout(d))
		}
	}
	if v := s.settings["metrics.latency.interval"]; v != "" {
		d, _ := parseDuration(v)
		opts = append(opts, stream.WithLatencyMarkers(d))
	}
	if sp := s.settings["execution.savepoint.path"]; sp != "" && s.settings["execution.checkpointing.interval"] == "" {
		// The engine restores only with checkpointing on: without this
		// the job would silently start over without its state.
		return nil, fmt.Errorf("execution.savepoint.path is set but checkpointing is not, so the job could not restore %s; SET 'execution.checkpointing.interval' (e.g. '10 s') and 'state.checkpoints.dir' too (the restored job checkpoints there), or RESET 'execution.savepoint.path' to start without state", sp)
	}
	if v := s.settings["execution.checkpointing.interval"]; v != "" {
		d, _ := parseDuration(v)
		dir := strings.TrimPrefix(s.settings["state.checkpoints.dir"], "file://")
		if dir == "" {
			return nil, fmt.Errorf("execution.checkpointing.interval is set but state.checkpoints.dir is not; SET 'state.checkpoints.dir' = '/path/to/checkpoints'")
		}
		delivery := stream.ExactlyOnce
		if strings.EqualFold(s.settings["execution.checkpointing.mode"], "AT_LEAST_ONCE") {
			delivery = stream.AtLeastOnce
		}
		opts = append(opts, stream.WithCheckpointing(dir, d), stream.WithDelivery(delivery))
		if v := s.settings["execution.checkpointing.timeout"]; v != "" {
			t, _ := parseDuration(v)
			opts = append(opts, stream.WithCheckpointTimeout(t))
		}
		attempts, delay, err := s.restartStrategy()
		if err != nil {
			return nil, err
		}
		if attempts > 0 {
			opts = append(opts, stream.WithRestartPolicy(attempts, delay))
		}
		if sp := s.settings["execution.savepoint.path"]; sp != "" {
			opts = append(opts, stream.WithRestoreFrom(sp))
		}
	}
	switch strings.ToLower(s.settings["state.backend"]) {
	case "rocksdb", "pebble":
		dir := s.settings["state.backend.dir"]
		if dir == "" {
			base := strings.TrimPrefix(s.settings["state.checkpoints.dir"], "file://")
			if base == "" {
				return nil, fmt.Errorf("state.backend pebble needs a working directory: SET 'state.backend.dir' = '/path' (or set state.checkpoints.dir)")
			}
			if objstore.IsURL(base) {
				return nil, fmt.Errorf("state.backend pebble needs a local working directory when state.checkpoints.dir is an object store: SET 'state.backend.dir' = '/path'")
			}
			dir = filepath.Join(base, "pebble")
		}
		po := s.opts.Pebble
		po.Dir = dir
		opts = append(opts, stream.WithStateBackend(pebble.Factory(po)))
	}
	return append(opts, s.opts.StreamOptions...), nil
}

// ExecuteScript parses src and executes its statements in order. INSERT
// statements run their job to its end (bounded sources) or until ctx is
// cancelled.
func (s *Session) ExecuteScript(ctx context.Context, src string) error {
	script, err := parser.ParseScript(src)
	if err != nil {
		return err
	}
	for _, st := range script.Statements {
		if err := s.Execute(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// Execute runs one statement.
func (s *Session) Execute(ctx context.Context, st ast.Statement) error {
	switch st := st.(type) {
	case *ast.CreateTable:
		name := nameOf(st.Name)
		if s.exists(name) {
			if st.IfNotExists {
				return nil
			}
			return fmt.Errorf("%s: table or view %s already exists; DROP it first or use CREATE TABLE IF NOT EXISTS", st.Pos, name)
		}
		t, err := s.createTable(st)
		if err != nil {
			return err
		}
		s.tables[lookupKey(name)] = t
		return nil
	case *ast.CreateView:
		name := nameOf(st.Name)
		if s.exists(name) {
			if st.IfNotExists {
				return nil
			}
			return fmt.Errorf("%s: table or view %s already exists; DROP it first", st.Pos, name)
		}
		v := &view{name: name, query: st.Query}
		for _, c := range st.Columns {
			v.columns = append(v.columns, c.Name)
		}
		// Plan it once now so that errors show at CREATE VIEW.
		s.views[lookupKey(name)] = v
		p := s.newPlanner()
		if _, err := p.planTableName(&ast.TableName{Name: st.Name, Pos: st.Pos}); err != nil {
			delete(s.views, lookupKey(name))
			return err
		}
		return nil
	case *ast.CreateFunction:
		return s.createFunction(st)
	case *ast.Drop:
		return s.drop(st)
	case *ast.Set:
		if st.Key == "" {
			return s.printSettings()
		}
		if err := s.Set(st.Key, st.Value); err != nil {
			return fmt.Errorf("%s: %w", st.Pos, err)
		}
		return nil
	case *ast.Reset:
		if st.Key == "" {
			s.settings = map[string]string{}
		} else {
			delete(s.settings, st.Key)
		}
		return nil
	case *ast.Insert:
		return s.runInserts(ctx, []*ast.Insert{st})
	case *ast.StatementSet:
		return s.runInserts(ctx, st.Inserts)
	case *ast.QueryStatement:
		return s.runQuery(ctx, st.Query)
	case *ast.Explain:
		text, err := s.Explain(st.Stmt)
		if err != nil {
			return err
		}
		_, err = io.WriteString(s.opts.Out, text)
		return err
	case *ast.Show:
		return s.show(st)
	case *ast.Describe:
		return s.describeObject(st)
	}
	return fmt.Errorf("%s: unsupported statement %T", st.Start(), st)
}

func (s *Session) exists(name string) bool {
	k := lookupKey(name)
	_, t := s.tables[k]
	_, v := s.views[k]
	return t || v
}

func (s *Session) suggestObject(name string) string {
	var cands []string
	for _, t := range s.tables {
		cands = append(cands, t.name)
	}
	for _, v := range s.views {
		cands = append(cands, v.name)
	}
	if n := nearest(name, cands); n != "" {
		return fmt.Sprintf("; did you mean '%s'?", n)
	}
	if len(cands) == 0 {
		return "; create it first with CREATE TABLE ... WITH ('connector' = ...)"
	}
	sort.Strings(cands)
	return fmt.Sprintf(" (known: %s)", strings.Join(cands, ", "))
}

func (s *Session) createFunction(st *ast.CreateFunction) error {
	name := nameOf(st.Name)
	id := strings.ToLower(st.Identifier)
	if f, ok := s.goFuncs[id]; ok {
		f.Name = name
		// Binding a name again (or the name the Go API registered the
		// function under) replaces the binding.
		s.funcs.Unregister(name)
		if err := s.funcs.RegisterScalar(name, f); err != nil {
			if st.IfNotExists {
				return nil
			}
			return fmt.Errorf("%s: %w", st.Pos, err)
		}
		return nil
	}
	if a, ok := s.goAggs[id]; ok {
		s.aggregates[strings.ToUpper(name)] = a
		return nil
	}
	var known []string
	for k := range s.goFuncs {
		known = append(known, k)
	}
	for k := range s.goAggs {
		known = append(known, k)
	}
	sort.Strings(known)
	msg := fmt.Sprintf("%s: CREATE FUNCTION %s AS '%s': no function is registered under '%s'. Sluice runs Go functions registered through the Go API (sql.Session.RegisterFunction / RegisterAggregate)", st.Pos, name, st.Identifier, st.Identifier)
	if len(known) > 0 {
		msg += "; registered: " + strings.Join(known, ", ")
	}
	return fmt.Errorf("%s", msg)
}

func (s *Session) drop(st *ast.Drop) error {
	name := nameOf(st.Name)
	k := lookupKey(name)
	switch strings.ToUpper(st.Kind) {
	case "TABLE":
		if _, ok := s.tables[k]; ok {
			delete(s.tables, k)
			return nil
		}
	case "VIEW":
		if _, ok := s.views[k]; ok {
			delete(s.views, k)
			return nil
		}
	case "FUNCTION":
		if _, ok := s.aggregates[strings.ToUpper(name)]; ok {
			delete(s.aggregates, strings.ToUpper(name))
			return nil
		}
		if s.funcs.Unregister(name) {
			return nil
		}
	}
	if st.IfExists {
		return nil
	}
	return fmt.Errorf("%s: %s %s does not exist", st.Pos, strings.ToLower(st.Kind), name)
}

func (s *Session) printSettings() error {
	keys := make([]string, 0, len(s.settings))
	for k := range s.settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(s.opts.Out, "'%s' = '%s'\n", k, s.settings[k])
	}
	return nil
}

func (s *Session) show(st *ast.Show) error {
	var names []string
	switch strings.ToUpper(st.What) {
	case "TABLES":
		for _, t := range s.tables {
			names = append(names, t.name)
		}
		for _, v := range s.views {
			names = append(names, v.name)
		}
	case "VIEWS":
		for _, v := range s.views {
			names = append(names, v.name)
		}
	case "FUNCTIONS":
		names = s.funcs.Names()
		for n := range s.aggregates {
			names = append(names, n)
		}
		for n := range builtinAggs {
			names = append(names, n)
		}
		names = append(names, "ROW_NUMBER")
	default:
		return fmt.Errorf("%s: SHOW %s is not supported (TABLES, VIEWS, FUNCTIONS)", st.Pos, st.What)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(s.opts.Out, n)
	}
	return nil
}

func (s *Session) describeObject(st *ast.Describe) error {
	p := s.newPlanner()
	n, err := p.planTableName(&ast.TableName{Name: st.Name, Pos: st.Pos})
	if err != nil {
		return err
	}
	for _, c := range n.cols() {
		fmt.Fprintf(s.opts.Out, "%s\t%s\n", strings.Join(c.pathOrName(), "."), c.typ)
	}
	return nil
}
