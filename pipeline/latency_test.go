package pipeline

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

func TestLatencySection(t *testing.T) {
	s, err := Parse("x.yaml", []byte("source: {generate: {}}\nsink: {stdout: {}}\nlatency: {buffer_timeout: 2ms, markers: 1s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Latency == nil || s.Latency.BufferTimeout == nil || *s.Latency.BufferTimeout != 2*time.Millisecond || s.Latency.Markers != time.Second {
		t.Fatalf("latency section parsed as %+v", s.Latency)
	}
	s, err = Parse("x.yaml", []byte("source: {generate: {}}\nsink: {stdout: {}}\nlatency: {markers: 1s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Latency.BufferTimeout != nil {
		t.Fatalf("buffer_timeout absent but parsed as %v", *s.Latency.BufferTimeout)
	}
	s, err = Parse("x.yaml", []byte("source: {generate: {}}\nsink: {stdout: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Latency != nil {
		t.Fatalf("no latency section but parsed as %+v", s.Latency)
	}
}

// TestLatencySectionApplied checks that the section reaches the job: its
// buffer timeout, and latency markers recorded at its operators.
func TestLatencySectionApplied(t *testing.T) {
	for _, tc := range []struct {
		section string
		want    time.Duration
	}{
		{"latency: {buffer_timeout: 0s, markers: 1us}\n", 0},
		{"latency: {buffer_timeout: 7ms, markers: 1us}\n", 7 * time.Millisecond},
		{"latency: {markers: 1us}\n", stream.DefaultBufferTimeout},
	} {
		s, err := Parse("x.yaml", []byte("source: {generate: {count: 100}}\nsink: {stdout: {}}\nparallelism: 1\n"+tc.section))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		j, err := p.Start(context.Background(), &Host{Stdout: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := j.BufferTimeout(); got != tc.want {
			t.Errorf("%q: buffer timeout %v, want %v", tc.section, got, tc.want)
		}
		var markers uint64
		for _, h := range j.Latency() {
			if h.Kind == "marker" {
				markers += h.Count
			}
		}
		if markers == 0 {
			t.Errorf("%q: no operator recorded a latency marker", tc.section)
		}
	}
}

func TestLatencySectionErrors(t *testing.T) {
	for _, tc := range []struct{ section, want string }{
		{"latency: {buffer_timeout: -1ms}", "x.yaml:3:"},
		{"latency: {buffer_timeout: soon}", "buffer_timeout"},
		{"latency: {markers: -1s}", "markers"},
		{"latency: {buffer_timout: 1ms}", "buffer_timout"},
		{"latency: 1ms", "latency"},
	} {
		_, err := Parse("x.yaml", []byte("source: {generate: {}}\nsink: {stdout: {}}\n"+tc.section+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.section, err, tc.want)
		}
	}
}
