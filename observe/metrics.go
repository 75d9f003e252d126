package observe

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a prometheus.Collector of every figure the Observer
// watches, all named sluice_*. Log figures and job counters are read at
// scrape time; per-second figures come from the latest sample.
//
// Log (labels topic, partition): sluice_log_appended_records_total,
// sluice_log_appended_bytes_total, sluice_log_appended_batches_total,
// sluice_log_fsyncs_total, sluice_log_segments, sluice_log_size_bytes,
// sluice_log_start_offset, sluice_log_high_watermark,
// sluice_log_last_stable_offset, sluice_log_append_records_per_second.
//
// Groups (labels group, topic, partition): sluice_group_committed_offset,
// sluice_group_lag.
//
// Jobs (label job; operators add operator and subtask):
// sluice_job_running, sluice_job_records_in_per_second,
// sluice_job_records_out_per_second, sluice_job_watermark_lag_ms,
// sluice_operator_records_in_total, sluice_operator_records_out_total,
// sluice_operator_late_records_dropped_total,
// sluice_operator_busy_seconds_total, sluice_operator_idle_seconds_total,
// sluice_operator_backpressured_seconds_total,
// sluice_operator_busy_ms_per_second, sluice_operator_idle_ms_per_second,
// sluice_operator_backpressured_ms_per_second,
// sluice_operator_watermark_ms, sluice_operator_watermark_lag_ms.
//
// Checkpoints (label job), only for jobs that report them:
// sluice_checkpoint_last_completed_id, sluice_checkpoint_last_duration_seconds,
// sluice_checkpoint_last_size_bytes, sluice_checkpoint_last_alignment_seconds,
// sluice_checkpoint_completed_total, sluice_checkpoint_failed_total.
func (o *Observer) Collector() prometheus.Collector { return &collector{o: o, d: newDescs()} }

type descs struct {
	appRecords, appBytes, appBatches, fsyncs, segments, size, start, hw, lso, appRate *prometheus.Desc
	groupCommitted, groupLag                                                         *prometheus.Desc
	jobRunning, jobIn, jobOut, jobWMLag                                              *prometheus.Desc
	opIn, opOut, opDropped, opBusy, opIdle, opBP, opBusyRate, opIdleRate, opBPRate   *prometheus.Desc
	opWM, opWMLag                                                                    *prometheus.Desc
	ckID, ckDur, ckSize, ckAlign, ckDone, ckFailed                                   *prometheus.Desc
}

func newDescs() descs {
	tp := []string{"topic", "partition"}
	op := []string{"job", "operator", "subtask"}
	job := []string{"job"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_"+name, help, labels, nil)
	}
	return descs{
		appRecords:     d("log_appended_records_total", "Records appended to the partition since the log was opened.", tp),
		appBytes:       d("log_appended_bytes_total", "Bytes appended to the partition since the log was opened.", tp),
		appBatches:     d("log_appended_batches_total", "Record batches appended to the partition since the log was opened.", tp),
		fsyncs:         d("log_fsyncs_total", "Fsyncs (group commits) of the partition since the log was opened.", tp),
		segments:       d("log_segments", "Segments of the partition.", tp),
		size:           d("log_size_bytes", "Bytes stored in the partition's segments.", tp),
		start:          d("log_start_offset", "Earliest offset still stored in the partition.", tp),
		hw:             d("log_high_watermark", "Next offset to be written to the partition (latest offset).", tp),
		lso:            d("log_last_stable_offset", "First offset of the oldest open transaction, or the high watermark.", tp),
		appRate:        d("log_append_records_per_second", "Records appended per second over the last sampling interval.", tp),
		groupCommitted: d("group_committed_offset", "Offset a consumer group committed in the partition.", []string{"group", "topic", "partition"}),
		groupLag:       d("group_lag", "Records between a consumer group's committed offset and the partition's high watermark.", []string{"group", "topic", "partition"}),
		jobRunning:     d("job_running", "1 while the job runs, 0 once it ended.", job),
		jobIn:          d("job_records_in_per_second", "Records read by the job's sources per second.", job),
		jobOut:         d("job_records_out_per_second", "Records received by the job's sinks per second.", job),
		jobWMLag:       d("job_watermark_lag_ms", "Wall clock minus the lowest watermark of the job's sinks, in ms.", job),
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
		ckID:           d("checkpoint_last_completed_id", "Id of the last completed checkpoint.", job),
		ckDur:          d("checkpoint_last_duration_seconds", "Duration of the last completed checkpoint.", job),
		ckSize:         d("checkpoint_last_size_bytes", "Size of the last completed checkpoint.", job),
		ckAlign:        d("checkpoint_last_alignment_seconds", "Longest barrier alignment of the last completed checkpoint.", job),
		ckDone:         d("checkpoint_completed_total", "Checkpoints completed (in the reported history).", job),
		ckFailed:       d("checkpoint_failed_total", "Checkpoints failed (in the reported history).", job),
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
	rates := make(map[string]float64)
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			rates[t.Name+"\x00"+strconv.Itoa(int(p.Partition))] = p.RecordsPerSec
		}
	}
	now := c.o.opts.Now()
	if l := c.o.opts.Log; l != nil {
		for _, name := range l.Topics() {
			t, err := l.Topic(name)
			if err != nil {
				continue
			}
			for p := range t.NumPartitions() {
				part, err := t.Partition(p)
				if err != nil {
					continue
				}
				st := part.Stats()
				ps := strconv.Itoa(int(p))
				counter(d.appRecords, float64(st.AppendedRecords), name, ps)
				counter(d.appBytes, float64(st.AppendedBytes), name, ps)
				counter(d.appBatches, float64(st.AppendedBatches), name, ps)
				counter(d.fsyncs, float64(st.Syncs), name, ps)
				gauge(d.segments, float64(st.Segments), name, ps)
				gauge(d.size, float64(st.Bytes), name, ps)
				gauge(d.start, float64(st.LogStartOffset), name, ps)
				gauge(d.hw, float64(st.HighWatermark), name, ps)
				gauge(d.lso, float64(st.LastStable), name, ps)
				gauge(d.appRate, rates[name+"\x00"+ps], name, ps)
			}
		}
	}
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
		}
	}
}

func (c *collector) collectCheckpoints(ch chan<- prometheus.Metric, js JobStatus) {
	if !js.CheckpointsAvailable {
		return
	}
	d := &c.d
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
