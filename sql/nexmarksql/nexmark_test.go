package nexmarksql

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/nexmark/queries"
)

// testGenerator spreads events thinly over event time (500 events/s) so
// that a small run spans several windows, as the hand-written queries'
// tests do.
func testGenerator() nexmark.Config {
	cfg := nexmark.DefaultConfig()
	cfg.EventRate = 500
	return cfg
}

const testEvents = 12_000

// TestSQLMatchesHandWritten runs every Nexmark query that has a
// hand-written implementation from the reference's SQL text, at
// parallelism 1 and 2, and checks the result rows and checksum against
// the hand-written query's on the same events.
func TestSQLMatchesHandWritten(t *testing.T) {
	gen := testGenerator()
	for _, q := range queries.Queries() {
		if q == "q12" { // processing time: TestQ12 compares totals
			continue
		}
		t.Run(q, func(t *testing.T) {
			want, err := queries.Run(context.Background(), queries.RunConfig{Query: q, Events: testEvents, Generator: &gen, Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want.Results == 0 {
				t.Fatalf("the hand-written %s gives no rows: the test configuration is too small", q)
			}
			for _, p := range []int{1, 2} {
				got, err := Run(context.Background(), Config{Query: q, Events: testEvents, Generator: &gen, Parallelism: p})
				if err != nil {
					t.Fatalf("parallelism %d: %v", p, err)
				}
				if got.Results != want.Results || got.Checksum != want.Checksum {
					t.Fatalf("parallelism %d: SQL gives %d rows, checksum %s; hand-written: %d rows, checksum %s", p, got.Results, got.Checksum, want.Results, want.Checksum)
				}
			}
			t.Logf("%d rows, checksum %s", want.Results, want.Checksum)
		})
	}
}
