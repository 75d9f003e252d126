package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// ClusterOverrides are the command line's changes to the cluster section.
type ClusterOverrides struct {
	// Brokers replace cluster.brokers when not empty (--cluster).
	Brokers []string
	// InstanceID names this instance (--instance-id).
	InstanceID string
}

// ClusterTopology plans the pipeline onto cluster mode: the cluster
// configuration of this instance and the topology of tasks. The pipeline
// is cut at every keyed step (window, dedup) into sub-topologies joined by
// repartition topics; the steps between run in the task before the cut.
// Cluster mode reads a Kafka source and writes Kafka sinks (through the
// instance's transactional producer); other connectors are refused with
// the reason.
// ClusterPlan is what an instance of a clustered pipeline runs.
type ClusterPlan struct {
	Config   cluster.Config
	Topology *cluster.Topology
	// Ingest, when not nil (an http source), runs beside the instance: it
	// starts the HTTP source writing into the application's ingest
	// topic, which the topology reads. Start it after cluster.New (which
	// creates the topic).
	Ingest func(ctx context.Context) (*stream.Job, error)
}

// Cluster plans the pipeline onto cluster mode (ClusterTopology) and,
// for an http source, the ingest that feeds it.
func (p *Plan) Cluster(ctx context.Context, host *Host, o ClusterOverrides) (*ClusterPlan, error) {
	cfg, topo, err := p.ClusterTopology(ctx, host, o)
	if err != nil {
		return nil, err
	}
	cp := &ClusterPlan{Config: cfg, Topology: topo}
	if _, ok := p.Spec.Source.cfg.(*httpSourceConfig); ok {
		if host == nil {
			host = &Host{}
		}
		cp.Ingest = func(ctx context.Context) (*stream.Job, error) {
			return p.startIngest(ctx, host, cp.Config, topo.Source)
		}
	}
	return cp, nil
}

func (p *Plan) ClusterTopology(ctx context.Context, host *Host, o ClusterOverrides) (cluster.Config, *cluster.Topology, error) {
	spec := p.Spec
	cs := spec.Cluster
	if cs == nil {
		return cluster.Config{}, nil, fmt.Errorf("%s: the pipeline has no cluster section", spec.File)
	}
	if host == nil {
		host = &Host{}
	}
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: cluster mode: %s", spec.File, field, fmt.Sprintf(format, args...))
	}
	cfg := cluster.Config{
		Brokers:         cs.Brokers,
		ApplicationID:   cs.ApplicationID,
		InstanceID:      o.InstanceID,
		CommitInterval:  cs.CommitInterval,
		SessionTimeout:  cs.SessionTimeout,
		DeliveryTimeout: cs.DeliveryTimeout,
		StandbyReplicas: cs.StandbyReplicas,
		ExactlyOnce:     spec.Delivery == DeliveryExactlyOnce,
		Logger:          host.logger(),
		LeaveOnClose:    true,
	}
	if host.DataDir != "" {
		cfg.StateDir = filepath.Join(host.DataDir, "cluster")
	}
	if len(o.Brokers) > 0 {
		cfg.Brokers = o.Brokers
	}
	bc := &buildCtx{host: host, pipeline: spec.Name, delivery: spec.Delivery}
	topo := &cluster.Topology{MaxOutOfOrderness: -1, Partitions: int32(cs.Partitions)}
	switch c := spec.Source.cfg.(type) {
	case *kafkaSourceConfig:
		topo.Source = c.cfg.Topic
		if len(c.cfg.Brokers) > 0 && len(cfg.Brokers) == 0 {
			cfg.Brokers = c.cfg.Brokers
		}
		opts, err := kafkaClientOptions(c.sec, bc)
		if err != nil {
			return cfg, nil, err
		}
		cfg.ClientOptions = opts
		if c.cfg.Group != "" && c.cfg.Group != cfg.ApplicationID {
			return cfg, nil, fail("source.kafka.group", "the consumer group is the application id (%q); remove group or set cluster.application_id", cfg.ApplicationID)
		}
		if len(c.cfg.Partitions) > 0 || c.cfg.Bounded {
			return cfg, nil, fail("source.kafka", "partitions and bounded are not supported: the group assigns every partition, and a clustered pipeline runs until stopped")
		}
	case *httpSourceConfig:
		if spec.Source.Format == "avro" {
			return cfg, nil, fail("source.format", "format avro on an http source (object container bodies) runs on one machine only: run it without cluster:, or send Avro to a kafka topic in the Confluent wire format")
		}
		if spec.Source.Format == "protobuf" {
			return cfg, nil, fail("source.format", "format protobuf on an http source runs on one machine only: run it without cluster:, or send protobuf to a kafka topic")
		}
		topo.Source = cluster.IngestTopic(cfg.ApplicationID)
		topo.SourcePartitions = ingestPartitions
		if cs.Partitions > 0 {
			topo.SourcePartitions = int32(cs.Partitions)
		}
		opts, err := kafkaClientOptions(nil, bc)
		if err != nil {
			return cfg, nil, err
		}
		cfg.ClientOptions = opts
	case *fileSourceConfig:
		return cfg, nil, fail("source.file", "a file is on one machine's disk and cannot be split among instances: produce it into a topic (sluice produce) and read that with a kafka source")
	default:
		return cfg, nil, fail("source."+spec.Source.Connector, "only kafka and http sources are supported (an http source writes into the %s topic)", cluster.IngestTopic(cfg.ApplicationID))
	}
	if et := spec.Source.EventTime; et != nil && et.SourceTime {
		return cfg, nil, fail("source.event_time.source_time", "is not supported in cluster mode: take the event time from a field (event_time: {field: ...})")
	}
	if et := spec.Source.EventTime; et != nil && et.Field != "" {
		topo.MaxOutOfOrderness = et.MaxOutOfOrderness
		topo.IdleTimeout = et.IdleTimeout
	}
	out := p.out()
	var sinks []clusterSink
	for i, sk := range spec.Sinks {
		kc, ok := sk.cfg.(*kafkaSinkConfig)
		if !ok {
			return cfg, nil, fail(sk.Pos.Field, "only kafka sinks are supported (they write in the instance's transaction), not %s", sk.Connector)
		}
		enc, err := p.rowEncoderFor(ctx, host, sk, out)
		if err != nil {
			return cfg, nil, openErr(spec.File, sk.Pos.Field, err)
		}
		s := clusterSink{index: i, keyIdx: -1, enc: enc, name: sinkName(sk, i), schema: out}
		if k := kc.key; k != "" {
			ki, ok := out.Index(k)
			if !ok {
				return cfg, nil, sk.Pos.errorf("key: unknown field %q; output fields: %s", k, out)
			}
			s.keyIdx = ki
		}
		topo.Outputs = append(topo.Outputs, kc.cfg.Topic)
		sinks = append(sinks, s)
	}
	dl := &deadLetters{tolerance: spec.Errors.Tolerance, logger: host.logger()}
	if d := spec.Errors.DeadLetter; d != nil {
		dcfg := d.cfg
		if kc, ok := dcfg.(*kafkaSinkConfig); ok && len(kc.cfg.Brokers) == 0 {
			// A kafka dead-letter topic without brokers is on the
			// cluster's (at-least-once: it is written outside the
			// instance's transactions).
			c := *kc
			c.cfg.Brokers = cfg.Brokers
			dcfg = &c
		}
		s, err := dcfg.openBytes(bc)
		if err != nil {
			return cfg, nil, openErr(spec.File, "errors.dead_letter", err)
		}
		dl.sink = s
	}
	// Cut the stages into sub-topologies: each keyed stage starts one,
	// and the chains after it run in it.
	type part struct {
		keyed  *stage
		chains []*chain
	}
	parts := []part{{}}
	for i := range p.stages {
		st := &p.stages[i]
		switch st.kind {
		case "chain":
			parts[len(parts)-1].chains = append(parts[len(parts)-1].chains, st.chain)
		case "window", "dedup":
			parts = append(parts, part{keyed: st})
		default:
			return cfg, nil, fail(st.name, "%s steps are not supported yet (window and dedup are)", st.kind)
		}
	}
	if len(parts) > 1 && topo.MaxOutOfOrderness < 0 {
		return cfg, nil, fail("source.event_time", "keyed steps need event time across instances: set source.event_time")
	}
	for i := range parts {
		pt := parts[i]
		em := &emitPlan{chains: pt.chains, sinks: sinks, ctx: ctx, dl: dl}
		if i+1 < len(parts) {
			em.nextKey = keyIndexes(parts[i+1].keyed)
			em.sinks = nil
		}
		st := cluster.SubTopology{Name: "source"}
		if i == 0 {
			in := p.input
			var ai *avroInput
			if in.spec.Format == "avro" {
				var err error
				if ai, err = newAvroInput(ctx, in, spec.Registry, host); err != nil {
					return cfg, nil, openErr(spec.File, in.spec.Pos.Field, err)
				}
			}
			var pi *protoInput
			if in.spec.Format == "protobuf" {
				var err error
				if pi, err = newProtoInput(in, spec.Registry, host); err != nil {
					return cfg, nil, openErr(spec.File, in.spec.Pos.Field, err)
				}
			}
			st.NewTask = func(p int32) cluster.Task {
				md, err := newMsgDecoder(in, ai, pi)
				return &sourceTask{md: md, err: err, em: em, origin: fmt.Sprintf("%s/%d", topo.Source, p)}
			}
		} else {
			ks := pt.keyed
			st.Name = topicName(ks.name)
			st.Stateful = true
			switch ks.kind {
			case "window":
				w := ks.window
				if w.spec.Type == "session" {
					st.NewTask = func(int32) cluster.Task { return newSessionTask(w, em) }
				} else {
					st.NewTask = func(int32) cluster.Task { return newWindowTask(w, em) }
				}
			case "dedup":
				d := ks.dedup
				st.NewTask = func(int32) cluster.Task { return newDedupTask(d, em) }
			}
		}
		topo.SubTopologies = append(topo.SubTopologies, st)
	}
	return cfg, topo, nil
}

// topicName turns a step path (steps[2].window) into a topic name part
// (step2-window).
func topicName(path string) string {
	r := strings.NewReplacer("steps[", "step", "].", "-", "[", "-", "]", "", ".", "-")
	return r.Replace(path)
}

func keyIndexes(st *stage) []int {
	if st.window != nil {
		return st.window.keyIdx
	}
	return st.dedup.keyIdx
}

// clusterSink is a Kafka sink of a clustered pipeline.
type clusterSink struct {
	index  int
	keyIdx int
	enc    rowEncoder
	name   string
	schema *row.Schema
}

// emitPlan is what follows a task's own step: the stateless steps, then
// either the next sub-topology (rows forwarded, keyed by nextKey) or the
// sinks.
type emitPlan struct {
	chains  []*chain
	nextKey []int
	sinks   []clusterSink
	ctx     context.Context
	dl      *deadLetters
}

// emit runs r through the chains and sends it on.
func (e *emitPlan) emit(out cluster.Output, r row.Row, ts int64, origin string, offset int64) error {
	for _, c := range e.chains {
		var keep bool
		var err error
		r, keep, err = c.apply(r, nil)
		if err != nil {
			f := failure{Stage: "steps", Origin: origin, Offset: offset, Err: err}
			var se *stepError
			if errors.As(err, &se) {
				f.Stage, f.Err = se.stage, se.err
				rr := se.row
				f.Row, f.Schema = &rr, se.in
			}
			return e.dl.report(e.ctx, f)
		}
		if !keep {
			return nil
		}
	}
	if e.nextKey != nil {
		key := r.AppendKey(nil, e.nextKey)
		out.Forward(key, r.AppendBinary(nil), ts)
		return nil
	}
	for _, s := range e.sinks {
		var key []byte
		if s.keyIdx >= 0 {
			if k := r.Get(s.keyIdx); !k.IsNull() {
				key = []byte(k.String())
			}
		}
		b, err := s.enc.Append(nil, r)
		if err != nil {
			rr := r
			if ferr := e.dl.report(e.ctx, failure{Stage: s.name + ".encode", Origin: origin, Offset: offset, Err: err, Row: &rr, Schema: s.schema}); ferr != nil {
				return ferr
			}
			continue
		}
		out.Emit(s.index, key, b, ts)
	}
	return nil
}

// sourceTask decodes a source partition's messages and runs the steps
// before the first keyed step.
type sourceTask struct {
	md      *msgDecoder
	err     error
	em      *emitPlan
	origin  string // topic/partition, for dead letters
	headers []connector.Header
}

func (t *sourceTask) Process(out cluster.Output, r *kgo.Record) error {
	if t.err != nil {
		return t.err
	}
	m := connector.Message{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli(), Offset: r.Offset, Origin: t.origin}
	if len(r.Headers) > 0 {
		t.headers = t.headers[:0]
		for _, h := range r.Headers {
			t.headers = append(t.headers, connector.Header{Key: h.Key, Value: h.Value})
		}
		m.Headers = t.headers
	}
	tr, keep, f := t.md.message(&m)
	if f != nil {
		return t.em.dl.report(t.em.ctx, *f)
	}
	if !keep {
		return nil
	}
	return t.em.emit(out, tr.r, tr.ts, m.Origin, r.Offset)
}

func (t *sourceTask) Watermark(cluster.Output, int64) error { return nil }
func (t *sourceTask) Flush(cluster.Output) error            { return nil }
func (t *sourceTask) Commit()                               {}
func (t *sourceTask) Abort()                                {}
func (t *sourceTask) Restore(key, value []byte) error {
	return errors.New("a stateless task has no changelog")
}

// timerIndex finds the state keys whose time (window end, dedup expiry)
// the watermark passed.
type timerIndex struct {
	at map[int64]map[string]struct{}
}

// remove drops key k's timer at t, if there is one.
func (x *timerIndex) remove(t int64, k string) {
	if s := x.at[t]; s != nil {
		delete(s, k)
		if len(s) == 0 {
			delete(x.at, t)
		}
	}
}

func (x *timerIndex) add(t int64, k string) {
	if x.at == nil {
		x.at = map[int64]map[string]struct{}{}
	}
	s := x.at[t]
	if s == nil {
		s = map[string]struct{}{}
		x.at[t] = s
	}
	s[k] = struct{}{}
}

// due removes and returns the keys of times <= upTo, by time then key.
func (x *timerIndex) due(upTo int64) []string {
	var ts []int64
	for t := range x.at {
		if t <= upTo {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	var keys []string
	for _, t := range ts {
		ks := make([]string, 0, len(x.at[t]))
		for k := range x.at[t] {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		keys = append(keys, ks...)
		delete(x.at, t)
	}
	return keys
}

// windowTask is a keyed tumbling or sliding window over one repartition
// partition: accumulators per key and window in a changelog-backed
// table, fired when the watermark passes the window's end and kept for
// the allowed lateness (a late record within it fires the window again).
// Whether a window fired is part of its state, so a new owner neither
// repeats nor loses a firing.
type windowTask struct {
	w        *windowPlan
	em       *emitPlan
	assigner window.Assigner
	size     int64
	lateness int64
	tableState[*clusterWin]
	timers  timerIndex // firing and cleanup times per state key
	wm      int64
	scratch []window.Window
}

// clusterWin is one key's window: its accumulator and whether it fired.
type clusterWin struct {
	acc   *winAcc
	fired bool
}

func newWindowTask(w *windowPlan, em *emitPlan) *windowTask {
	t := &windowTask{w: w, em: em, wm: cluster.NoWatermark, lateness: w.spec.AllowedLateness.Milliseconds()}
	if w.spec.Type == "sliding" {
		t.assigner = window.Sliding(w.spec.Size, w.spec.Slide)
	} else {
		t.assigner = window.Tumbling(w.spec.Size)
	}
	t.size = w.spec.Size.Milliseconds()
	t.tab = cluster.NewTable(func(c *clusterWin) []byte {
		b, _ := c.acc.MarshalBinary()
		if c.fired {
			return append(b, 1)
		}
		return append(b, 0)
	}, func(b []byte) (*clusterWin, error) {
		if len(b) < 2 {
			return nil, errCodec
		}
		c := &clusterWin{acc: &winAcc{}, fired: b[len(b)-1] == 1}
		return c, c.acc.UnmarshalBinary(b[:len(b)-1])
	})
	return t
}

// stateKey is 'w', the key's encoding, then the window start (8 bytes).
func stateKey(key []byte, start int64) string {
	b := make([]byte, 0, 1+len(key)+8)
	b = append(b, 'w')
	b = append(b, key...)
	return string(binary.BigEndian.AppendUint64(b, uint64(start)))
}

func keyStart(k string) int64 { return int64(binary.BigEndian.Uint64([]byte(k[len(k)-8:]))) }

// prepareRecord decodes a repartitioned row and prepares it for the
// window w; ok is false for a row whose aggregate arguments failed (it
// went to the dead letters, or err says the job must fail).
func prepareRecord(w *windowPlan, em *emitPlan, r *kgo.Record) (x winIn, ts int64, ok bool, err error) {
	rw, _, err := row.DecodeRow(r.Value)
	if err != nil {
		return winIn{}, 0, false, fmt.Errorf("decoding a repartitioned row: %w", err)
	}
	ts = r.Timestamp.UnixMilli()
	x, stage, perr := w.prepare(rw, ts)
	if perr != nil {
		return winIn{}, 0, false, em.dl.report(em.ctx, failure{Stage: stage, Origin: w.stage, Offset: r.Offset, Err: perr, Row: &rw})
	}
	return x, ts, true, nil
}

func (t *windowTask) Process(out cluster.Output, r *kgo.Record) error {
	x, ts, ok, err := prepareRecord(t.w, t.em, r)
	if !ok {
		return err
	}
	t.scratch = t.assigner.Assign(ts, t.scratch[:0])
	for _, win := range t.scratch {
		if window.IsLate(win, t.lateness, t.wm) {
			continue
		}
		k := stateKey(r.Key, win.Start)
		c, ok := t.tab.Get(k)
		if !ok {
			c = &clusterWin{acc: t.w.newAcc()}
			t.tab.Put(k, c)
			t.timers.add(win.End-1, k)
		} else {
			t.tab.Touch(k)
		}
		t.w.add(c.acc, x)
		if c.fired {
			// Late within the allowed lateness: the window fires again.
			if err := t.fire(out, k, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *windowTask) fire(out cluster.Output, k string, c *clusterWin) error {
	if !c.fired {
		t.tab.Touch(k)
		c.fired = true
	}
	start := keyStart(k)
	vals := t.w.result(c.acc)
	n := len(t.w.keyIdx)
	vals[n] = row.Int(start)
	vals[n+1] = row.Int(start + t.size)
	return t.em.emit(out, row.Row{Vals: vals}, start+t.size-1, t.w.stage, -1)
}

func (t *windowTask) Watermark(out cluster.Output, wm int64) error {
	t.wm = wm
	for _, k := range t.timers.due(wm) {
		c, ok := t.tab.Get(k)
		if !ok {
			continue
		}
		if !c.fired {
			if err := t.fire(out, k, c); err != nil {
				return err
			}
		}
		if cleanup := keyStart(k) + t.size - 1 + t.lateness; cleanup > wm {
			t.timers.add(cleanup, k)
			continue
		}
		t.tab.Delete(k)
	}
	return nil
}

func (t *windowTask) Abort() {
	_ = t.tab.Abort()
	t.wm = cluster.NoWatermark
	t.timers = timerIndex{}
	t.tab.Range(func(k string, c *clusterWin) bool {
		t.addTimer(k, c)
		return true
	})
}

func (t *windowTask) addTimer(k string, c *clusterWin) {
	end := keyStart(k) + t.size - 1
	if c.fired {
		end += t.lateness
	}
	t.timers.add(end, k)
}

func (t *windowTask) Restore(key, value []byte) error {
	k := string(key)
	if len(k) < 9 || k[0] != 'w' {
		return fmt.Errorf("unexpected window state key %q", key)
	}
	// The key's timers follow its latest value: a standby applies a
	// changelog for long without a watermark, and timers of keys since
	// deleted (or fired) would pile up.
	end := keyStart(k) + t.size - 1
	t.timers.remove(end, k)
	t.timers.remove(end+t.lateness, k)
	if err := t.tab.Restore(k, value); err != nil {
		return err
	}
	if c, ok := t.tab.Get(k); ok {
		t.addTimer(k, c)
	}
	return nil
}

// dedupTask keeps the first record of each key and drops the key's
// records before its time plus the interval; the key's state expires when
// the watermark passes that time.
type dedupTask struct {
	d  *dedupPlan
	em *emitPlan
	tableState[int64]
	timers timerIndex
}

func newDedupTask(d *dedupPlan, em *emitPlan) *dedupTask {
	return &dedupTask{d: d, em: em, tableState: tableState[int64]{cluster.NewTable(func(v int64) []byte {
		return binary.BigEndian.AppendUint64(nil, uint64(v))
	}, func(b []byte) (int64, error) {
		if len(b) != 8 {
			return 0, errCodec
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	})}}
}

func (t *dedupTask) Process(out cluster.Output, r *kgo.Record) error {
	rw, _, err := row.DecodeRow(r.Value)
	if err != nil {
		return fmt.Errorf("decoding a repartitioned row: %w", err)
	}
	ts := r.Timestamp.UnixMilli()
	k := "d" + string(r.Key)
	if u, ok := t.tab.Get(k); ok && ts < u {
		return nil
	}
	until := ts + t.d.within.Milliseconds()
	t.tab.Put(k, until)
	t.timers.add(until, k)
	return t.em.emit(out, rw, ts, "dedup", r.Offset)
}

func (t *dedupTask) Watermark(_ cluster.Output, wm int64) error {
	for _, k := range t.timers.due(wm) {
		if u, ok := t.tab.Get(k); ok && u <= wm {
			t.tab.Delete(k)
		}
	}
	return nil
}

func (t *dedupTask) Abort() {
	_ = t.tab.Abort()
	t.timers = timerIndex{}
	t.tab.Range(func(k string, u int64) bool {
		t.timers.add(u, k)
		return true
	})
}

func (t *dedupTask) Restore(key, value []byte) error {
	k := string(key)
	if u, ok := t.tab.Get(k); ok {
		t.timers.remove(u, k) // the timer of the value this one replaces
	}
	if err := t.tab.Restore(k, value); err != nil {
		return err
	}
	if u, ok := t.tab.Get(k); ok {
		t.timers.add(u, k)
	}
	return nil
}

// tableState is the state of a task kept in one changelog-backed table;
// it gives the task Flush, Commit, DisableUndo (cluster.UndoFree) and
// Snapshot (cluster.Snapshotter).
type tableState[V any] struct {
	tab *cluster.Table[V]
}

func (s tableState[V]) Flush(out cluster.Output) error {
	s.tab.Flush(func(k string, v []byte) { out.Changelog([]byte(k), v) })
	return nil
}

func (s tableState[V]) Commit()      { s.tab.Commit() }
func (s tableState[V]) DisableUndo() { s.tab.DisableUndo() }

func (s tableState[V]) Snapshot(write func(k, v []byte)) {
	s.tab.Snapshot(func(k string, v []byte) { write([]byte(k), v) })
}
