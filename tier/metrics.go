package tier

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tier's Prometheus metrics (sluice_tier_*). Counters and
// the histogram are updated as things happen; per-partition figures are
// read at scrape time.
type metrics struct {
	t              *Tier
	uploads        prometheus.Counter
	uploadedBytes  prometheus.Counter
	uploadFailures prometheus.Counter
	fetchSeconds   prometheus.Histogram
	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
}

var (
	tierPartLabels    = []string{"topic", "partition"}
	descRemoteBytes   = prometheus.NewDesc("sluice_tier_remote_bytes", "Bytes of the partition's segments in remote storage.", tierPartLabels, nil)
	descRemoteSegs    = prometheus.NewDesc("sluice_tier_remote_segments", "Segments of the partition in remote storage.", tierPartLabels, nil)
	descRemoteStart   = prometheus.NewDesc("sluice_tier_remote_start_offset", "First offset of the partition in remote storage.", tierPartLabels, nil)
	descLagSegs       = prometheus.NewDesc("sluice_tier_upload_lag_segments", "Sealed segments of the partition waiting for upload.", tierPartLabels, nil)
	descLagBytes      = prometheus.NewDesc("sluice_tier_upload_lag_bytes", "Bytes of sealed segments of the partition waiting for upload.", tierPartLabels, nil)
	descBlockedBytes  = prometheus.NewDesc("sluice_tier_local_retention_blocked_bytes", "Bytes local retention keeps only because they are not yet remote: the local disk is over local.retention by this much.", tierPartLabels, nil)
	descStoreUp       = prometheus.NewDesc("sluice_tier_store_up", "1 when the last remote storage operation succeeded, 0 when it failed.", nil, nil)
	descUnreadable    = prometheus.NewDesc("sluice_tier_unreadable_manifests", "Damaged manifest versions of the partition found when it was loaded: kept, with every object, until an operator restores or deletes them (see the log).", tierPartLabels, nil)
	descCacheBytes    = prometheus.NewDesc("sluice_tier_cache_bytes", "Bytes of remote segment chunks in the local cache.", nil, nil)
	descCacheCapacity = prometheus.NewDesc("sluice_tier_cache_capacity_bytes", "Bound of the chunk cache.", nil, nil)
)

func newMetrics(t *Tier) *metrics {
	return &metrics{
		t:              t,
		uploads:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_tier_uploaded_segments_total", Help: "Segments uploaded to remote storage since start."}),
		uploadedBytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_tier_uploaded_bytes_total", Help: "Segment bytes uploaded to remote storage since start."}),
		uploadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_tier_upload_failures_total", Help: "Upload passes that failed (each is retried with backoff)."}),
		fetchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_tier_remote_fetch_duration_seconds", Help: "Time of one read from remote storage (a chunk of a segment, or an index).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		cacheHits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_tier_cache_hits_total", Help: "Chunk reads served by the local cache."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_tier_cache_misses_total", Help: "Chunk reads fetched from remote storage (hit ratio: hits / (hits + misses))."}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.uploads, m.uploadedBytes, m.uploadFailures, m.fetchSeconds, m.cacheHits, m.cacheMisses, m} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("tier metrics: %w", err)
		}
	}
	return nil
}

// Describe implements prometheus.Collector for the scrape-time figures.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRemoteBytes, descRemoteSegs, descRemoteStart, descLagSegs, descLagBytes, descBlockedBytes, descStoreUp, descUnreadable, descCacheBytes, descCacheCapacity} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	t := m.t
	up := 0.0
	if t.storeUp.Load() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(t.cache.bytes()))
	ch <- prometheus.MustNewConstMetric(descCacheCapacity, prometheus.GaugeValue, float64(t.opts.CacheBytes))
	for _, ps := range t.remotePartitions() {
		labels := []string{ps.key.topic, strconv.Itoa(int(ps.key.part))}
		if p, _, err := t.partition(ps); err == nil {
			ch <- prometheus.MustNewConstMetric(descBlockedBytes, prometheus.GaugeValue, float64(p.Stats().RetentionBlockedBytes), labels...)
		}
		ch <- prometheus.MustNewConstMetric(descUnreadable, prometheus.GaugeValue, float64(ps.nUnreadable.Load()), labels...)
		info, ok := t.Describe(ps.key.topic, ps.key.part)
		if !ok {
			// Not loaded yet: everything sealed waits.
			info.LagSegments, info.LagBytes = t.lag(ps, &manifest{})
			ch <- prometheus.MustNewConstMetric(descLagSegs, prometheus.GaugeValue, float64(info.LagSegments), labels...)
			ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(info.LagBytes), labels...)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descRemoteBytes, prometheus.GaugeValue, float64(info.Bytes), labels...)
		ch <- prometheus.MustNewConstMetric(descRemoteSegs, prometheus.GaugeValue, float64(info.Segments), labels...)
		ch <- prometheus.MustNewConstMetric(descRemoteStart, prometheus.GaugeValue, float64(info.Start), labels...)
		ch <- prometheus.MustNewConstMetric(descLagSegs, prometheus.GaugeValue, float64(info.LagSegments), labels...)
		ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(info.LagBytes), labels...)
	}
}
