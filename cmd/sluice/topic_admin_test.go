package main

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
)

// The topic admin commands (create with configs, alter, add-partitions,
// delete-records, describe) on both backends: a data directory and a
// Kafka-protocol server.

type cliBackend struct {
	name  string
	env   map[string]string
	local bool
}

func cliBackends(t *testing.T) []cliBackend {
	srv := kafkatest.Start(t, kafkatest.Options{})
	return []cliBackend{
		{name: "local", env: map[string]string{"SLUICE_DATA_DIR": t.TempDir()}, local: true},
		{name: "remote", env: map[string]string{"SLUICE_BROKER": srv.Addr}},
	}
}

func (b cliBackend) mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, b.env, stdin, args...)
	if code != 0 {
		t.Fatalf("%v: status %d, stderr %s", args, code, errs)
	}
	return out
}

func (b cliBackend) fail(t *testing.T, wantCode int, wantErr string, args ...string) {
	t.Helper()
	code, _, errs := runCLI(t, b.env, "", args...)
	// Case and underscores aside: the servers' codes (OFFSET_OUT_OF_RANGE)
	// and the log's errors (offset out of range) say the same.
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", " ") }
	if code != wantCode || !strings.Contains(norm(errs), norm(wantErr)) {
		t.Fatalf("%v: status %d (want %d), stderr %q (want it to mention %q)", args, code, wantCode, errs, wantErr)
	}
}

func TestTopicCreateWithConfigsAndAlter(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.mustRun(t, "", "topic", "create", "kv", "--cleanup-policy", "compact", "--config", "segment.bytes=2048", "--config", "delete.retention.ms=1000")
			out := b.mustRun(t, "", "topic", "describe", "kv")
			for _, want := range []string{"cleanup.policy: compact", "  cleanup.policy=compact", "  segment.bytes=2048", "  delete.retention.ms=1000"} {
				if !strings.Contains(out, want) {
					t.Fatalf("describe lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "retention.ms=") && !strings.Contains(out, "delete.retention.ms=") {
				t.Fatalf("describe lists a default config:\n%s", out)
			}
			// A compacted topic refuses keyless records, keeps keyed ones.
			if code, _, errs := runCLI(t, b.env, "no key\n", "produce", "kv"); code != 1 || !strings.Contains(strings.ToLower(errs), "record") {
				t.Fatalf("keyless produce to a compacted topic: status %d, %s", code, errs)
			}
			b.mustRun(t, `{"k":"a"}`+"\n", "produce", "kv", "--key-field", "k")

			b.mustRun(t, "", "topic", "alter", "kv", "--config", "cleanup.policy=delete", "--config", "retention.ms=60000", "--delete-config", "segment.bytes")
			out = b.mustRun(t, "", "topic", "describe", "kv")
			if !strings.Contains(out, "cleanup.policy: delete") || !strings.Contains(out, "  retention.ms=60000") || strings.Contains(out, "segment.bytes=") {
				t.Fatalf("describe after alter:\n%s", out)
			}
			b.mustRun(t, "no key\n", "produce", "kv") // delete policy: keyless is fine now

			badStatus := 1 // the server refuses it
			if b.local {
				badStatus = 2 // the CLI checks it against the log's config table
			}
			b.fail(t, badStatus, "segment.bytes", "topic", "alter", "kv", "--config", "segment.bytes=12")
			b.fail(t, badStatus, "cleanup.policy", "topic", "alter", "kv", "--config", "cleanup.policy=shred")
			b.fail(t, badStatus, "no.such", "topic", "alter", "kv", "--config", "no.such=1")
			b.fail(t, 2, "nothing to change", "topic", "alter", "kv")
			b.fail(t, 2, "KEY=VALUE", "topic", "alter", "kv", "--config", "retention.ms")
			b.fail(t, 2, "both set and deleted", "topic", "alter", "kv", "--config", "retention.ms=1", "--delete-config", "retention.ms")
			b.fail(t, 1, "nope", "topic", "alter", "nope", "--config", "retention.ms=1")
			b.fail(t, 2, "--cleanup-policy", "topic", "create", "x", "--cleanup-policy", "shred")
			b.fail(t, 2, "once", "topic", "create", "x", "--cleanup-policy", "compact", "--config", "cleanup.policy=delete")
			b.fail(t, badStatus, "segment.bytes", "topic", "create", "x", "--config", "segment.bytes=huge")
			out = b.mustRun(t, "", "topic", "describe", "kv")
			if !strings.Contains(out, "cleanup.policy: delete") || !strings.Contains(out, "retention.ms=60000") {
				t.Fatalf("a refused alter changed the topic:\n%s", out)
			}
		})
	}
}

func TestTopicAddPartitions(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.mustRun(t, "", "topic", "create", "grow", "--partitions", "2")
			out := b.mustRun(t, "", "topic", "add-partitions", "grow", "--partitions", "4")
			if !strings.Contains(out, "now has 4 partitions") {
				t.Fatalf("add-partitions: %s", out)
			}
			if out := b.mustRun(t, "", "topic", "describe", "grow"); !strings.Contains(out, "partitions: 4") {
				t.Fatalf("describe after add-partitions:\n%s", out)
			}
			b.mustRun(t, "x\n", "produce", "grow", "--partition", "3")
			if out := b.mustRun(t, "", "consume", "grow", "-e"); out != "x\n" {
				t.Fatalf("consume of the new partition: %q", out)
			}
			b.fail(t, 1, "4 partitions", "topic", "add-partitions", "grow", "--partitions", "3")
			b.fail(t, 1, "4 partitions", "topic", "add-partitions", "grow", "--partitions", "4")
			b.fail(t, 2, "--partitions", "topic", "add-partitions", "grow")
			b.fail(t, 1, "nope", "topic", "add-partitions", "nope", "--partitions", "3")
		})
	}
}

func TestTopicDeleteRecords(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.mustRun(t, "", "topic", "create", "trim", "--partitions", "2")
			var in strings.Builder
			for i := range 10 {
				fmt.Fprintf(&in, "r%d\n", i)
			}
			b.mustRun(t, in.String(), "produce", "trim", "--partition", "1")
			out := b.mustRun(t, "", "topic", "delete-records", "trim", "--partition", "1", "--before", "4")
			if !strings.Contains(out, "partition 1 of trim now starts at offset 4") {
				t.Fatalf("delete-records: %s", out)
			}
			if out := b.mustRun(t, "", "consume", "trim", "-e"); out != "r4\nr5\nr6\nr7\nr8\nr9\n" {
				t.Fatalf("consume after delete-records: %q", out)
			}
			if b.local {
				b.fail(t, 1, "out of range", "consume", "trim", "--from", "2", "-e")
			}
			b.fail(t, 1, "offset out of range", "topic", "delete-records", "trim", "--partition", "1", "--before", "11")
			b.fail(t, 2, "--before", "topic", "delete-records", "trim", "--partition", "1")
			b.fail(t, 2, "--partition", "topic", "delete-records", "trim", "--before", "3")
			b.fail(t, 1, "partition", "topic", "delete-records", "trim", "--partition", "7", "--before", "1")
			out = b.mustRun(t, "", "topic", "delete-records", "trim", "--partition", "1", "--before", "-1")
			if !strings.Contains(out, "now starts at offset 10") {
				t.Fatalf("delete-records --before -1: %s", out)
			}
			if out := b.mustRun(t, "", "topic", "describe", "trim"); !strings.Contains(out, "1          10        10") {
				t.Fatalf("describe after delete-records:\n%s", out)
			}
		})
	}
}

// TestTopicDescribeCompactionProgress: for a compacted topic in a data
// directory, describe shows each partition's first dirty offset (durable,
// from the cleaner's checkpoint).
func TestTopicDescribeCompactionProgress(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	b := cliBackend{env: env, local: true}
	b.mustRun(t, "", "topic", "create", "kv", "--cleanup-policy", "compact", "--partitions", "2")
	b.mustRun(t, "", "topic", "create", "plain")
	var in strings.Builder
	for i := range 50 {
		fmt.Fprintf(&in, "{\"k\":\"k%d\",\"i\":%d}\n", i%5, i)
	}
	b.mustRun(t, in.String(), "produce", "kv", "--key-field", "k", "--partition", "0")
	out := b.mustRun(t, "", "topic", "describe", "kv")
	if !strings.Contains(out, "FIRST-DIRTY") || !strings.Contains(out, "never") {
		t.Fatalf("describe of a compacted topic lacks the cleaner's columns:\n%s", out)
	}
	if out := b.mustRun(t, "", "topic", "describe", "plain"); strings.Contains(out, "FIRST-DIRTY") {
		t.Fatalf("describe of a delete topic shows cleaner columns:\n%s", out)
	}

	// Clean partition 0 in-process, then describe again.
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), Cleaner: logstore.CleanerOptions{Interval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(30 * 24 * time.Hour)
	if err := l.EnforceRetention(now); err != nil {
		t.Fatal(err)
	}
	tp, err := l.Topic("kv")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Compact(now, true); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out = b.mustRun(t, "", "topic", "describe", "kv")
	lines := strings.Split(out, "\n")
	var row0 string
	for i, l := range lines {
		if strings.HasPrefix(l, "PARTITION") && i+1 < len(lines) {
			row0 = strings.Join(strings.Fields(lines[i+1]), " ")
		}
	}
	// partition 0: earliest 0, latest 50, first dirty 50.
	if !strings.HasPrefix(row0, "0 0 50 50 ") || !strings.Contains(row0, " 50 ") {
		t.Fatalf("partition 0 row %q after a pass:\n%s", row0, out)
	}
	if !strings.Contains(out, "cleanup.policy: compact") {
		t.Fatalf("describe:\n%s", out)
	}
	got := b.mustRun(t, "", "consume", "kv", "-e")
	if n := strings.Count(got, "\n"); n != 5 {
		t.Fatalf("consume after compaction printed %d records, want the 5 latest:\n%s", n, got)
	}
}

// TestInternalTopicsCannotBeAlteredLocally: the server configures its own
// topics.
func TestInternalTopicsCannotBeAlteredLocally(t *testing.T) {
	b := cliBackend{env: map[string]string{"SLUICE_DATA_DIR": t.TempDir()}, local: true}
	b.mustRun(t, "", "topic", "create", "t") // opens the log, which creates the internal topics
	b.fail(t, 1, "internal", "topic", "alter", "__consumer_offsets", "--config", "retention.ms=1")
	b.fail(t, 1, "internal", "topic", "add-partitions", "__consumer_offsets", "--partitions", "100")
	b.fail(t, 1, "internal", "topic", "delete-records", "__consumer_offsets", "--partition", "0", "--before", "-1")
}

// TestTopicDeleteDropsGroupOffsets: on both backends, `topic delete`
// deletes the groups' committed offsets of the topic, so a group consuming
// the topic created again under the same name starts at its beginning
// instead of resuming at the old topic's offset (and skipping records).
func TestTopicDeleteDropsGroupOffsets(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.mustRun(t, "", "topic", "create", "again", "--partitions", "1")
			b.mustRun(t, "a\nb\n", "produce", "again")
			if out := b.mustRun(t, "", "consume", "again", "-e", "--group", "g"); out != "a\nb\n" {
				t.Fatalf("first consume: %q", out)
			}
			b.mustRun(t, "", "topic", "delete", "again")
			b.mustRun(t, "", "topic", "create", "again", "--partitions", "1")
			b.mustRun(t, "c\nd\ne\n", "produce", "again")
			if out := b.mustRun(t, "", "consume", "again", "-e", "--group", "g"); out != "c\nd\ne\n" {
				t.Fatalf("consume of the topic created again: %q (the group resumed at the deleted topic's offset)", out)
			}
		})
	}
}
