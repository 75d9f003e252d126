package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/logsrc"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

// committedLog reads topic of l read_committed from the earliest offset to
// its current end.
func committedLog(t *testing.T, l *logstore.Log, topic string) []connector.Message {
	t.Helper()
	src, err := logsrc.NewSource(l, logsrc.SourceConfig{Topic: topic, Start: logsrc.StartEarliest, Bounded: true, Isolation: logsrc.ReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(1))
	c := stream.Collect(stream.FromSource(env, "read", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.Values()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExactlyOnceLogSinkFromSavepoint runs an unbounded generator into a
// `log:` sink under exactly_once, stops it with a savepoint, and runs it
// again restoring that savepoint explicitly (RestoreFrom, what `sluice run
// --from-checkpoint` does) with a spec whose own checkpoint directory is
// empty. Read read_committed, the topic holds every sequence number of
// each split from 0 up to its last exactly once: the second run resumed
// where the savepoint was, and the transactions of the first run that the
// savepoint did not cover were aborted.
func TestExactlyOnceLogSinkFromSavepoint(t *testing.T) {
	dir := t.TempDir()
	l, err := logstore.Open(logstore.Options{Dir: filepath.Join(dir, "log"), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var logs syncBuf
	host := &Host{DataDir: dir, Log: l, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	spec := func(chk string) *Plan {
		src := fmt.Sprintf(`
name: log-eo
source:
  generate: {preset: sequence, splits: 2, start: 0}
  event_time: {field: ts}
steps:
  - filter: seq >= 0
sink:
  log: {topic: out, partitions: 3, key: seq}
delivery: exactly_once
checkpoint: {interval: 2ms, dir: %s}
`, filepath.Join(dir, chk))
		s, err := Parse("log-eo.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var savepoint string
	for run, chk := range []string{"chk-a", "chk-b"} {
		opts := []StartOption{WithStreamOptions(stream.WithBatchSize(64), stream.WithCheckpointTimeout(30*time.Second))}
		if run == 1 {
			opts = append(opts, RestoreFrom(savepoint))
		}
		j, err := spec(chk).Start(context.Background(), host, opts...)
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
		if savepoint, err = j.StopWithSavepoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), "at-least-once under exactly_once") {
		t.Fatalf("the log sink was reported at-least-once: %s", logs.String())
	}
	seen := map[int64]bool{}
	where := map[int64]string{}
	maxSeq := [2]int64{-1, -1}
	for _, m := range committedLog(t, l, "out") {
		v := string(m.Value)
		var seq int64
		if _, err := fmt.Sscanf(v[strings.Index(v, `"seq":`)+6:], "%d", &seq); err != nil {
			t.Fatalf("record %q: %v", v, err)
		}
		if seen[seq] {
			t.Fatalf("record %d committed twice: %s and %s@%d; savepoint %s", seq, where[seq], m.Origin, m.Offset, savepoint)
		}
		seen[seq] = true
		where[seq] = fmt.Sprintf("%s@%d", m.Origin, m.Offset)
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

// TestExactlyOnceLogSinkBounded: a bounded pipeline into a `log:` sink
// under exactly_once commits everything through its final checkpoint, and
// leaves no transaction open; running it again with the same checkpoint
// directory writes nothing twice.
func TestExactlyOnceLogSinkBounded(t *testing.T) {
	dir := t.TempDir()
	l, err := logstore.Open(logstore.Options{Dir: filepath.Join(dir, "log"), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	src := fmt.Sprintf(`
name: log-bounded
source:
  generate: {preset: sequence, splits: 2, count: 3000}
steps:
  - filter: seq >= 0
sink:
  log: {topic: out, partitions: 2}
parallelism: 2
delivery: exactly_once
checkpoint: {interval: 2ms, dir: %s}
`, filepath.Join(dir, "chk"))
	s, err := Parse("log-bounded.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Run(context.Background(), p, &Host{DataDir: dir, Log: l, Logger: slog.New(slog.DiscardHandler)}, WithStreamOptions(stream.WithBatchSize(64))); err != nil {
			t.Fatal(err)
		}
		got := committedLog(t, l, "out")
		seen := map[string]bool{}
		for _, m := range got {
			if seen[string(m.Value)] {
				t.Fatalf("record %s committed twice", m.Value)
			}
			seen[string(m.Value)] = true
		}
		if len(seen) != 3000 {
			t.Fatalf("%d records committed, want 3000", len(seen))
		}
		tp, err := l.Topic("out")
		if err != nil {
			t.Fatal(err)
		}
		for i := range tp.NumPartitions() {
			pp, _ := tp.Partition(i)
			if _, hw, lso := pp.Offsets(); lso != hw {
				t.Fatalf("partition %d: last stable %d below high watermark %d", i, lso, hw)
			}
		}
	}
}
