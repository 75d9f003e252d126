package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// TestRestoreMatchesUninterrupted: a pipeline with keyed steps stopped
// with a savepoint in the middle of its input and resumed from it writes
// exactly what the same pipeline writes in one run (the oracle): the
// restored source positions and keyed state (dedup keys, session
// accumulators, join buffers, their timers) lose and repeat nothing.
func TestRestoreMatchesUninterrupted(t *testing.T) {
	for _, st := range stateBackends {
		t.Run(st.name+"/session", func(t *testing.T) { testRestoreMatchesUninterrupted(t, restoreSessionSteps, st.spec) })
		t.Run(st.name+"/join", func(t *testing.T) { testRestoreMatchesUninterrupted(t, restoreJoinSteps, st.spec) })
	}
}

// The steps of the restore tests, after a source of clicks. Their
// results do not depend on the order in which a join's pairs arrive
// (float sums, last() of equal times would).
const (
	restoreSessionSteps = `
  - set: {d: 'duration_ms % 3 == 0 ? duration_ms / 2 : duration_ms'}
  - dedup: {key: [user, page], within: 3s}
  - window:
      key: [user]
      session: {gap: 5s}
      aggregate:
        n: count()
        pages: count_distinct(page)
        first_page: first(page)
        last_action: last(action)
        total: sum(d)
        mean: avg(duration_ms)
        hi: max(d)
        lo: min(page)
`
	restoreJoinSteps = `
  - join:
      input:
        generate: {preset: orders, count: 3000, rate: 1000, splits: 1, start: 50, interval: 100ms, seed: 3, users: 30}
        event_time: {field: ts}
      key: [user]
      input_key: [user_id]
      within: 2s
      fields: [order_id, price, qty]
      prefix: o_
  - window:
      key: [page]
      tumbling: 10s
      aggregate: {n: count(), orders: count_distinct(o_order_id), qty: sum(o_qty), cents: 'sum(int(o_price * 100 + 0.5))', top: max(o_order_id)}
`
)

func testRestoreMatchesUninterrupted(t *testing.T, steps, state string) {
	dir := t.TempDir()
	spec := func(out, extra string) string {
		return strings.ReplaceAll(`
source:
  generate: {preset: clickstream, count: 3000, rate: 1000, splits: 1, start: 0, interval: 100ms, seed: 7, users: 30, active_period: 20s}
  event_time: {field: ts}
steps:`+steps+`
sink:
  file: {path: $DIR/`+out+`}
parallelism: 2
`+extra+state, "$DIR", dir)
	}
	run := func(src string, stop bool) {
		t.Helper()
		s, err := Parse("restore.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		j, err := p.Start(context.Background(), &Host{DataDir: dir},
			WithStreamOptions(stream.WithBatchSize(16), stream.WithCheckpointTimeout(30*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		if stop {
			// The sources take 3 s at their rate; two checkpoints of
			// 20 ms complete long before that.
			deadline := time.Now().Add(30 * time.Second)
			for j.CheckpointStats().Completed < 2 {
				if time.Now().After(deadline) {
					t.Fatal("no checkpoint completed within 30s")
				}
				time.Sleep(time.Millisecond) // polling a condition, with a deadline
			}
			select {
			case <-j.Done():
				t.Fatal("the run ended before the savepoint: nothing was restored")
			default:
			}
			if _, err := j.StopWithSavepoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	run(spec("oracle", ""), false)
	want := readParts(t, filepath.Join(dir, "oracle"))
	eo := spec("eo", "checkpoint: {interval: 20ms, dir: $DIR/chk}\n")
	run(eo, true)
	first := len(readParts(t, filepath.Join(dir, "eo"), false))
	run(eo, false)
	got := readParts(t, filepath.Join(dir, "eo"))
	t.Logf("%d lines, %d of them before the savepoint", len(want), first)
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("restored output (%d lines) differs from the uninterrupted run's (%d lines):\n%s", len(got), len(want), diffLines(got, want))
	}
}
