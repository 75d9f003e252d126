package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/row/avro"
	statepebble "github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

// Job is a pipeline running on the stream runtime.
type Job struct {
	plan    *Plan
	job     *stream.Job
	dl      *deadLetters
	read    atomic.Int64 // messages read by the inputs
	sources []stream.Source[connector.Message]
	srcName []string // sources[i]'s place in the spec
	// meters of the sinks that keep one (messaging connectors).
	meters []namedMeter
	// lookups are the lookup steps' clients, closed by Wait.
	lookups []lookupRun
	// enrich are the pipeline's enrich steps (enrich.go).
	enrich []*enrichRun
}

// finishCommitter is a source that records its final positions after a
// bounded run ended successfully (the Kafka source commits its group's
// offsets).
type finishCommitter interface {
	CommitFinished(ctx context.Context) error
}

// StartOption adjusts how a plan is started.
type StartOption func(*startConfig)

type startConfig struct {
	streamOpts  []stream.Option
	restoreFrom string
	pebble      statepebble.Options
}

// WithPebbleOptions sizes the Pebble state backend of a pipeline whose
// spec chooses it (state: {backend: pebble}): a shared block cache and
// the memtable size, as the --memory limit splits them. Dir is ignored:
// the spec's state.dir (or the data directory) decides.
func WithPebbleOptions(o statepebble.Options) StartOption {
	return func(c *startConfig) { c.pebble = o }
}

// RestoreFrom starts the pipeline from the checkpoint or savepoint at
// path (a chk-NNN directory, or the s3://BUCKET/PREFIX/chk-NNN URL of one
// in an object store, as StopWithSavepoint returns)
// instead of the latest complete checkpoint of the spec's checkpoint
// directory; new checkpoints still go to the spec's directory. The spec
// must have a checkpoint section, and path must be a complete checkpoint
// of a compatible pipeline (the same operators), else Start fails. An
// empty path changes nothing.
func RestoreFrom(path string) StartOption {
	return func(c *startConfig) { c.restoreFrom = path }
}

// WithStreamOptions passes options to the stream.Env the pipeline runs in
// (batch size, queue capacity, ...). The spec's parallelism is applied
// first, so options given here override it.
func WithStreamOptions(opts ...stream.Option) StartOption {
	return func(c *startConfig) { c.streamOpts = append(c.streamOpts, opts...) }
}

// Start opens the plan's connectors, builds its dataflow and starts it.
// host supplies what the connectors need (the data directory, the
// embedded log, stdout).
func (p *Plan) Start(ctx context.Context, host *Host, opts ...StartOption) (*Job, error) {
	if host == nil {
		host = &Host{}
	}
	var sc startConfig
	for _, o := range opts {
		o(&sc)
	}
	spec := p.Spec
	par := spec.Parallelism
	if par == 0 {
		par = runtime.GOMAXPROCS(0)
	}
	envOpts := []stream.Option{stream.WithParallelism(par), stream.WithLogger(host.logger())}
	exactlyOnce := false
	if cp := spec.Checkpoint; cp != nil {
		dir := cp.Dir
		if dir == "" {
			base := host.DataDir
			if base == "" {
				base = "data"
			}
			dir = filepath.Join(base, "checkpoints", spec.Name)
		}
		d := stream.AtLeastOnce
		if spec.Delivery == DeliveryExactlyOnce {
			d, exactlyOnce = stream.ExactlyOnce, true
		}
		envOpts = append(envOpts, stream.WithCheckpointing(dir, cp.Interval), stream.WithDelivery(d))
		if objstore.IsURL(dir) {
			// Uploads are buffered, and the restored checkpoint downloaded,
			// next to the state directory (Pebble hard-links its sstables).
			base := host.DataDir
			if base == "" {
				base = "data"
			}
			envOpts = append(envOpts, stream.WithCheckpointObjectStore(objstore.Config{Endpoint: cp.Endpoint, Region: cp.Region}),
				stream.WithCheckpointLocalDir(filepath.Join(base, "checkpoint-cache", spec.Name)))
		}
		if sc.restoreFrom != "" {
			envOpts = append(envOpts, stream.WithRestoreFrom(sc.restoreFrom))
		}
	} else if sc.restoreFrom != "" {
		return nil, fmt.Errorf("%s: cannot restore from checkpoint %s: the pipeline has no checkpoint section (add checkpoint: {interval: 5s})", spec.File, sc.restoreFrom)
	}
	if st := spec.State; st != nil && st.Backend == StatePebble {
		dir := st.Dir
		if dir == "" {
			base := host.DataDir
			if base == "" {
				base = "data"
			}
			dir = filepath.Join(base, "state", spec.Name)
		}
		po := sc.pebble
		po.Dir = dir
		envOpts = append(envOpts, stream.WithStateBackend(statepebble.Factory(po)))
	}
	if l := spec.Latency; l != nil {
		if l.BufferTimeout != nil {
			envOpts = append(envOpts, stream.WithBufferTimeout(*l.BufferTimeout))
		}
		if l.Markers > 0 {
			envOpts = append(envOpts, stream.WithLatencyMarkers(l.Markers))
		}
	}
	env := stream.New(append(envOpts, sc.streamOpts...)...)
	dl := &deadLetters{tolerance: spec.Errors.Tolerance, logger: host.logger()}
	bc := &buildCtx{host: host, pipeline: spec.Name, delivery: spec.Delivery, exactlyOnce: exactlyOnce, dl: dl}
	if spec.Checkpoint != nil {
		bc.checkpointInterval = spec.Checkpoint.Interval
	}
	if d := spec.Errors.DeadLetter; d != nil {
		// The dead-letter writer is outside the dataflow: no checkpoint
		// barrier ever reaches it, so it cannot run two-phase (a staged
		// part would never commit). Dead letters are at-least-once.
		dbc := *bc
		dbc.exactlyOnce = false
		s, err := d.cfg.openBytes(&dbc)
		if err != nil {
			return nil, openErr(spec.File, "errors.dead_letter", err)
		}
		dl.sink = s
	}
	pj := &Job{plan: p, dl: dl}
	started := false
	defer func() {
		if !started {
			_ = pj.closeLookups() // Start failed: release the lookups' connections
		}
	}()
	rows, err := p.buildInput(ctx, env, bc, p.input, dl, "source", pj)
	if err != nil {
		return nil, err
	}
	for _, st := range p.stages {
		switch st.kind {
		case "chain":
			rows = buildChain(ctx, rows, st.chain, dl, st.name)
		case "window":
			if st.window.changelog {
				rows = buildChangelogWindow(ctx, rows, st.window, st.in, dl)
			} else {
				rows = buildWindow(ctx, rows, st.window, st.in, dl)
			}
		case "dedup":
			rows = buildDedup(rows, st.dedup, st.name)
		case "detect":
			rows = buildDetect(ctx, rows, st.detect, st.in, dl)
		case "score":
			rows = buildScore(ctx, rows, st.score, st.in, dl)
		case "normalize":
			rows = buildNormalize(rows, st.norm, st.name)
		case "join":
			right, err := p.buildInput(ctx, env, bc, st.join.right, dl, st.name+".input", pj)
			if err != nil {
				return nil, err
			}
			rows = buildJoin(rows, right, st.join, st.name)
		case "lookup":
			rows, err = buildLookup(ctx, rows, st.lookup, st.in, dl, pj)
			if err != nil {
				return nil, err
			}
		case "sql":
			rows, err = buildSQL(ctx, rows, st.sql, st.in, dl)
			if err != nil {
				return nil, err
			}
		case "enrich":
			if rows, err = buildEnrich(ctx, rows, st, dl, pj); err != nil {
				return nil, err
			}
		}
	}
	out := p.out()
	for i, sk := range spec.Sinks {
		name := sinkName(sk, i)
		if sk.cfg.bytes() {
			enc, err := p.rowEncoderFor(ctx, host, sk, out)
			if err != nil {
				return nil, openErr(spec.File, sk.Pos.Field, err)
			}
			cfg := sk.cfg
			if fs, ok := cfg.(*fileSinkConfig); ok && sk.Format == "avro" {
				c := *fs
				c.cfg.Container = ocfContainer{w: avro.NewContainerWriter(enc.(*avroRows).enc.Schema())}
				if c.cfg.Suffix == "" {
					c.cfg.Suffix = ".avro"
				}
				cfg = &c
			}
			if fs, ok := cfg.(*fileSinkConfig); ok && sk.Format == "protobuf" {
				c := *fs
				c.cfg.Framed = true // length-delimited records (delimRows)
				if c.cfg.Suffix == "" {
					c.cfg.Suffix = ".binpb"
				}
				cfg = &c
			}
			bs, err := cfg.openBytes(bc)
			if err != nil {
				return nil, openErr(spec.File, sk.Pos.Field, err)
			}
			keyIdx := -1
			if k := sk.cfg.messageKey(); k != "" {
				i, ok := out.Index(k)
				if !ok {
					return nil, sk.Pos.errorf("key: unknown field %q; output fields: %s", k, out)
				}
				keyIdx = i
			}
			var kt *keyTemplate
			if t, ok := sk.cfg.(keyTemplater); ok {
				if tmpl, pos := t.keyTemplate(); tmpl != "" {
					if kt, err = compileTemplate(tmpl, out); err != nil {
						return nil, pos.errorf("%v", err)
					}
					kt.check = t.checkKey
				}
			}
			if m, ok := bs.(connector.Metered); ok {
				pj.meters = append(pj.meters, namedMeter{field: sk.Pos.Field, connector: sk.Connector, m: m.Meter()})
			}
			stream.To(rows, stream.Sink[row.Row](&encodingSink{inner: bs, enc: enc, keyIdx: keyIdx, keyTmpl: kt, name: name, schema: out, dl: dl}), stream.Name(name))
			continue
		}
		var rs stream.Sink[row.Row]
		if pg, ok := sk.cfg.(*postgresConfig); ok && p.changelog {
			rs, err = openChangelogPostgres(pg, out)
		} else {
			rs, err = sk.cfg.openRows(bc, out)
		}
		if err != nil {
			return nil, openErr(spec.File, sk.Pos.Field, err)
		}
		stream.To(rows, rs, stream.Name(name))
	}
	if exactlyOnce {
		for _, sk := range spec.Sinks {
			if !exactlyOnceSink(sk) {
				host.logger().Warn("pipeline: this sink is at-least-once under exactly_once delivery (its connector has no two-phase commit yet): it may repeat output after a restart",
					"pipeline", spec.Name, "sink", sk.Pos.Field, "connector", sk.Connector)
			}
		}
		if spec.Errors.DeadLetter != nil {
			host.logger().Warn("pipeline: dead letters are at-least-once under exactly_once delivery: a restart may repeat some", "pipeline", spec.Name)
		}
	}
	job, err := env.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", spec.Name, err)
	}
	pj.job = job
	started = true
	return pj, nil
}

func (p *Plan) buildInput(ctx context.Context, env *stream.Env, bc *buildCtx, in *inputPlan, dl *deadLetters, name string, pj *Job) (stream.Stream[row.Row], error) {
	var ai *avroInput
	if in.spec.Format == "avro" {
		var err error
		if ai, err = newAvroInput(ctx, in, p.Spec.Registry, bc.host); err != nil {
			return stream.Stream[row.Row]{}, openErr(p.Spec.File, in.spec.Pos.Field, err)
		}
	}
	var pi *protoInput
	if in.spec.Format == "protobuf" {
		var err error
		if pi, err = newProtoInput(in, p.Spec.Registry, bc.host); err != nil {
			return stream.Stream[row.Row]{}, openErr(p.Spec.File, in.spec.Pos.Field, err)
		}
	}
	cfg := in.spec.cfg
	if fs, ok := cfg.(*fileSourceConfig); ok && in.spec.Format == "csv" && len(in.spec.CSV.Columns) == 0 {
		c := *fs
		c.cfg.Header = true // each file's first line names the columns
		cfg = &c
	}
	if fs, ok := cfg.(*fileSourceConfig); ok && in.spec.Format == "avro" {
		c := *fs
		c.cfg.Records = ocfFraming{} // object container files
		cfg = &c
	}
	if hs, ok := cfg.(*httpSourceConfig); ok && in.spec.Format == "avro" {
		c := *hs
		c.cfg.Body = ocfBody // each request body is one object container file
		cfg = &c
	}
	if fs, ok := cfg.(*fileSourceConfig); ok && in.spec.Format == "protobuf" {
		c := *fs
		c.cfg.Records = pbDelimFraming{} // length-delimited streams
		cfg = &c
	}
	if hs, ok := cfg.(*httpSourceConfig); ok && in.spec.Format == "protobuf" {
		c := *hs
		c.cfg.Body = pbBodyFunc(in.spec.Schema.Body)
		cfg = &c
	}
	src, err := cfg.open(bc)
	if err != nil {
		return stream.Stream[row.Row]{}, openErr(p.Spec.File, in.spec.Pos.Field, err)
	}
	pj.sources = append(pj.sources, src)
	pj.srcName = append(pj.srcName, in.spec.Pos.Field)
	if bc.host.OnSourceOpen != nil {
		bc.host.OnSourceOpen(in.spec.Pos.Field, src)
	}
	var wm stream.WatermarkStrategy[tsRow]
	if in.tsField >= 0 || in.srcTime {
		et := in.spec.EventTime
		wm = stream.BoundedOutOfOrderness(tsRow.maxTs, et.MaxOutOfOrderness).WithIdleTimeout(et.IdleTimeout)
	}
	s := stream.FromSource[tsRow](env, name, &ingestSource{inner: src, in: in, avro: ai, pb: pi, dl: dl, read: &pj.read}, wm)
	if in.spec.Changelog != nil {
		// An update is two rows (-U, +U) of one source record, each at
		// its own event time (with event time from a field, the old row's
		// and the new row's).
		timed := wm.Timestamp != nil
		return stream.FlatMap(s, func(t tsRow, em *stream.Emitter[row.Row]) {
			if !timed {
				em.Emit(t.r)
				if t.two {
					em.Emit(t.r2)
				}
				return
			}
			em.EmitAt(t.r, t.ts)
			if t.two {
				em.EmitAt(t.r2, t.ts2)
			}
		}, stream.Name(name+".rows")), nil
	}
	return stream.Map(s, func(t tsRow) row.Row { return t.r }, stream.Name(name+".rows")), nil
}

func buildChain(ctx context.Context, rows stream.Stream[row.Row], c *chain, dl *deadLetters, name string) stream.Stream[row.Row] {
	return stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[row.Row]) {
		out, keep, err := c.apply(r, nil)
		if err != nil {
			var se *stepError
			f := failure{Stage: name, Origin: name, Offset: -1, Err: err}
			if errors.As(err, &se) {
				f.Stage, f.Err, f.Origin = se.stage, se.err, se.stage
				rr := se.row
				f.Row, f.Schema = &rr, se.in
			}
			if ferr := dl.report(ctx, f); ferr != nil {
				panic(ferr)
			}
			return
		}
		if keep {
			em.Emit(out)
		}
	}, stream.Name(name))
}

// Wait waits for the job to end. It returns nil when every bounded input
// was processed completely; the record error that failed the job under
// tolerance none (wrapping ErrTolerance); or the job's error.
func (j *Job) Wait() error {
	err := j.job.Wait()
	j.closeEnrich()
	cerr := j.dl.close(context.Background())
	_ = j.closeLookups() // nothing is lost if closing a connection fails
	if fatal := j.dl.fatalErr(); fatal != nil {
		return fatal
	}
	if err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("dead-letter sink: %w", cerr)
	}
	for _, s := range j.sources {
		if fc, ok := s.(finishCommitter); ok {
			if err := fc.CommitFinished(context.Background()); err != nil {
				return fmt.Errorf("pipeline %s: recording the final source positions: %w", j.plan.Spec.Name, err)
			}
		}
	}
	return nil
}

// StopWithSavepoint takes a checkpoint now, waits for it to complete and
// stops the job; Wait then returns nil. It returns the checkpoint's
// directory. It needs checkpointing (a checkpoint: key in the spec).
func (j *Job) StopWithSavepoint(ctx context.Context) (string, error) {
	return j.job.StopWithSavepoint(ctx)
}

// Cancel stops the job; Wait then returns context.Canceled.
func (j *Job) Cancel() { j.job.Cancel() }

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.job.Done() }

// CheckpointStats returns the runtime's checkpoint counters (zero without
// checkpointing).
func (j *Job) CheckpointStats() stream.CheckpointStats { return j.job.CheckpointStats() }

// CheckpointHistory returns the job's last checkpoints, oldest first.
func (j *Job) CheckpointHistory() []stream.CheckpointRecord { return j.job.CheckpointHistory() }

// Metrics returns the stream runtime's per-subtask counters.
func (j *Job) Metrics() []stream.SubtaskMetrics { return j.job.Metrics() }

// Plan returns the physical plan of the stream dataflow the pipeline was
// planned into, as it runs (stream.Job.Plan): operators, parallelism,
// chains and exchanges. The dashboard draws it and EXPLAIN prints it.
func (j *Job) Plan() stream.Plan { return j.job.Plan() }

// BufferTimeout returns the job's buffer timeout (the spec's
// latency.buffer_timeout, or stream.DefaultBufferTimeout).
func (j *Job) BufferTimeout() time.Duration { return j.job.BufferTimeout() }

// Latency returns the job's latency histograms (stream.Job.Latency).
func (j *Job) Latency() []stream.LatencyHistogram { return j.job.Latency() }

// DeadLetters returns how many records failed so far (dead-lettered,
// dropped with a warning, or the one that failed the job).
func (j *Job) DeadLetters() int64 { return j.dl.count.Load() }

// Run starts a compiled plan and waits for it.
func Run(ctx context.Context, p *Plan, host *Host, opts ...StartOption) error {
	j, err := p.Start(ctx, host, opts...)
	if err != nil {
		return err
	}
	return j.Wait()
}

// exactlyOnceSink reports whether a sink keeps exactly-once delivery under
// checkpointing: by two-phase commit (file, parquet, kafka) or by idempotent upserts
// (postgres with a key).
func exactlyOnceSink(sk SinkSpec) bool {
	switch c := sk.cfg.(type) {
	case *fileSinkConfig, *parquetConfig, *kafkaSinkConfig, *logSinkConfig:
		return true
	case *postgresConfig:
		return len(c.cfg.Key) > 0
	case exactlyOnceCapable:
		return c.exactlyOnceCapable()
	}
	return false
}

// openErr is the error of opening the connector at field: a *SpecError
// (which names the file, line and key itself) as it is, anything else
// prefixed with the file and field.
func openErr(file, field string, err error) error {
	var se *SpecError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", file, field, err)
}
