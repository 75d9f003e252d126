package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connector"
)

// exactlyOnceCapable is a sink config that says itself whether it is
// exactly-once under exactly_once delivery (a messaging sink with
// deduplication, say), for the warning about at-least-once sinks.
type exactlyOnceCapable interface {
	exactlyOnceCapable() bool
}

// namedMeter is a connector's meter and its place in the spec.
type namedMeter struct {
	field     string // "source", "sinks[0]"
	connector string // "mqtt", "nats"
	m         *connector.Meter
}

var (
	descConnRecords = prometheus.NewDesc("sluice_pipeline_connector_records_total",
		"Messages a connector read (source) or wrote and had acknowledged (sink).",
		[]string{"pipeline", "field", "connector"}, nil)
	descConnBytes = prometheus.NewDesc("sluice_pipeline_connector_bytes_total",
		"Payload bytes of those messages.",
		[]string{"pipeline", "field", "connector"}, nil)
	descConnErrors = prometheus.NewDesc("sluice_pipeline_connector_errors_total",
		"Failed operations of a connector: lost connections, failed queries, publishes that failed or timed out, acknowledgements not confirmed.",
		[]string{"pipeline", "field", "connector"}, nil)
	descConnReconnects = prometheus.NewDesc("sluice_pipeline_connector_reconnects_total",
		"Connections a connector re-established after losing them.",
		[]string{"pipeline", "field", "connector"}, nil)
	descConnDropped = prometheus.NewDesc("sluice_pipeline_connector_skipped_total",
		"Messages skipped: redeliveries of messages already read (sources), publishes the server discarded as duplicates (NATS JetStream sink), messages dropped by a core NATS subscription that fell behind.",
		[]string{"pipeline", "field", "connector"}, nil)
	descConnLag = prometheus.NewDesc("sluice_pipeline_connector_lag_messages",
		"Messages the server still holds for a source (NATS JetStream: the consumer's pending count); absent where the system has no such figure.",
		[]string{"pipeline", "field", "connector"}, nil)
)

func describeConnectorMeters(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnRecords, descConnBytes, descConnErrors, descConnReconnects, descConnDropped, descConnLag} {
		ch <- d
	}
}

// connectorMeters returns the meters of the job's sources and sinks that
// keep one.
func (j *Job) connectorMeters() []namedMeter {
	var out []namedMeter
	for i, src := range j.sources {
		if m, ok := src.(connector.Metered); ok {
			out = append(out, namedMeter{field: j.srcName[i], connector: connectorOfSource(j, i), m: m.Meter()})
		}
	}
	return append(out, j.meters...)
}

func connectorOfSource(j *Job, i int) string {
	if j.srcName[i] == "source" {
		return j.plan.Spec.Source.Connector
	}
	return ""
}

func collectConnectorMeters(j *Job, ch chan<- prometheus.Metric) {
	name := j.plan.Spec.Name
	for _, nm := range j.connectorMeters() {
		m := nm.m
		for _, v := range []struct {
			d *prometheus.Desc
			n int64
		}{
			{descConnRecords, m.Records.Load()}, {descConnBytes, m.Bytes.Load()}, {descConnErrors, m.Errors.Load()},
			{descConnReconnects, m.Reconnects.Load()}, {descConnDropped, m.Dropped.Load()},
		} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.n), name, nm.field, nm.connector)
		}
		if lag := m.Lag.Load(); lag >= 0 {
			ch <- prometheus.MustNewConstMetric(descConnLag, prometheus.GaugeValue, float64(lag), name, nm.field, nm.connector)
		}
	}
}
