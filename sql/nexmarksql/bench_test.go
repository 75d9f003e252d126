package nexmarksql

import (
	"context"
	"os"
	"testing"

	"github.com/sluicehq/sluice/nexmark/queries"
)

// BenchmarkSQL runs a Nexmark query from SQL and, for comparison, the
// hand-written query on the same events (NEXMARK_QUERY selects the query,
// default q0; one op = 200,000 events at parallelism 1).
//
//	NEXMARK_QUERY=q5 go test -run '^$' -bench . ./sql/nexmarksql/
func BenchmarkSQL(b *testing.B) {
	q := os.Getenv("NEXMARK_QUERY")
	if q == "" {
		q = "q0"
	}
	const events = 200_000
	b.Run("sql", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Run(context.Background(), Config{Query: q, Events: events, Parallelism: 1}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("hand-written", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := queries.Run(context.Background(), queries.RunConfig{Query: q, Events: events, Parallelism: 1}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
