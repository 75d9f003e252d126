package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// readParts returns the lines of the committed part files in dir. With
// strict it fails on any staged file left (hidden, never visible): a
// bounded run commits everything; a stopped one may leave staged parts
// for the next run's recovery to abort.
func readParts(t *testing.T, dir string, strict ...bool) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			if len(strict) == 0 || strict[0] {
				t.Fatalf("staged file left behind: %s", e.Name())
			}
			continue
		}
		f, _ := os.Open(filepath.Join(dir, e.Name()))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	sort.Strings(lines)
	return lines
}

// TestExactlyOnceFileSink runs a windowed pipeline with checkpoints and
// exactly-once delivery into the file sink (two-phase: parts appear when
// their checkpoint completes): the output equals the oracle's (a run
// without checkpoints), and running the pipeline again with the same
// checkpoint directory restores the final checkpoint and writes nothing
// twice.
func TestExactlyOnceFileSink(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, `{"ts":%d,"user":"u%d","amount":%d}`+"\n", 1_000_000+i*37, i%11, i%5)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := func(out, extra string) string {
		return fmt.Sprintf(`
source:
  file: {path: %s/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - window:
      key: [user]
      tumbling: 10s
      aggregate: {n: count(), total: sum(amount)}
sink:
  file: {path: %s/%s}
parallelism: 2
%s`, dir, dir, out, extra)
	}
	run := func(src string) stream.CheckpointStats {
		t.Helper()
		s, err := Parse("eo.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		// Small batches so that checkpoints fall in the middle of the input.
		j, err := p.Start(context.Background(), &Host{DataDir: dir}, WithStreamOptions(stream.WithBatchSize(16)))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		return j.CheckpointStats()
	}
	run(spec("oracle", ""))
	want := readParts(t, filepath.Join(dir, "oracle"))
	eo := spec("eo", "delivery: exactly_once\ncheckpoint: {interval: 1ms, dir: "+dir+"/chk}\n")
	st := run(eo)
	// How many checkpoints completed during the run depends on timing; the
	// output must not.
	t.Logf("checkpoints: %+v", st)
	got := readParts(t, filepath.Join(dir, "eo"))
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("exactly-once output (%d lines) differs from the oracle (%d lines)", len(got), len(want))
	}
	run(eo)
	if again := readParts(t, filepath.Join(dir, "eo")); len(again) != len(got) {
		t.Fatalf("second run from the final checkpoint wrote %d more lines", len(again)-len(got))
	}
}

// TestSavepointResume stops an unbounded pipeline with a savepoint twice
// and resumes it from there: the committed output of the three runs has
// every generated record exactly once, with no gap in any split.
func TestSavepointResume(t *testing.T) {
	dir := t.TempDir()
	src := fmt.Sprintf(`
source:
  generate: {preset: sequence, splits: 2, start: 0}
  event_time: {field: ts}
steps:
  - filter: seq >= 0
sink:
  file: {path: %s/out}
delivery: exactly_once
checkpoint: {interval: 2ms, dir: %s/chk}
`, dir, dir)
	s, err := Parse("sp.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		// A generous checkpoint timeout: the default (a few intervals of
		// 2ms) makes the savepoint fail on a loaded machine.
		j, err := p.Start(context.Background(), &Host{DataDir: dir}, WithStreamOptions(stream.WithBatchSize(64), stream.WithCheckpointTimeout(30*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for j.CheckpointStats().Completed < 2 {
			if time.Now().After(deadline) {
				t.Fatal("no checkpoint completed within 30s")
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
		if _, err := j.StopWithSavepoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	var maxSeq [2]int64
	maxSeq[0], maxSeq[1] = -1, -1
	for _, line := range readParts(t, filepath.Join(dir, "out"), false) {
		var seq int64
		if _, err := fmt.Sscanf(line[strings.Index(line, `"seq":`)+6:], "%d", &seq); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if seen[seq] {
			t.Fatalf("record %d written twice", seq)
		}
		seen[seq] = true
		maxSeq[seq%2] = max(maxSeq[seq%2], seq)
	}
	for sp, m := range maxSeq {
		if m < 0 {
			t.Fatalf("split %d wrote nothing", sp)
		}
		for q := int64(sp); q <= m; q += 2 {
			if !seen[q] {
				t.Fatalf("split %d: record %d missing (max %d)", sp, q, m)
			}
		}
	}
	t.Logf("%d records committed over two runs", len(seen))
}
