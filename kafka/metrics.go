package kafka

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the listener's Prometheus metrics. A nil *metrics records
// nothing.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	connections prometheus.Gauge
	rejected    *prometheus.CounterVec
	auths       *prometheus.CounterVec
	// authzDenials counts the authorizer's refusals.
	authzDenials *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_kafka_requests_total",
			Help: "Kafka protocol requests handled, by API name.",
		}, []string{"api"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_kafka_request_duration_seconds",
			Help:    "Time from decoding a Kafka request to its response being ready (long polls and rebalances included), by API name.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_kafka_connections",
			Help: "Open Kafka client connections.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_kafka_connections_closed_on_bad_input_total",
			Help: "Connections closed because of an undecodable frame, an oversized frame or an unsupported API or version, by reason.",
		}, []string{"reason"}),
	}
	m.auths = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_kafka_authentications_total",
		Help: "SASL authentications on the Kafka listeners, by mechanism and result (ok, invalid_credentials, unsupported_mechanism, ...).",
	}, []string{"mechanism", "result"})
	m.authzDenials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_kafka_authorization_denied_total",
		Help: "Kafka operations the authorizer refused (ACLs), by operation and resource type.",
	}, []string{"operation", "resource_type"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.connections, m.rejected, m.auths, m.authzDenials} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("kafka metrics: %w", err)
		}
	}
	return m, nil
}

// apiName returns the name of an API key for metric labels.
func apiName(key int16) string {
	if name := kmsg.NameForKey(key); name != "" {
		return name
	}
	return strconv.Itoa(int(key))
}

func (m *metrics) request(key int16, d time.Duration) {
	if m == nil {
		return
	}
	name := apiName(key)
	m.requests.WithLabelValues(name).Inc()
	m.duration.WithLabelValues(name).Observe(d.Seconds())
}

func (m *metrics) connOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

func (m *metrics) connClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

func (m *metrics) reject(reason string) {
	if m != nil {
		m.rejected.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) auth(mechanism, result string) {
	if m != nil {
		m.auths.WithLabelValues(mechanism, result).Inc()
	}
}

func (m *metrics) authzDenied(operation, resourceType string) {
	if m != nil {
		m.authzDenials.WithLabelValues(operation, resourceType).Inc()
	}
}
