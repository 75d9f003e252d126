package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connector/lookup"
)

var (
	descLookupKeys = prometheus.NewDesc("sluice_pipeline_lookup_keys_total",
		"Keys a lookup step looked up (one per record).",
		[]string{"pipeline", "step"}, nil)
	descLookupHits = prometheus.NewDesc("sluice_pipeline_lookup_cache_hits_total",
		"Keys (records) a lookup step answered from its cache.",
		[]string{"pipeline", "step"}, nil)
	descLookupMisses = prometheus.NewDesc("sluice_pipeline_lookup_cache_misses_total",
		"Distinct keys of a record batch a lookup step had to fetch.",
		[]string{"pipeline", "step"}, nil)
	descLookupQueries = prometheus.NewDesc("sluice_pipeline_lookup_queries_total",
		"Batched queries (one per record batch with misses, plus retries) a lookup step sent.",
		[]string{"pipeline", "step"}, nil)
	descLookupErrors = prometheus.NewDesc("sluice_pipeline_lookup_errors_total",
		"Lookup queries that failed (each retried with backoff).",
		[]string{"pipeline", "step"}, nil)
	descLookupLatency = prometheus.NewDesc("sluice_pipeline_lookup_query_seconds",
		"Duration of a lookup step's queries.",
		[]string{"pipeline", "step"}, nil)
)

func describeLookups(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLookupKeys, descLookupHits, descLookupMisses, descLookupQueries, descLookupErrors, descLookupLatency} {
		ch <- d
	}
}

func collectLookups(j *Job, ch chan<- prometheus.Metric) {
	name := j.plan.Spec.Name
	for _, l := range j.lookups {
		m := l.client.Metrics()
		for _, c := range []struct {
			d *prometheus.Desc
			n int64
		}{
			{descLookupKeys, m.Lookups.Load()}, {descLookupHits, m.Hits.Load()}, {descLookupMisses, m.Misses.Load()},
			{descLookupQueries, m.Queries.Load()}, {descLookupErrors, m.Errors.Load()},
		} {
			ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.n), name, l.stage)
		}
		buckets := map[float64]uint64{}
		var cum uint64
		for i, b := range lookup.QueryBounds {
			cum += uint64(m.QueryBuckets[i].Load())
			buckets[b.Seconds()] = cum
		}
		cum += uint64(m.QueryBuckets[len(lookup.QueryBounds)].Load())
		ch <- prometheus.MustNewConstHistogram(descLookupLatency, cum, float64(m.QueryNanos.Load())/1e9, buckets, name, l.stage)
	}
}
