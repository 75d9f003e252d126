package pipeline

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/connector/mysqlcdc"
)

// Collector returns a Prometheus collector of the job's metrics, read on
// every scrape: per operator subtask records in and out, late records
// dropped and the watermark, the job's failed-record count, and each HTTP
// ingest source's records and requests by outcome (shed ones included).
// Metric names start with sluice_pipeline_.
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
	descIngestRecords = prometheus.NewDesc("sluice_pipeline_http_ingest_records_total",
		"Records of an HTTP ingest source by outcome: received (in well-formed, authorised requests), accepted, shed_rate_limit, shed_backpressure (including evicted ones), not_admitted (block requests that timed out).",
		[]string{"pipeline", "source", "outcome"}, nil)
	descIngestRequests = prometheus.NewDesc("sluice_pipeline_http_ingest_requests_total",
		"Requests of an HTTP ingest source by outcome: decoded, rejected (429), unauthorized (401), forbidden (403), bad (malformed or oversized), overloaded (503: max_requests in flight).",
		[]string{"pipeline", "source", "outcome"}, nil)
)

type jobCollector struct{ j *Job }

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descIn
	ch <- descOut
	ch <- descLate
	ch <- descWm
	ch <- descDead
	ch <- descIngestRecords
	ch <- descIngestRequests
	describeMySQLCDC(ch)
	describeConnectorMeters(ch)
	describeCDC(ch)
	describeLookups(ch)
	describeEnrich(ch)
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
	collectConnectorMeters(c.j, ch)
	for i, src := range c.j.sources {
		if ms, ok := src.(*mysqlcdc.Source); ok {
			collectMySQLCDC(ch, name, c.j.srcName[i], ms)
			continue
		}
		hs, ok := src.(*nethttp.Source)
		if !ok {
			continue
		}
		st, field := hs.Stats(), c.j.srcName[i]
		for _, v := range []struct {
			outcome string
			n       int64
		}{
			{"received", st.Records}, {"accepted", st.Accepted}, {"shed_rate_limit", st.ShedRateLimit},
			{"shed_backpressure", st.ShedBackpressure}, {"not_admitted", st.NotAdmitted},
		} {
			ch <- prometheus.MustNewConstMetric(descIngestRecords, prometheus.CounterValue, float64(v.n), name, field, v.outcome)
		}
		for _, v := range []struct {
			outcome string
			n       int64
		}{
			{"decoded", st.Requests}, {"rejected", st.Rejected}, {"unauthorized", st.Unauthorized}, {"forbidden", st.Forbidden}, {"bad", st.BadRequests}, {"overloaded", st.Overloaded},
		} {
			ch <- prometheus.MustNewConstMetric(descIngestRequests, prometheus.CounterValue, float64(v.n), name, field, v.outcome)
		}
	}
	collectCDC(c.j, ch)
	collectLookups(c.j, ch)
	collectEnrich(c.j, ch)
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
