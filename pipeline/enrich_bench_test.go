package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkEnrichHTTP runs the enrich step (generated orders -> enrich ->
// discarded output, one subtask) against a local service that answers
// after a fixed latency: the ideal rate is concurrency/latency records per
// second; %ideal says how much of the latency is hidden. The service runs
// in the same process and shares the CPU.
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
				rate := float64(b.N) / time.Since(start).Seconds()
				b.ReportMetric(rate, "rec/s")
				b.ReportMetric(100*rate/(float64(conc)/c.latency.Seconds()), "%ideal")
			})
		}
	}
}
