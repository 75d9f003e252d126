package pipeline

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// TestHTTPIngestShedMetrics: records an HTTP source sheds (reject over the
// rate limit) are counted in the job's Prometheus metrics.
func TestHTTPIngestShedMetrics(t *testing.T) {
	spec, err := Parse("m.yaml", []byte(`
name: m
source:
  http: {addr: "127.0.0.1:0", rate: 0.0001, burst: 2, shedding: reject}
sink: {stdout: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var src *nethttp.Source
	host := &Host{Stdout: io.Discard, OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
	j, err := p.Start(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Listen(); err != nil {
		t.Fatal(err)
	}
	post := func(body string) int {
		resp, err := http.Post("http://"+src.Addr()+"/ingest", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("{\"a\":1}\n{\"a\":2}\n"); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	if code := post("{\"a\":3}\n{\"a\":4}\n"); code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d", code)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(j.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "sluice_pipeline_http_ingest_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					key += "/" + l.GetValue()
				}
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"sluice_pipeline_http_ingest_records_total/received":        4,
		"sluice_pipeline_http_ingest_records_total/accepted":        2,
		"sluice_pipeline_http_ingest_records_total/shed_rate_limit": 2,
		"sluice_pipeline_http_ingest_requests_total/rejected":       1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	src.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
}
