package pipeline

import (
	"testing"
	"time"
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
