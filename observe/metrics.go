package observe

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/stream"
)

// Collector returns a prometheus.Collector of the figures the Observer
// adds to the components' own metrics, all named sluice_*. Job counters
// are read at scrape time; per-second figures come from the latest sample.
//
// The log's per-partition metrics (sluice_log_*) are not here: the log
// exports them itself (logstore.Options.Registerer), and a second copy
// would make every scrape fail.
//
// Groups (labels group, topic, partition): sluice_group_committed_offset,
// sluice_group_lag.
//
// Jobs (label job; operators add operator and subtask):
// sluice_job_running, sluice_job_records_in_per_second,
// sluice_job_dead_lettered_records_total (jobs that report it),
// sluice_job_records_out_per_second, sluice_job_watermark_lag_ms,
// sluice_operator_records_in_total, sluice_operator_records_out_total,
// sluice_operator_late_records_dropped_total,
// sluice_operator_busy_seconds_total, sluice_operator_idle_seconds_total,
// sluice_operator_backpressured_seconds_total,
// sluice_operator_busy_ms_per_second, sluice_operator_idle_ms_per_second,
// sluice_operator_backpressured_ms_per_second,
// sluice_operator_watermark_ms, sluice_operator_watermark_lag_ms;
// source subtasks whose split reports it (stream.Lagger) add
// sluice_source_partition_lag (labels job, operator, split).
//
// Checkpoints (label job), only for jobs that report them (size and
// alignment from a history — CheckpointReporter or CheckpointHistorian —
// not from counters alone):
// sluice_checkpoint_last_completed_id, sluice_checkpoint_last_duration_seconds,
// sluice_checkpoint_last_size_bytes, sluice_checkpoint_last_alignment_seconds,
// sluice_checkpoint_completed_total, sluice_checkpoint_failed_total.
//
// Latency (histograms, jobs that report it — LatencyReporter):
// sluice_sink_latency_seconds (labels job, sink, stage: write or commit),
// sluice_operator_latency_seconds (labels job, operator; latency
// markers), sluice_checkpoint_phase_seconds (labels job, phase).
func (o *Observer) Collector() prometheus.Collector { return &collector{o: o, d: newDescs()} }

type descs struct {
	groupCommitted, groupLag                                                       *prometheus.Desc
	jobRunning, jobIn, jobOut, jobWMLag, jobDead                                   *prometheus.Desc
	opIn, opOut, opDropped, opBusy, opIdle, opBP, opBusyRate, opIdleRate, opBPRate *prometheus.Desc
	opWM, opWMLag, srcLag                                                          *prometheus.Desc
	ckID, ckDur, ckSize, ckAlign, ckDone, ckFailed                                 *prometheus.Desc
	sinkLat, opLat, ckPhase                                                        *prometheus.Desc
}

func newDescs() descs {
	op := []string{"job", "operator", "subtask"}
	job := []string{"job"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_"+name, help, labels, nil)
	}
	return descs{
		groupCommitted: d("group_committed_offset", "Offset a consumer group committed in the partition.", []string{"group", "topic", "partition"}),
		groupLag:       d("group_lag", "Records between a consumer group's committed offset and the partition's high watermark.", []string{"group", "topic", "partition"}),
		jobRunning:     d("job_running", "1 while the job runs, 0 once it ended.", job),
		jobIn:          d("job_records_in_per_second", "Records read by the job's sources per second.", job),
		jobOut:         d("job_records_out_per_second", "Records received by the job's sinks per second.", job),
		jobWMLag:       d("job_watermark_lag_ms", "Wall clock minus the lowest watermark of the job's sinks, in ms.", job),
		jobDead:        d("job_dead_lettered_records_total", "Failed records the job set aside (dead-lettered).", job),
		opIn:           d("operator_records_in_total", "Records received by the operator subtask.", op),
		opOut:          d("operator_records_out_total", "Records emitted by the operator subtask.", op),
		opDropped:      d("operator_late_records_dropped_total", "Late records dropped by the operator subtask.", op),
		opBusy:         d("operator_busy_seconds_total", "Time the subtask's task spent processing.", op),
		opIdle:         d("operator_idle_seconds_total", "Time the subtask's task waited for input.", op),
		opBP:           d("operator_backpressured_seconds_total", "Time the subtask's task waited for room downstream.", op),
		opBusyRate:     d("operator_busy_ms_per_second", "Milliseconds per second the subtask's task was busy (last interval).", op),
		opIdleRate:     d("operator_idle_ms_per_second", "Milliseconds per second the subtask's task was idle (last interval).", op),
		opBPRate:       d("operator_backpressured_ms_per_second", "Milliseconds per second the subtask's task was backpressured (last interval).", op),
		opWM:           d("operator_watermark_ms", "Current input watermark of the subtask, ms since the epoch (absent before the first).", op),
		opWMLag:        d("operator_watermark_lag_ms", "Wall clock minus the subtask's watermark, in ms.", op),
		srcLag:         d("source_partition_lag", "Records the source split is behind the end of its partition.", []string{"job", "operator", "split"}),
		ckID:           d("checkpoint_last_completed_id", "Id of the last completed checkpoint.", job),
		ckDur:          d("checkpoint_last_duration_seconds", "Duration of the last completed checkpoint.", job),
		ckSize:         d("checkpoint_last_size_bytes", "Size of the last completed checkpoint.", job),
		ckAlign:        d("checkpoint_last_alignment_seconds", "Longest barrier alignment of the last completed checkpoint.", job),
		ckDone:         d("checkpoint_completed_total", "Checkpoints completed (in the reported history).", job),
		ckFailed:       d("checkpoint_failed_total", "Checkpoints failed (in the reported history).", job),
		sinkLat:        d("sink_latency_seconds", "End-to-end latency of records: from when a source read them to when the sink wrote them (stage write) or committed them (stage commit, two-phase-commit sinks).", []string{"job", "sink", "stage"}),
		opLat:          d("operator_latency_seconds", "Delay between a latency marker's creation at a source and its arrival at the operator.", []string{"job", "operator"}),
		ckPhase:        d("checkpoint_phase_seconds", "Duration of a checkpoint phase: ack (trigger to the last acknowledgement, pre-commits included), persist, commit, total.", []string{"job", "phase"}),
	}
}

type collector struct {
	o *Observer
	d descs
}

// Describe sends nothing: the collector is unchecked, because which
// topics, groups and jobs exist changes at run time.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := &c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	snap := c.o.Snapshot()
	now := c.o.opts.Now()
	for _, g := range snap.Groups {
		for _, p := range g.Partitions {
			ps := strconv.Itoa(int(p.Partition))
			gauge(d.groupCommitted, float64(p.Committed), g.Name, p.Topic, ps)
			if p.Known {
				gauge(d.groupLag, float64(p.Lag), g.Name, p.Topic, ps)
			}
		}
	}
	rateOf := make(map[subKey]Subtask)
	for _, js := range snap.Jobs {
		running := 0.0
		if js.Status == JobRunning {
			running = 1
		}
		gauge(d.jobRunning, running, js.ID)
		gauge(d.jobIn, js.RecordsInPerSec, js.ID)
		gauge(d.jobOut, js.RecordsOutPerSec, js.ID)
		if js.WatermarkLag != nil {
			gauge(d.jobWMLag, *js.WatermarkLag, js.ID)
		}
		for _, v := range js.Vertices {
			for _, s := range v.Subtasks {
				rateOf[subKey{js.ID + "\x00" + v.ID, s.Index}] = s
			}
		}
		if js.DeadLettered != nil {
			counter(d.jobDead, float64(*js.DeadLettered), js.ID)
		}
		c.collectCheckpoints(ch, js)
	}
	c.o.mu.Lock()
	jobs := make(map[string]Job, len(c.o.jobs))
	for id, t := range c.o.jobs {
		jobs[id] = t.job
	}
	c.o.mu.Unlock()
	for id, j := range jobs {
		for _, m := range j.Metrics() {
			sub := strconv.Itoa(m.Subtask)
			l := []string{id, m.Operator, sub}
			counter(d.opIn, float64(m.RecordsIn), l...)
			counter(d.opOut, float64(m.RecordsOut), l...)
			counter(d.opDropped, float64(m.Dropped), l...)
			counter(d.opBusy, m.Busy.Seconds(), l...)
			counter(d.opIdle, m.Idle.Seconds(), l...)
			counter(d.opBP, m.Backpressured.Seconds(), l...)
			if s, ok := rateOf[subKey{id + "\x00" + m.Operator, m.Subtask}]; ok {
				gauge(d.opBusyRate, s.BusyMsPerSec, l...)
				gauge(d.opIdleRate, s.IdleMsPerSec, l...)
				gauge(d.opBPRate, s.BackpressMsPS, l...)
			}
			if m.Watermark != math.MinInt64 && m.Watermark != math.MaxInt64 {
				gauge(d.opWM, float64(m.Watermark), l...)
				gauge(d.opWMLag, float64(now.UnixMilli()-m.Watermark), l...)
			}
			if m.Split != "" && m.Lag >= 0 {
				gauge(d.srcLag, float64(m.Lag), id, m.Operator, m.Split)
			}
		}
		if r, ok := j.(LatencyReporter); ok {
			c.collectLatency(ch, id, r.Latency())
		}
	}
}

// collectLatency exports a job's latency histograms.
func (c *collector) collectLatency(ch chan<- prometheus.Metric, job string, hs []stream.LatencyHistogram) {
	for _, h := range hs {
		var desc *prometheus.Desc
		var labels []string
		switch h.Kind {
		case stream.LatencySink:
			desc, labels = c.d.sinkLat, []string{job, h.Operator, h.Stage}
		case stream.LatencyMarker:
			desc, labels = c.d.opLat, []string{job, h.Operator}
		case stream.LatencyCheckpoint:
			desc, labels = c.d.ckPhase, []string{job, h.Stage}
		default:
			continue
		}
		buckets := make(map[float64]uint64, len(h.Bounds))
		var cum uint64
		for i, b := range h.Bounds {
			cum += h.Counts[i]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(desc, h.Count, h.Sum.Seconds(), buckets, labels...)
	}
}

func (c *collector) collectCheckpoints(ch chan<- prometheus.Metric, js JobStatus) {
	if !js.CheckpointsAvailable {
		return
	}
	d := &c.d
	if n := js.CheckpointCounts; n != nil {
		ch <- prometheus.MustNewConstMetric(d.ckDone, prometheus.CounterValue, float64(n.Completed), js.ID)
		ch <- prometheus.MustNewConstMetric(d.ckFailed, prometheus.CounterValue, float64(n.Failed), js.ID)
		if n.LastCompletedID != 0 {
			ch <- prometheus.MustNewConstMetric(d.ckID, prometheus.GaugeValue, float64(n.LastCompletedID), js.ID)
			ch <- prometheus.MustNewConstMetric(d.ckDur, prometheus.GaugeValue, n.LastDuration.Seconds(), js.ID)
		}
		if len(js.Checkpoints) == 0 || js.Checkpoints[0].Partial {
			return // counters carry no size or alignment
		}
		// A history from the engine: size and alignment of the last
		// completed checkpoint.
		for i := len(js.Checkpoints) - 1; i >= 0; i-- {
			if ck := js.Checkpoints[i]; ck.Status == CheckpointCompleted {
				ch <- prometheus.MustNewConstMetric(d.ckSize, prometheus.GaugeValue, float64(ck.SizeBytes), js.ID)
				ch <- prometheus.MustNewConstMetric(d.ckAlign, prometheus.GaugeValue, ck.Alignment.Seconds(), js.ID)
				break
			}
		}
		return
	}
	var done, failed int
	for _, ck := range js.Checkpoints {
		switch ck.Status {
		case CheckpointCompleted:
			done++
		case CheckpointFailed:
			failed++
		}
	}
	ch <- prometheus.MustNewConstMetric(d.ckDone, prometheus.CounterValue, float64(done), js.ID)
	ch <- prometheus.MustNewConstMetric(d.ckFailed, prometheus.CounterValue, float64(failed), js.ID)
	for i := len(js.Checkpoints) - 1; i >= 0; i-- {
		ck := js.Checkpoints[i]
		if ck.Status != CheckpointCompleted {
			continue
		}
		ch <- prometheus.MustNewConstMetric(d.ckID, prometheus.GaugeValue, float64(ck.ID), js.ID)
		ch <- prometheus.MustNewConstMetric(d.ckDur, prometheus.GaugeValue, ck.Duration.Seconds(), js.ID)
		ch <- prometheus.MustNewConstMetric(d.ckSize, prometheus.GaugeValue, float64(ck.SizeBytes), js.ID)
		ch <- prometheus.MustNewConstMetric(d.ckAlign, prometheus.GaugeValue, ck.Alignment.Seconds(), js.ID)
		break
	}
}
