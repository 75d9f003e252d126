package logstore

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// logMetrics are the log's Prometheus metrics (Options.Registerer). A nil
// *logMetrics records nothing. Per-partition figures are read from Stats at
// scrape time, so the append path pays only for the commit histograms.
type logMetrics struct {
	commitSeconds prometheus.Histogram
	commitBytes   prometheus.Histogram
}

// newLogMetrics builds the metrics when reg is set; register them with
// register once the log is open.
func newLogMetrics(reg prometheus.Registerer) *logMetrics {
	if reg == nil {
		return nil
	}
	return &logMetrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_log_commit_duration_seconds",
			Help:    "Time of one group commit: the write of every queued batch plus, under fsync always, the fdatasync.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		commitBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_log_commit_bytes",
			Help:    "Bytes written by one group commit (every batch that queued during the previous one).",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10),
		}),
	}
}

func (m *logMetrics) register(l *Log, reg prometheus.Registerer) error {
	if m == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.commitSeconds, m.commitBytes, &partitionCollector{l: l}} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("log metrics: %w", err)
		}
	}
	return nil
}

func (m *logMetrics) commit(d time.Duration, bytes int) {
	if m == nil {
		return
	}
	m.commitSeconds.Observe(d.Seconds())
	m.commitBytes.Observe(float64(bytes))
}

var (
	partLabels         = []string{"topic", "partition"}
	descHighWatermark  = prometheus.NewDesc("sluice_log_high_watermark", "Next offset of the partition that readers may see.", partLabels, nil)
	descLogStart       = prometheus.NewDesc("sluice_log_start_offset", "Earliest offset still stored in the partition.", partLabels, nil)
	descBytes          = prometheus.NewDesc("sluice_log_bytes", "Bytes stored in the partition's segments.", partLabels, nil)
	descSegments       = prometheus.NewDesc("sluice_log_segments", "Segment files of the partition.", partLabels, nil)
	descAppendedRecs   = prometheus.NewDesc("sluice_log_appended_records_total", "Records appended to the partition since the log was opened.", partLabels, nil)
	descAppendedBytes  = prometheus.NewDesc("sluice_log_appended_bytes_total", "Batch bytes appended to the partition since the log was opened.", partLabels, nil)
	descAppendedBatchs = prometheus.NewDesc("sluice_log_appended_batches_total", "Batches appended to the partition since the log was opened.", partLabels, nil)
	descSyncs          = prometheus.NewDesc("sluice_log_fsyncs_total", "fdatasyncs of the partition's segments since the log was opened (commits, and the top-ups of a pre-written tail).", partLabels, nil)

	descCleanerPasses   = prometheus.NewDesc("sluice_log_cleaner_passes_total", "Completed compaction passes over the partition since the log was opened.", partLabels, nil)
	descCleanerRead     = prometheus.NewDesc("sluice_log_cleaner_read_bytes_total", "Bytes the cleaner read from the partition since the log was opened.", partLabels, nil)
	descCleanerWritten  = prometheus.NewDesc("sluice_log_cleaner_written_bytes_total", "Bytes the cleaner wrote for the partition since the log was opened.", partLabels, nil)
	descCleanerRemoved  = prometheus.NewDesc("sluice_log_cleaner_removed_records_total", "Records the cleaner removed from the partition since the log was opened.", partLabels, nil)
	descCleanerDirty    = prometheus.NewDesc("sluice_log_cleaner_dirty_ratio", "Uncleaned share of the partition's cleanable bytes, as of the cleaner's last look.", partLabels, nil)
	descCleanerLastPass = prometheus.NewDesc("sluice_log_cleaner_last_pass_timestamp_seconds", "When the last compaction pass of the partition completed (0: none since the log was opened).", partLabels, nil)
	descCleanerFirstDty = prometheus.NewDesc("sluice_log_cleaner_first_dirty_offset", "Offsets below this were compacted.", partLabels, nil)
	descCleanerRested   = prometheus.NewDesc("sluice_log_cleaner_rested_seconds_total", "Time the cleaner's passes over the partition rested to leave the CPU to appends (its duty cycle) since the log was opened.", partLabels, nil)
)

// partitionCollector reports every partition's Stats at scrape time.
type partitionCollector struct{ l *Log }

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHighWatermark, descLogStart, descBytes, descSegments, descAppendedRecs, descAppendedBytes, descAppendedBatchs, descSyncs,
		descCleanerPasses, descCleanerRead, descCleanerWritten, descCleanerRemoved, descCleanerDirty, descCleanerLastPass, descCleanerFirstDty, descCleanerRested} {
		ch <- d
	}
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	c.l.mu.RLock()
	topics := make([]*Topic, 0, len(c.l.topics))
	for _, t := range c.l.topics {
		topics = append(topics, t)
	}
	c.l.mu.RUnlock()
	for _, t := range topics {
		compacted := t.Cleanup().Compact()
		for _, p := range t.partitions() {
			s := p.Stats()
			lv := []string{t.name, strconv.Itoa(int(p.id))}
			ch <- prometheus.MustNewConstMetric(descHighWatermark, prometheus.GaugeValue, float64(s.HighWatermark), lv...)
			ch <- prometheus.MustNewConstMetric(descLogStart, prometheus.GaugeValue, float64(s.LogStartOffset), lv...)
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.Bytes), lv...)
			ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, float64(s.Segments), lv...)
			ch <- prometheus.MustNewConstMetric(descAppendedRecs, prometheus.CounterValue, float64(s.AppendedRecords), lv...)
			ch <- prometheus.MustNewConstMetric(descAppendedBytes, prometheus.CounterValue, float64(s.AppendedBytes), lv...)
			ch <- prometheus.MustNewConstMetric(descAppendedBatchs, prometheus.CounterValue, float64(s.AppendedBatches), lv...)
			ch <- prometheus.MustNewConstMetric(descSyncs, prometheus.CounterValue, float64(s.Syncs), lv...)
			if compacted {
				cs := s.Cleaner
				last := 0.0
				if !cs.LastPass.IsZero() {
					last = float64(cs.LastPass.UnixNano()) / 1e9
				}
				ch <- prometheus.MustNewConstMetric(descCleanerPasses, prometheus.CounterValue, float64(cs.Passes), lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerRead, prometheus.CounterValue, float64(cs.BytesRead), lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerWritten, prometheus.CounterValue, float64(cs.BytesWritten), lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerRemoved, prometheus.CounterValue, float64(cs.RecordsRemoved), lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerDirty, prometheus.GaugeValue, cs.DirtyRatio, lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerLastPass, prometheus.GaugeValue, last, lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerFirstDty, prometheus.GaugeValue, float64(cs.FirstDirty), lv...)
				ch <- prometheus.MustNewConstMetric(descCleanerRested, prometheus.CounterValue, cs.Rested.Seconds(), lv...)
			}
		}
	}
}
