package memlimit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeCache struct{ capacity, used int64 }

func (f fakeCache) Capacity() int64 { return f.capacity }
func (f fakeCache) Used() int64     { return f.used }

func TestCollector(t *testing.T) {
	p, err := Split(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(&p, fakeCache{capacity: p.PebbleCache, used: 42}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()
	}
	one := func(name string) float64 {
		ms := got[name]
		if len(ms) != 1 {
			t.Fatalf("%s: %d series, want 1", name, len(ms))
		}
		if g := ms[0].GetGauge(); g != nil {
			return g.GetValue()
		}
		return ms[0].GetCounter().GetValue()
	}
	if v := one("sluice_memory_limit_bytes"); v != float64(1<<30) {
		t.Errorf("sluice_memory_limit_bytes = %v", v)
	}
	if v := one("sluice_memory_go_limit_bytes"); v <= 0 {
		t.Errorf("sluice_memory_go_limit_bytes = %v", v)
	}
	if v := one("sluice_gc_cpu_share"); v < 0 || v > 1 {
		t.Errorf("sluice_gc_cpu_share = %v", v)
	}
	one("sluice_gc_cpu_seconds_total")
	one("sluice_go_cpu_seconds_total")
	if n := len(got["sluice_memory_budget_bytes"]); n != 5 {
		t.Errorf("sluice_memory_budget_bytes: %d parts, want 5", n)
	}
	var heap float64
	for _, m := range got["sluice_memory_go_bytes"] {
		if m.GetLabel()[0].GetValue() == "heap_objects" {
			heap = m.GetGauge().GetValue()
		}
	}
	if heap <= 0 {
		t.Errorf("sluice_memory_go_bytes{class=heap_objects} = %v", heap)
	}
	cache := map[string]float64{}
	for _, m := range got["sluice_pebble_cache_bytes"] {
		cache[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if cache["capacity"] != float64(p.PebbleCache) || cache["used"] != 42 {
		t.Errorf("sluice_pebble_cache_bytes = %v", cache)
	}
}

func TestCollectorWithoutLimit(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(nil, nil))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "sluice_memory_budget_bytes", "sluice_pebble_cache_bytes":
			t.Errorf("%s exported without a plan or cache", mf.GetName())
		case "sluice_memory_limit_bytes":
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("sluice_memory_limit_bytes = %v without a limit", v)
			}
		}
	}
}
