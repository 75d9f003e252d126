package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// BenchmarkUpsert upserts rows of the 6-column revenue schema by a
// two-column key, 1000 rows per transaction, against the test server.
func BenchmarkUpsert(b *testing.B) {
	dsn := benchDSN(b)
	table, side := freshTableB(b, dsn)
	s, err := NewSink(Config{DSN: dsn, Table: table, Key: []string{"user", "window_start"}, CheckpointTable: side}, revenueSchema)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	rows := make([]row.Row, 1000)
	for i := range rows {
		rows[i] = revenueRow(fmt.Sprintf("u%d", i), int64(i%10), int64(i), float64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := w.Write(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkAppend appends rows of the 6-column revenue schema (no key:
// COPY), 1000 rows per transaction, against the test server.
func BenchmarkAppend(b *testing.B) {
	dsn := benchDSN(b)
	table, side := freshTableB(b, dsn)
	s, err := NewSink(Config{DSN: dsn, Table: table, CheckpointTable: side}, revenueSchema)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	rows := make([]row.Row, 1000)
	for i := range rows {
		rows[i] = revenueRow(fmt.Sprintf("u%d", i), int64(i%10), int64(i), float64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := w.Write(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}
