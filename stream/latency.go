package stream

import (
	"sort"
	"sync"
	"time"

	rt "github.com/sluicehq/sluice/internal/runtime"
)

// DefaultBufferTimeout is how long a partly filled batch may wait for more
// records while its task is busy, unless WithBufferTimeout says otherwise.
// See docs/stream.md for the measurements behind it.
const DefaultBufferTimeout = time.Millisecond

// WithBufferTimeout bounds how long a record may wait in a partly filled
// batch between two subtasks (Flink's execution.buffer-timeout). A batch
// leaves when it is full, when its task has nothing more to do right now
// (a source split has no more records ready, a gated subtask's input
// queue is empty), and at the latest d after its first record went in.
// Zero sends every batch as soon as the input batch that filled it has
// been processed: the lowest latency, the smallest batches. This
// overrides DefaultBufferTimeout.
func WithBufferTimeout(d time.Duration) Option { return func(c *config) { c.bufferTimeout = d } }

// WithLatencyMarkers makes every source split emit a latency marker every
// interval: a record-less event that travels with the data through the
// exchanges (one downstream channel per hop, not broadcast) and records,
// at every operator it reaches, how long after its creation it arrived
// (Job.Latency, kind "marker"). Zero, the default, emits none.
func WithLatencyMarkers(interval time.Duration) Option {
	return func(c *config) { c.markers = interval }
}

// BufferTimeout is the job's buffer timeout (WithBufferTimeout).
func (j *Job) BufferTimeout() time.Duration { return j.env.cfg.bufferTimeout }

// LatencyMarkerInterval is how often the job's source splits emit latency
// markers (WithLatencyMarkers); zero when they emit none.
func (j *Job) LatencyMarkerInterval() time.Duration { return j.env.cfg.markers }

// withClock replaces the job's clock (tests drive buffer timeouts and
// latencies with a fake one).
func withClock(c rt.Clock) Option { return func(cfg *config) { cfg.clock = c } }

// Buffered is an optional capability of a Split: Buffered reports whether
// a Read now would return records without waiting. After a Read that
// filled its whole slice, the runtime keeps partly filled output batches
// open for more records only while the split says it has more; a split
// without this capability has its batches sent after every Read (no
// record then waits for a Read that blocks). It is called from the
// split's goroutine, between Reads, and must not block.
type Buffered interface {
	Buffered() bool
}

// Waker is an optional capability of a Split: Wake makes a Read that waits
// for new data return (0, nil) soon, or the next one if none is waiting,
// so that a checkpoint barrier is emitted at once rather than after the
// split's poll interval. It may be called from any goroutine at any time.
type Waker interface {
	Wake()
}

// Latency histogram kinds, as in LatencyHistogram.Kind.
const (
	// LatencySink: the time from when a source read a record (its
	// ingestion time) to when a sink wrote it (Stage "write") and, for
	// sinks that commit (two-phase commit under exactly-once), to when
	// the transaction holding it was committed (Stage "commit").
	LatencySink = "sink"
	// LatencyMarker: the time from a latency marker's creation at a
	// source to its arrival at an operator (WithLatencyMarkers).
	LatencyMarker = "marker"
	// LatencyAsync: how long each call (attempt) of an AsyncMap operator
	// took, all its subtasks together (Stage "call").
	LatencyAsync = "async"
	// LatencyCheckpoint: how long the phases of a checkpoint took, from
	// its trigger to the commit of the sinks' transactions (Stage names
	// the phase: "ack" trigger to the last acknowledgement, which
	// includes the sinks' pre-commits; "persist" writing the manifest;
	// "commit" committing the sinks' transactions, all sink subtasks at
	// once; "total" trigger to committed; the sources' positions are
	// committed after, in the background).
	LatencyCheckpoint = "checkpoint"
)

// Sink latency stages.
const (
	StageWrite  = "write"
	StageCommit = "commit"
)

// LatencyHistogram is one latency histogram of a job, with its buckets.
type LatencyHistogram struct {
	Kind string
	// Operator is the sink's or operator's name; empty for checkpoints.
	Operator string
	// Stage is the sink stage or the checkpoint phase.
	Stage string
	// Bounds are the upper bounds of the buckets; Counts has one more
	// entry, above the last bound. Counts are per bucket, not cumulative.
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// Quantile estimates the q-quantile (0 < q < 1) by interpolating inside
// the bucket where it falls; 0 without observations.
func (h LatencyHistogram) Quantile(q float64) time.Duration {
	return quantile(h.Bounds, h.Counts, q)
}

func quantile(bounds []time.Duration, counts []uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := time.Duration(0)
			if i > 0 {
				lo = bounds[i-1]
			}
			if i == len(bounds) {
				return lo // above the last bound: the bound is all we know
			}
			frac := (rank - seen) / float64(c)
			return lo + time.Duration(frac*float64(bounds[i]-lo))
		}
		seen += float64(c)
	}
	return bounds[len(bounds)-1]
}

// QuantileBetween estimates the q-quantile of the observations made
// between two snapshots of the same histogram (prev taken first).
func QuantileBetween(prev, cur LatencyHistogram, q float64) (time.Duration, uint64) {
	if len(prev.Counts) != len(cur.Counts) {
		return cur.Quantile(q), cur.Count
	}
	d := make([]uint64, len(cur.Counts))
	var n uint64
	for i := range d {
		if cur.Counts[i] > prev.Counts[i] {
			d[i] = cur.Counts[i] - prev.Counts[i]
			n += d[i]
		}
	}
	return quantile(cur.Bounds, d, q), n
}

// latencyKey names one histogram of a job.
type latencyKey struct{ kind, op, stage string }

// latencies are the histograms of one job run, created as operators are
// built and read by Job.Latency.
type latencies struct {
	mu    sync.Mutex
	hists map[latencyKey]*rt.Histogram
}

func (l *latencies) get(kind, op, stage string) *rt.Histogram {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hists == nil {
		l.hists = map[latencyKey]*rt.Histogram{}
	}
	k := latencyKey{kind, op, stage}
	h := l.hists[k]
	if h == nil {
		h = &rt.Histogram{}
		l.hists[k] = h
	}
	return h
}

// Latency returns the job's latency histograms (see LatencySink,
// LatencyMarker and LatencyCheckpoint), sorted by kind, operator and
// stage. It may be called while the job runs.
func (j *Job) Latency() []LatencyHistogram {
	j.lat.mu.Lock()
	out := make([]LatencyHistogram, 0, len(j.lat.hists))
	for k, h := range j.lat.hists {
		s := h.Snapshot()
		out = append(out, LatencyHistogram{Kind: k.kind, Operator: k.op, Stage: k.stage,
			Bounds: s.Bounds, Counts: s.Counts, Count: s.Count, Sum: s.Sum})
	}
	j.lat.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if x.Kind != y.Kind {
			return x.Kind < y.Kind
		}
		if x.Operator != y.Operator {
			return x.Operator < y.Operator
		}
		return x.Stage < y.Stage
	})
	return out
}

// epochEntry is a batch a two-phase-commit sink wrote: its ingestion time
// and its number of records, kept until the transaction holding it
// commits.
type epochEntry struct {
	ingest int64
	n      uint64
}

// maxEpochEntries bounds the entries a sink keeps per checkpoint; beyond,
// neighbours merge (the older ingestion time and the sum of records).
const maxEpochEntries = 1024

func appendEpoch(es []epochEntry, e epochEntry) []epochEntry {
	if len(es) >= maxEpochEntries {
		k := 0
		for i := 0; i < len(es); i += 2 {
			m := es[i]
			if i+1 < len(es) {
				m.ingest = min(m.ingest, es[i+1].ingest)
				m.n += es[i+1].n
			}
			es[k] = m
			k++
		}
		es = es[:k]
	}
	return append(es, e)
}
