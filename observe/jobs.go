package observe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// Job is what an Observer needs of a running dataflow; *stream.Job
// implements it.
type Job interface {
	// Metrics returns the counters of every operator subtask.
	Metrics() []stream.SubtaskMetrics
	// Done is closed when the job has ended.
	Done() <-chan struct{}
	// Wait returns the job's error once Done is closed.
	Wait() error
}

// CheckpointReporter is an optional capability of a job (or of a
// checkpoint coordinator passed with WithCheckpoints): its checkpoint
// history, oldest first.
type CheckpointReporter interface {
	Checkpoints() []CheckpointStats
}

// DeadLetterReporter is an optional capability of a job: how many records
// it set aside as failed (dead-lettered) so far. pipeline.Job implements it.
type DeadLetterReporter interface {
	DeadLetters() int64
}

// CheckpointHistorian is an optional capability of a job: its checkpoint
// history, as *stream.Job and pipeline.Job report it (id, status, start,
// duration, size, alignment time).
type CheckpointHistorian interface {
	CheckpointHistory() []stream.CheckpointRecord
}

// CheckpointCounter is an optional capability of a job: checkpoint
// counters without a history, as *stream.Job reports them. The Observer
// builds a history from successive samples: a checkpoint that completes
// and is followed by another within one sampling interval is counted but
// not listed, and aborted checkpoints are listed without their ids.
type CheckpointCounter interface {
	CheckpointStats() stream.CheckpointStats
}

// LatencyReporter is an optional capability of a job: its latency
// histograms (end-to-end per sink, latency markers per operator,
// checkpoint phases). *stream.Job and pipeline.Job implement it.
type LatencyReporter interface {
	Latency() []stream.LatencyHistogram
}

// Latency summarises one latency histogram of a job for the dashboard:
// the median and 99th percentile over the last sampling interval (Recent,
// when records passed in it) and since the job started.
type Latency struct {
	// Kind is "sink", "marker" or "checkpoint" (stream.LatencySink, ...).
	Kind string `json:"kind"`
	// Operator is the sink or operator; empty for checkpoint phases.
	Operator string `json:"operator,omitempty"`
	// Stage is "write" or "commit" for a sink, the phase of a checkpoint.
	Stage string  `json:"stage,omitempty"`
	Count uint64  `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// RecentCount counts the observations of the last interval, whose
	// quantiles RecentP50Ms and RecentP99Ms are (absent when none).
	RecentCount uint64   `json:"recent_count"`
	RecentP50Ms *float64 `json:"recent_p50_ms,omitempty"`
	RecentP99Ms *float64 `json:"recent_p99_ms,omitempty"`
}

// latencyKey names a histogram between samples.
type latencyKey struct{ kind, op, stage string }

// summarise computes the dashboard figures of h against its previous
// snapshot.
func summarise(h stream.LatencyHistogram, prev stream.LatencyHistogram, hasPrev bool) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	l := Latency{Kind: h.Kind, Operator: h.Operator, Stage: h.Stage, Count: h.Count,
		P50Ms: ms(h.Quantile(0.5)), P99Ms: ms(h.Quantile(0.99))}
	if !hasPrev {
		prev = stream.LatencyHistogram{Counts: make([]uint64, len(h.Counts))}
	}
	p50, n := stream.QuantileBetween(prev, h, 0.5)
	if n > 0 {
		p99, _ := stream.QuantileBetween(prev, h, 0.99)
		a, b := ms(p50), ms(p99)
		l.RecentCount, l.RecentP50Ms, l.RecentP99Ms = n, &a, &b
	}
	return l
}

// CheckpointCounts are a job's checkpoint counters.
type CheckpointCounts struct {
	Completed       uint64        `json:"completed"`
	Failed          uint64        `json:"failed"`
	LastCompletedID uint64        `json:"last_completed_id"`
	LastDuration    time.Duration `json:"last_duration_ns"`
	LastPath        string        `json:"last_path,omitempty"`
}

// CheckpointStats describes one checkpoint attempt.
type CheckpointStats struct {
	ID uint64 `json:"id"`
	// Status is "in_progress", "completed" or "failed".
	Status    string        `json:"status"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	SizeBytes int64         `json:"size_bytes"`
	// Alignment is the longest time an operator waited for barriers.
	Alignment time.Duration `json:"alignment_ns"`
	Error     string        `json:"error,omitempty"`
	// Partial marks an entry built from counters (CheckpointCounter):
	// size and alignment are unknown, and a failed entry has no id.
	Partial bool `json:"partial,omitempty"`
	// AlignmentUnknown marks an entry whose alignment time was not measured.
	AlignmentUnknown bool `json:"alignment_unknown,omitempty"`
}

// Checkpoint statuses.
const (
	CheckpointInProgress = "in_progress"
	CheckpointCompleted  = "completed"
	CheckpointFailed     = "failed"
)

// Planner is an optional capability of a job: the physical plan it runs
// (operators, parallelism, chains, exchanges). *stream.Job and
// pipeline.Job implement it; the Observer then reports the job's real
// graph (and the plan itself in JobStatus.Plan) rather than inferring one.
type Planner interface {
	Plan() stream.Plan
}

// Graph is a job's dataflow: operators and the exchanges between them.
type Graph struct {
	Vertices []GraphVertex `json:"vertices"`
	Edges    []Edge        `json:"edges"`
	// Inferred is true when the job did not describe its graph (neither
	// WithGraph nor Planner) and the Observer guessed a linear pipeline
	// from the operators' order; edge exchanges between tasks are then
	// "unknown".
	Inferred bool `json:"inferred"`
}

// GraphVertex is one operator of a Graph; ID is the operator's name as in
// stream.SubtaskMetrics.Operator.
type GraphVertex struct {
	ID   string `json:"id"`
	Kind string `json:"kind,omitempty"`
	// Parallelism and Task (the operator at the head of its chain) are
	// set for graphs taken from the job's plan.
	Parallelism int    `json:"parallelism,omitempty"`
	Task        string `json:"task,omitempty"`
}

// Edge connects two operators. Exchange is "chained" (same goroutine),
// "forward", "rebalance", "hash", "broadcast" or "unknown".
type Edge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Exchange string `json:"exchange"`
	// Input is which input of a two-input operator the edge feeds (0 or
	// 1); SideOutput the side output of From it leaves from, if any.
	Input      int    `json:"input,omitempty"`
	SideOutput string `json:"side_output,omitempty"`
}

// GraphOf converts a physical plan to a Graph keyed by operator name.
// Operators that share a name (their metrics are combined too) become one
// vertex.
func GraphOf(p stream.Plan) Graph {
	g := Graph{Vertices: []GraphVertex{}, Edges: []Edge{}}
	seen := make(map[string]bool)
	for _, n := range p.Nodes {
		if seen[n.Name] {
			continue
		}
		seen[n.Name] = true
		g.Vertices = append(g.Vertices, GraphVertex{ID: n.Name, Kind: n.Kind, Parallelism: n.Parallelism, Task: n.Task})
	}
	type ekey struct {
		from, to   string
		input      int
		sideOutput string
	}
	seenE := make(map[ekey]bool)
	for _, e := range p.Edges {
		k := ekey{p.Nodes[e.From].Name, p.Nodes[e.To].Name, e.Input, e.SideOutput}
		if seenE[k] {
			continue
		}
		seenE[k] = true
		ex := e.Partitioning
		if e.Chained {
			ex = "chained"
		}
		g.Edges = append(g.Edges, Edge{From: k.from, To: k.to, Exchange: ex, Input: e.Input, SideOutput: e.SideOutput})
	}
	return g
}

// JobOption adds to a registered job what it cannot report itself.
type JobOption func(*trackedJob)

// WithGraph gives the job's dataflow graph. Without it the graph is the
// job's plan's (Planner), or else inferred (see Graph.Inferred).
func WithGraph(g Graph) JobOption { return func(t *trackedJob) { gg := g; t.graph = &gg } }

// WithCheckpoints gives the source of the job's checkpoint history, such
// as its checkpoint coordinator. Without it, the job itself is asked if it
// implements CheckpointReporter; otherwise checkpoints are unavailable.
func WithCheckpoints(r CheckpointReporter) JobOption { return func(t *trackedJob) { t.ckpt = r } }

// Job statuses.
const (
	JobRunning   = "running"
	JobFinished  = "finished"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Backpressure levels of a vertex, from the fraction of time its subtasks
// spent waiting for room downstream: ok up to 10%, low up to 50%, high
// above.
const (
	BackpressureOK   = "ok"
	BackpressureLow  = "low"
	BackpressureHigh = "high"
)

// BackpressureLevel maps a backpressured-time fraction (0..1) to a level.
func BackpressureLevel(frac float64) string {
	switch {
	case frac > 0.5:
		return BackpressureHigh
	case frac > 0.1:
		return BackpressureLow
	}
	return BackpressureOK
}

// JobStatus is a sample of one job.
type JobStatus struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started"`
	// RecordsInPerSec is what the sources read, RecordsOutPerSec what the
	// sinks received.
	RecordsInPerSec  float64 `json:"records_in_per_sec"`
	RecordsOutPerSec float64 `json:"records_out_per_sec"`
	RecordsIn        int64   `json:"records_in"`
	RecordsOut       int64   `json:"records_out"`
	Watermark
	// Backpressure is the highest level of any vertex.
	Backpressure string   `json:"backpressure"`
	Vertices     []Vertex `json:"vertices"`
	Graph        Graph    `json:"graph"`
	// Plan is the physical plan the job runs, when it reports one
	// (Planner).
	Plan *stream.Plan `json:"plan,omitempty"`
	// DeadLettered counts failed records set aside; nil when the job does
	// not report them.
	DeadLettered *int64 `json:"dead_lettered,omitempty"`
	// CheckpointsAvailable is false when nothing reports checkpoints.
	CheckpointsAvailable bool             `json:"checkpoints_available"`
	LastCheckpoint       *CheckpointStats `json:"last_checkpoint,omitempty"`
	// CheckpointCounts is set for jobs that report counters
	// (CheckpointCounter) rather than a history.
	CheckpointCounts *CheckpointCounts `json:"checkpoint_counts,omitempty"`
	Checkpoints      []CheckpointStats `json:"-"`
	// Latency summarises the job's latency histograms (LatencyReporter);
	// absent when the job does not report them.
	Latency []Latency `json:"latency,omitempty"`
}

// Watermark is an event-time position in ms since the epoch: absent
// (HasWatermark false) before the first watermark, Final at the end of a
// bounded input. LagMs is wall clock minus watermark when neither.
type Watermark struct {
	WatermarkMs  *int64   `json:"watermark_ms"`
	Final        bool     `json:"watermark_final"`
	WatermarkLag *float64 `json:"watermark_lag_ms"`
}

func makeWatermark(wm int64, now time.Time) Watermark {
	switch wm {
	case math.MinInt64:
		return Watermark{}
	case math.MaxInt64:
		return Watermark{Final: true}
	}
	lagMs := float64(now.UnixMilli() - wm)
	return Watermark{WatermarkMs: &wm, WatermarkLag: &lagMs}
}

// Vertex is one operator of a job with its subtasks' figures combined:
// rates summed, time fractions averaged, watermark the minimum.
type Vertex struct {
	ID          string `json:"id"`
	Parallelism int    `json:"parallelism"`
	// Task is the operator at the head of the chain this one runs in; busy,
	// idle and backpressured time are the chain's.
	Task          string  `json:"task"`
	RecordsIn     int64   `json:"records_in"`
	RecordsOut    int64   `json:"records_out"`
	Dropped       int64   `json:"late_dropped"`
	InPerSec      float64 `json:"records_in_per_sec"`
	OutPerSec     float64 `json:"records_out_per_sec"`
	BusyMsPerSec  float64 `json:"busy_ms_per_sec"`
	IdleMsPerSec  float64 `json:"idle_ms_per_sec"`
	BackpressMsPS float64 `json:"backpressured_ms_per_sec"`
	Backpressure  string  `json:"backpressure"`
	Watermark
	Subtasks []Subtask `json:"subtasks"`
}

// Subtask is one parallel instance of an operator.
type Subtask struct {
	Index         int     `json:"subtask"`
	Status        string  `json:"status"`
	RecordsIn     int64   `json:"records_in"`
	RecordsOut    int64   `json:"records_out"`
	InPerSec      float64 `json:"records_in_per_sec"`
	OutPerSec     float64 `json:"records_out_per_sec"`
	BusyMsPerSec  float64 `json:"busy_ms_per_sec"`
	IdleMsPerSec  float64 `json:"idle_ms_per_sec"`
	BackpressMsPS float64 `json:"backpressured_ms_per_sec"`
	// Split is the split a source subtask reads (absent for other
	// operators); Lag how many records it is behind the end of that
	// partition (absent when the split cannot tell).
	Split string `json:"split,omitempty"`
	Lag   *int64 `json:"lag,omitempty"`
	Watermark
}

// HistoryPoint is one job-level sample kept for plots.
type HistoryPoint struct {
	TimeMs           int64    `json:"t"`
	RecordsInPerSec  float64  `json:"in"`
	RecordsOutPerSec float64  `json:"out"`
	WatermarkLagMs   *float64 `json:"wm_lag_ms"`
	// Backpressure is the highest backpressured fraction of any vertex.
	Backpressure float64 `json:"bp"`
}

type subKey struct {
	op  string
	sub int
}

type subSample struct {
	in, out        int64
	busy, idle, bp time.Duration
}

type trackedJob struct {
	id      string
	job     Job
	started time.Time
	graph   *Graph
	plan    *stream.Plan
	ckpt    CheckpointReporter

	prevAt time.Time
	prev   map[subKey]subSample
	// ckHist is the checkpoint history built from a CheckpointCounter.
	ckHist  []CheckpointStats
	ckPrev  stream.CheckpointStats
	history []HistoryPoint
	final   *JobStatus // set once the job ended and was sampled after
	// latPrev are the latency histograms of the previous sample.
	latPrev map[latencyKey]stream.LatencyHistogram
}

func (t *trackedJob) checkpoints() (CheckpointReporter, bool) {
	if t.ckpt != nil {
		return t.ckpt, true
	}
	r, ok := t.job.(CheckpointReporter)
	return r, ok
}

// sample reads the job's metrics and computes rates against the previous
// sample.
func (t *trackedJob) sample(now time.Time, keep time.Duration) JobStatus {
	if t.final != nil {
		return *t.final
	}
	ended := false
	select {
	case <-t.job.Done():
		ended = true
	default:
	}
	ms := t.job.Metrics()
	js := JobStatus{ID: t.id, Status: JobRunning, Started: t.started}
	if ended {
		err := t.job.Wait()
		switch {
		case err == nil:
			js.Status = JobFinished
		case errors.Is(err, context.Canceled):
			js.Status = JobCancelled
		default:
			js.Status = JobFailed
			js.Error = err.Error()
		}
	}
	dt := time.Duration(0)
	if !t.prevAt.IsZero() {
		dt = now.Sub(t.prevAt)
	}
	cur := make(map[subKey]subSample, len(ms))
	var order []string
	byOp := make(map[string]*Vertex)
	wms := make(map[string]int64)
	for _, m := range ms {
		k := subKey{m.Operator, m.Subtask}
		s := subSample{in: m.RecordsIn, out: m.RecordsOut, busy: m.Busy, idle: m.Idle, bp: m.Backpressured}
		cur[k] = s
		st := Subtask{Index: m.Subtask, Status: m.Status, RecordsIn: m.RecordsIn, RecordsOut: m.RecordsOut, Watermark: makeWatermark(m.Watermark, now), Split: m.Split}
		if m.Split != "" && m.Lag >= 0 {
			lag := m.Lag
			st.Lag = &lag
		}
		if p, ok := t.prev[k]; ok && dt > 0 {
			st.InPerSec = rate(p.in, s.in, dt)
			st.OutPerSec = rate(p.out, s.out, dt)
			st.BusyMsPerSec = msPerSec(p.busy, s.busy, dt)
			st.IdleMsPerSec = msPerSec(p.idle, s.idle, dt)
			st.BackpressMsPS = msPerSec(p.bp, s.bp, dt)
		}
		v, ok := byOp[m.Operator]
		if !ok {
			v = &Vertex{ID: m.Operator, Parallelism: m.Parallelism, Task: m.Task}
			byOp[m.Operator] = v
			order = append(order, m.Operator)
			wms[m.Operator] = m.Watermark
		}
		wms[m.Operator] = min(wms[m.Operator], m.Watermark)
		v.RecordsIn += m.RecordsIn
		v.RecordsOut += m.RecordsOut
		v.Dropped += m.Dropped
		v.InPerSec += st.InPerSec
		v.OutPerSec += st.OutPerSec
		v.BusyMsPerSec += st.BusyMsPerSec
		v.IdleMsPerSec += st.IdleMsPerSec
		v.BackpressMsPS += st.BackpressMsPS
		v.Subtasks = append(v.Subtasks, st)
	}
	t.prev, t.prevAt = cur, now

	// Metrics lists operators sinks first (the runtime builds them from
	// the sinks back): reverse for source-to-sink order.
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	if t.plan != nil {
		p := *t.plan
		js.Plan = &p
	}
	if t.graph != nil {
		js.Graph = *t.graph
	} else {
		js.Graph = inferGraph(order, byOp)
	}
	maxBP := 0.0
	for _, id := range order {
		v := byOp[id]
		n := float64(len(v.Subtasks))
		v.BusyMsPerSec /= n
		v.IdleMsPerSec /= n
		v.BackpressMsPS /= n
		sort.Slice(v.Subtasks, func(a, b int) bool { return v.Subtasks[a].Index < v.Subtasks[b].Index })
		v.Watermark = makeWatermark(wms[id], now)
		frac := v.BackpressMsPS / 1000
		v.Backpressure = BackpressureLevel(frac)
		maxBP = max(maxBP, frac)
		js.Vertices = append(js.Vertices, *v)
	}
	js.Backpressure = BackpressureLevel(maxBP)
	hasIn, hasOut := make(map[string]bool), make(map[string]bool)
	for _, e := range js.Graph.Edges {
		hasOut[e.From] = true
		hasIn[e.To] = true
	}
	sinkWM := int64(math.MaxInt64)
	anySink := false
	for _, v := range js.Vertices {
		if !hasIn[v.ID] {
			js.RecordsInPerSec += v.OutPerSec
			js.RecordsIn += v.RecordsOut
		}
		if !hasOut[v.ID] {
			js.RecordsOutPerSec += v.InPerSec
			js.RecordsOut += v.RecordsIn
			sinkWM = min(sinkWM, wms[v.ID])
			anySink = true
		}
	}
	if anySink {
		js.Watermark = makeWatermark(sinkWM, now)
	}
	if r, ok := t.job.(DeadLetterReporter); ok {
		n := r.DeadLetters()
		js.DeadLettered = &n
	}
	if r, ok := t.checkpoints(); ok {
		js.CheckpointsAvailable = true
		js.Checkpoints = r.Checkpoints()
	} else if h, ok := t.job.(CheckpointHistorian); ok && len(h.CheckpointHistory()) > 0 {
		js.CheckpointsAvailable = true
		js.Checkpoints = historyStats(h.CheckpointHistory())
		if c, ok := t.job.(CheckpointCounter); ok {
			cs := c.CheckpointStats()
			js.CheckpointCounts = &CheckpointCounts{Completed: cs.Completed, Failed: cs.Aborted,
				LastCompletedID: cs.LastID, LastDuration: cs.LastDuration, LastPath: cs.LastPath}
		}
	} else if c, ok := t.job.(CheckpointCounter); ok {
		cs := c.CheckpointStats()
		t.followCheckpoints(cs, now)
		// A job without checkpointing reports zero counters: it counts as
		// unavailable until a first checkpoint completes or fails.
		if cs.Completed+cs.Aborted > 0 {
			js.CheckpointsAvailable = true
			js.Checkpoints = append([]CheckpointStats(nil), t.ckHist...)
			js.CheckpointCounts = &CheckpointCounts{Completed: cs.Completed, Failed: cs.Aborted,
				LastCompletedID: cs.LastID, LastDuration: cs.LastDuration, LastPath: cs.LastPath}
		}
	}
	if r, ok := t.job.(LatencyReporter); ok {
		t.sampleLatency(&js, r.Latency())
	}
	if js.CheckpointsAvailable {
		for i := len(js.Checkpoints) - 1; i >= 0; i-- {
			if js.Checkpoints[i].Status != CheckpointInProgress {
				c := js.Checkpoints[i]
				js.LastCheckpoint = &c
				break
			}
		}
	}
	if dt > 0 {
		t.history = append(t.history, HistoryPoint{
			TimeMs: now.UnixMilli(), RecordsInPerSec: js.RecordsInPerSec, RecordsOutPerSec: js.RecordsOutPerSec,
			WatermarkLagMs: js.WatermarkLag, Backpressure: maxBP,
		})
		cut := now.Add(-keep).UnixMilli()
		i := 0
		for i < len(t.history) && t.history[i].TimeMs < cut {
			i++
		}
		t.history = t.history[i:]
	}
	if ended {
		// The job no longer moves: keep its totals, not its last rates.
		js.RecordsInPerSec, js.RecordsOutPerSec = 0, 0
		for i := range js.Vertices {
			v := &js.Vertices[i]
			v.InPerSec, v.OutPerSec, v.BusyMsPerSec, v.IdleMsPerSec, v.BackpressMsPS = 0, 0, 0, 0, 0
			v.Backpressure = BackpressureOK
			for k := range v.Subtasks {
				st := &v.Subtasks[k]
				st.InPerSec, st.OutPerSec, st.BusyMsPerSec, st.IdleMsPerSec, st.BackpressMsPS = 0, 0, 0, 0, 0
			}
		}
		js.Backpressure = BackpressureOK
		t.final = &js
	}
	return js
}

// sampleLatency summarises hs into js against the previous sample's.
func (t *trackedJob) sampleLatency(js *JobStatus, hs []stream.LatencyHistogram) {
	cur := make(map[latencyKey]stream.LatencyHistogram, len(hs))
	for _, h := range hs {
		k := latencyKey{h.Kind, h.Operator, h.Stage}
		cur[k] = h
		prev, ok := t.latPrev[k]
		js.Latency = append(js.Latency, summarise(h, prev, ok))
	}
	t.latPrev = cur
}

// maxCheckpointHistory bounds the history built from counters.
const maxCheckpointHistory = 100

// followCheckpoints extends the history from new counters.
func (t *trackedJob) followCheckpoints(cs stream.CheckpointStats, now time.Time) {
	prev := t.ckPrev
	t.ckPrev = cs
	if cs.Aborted > prev.Aborted {
		n := cs.Aborted - prev.Aborted
		t.ckHist = append(t.ckHist, CheckpointStats{Status: CheckpointFailed, Started: now, Partial: true,
			Error: fmt.Sprintf("%d checkpoint(s) aborted since the previous sample", n)})
	}
	if cs.LastID != prev.LastID && cs.LastID != 0 {
		t.ckHist = append(t.ckHist, CheckpointStats{ID: cs.LastID, Status: CheckpointCompleted,
			Started: now.Add(-cs.LastDuration), Duration: cs.LastDuration, Partial: true})
	}
	if len(t.ckHist) > maxCheckpointHistory {
		t.ckHist = append(t.ckHist[:0], t.ckHist[len(t.ckHist)-maxCheckpointHistory:]...)
	}
}

func msPerSec(prev, cur, dt time.Duration) float64 {
	if dt <= 0 || cur < prev {
		return 0
	}
	return min(1000, float64(cur-prev)/float64(time.Millisecond)/dt.Seconds())
}

// inferGraph guesses a linear pipeline in source-to-sink order. Operators
// that run in the same task are chained; between tasks the exchange is
// unknown.
func inferGraph(order []string, byOp map[string]*Vertex) Graph {
	g := Graph{Inferred: true, Vertices: []GraphVertex{}, Edges: []Edge{}}
	for i, id := range order {
		g.Vertices = append(g.Vertices, GraphVertex{ID: id})
		if i == 0 {
			continue
		}
		ex := "unknown"
		if byOp[id].Task == byOp[order[i-1]].Task {
			ex = "chained"
		}
		g.Edges = append(g.Edges, Edge{From: order[i-1], To: id, Exchange: ex})
	}
	return g
}

// historyStats converts a job's checkpoint history for the API.
func historyStats(h []stream.CheckpointRecord) []CheckpointStats {
	out := make([]CheckpointStats, len(h))
	for i, c := range h {
		st := CheckpointFailed
		if c.Completed {
			st = CheckpointCompleted
		}
		out[i] = CheckpointStats{ID: c.ID, Status: st, Started: c.Started, Duration: c.Duration,
			SizeBytes: c.SizeBytes, Alignment: c.Alignment, Error: c.Err}
	}
	return out
}
