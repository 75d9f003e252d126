package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// BenchmarkEnrichHTTP runs the enrich step (generated orders -> enrich ->
// discarded output, one subtask) against a local service that answers
// after a fixed latency: the ideal rate is concurrency/latency records per
// second; %ideal says how much of the nominal latency is hidden, %slots
// how busy the call slots were given the latency the calls really had
// (see stream's BenchmarkAsyncMapHTTP). The service runs in the same
// process and shares the CPU.
//
//	go test -run '^$' -bench EnrichHTTP -benchtime 2s ./pipeline/
func BenchmarkEnrichHTTP(b *testing.B) {
	for _, c := range []struct {
		latency time.Duration
		conc    []int
	}{
		{time.Millisecond, []int{4, 16, 64}},
		{10 * time.Millisecond, []int{16, 64, 256}},
	} {
		for _, conc := range c.conc {
			b.Run(fmt.Sprintf("latency=%s/concurrency=%d", c.latency, conc), func(b *testing.B) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(c.latency) // the service's latency
					io.WriteString(w, `{"tier":"gold","score":0.5}`)
				}))
				defer srv.Close()
				spec := fmt.Sprintf(`
source:
  generate: {preset: orders, count: %d, start: 1767225600000}
steps:
  - enrich:
      http: {url: "%s/users/{user_id}", concurrency: %d}
      into: profile
  - set: {tier: profile.tier}
sink: {stdout: {}}
parallelism: 1
`, b.N, srv.URL, conc)
				s, err := Parse("bench.yaml", []byte(spec))
				if err != nil {
					b.Fatal(err)
				}
				p, err := Compile(s)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				j, err := p.Start(context.Background(), &Host{Stdout: io.Discard})
				if err != nil {
					b.Fatal(err)
				}
				if err := j.Wait(); err != nil {
					b.Fatal(err)
				}
				el := time.Since(start)
				rate := float64(b.N) / el.Seconds()
				b.ReportMetric(rate, "rec/s")
				b.ReportMetric(100*rate/(float64(conc)/c.latency.Seconds()), "%ideal")
				// %slots: calls/s × the mean call latency the step measured /
				// concurrency (Little's law), how busy the call slots were.
				if am := j.AsyncMetrics(); len(am) == 1 {
					for _, h := range j.job.Latency() {
						if h.Kind == stream.LatencyAsync && h.Count > 0 {
							mean := h.Sum.Seconds() / float64(h.Count)
							b.ReportMetric(1000*mean, "latency-ms")
							b.ReportMetric(100*float64(am[0].Calls)/el.Seconds()*mean/float64(conc), "%slots")
						}
					}
				}
			})
		}
	}
}
