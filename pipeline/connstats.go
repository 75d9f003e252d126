package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connector"
)

// connStat is a connector of the job that reports its own counters
// (connector.StatsReporter), named by its place in the spec.
type connStat struct {
	field string
	r     connector.StatsReporter
}

// addConnStats records x if it reports connector statistics.
func (j *Job) addConnStats(field string, x any) {
	if r, ok := x.(connector.StatsReporter); ok {
		j.conns = append(j.conns, connStat{field: field, r: r})
	}
}

// ConnectorStats returns the statistics of the job's connectors that keep
// their own (RabbitMQ, Redis streams, ...), by their place in the spec
// ("source", "sinks[0]").
func (j *Job) ConnectorStats() map[string]connector.Stats {
	out := make(map[string]connector.Stats, len(j.conns))
	for _, c := range j.conns {
		out[c.field] = c.r.ConnectorStats()
	}
	return out
}

var (
	descConnRecords = prometheus.NewDesc("sluice_pipeline_connector_records_total",
		"Records a connector read from its server (sources) or had acknowledged by it (sinks).", []string{"pipeline", "connector"}, nil)
	descConnBytes = prometheus.NewDesc("sluice_pipeline_connector_bytes_total",
		"Payload bytes of those records.", []string{"pipeline", "connector"}, nil)
	descConnErrors = prometheus.NewDesc("sluice_pipeline_connector_errors_total",
		"Failed operations of a connector against its server (retried or reported).", []string{"pipeline", "connector"}, nil)
	descConnReconnects = prometheus.NewDesc("sluice_pipeline_connector_reconnects_total",
		"Connections a connector re-established after its server went away.", []string{"pipeline", "connector"}, nil)
	descConnLag = prometheus.NewDesc("sluice_pipeline_connector_lag",
		"What the server says is still to be read by a source: a RabbitMQ queue's ready messages, a Redis consumer group's lag.", []string{"pipeline", "connector"}, nil)
)

func describeConnStats(ch chan<- *prometheus.Desc) {
	ch <- descConnRecords
	ch <- descConnBytes
	ch <- descConnErrors
	ch <- descConnReconnects
	ch <- descConnLag
}

func collectConnStats(j *Job, pipeline string, ch chan<- prometheus.Metric) {
	for _, c := range j.conns {
		st := c.r.ConnectorStats()
		ch <- prometheus.MustNewConstMetric(descConnRecords, prometheus.CounterValue, float64(st.Records), pipeline, c.field)
		ch <- prometheus.MustNewConstMetric(descConnBytes, prometheus.CounterValue, float64(st.Bytes), pipeline, c.field)
		ch <- prometheus.MustNewConstMetric(descConnErrors, prometheus.CounterValue, float64(st.Errors), pipeline, c.field)
		ch <- prometheus.MustNewConstMetric(descConnReconnects, prometheus.CounterValue, float64(st.Reconnects), pipeline, c.field)
		if st.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(descConnLag, prometheus.GaugeValue, float64(st.Lag), pipeline, c.field)
		}
	}
}
