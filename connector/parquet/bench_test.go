package parquet

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// BenchmarkWrite writes rows of the 7-field test schema in Writes of 1024,
// one file per 1,000,000 rows (snappy).
func BenchmarkWrite(b *testing.B) {
	s, err := NewSink(Config{Path: b.TempDir()}, testSchema)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]row.Row, 1024)
	for i := range rows {
		rows[i] = testRow(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := w.Write(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}
