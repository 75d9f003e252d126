package pipeline

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the job's metrics, read on
// every scrape: per operator subtask records in and out, late records
// dropped and the watermark, and the job's failed-record count. Metric
// names start with sluice_pipeline_.
func (j *Job) Collector() prometheus.Collector { return &jobCollector{j: j} }

var (
	descIn = prometheus.NewDesc("sluice_pipeline_records_in_total", "Records received by an operator subtask.",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descOut = prometheus.NewDesc("sluice_pipeline_records_out_total", "Records emitted by an operator subtask.",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descLate = prometheus.NewDesc("sluice_pipeline_late_records_dropped_total", "Late records dropped by a window subtask.",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descWm = prometheus.NewDesc("sluice_pipeline_watermark_ms", "Current input watermark of an operator subtask (epoch ms).",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descDead = prometheus.NewDesc("sluice_pipeline_failed_records_total", "Records that failed to decode, lacked an event time or made an expression fail.",
		[]string{"pipeline"}, nil)
)

type jobCollector struct{ j *Job }

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descIn
	ch <- descOut
	ch <- descLate
	ch <- descWm
	ch <- descDead
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	name := c.j.plan.Spec.Name
	for _, m := range c.j.Metrics() {
		sub := strconv.Itoa(m.Subtask)
		ch <- prometheus.MustNewConstMetric(descIn, prometheus.CounterValue, float64(m.RecordsIn), name, m.Operator, sub)
		ch <- prometheus.MustNewConstMetric(descOut, prometheus.CounterValue, float64(m.RecordsOut), name, m.Operator, sub)
		ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(m.Dropped), name, m.Operator, sub)
		ch <- prometheus.MustNewConstMetric(descWm, prometheus.GaugeValue, float64(m.Watermark), name, m.Operator, sub)
	}
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(c.j.DeadLetters()), name)
}

// Summary totals a finished or running job: records read by the inputs
// (before any filter), records received by the sinks (each sink counts),
// failed records and late records dropped by windows.
type Summary struct {
	RecordsIn  int64
	RecordsOut int64
	Failed     int64
	LateDrops  int64
}

// Summary returns the job's totals so far.
func (j *Job) Summary() Summary {
	var s Summary
	for _, m := range j.Metrics() {
		switch {
		case len(m.Operator) >= 5 && m.Operator[:5] == "sink-":
			s.RecordsOut += m.RecordsIn
		}
		s.LateDrops += m.Dropped
	}
	s.Failed = j.DeadLetters()
	s.RecordsIn = j.read.Load()
	return s
}
