package observe

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

// benchObserver watches a log of 16 topics of 8 partitions and 4 jobs of
// 8 operators with parallelism 4: a large single-process deployment.
func benchObserver(b *testing.B) (*Observer, *clock) {
	l, err := logstore.Open(logstore.Options{Dir: b.TempDir(), RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	for i := range 16 {
		if err := l.CreateTopic(fmt.Sprintf("topic-%02d", i), logstore.TopicConfig{Partitions: 8}); err != nil {
			b.Fatal(err)
		}
	}
	clk := &clock{t: t0}
	o := New(Options{Log: l, Now: clk.Now})
	for j := range 4 {
		var ms []stream.SubtaskMetrics
		for op := range 8 {
			for sub := range 4 {
				ms = append(ms, sm(fmt.Sprintf("op-%d", op), sub, 4, fmt.Sprintf("op-%d", op), 100, 100, time.Second, 0, 0, t0.UnixMilli()))
			}
		}
		if _, err := o.Register(fmt.Sprintf("job-%d", j), newFakeJob(ms...)); err != nil {
			b.Fatal(err)
		}
	}
	return o, clk
}

// BenchmarkSample measures one sampling pass (done once a second).
func BenchmarkSample(b *testing.B) {
	o, clk := benchObserver(b)
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(time.Second)
		o.Sample()
	}
}

// BenchmarkCollect measures one Prometheus scrape of the observer's
// collector.
func BenchmarkCollect(b *testing.B) {
	o, clk := benchObserver(b)
	o.Sample()
	clk.Advance(time.Second)
	o.Sample()
	reg := prometheus.NewRegistry()
	reg.MustRegister(o.Collector())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
