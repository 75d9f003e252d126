package nexmark

import (
	"context"
	"io"
	"testing"
)

// BenchmarkGenerate measures event generation alone (the default mix: 2%
// people, 6% auctions, 92% bids) and reports events/s and allocs/event.
func BenchmarkGenerate(b *testing.B) {
	g, err := NewGenerator(DefaultConfig(), 0, 1<<62)
	if err != nil {
		b.Fatal(err)
	}
	var e Event
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Next(&e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkGenerateJSON measures generation plus JSON encoding, what
// `sluice nexmark generate` does.
func BenchmarkGenerateJSON(b *testing.B) {
	b.ReportAllocs()
	if err := GenerateJSON(context.Background(), io.Discard, DefaultConfig(), int64(b.N)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendJSON measures the encoder on a fixed mix of events.
func BenchmarkAppendJSON(b *testing.B) {
	events := sampleEvents(b, 1000)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = AppendJSON(buf[:0], &events[i%len(events)])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecode measures the line decoder on generated lines.
func BenchmarkDecode(b *testing.B) {
	events := sampleEvents(b, 1000)
	lines := make([][]byte, len(events))
	for i := range events {
		lines[i] = AppendJSON(nil, &events[i])
	}
	p := parser{arena: &stringArena{}}
	var e Event
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.data, p.pos = lines[i%len(lines)], 0
		if err := p.event(&e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func sampleEvents(b *testing.B, n int) []Event {
	g, err := NewGenerator(DefaultConfig(), 0, int64(n))
	if err != nil {
		b.Fatal(err)
	}
	events := make([]Event, n)
	for i := range events {
		g.Next(&events[i])
	}
	return events
}
