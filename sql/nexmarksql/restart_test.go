package nexmarksql

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/nexmark/queries"
	"github.com/sluicehq/sluice/stream"
)

// TestSQLOnGeneratedFile runs the queries on a JSON file written as
// `sluice nexmark generate` writes it, through the 'filesystem'
// connector, and compares with the hand-written queries on the same
// file.
func TestSQLOnGeneratedFile(t *testing.T) {
	gen := testGenerator()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := nexmark.GenerateJSON(context.Background(), f, gen, testEvents); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries.Queries() {
		if q == "q12" {
			continue
		}
		t.Run(q, func(t *testing.T) {
			want, err := queries.Run(context.Background(), queries.RunConfig{Query: q, SourceFile: path, Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []int{1, 2} {
				got, err := Run(context.Background(), Config{Query: q, SourceFile: path, Parallelism: p})
				if err != nil {
					t.Fatalf("parallelism %d: %v", p, err)
				}
				if got.Results != want.Results || got.Checksum != want.Checksum {
					t.Fatalf("parallelism %d: SQL gives %d rows, checksum %s; hand-written: %d rows, checksum %s", p, got.Results, got.Checksum, want.Results, want.Checksum)
				}
			}
		})
	}
}

// TestSQLAcrossRestart runs every query with exactly-once checkpoints
// and a failure injected after the first checkpoint completed (or after
// a few rows, when none completed yet): the job restarts from that
// checkpoint (state restored, sources rewound, the sink's uncommitted
// rows discarded) and the result equals the hand-written query's.
func TestSQLAcrossRestart(t *testing.T) {
	gen := testGenerator()
	for _, q := range queries.Queries() {
		if q == "q12" {
			continue
		}
		t.Run(q, func(t *testing.T) {
			want, err := queries.Run(context.Background(), queries.RunConfig{Query: q, Events: testEvents, Generator: &gen, Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			var failed atomic.Bool
			cfg := Config{Query: q, Events: testEvents, Generator: &gen, Parallelism: 2,
				CheckpointInterval: 5 * time.Millisecond, CheckpointDir: t.TempDir(),
				StreamOptions:       []stream.Option{stream.WithBatchSize(64)},
				Settings:            map[string]string{"restart-strategy.fixed-delay.delay": "1 ms"},
				failAfterCheckpoint: &failed}
			got, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !failed.Load() {
				t.Fatalf("no failure was injected: the query wrote no rows")
			}
			if got.Results != want.Results || got.Checksum != want.Checksum {
				t.Fatalf("across a restart: %d rows, checksum %s; hand-written: %d rows, checksum %s", got.Results, got.Checksum, want.Results, want.Checksum)
			}
		})
	}
}

// TestQ12 checks the processing-time query by what does not depend on
// timing: the bid counts of all windows add up to the number of bids.
func TestQ12(t *testing.T) {
	gen := testGenerator()
	var total atomic.Int64
	cfg := Config{Query: "q12", Events: testEvents, Generator: &gen, Parallelism: 2, countColumn: "bid_count", count: &total}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var bids int64
	for _, e := range generate(t, gen, testEvents) {
		if e.Type == nexmark.EventBid {
			bids++
		}
	}
	if total.Load() != bids {
		t.Fatalf("q12 counts %d bids in its windows; the events hold %d", total.Load(), bids)
	}
}
