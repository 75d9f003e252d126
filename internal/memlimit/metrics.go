package memlimit

import (
	"runtime/metrics"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// CacheStats reports a block cache's capacity and use in bytes.
type CacheStats interface {
	Capacity() int64
	Used() int64
}

// goClasses are the runtime/metrics memory classes exported as
// sluice_memory_go_bytes{class}; together they are all the memory the Go
// runtime mapped (/memory/classes/total:bytes).
var goClasses = []struct{ name, class string }{
	{"/memory/classes/heap/objects:bytes", "heap_objects"},
	{"/memory/classes/heap/unused:bytes", "heap_unused"},
	{"/memory/classes/heap/free:bytes", "heap_free"},
	{"/memory/classes/heap/released:bytes", "heap_released"},
	{"/memory/classes/heap/stacks:bytes", "stacks"},
	{"/memory/classes/os-stacks:bytes", "os_stacks"},
	{"/memory/classes/metadata/other:bytes", "metadata"},
	{"/memory/classes/metadata/mspan/inuse:bytes", "metadata"},
	{"/memory/classes/metadata/mspan/free:bytes", "metadata"},
	{"/memory/classes/metadata/mcache/inuse:bytes", "metadata"},
	{"/memory/classes/metadata/mcache/free:bytes", "metadata"},
	{"/memory/classes/profiling/buckets:bytes", "other"},
	{"/memory/classes/other:bytes", "other"},
}

const (
	gcCPU    = "/cpu/classes/gc/total:cpu-seconds"
	totalCPU = "/cpu/classes/total:cpu-seconds"
	idleCPU  = "/cpu/classes/idle:cpu-seconds"
	goLimit  = "/gc/gomemlimit:bytes"
)

// Collector exports the memory figures the default Go collector does not:
//
//	sluice_memory_limit_bytes             the --memory limit (0: none)
//	sluice_memory_go_limit_bytes          the Go runtime's limit (GOMEMLIMIT)
//	sluice_memory_budget_bytes{part}      the plan's parts (with a limit)
//	sluice_memory_go_bytes{class}         Go memory by runtime/metrics class
//	sluice_gc_cpu_seconds_total           CPU the GC used (runtime estimate)
//	sluice_go_cpu_seconds_total           CPU the runtime used (total - idle)
//	sluice_gc_cpu_share                   the ratio of the two since start
//	sluice_pebble_cache_bytes{kind}       the shared block cache (capacity, used)
//
// plan may be nil (no --memory given); caches may be nil (no Pebble).
func Collector(plan *Plan, cache CacheStats) prometheus.Collector {
	names := []string{gcCPU, totalCPU, idleCPU, goLimit}
	for _, c := range goClasses {
		names = append(names, c.name)
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	return &collector{plan: plan, cache: cache, samples: samples,
		limit:   prometheus.NewDesc("sluice_memory_limit_bytes", "The memory limit given by --memory or SLUICE_MEMORY (0: none).", nil, nil),
		goLimit: prometheus.NewDesc("sluice_memory_go_limit_bytes", "The Go runtime's soft memory limit (GOMEMLIMIT), set from --memory minus headroom.", nil, nil),
		budget:  prometheus.NewDesc("sluice_memory_budget_bytes", "The part of the memory limit given to a component (internal/memlimit).", []string{"part"}, nil),
		goBytes: prometheus.NewDesc("sluice_memory_go_bytes", "Memory mapped by the Go runtime, by class (runtime/metrics /memory/classes).", []string{"class"}, nil),
		gcCPU:   prometheus.NewDesc("sluice_gc_cpu_seconds_total", "CPU time spent by the garbage collector (runtime/metrics estimate).", nil, nil),
		allCPU:  prometheus.NewDesc("sluice_go_cpu_seconds_total", "CPU time the Go runtime used since start (runtime/metrics total minus idle), the denominator of the GC share.", nil, nil),
		share:   prometheus.NewDesc("sluice_gc_cpu_share", "Share of the CPU time used since start that garbage collection took.", nil, nil),
		cacheB:  prometheus.NewDesc("sluice_pebble_cache_bytes", "The block cache shared by Pebble state backends: capacity and bytes used.", []string{"kind"}, nil),
	}
}

type collector struct {
	plan    *Plan
	cache   CacheStats
	mu      sync.Mutex
	samples []metrics.Sample

	limit, goLimit, budget, goBytes, gcCPU, allCPU, share, cacheB *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.limit, c.goLimit, c.budget, c.goBytes, c.gcCPU, c.allCPU, c.share, c.cacheB} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	metrics.Read(c.samples)
	vals := make(map[string]float64, len(c.samples))
	for _, s := range c.samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			vals[s.Name] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			vals[s.Name] = s.Value.Float64()
		}
	}
	c.mu.Unlock()

	var limit float64
	if c.plan != nil {
		limit = float64(c.plan.Limit)
		for _, p := range []struct {
			part string
			v    int64
		}{{"headroom", c.plan.Headroom}, {"pebble_cache", c.plan.PebbleCache}, {"pebble_memtables", c.plan.PebbleMemTables}, {"queues", c.plan.Queues}, {"heap", c.plan.Heap}} {
			ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(p.v), p.part)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, limit)
	ch <- prometheus.MustNewConstMetric(c.goLimit, prometheus.GaugeValue, vals[goLimit])
	byClass := map[string]float64{}
	var order []string
	for _, g := range goClasses {
		if _, ok := byClass[g.class]; !ok {
			order = append(order, g.class)
		}
		byClass[g.class] += vals[g.name]
	}
	for _, class := range order {
		ch <- prometheus.MustNewConstMetric(c.goBytes, prometheus.GaugeValue, byClass[class], class)
	}
	gc, all := vals[gcCPU], vals[totalCPU]-vals[idleCPU]
	ch <- prometheus.MustNewConstMetric(c.gcCPU, prometheus.CounterValue, gc)
	ch <- prometheus.MustNewConstMetric(c.allCPU, prometheus.CounterValue, all)
	var share float64
	if all > 0 {
		share = gc / all
	}
	ch <- prometheus.MustNewConstMetric(c.share, prometheus.GaugeValue, share)
	if c.cache != nil {
		ch <- prometheus.MustNewConstMetric(c.cacheB, prometheus.GaugeValue, float64(c.cache.Capacity()), "capacity")
		ch <- prometheus.MustNewConstMetric(c.cacheB, prometheus.GaugeValue, float64(c.cache.Used()), "used")
	}
}

// CPU returns the CPU seconds the garbage collector used and the CPU
// seconds the Go runtime used in all (its total minus idle time) since
// the process started (runtime/metrics estimates); callers measuring an
// interval subtract two readings.
func CPU() (gc, used float64) {
	s := []metrics.Sample{{Name: gcCPU}, {Name: totalCPU}, {Name: idleCPU}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Float64() - s[2].Value.Float64()
}
