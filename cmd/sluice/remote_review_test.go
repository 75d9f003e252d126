package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRemoteConsumeExitAtEndAfterTransaction: a partition that ends with a
// transaction's commit marker (a control batch the client never returns as a
// record) must still count as "end reached" for -e.
func TestRemoteConsumeExitAtEndAfterTransaction(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := map[string]string{"SLUICE_BROKER": srv.Addr}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "tx", "--partitions", "1"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	cl := srv.Client(t, kgo.TransactionalID("review-tx"), kgo.DefaultProduceTopic("tx"))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var code int
	var out, errs string
	go func() {
		defer close(done)
		code, out, errs = runCLI(t, env, "", "consume", "tx", "-e")
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("consume -e did not exit at the end of a partition ending with a commit marker")
	}
	if code != 0 || out != "a\nb\n" {
		t.Fatalf("consume -e: status %d, out %q, stderr %s", code, out, errs)
	}
}

// TestRemoteConsumeUnknownTopic: consuming a topic the server does not have is
// an error (status 1), as with --data-dir, not a silent empty success.
func TestRemoteConsumeUnknownTopic(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{})
	env := map[string]string{"SLUICE_BROKER": srv.Addr}
	code, _, errs := runCLI(t, env, "", "consume", "nope", "-e")
	if code != 1 || !strings.Contains(errs, "nope") {
		t.Fatalf("consume of an unknown topic: status %d, stderr %q", code, errs)
	}
}

// TestInternalTopicsCannotBeCreatedOrDeletedLocally: deleting
// __consumer_offsets (or the producer-id and transaction-state topics) on a
// data directory would silently lose every group's committed offsets (or let
// producer ids be handed out twice); creating one by hand would give it a
// user's retention. Both are refused.
func TestInternalTopicsCannotBeCreatedOrDeletedLocally(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	for _, name := range []string{"__consumer_offsets", "__producer_ids", "__transaction_state"} {
		if code, _, errs := runCLI(t, env, "", "topic", "create", name, "--partitions", "1", "--retention", "1s"); code != 1 || !strings.Contains(errs, "internal") {
			t.Fatalf("create %s: status %d, stderr %q", name, code, errs)
		}
	}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t", "--partitions", "1"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, env, "a\nb\n", "produce", "t"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "-n", "1", "--group", "g"); code != 0 || out != "a\n" {
		t.Fatalf("consume: %d %q %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "junk\n", "produce", "__consumer_offsets"); code != 1 || !strings.Contains(errs, "internal") {
		t.Fatalf("produce to __consumer_offsets: status %d, stderr %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "", "topic", "delete", "__consumer_offsets"); code != 1 || !strings.Contains(errs, "internal") {
		t.Fatalf("delete __consumer_offsets: status %d, stderr %q", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "--group", "g"); code != 0 || out != "b\n" {
		t.Fatalf("group did not resume: %d %q %s", code, out, errs)
	}
}

// TestConsumeFromOffsetAcrossPartitions: --from OFFSET applies to every
// partition; a partition that has not reached OFFSET yet has nothing to
// print (as over the Kafka protocol), it does not fail the whole command.
// An offset deleted by retention (below the start) still fails.
func TestConsumeFromOffsetAcrossPartitions(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t", "--partitions", "2"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, env, "a\nb\nc\n", "produce", "t", "--partition", "1"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	code, out, errs := runCLI(t, env, "", "consume", "t", "--from", "1", "-e")
	if code != 0 || out != "b\nc\n" {
		t.Fatalf("consume --from 1: status %d, out %q, stderr %s", code, out, errs)
	}
}

// TestGroupCommittedOffsetTakesPrecedenceOverBadFrom: a group's committed
// offset is where it resumes; --from is only the fallback, so a --from that
// does not fit a partition must not fail a group that has a committed offset.
func TestGroupCommittedOffsetTakesPrecedenceOverBadFrom(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t", "--partitions", "1"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, env, "a\nb\nc\n", "produce", "t"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "-n", "1", "--group", "g"); code != 0 || out != "a\n" {
		t.Fatalf("consume: %d %q %s", code, out, errs)
	}
	if code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "--group", "g", "--from", "latest"); code != 0 || out != "b\nc\n" {
		t.Fatalf("group resume: %d %q %s", code, out, errs)
	}
}

// TestGroupOffsetDeletedByRetentionFallsBackToFrom: when retention has
// deleted the records at a group's committed offset, consume starts from
// --from (Kafka's auto.offset.reset) instead of failing.
func TestGroupOffsetDeletedByRetentionFallsBackToFrom(t *testing.T) {
	dir := t.TempDir()
	l, err := logstore.Open(logstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.CreateTopic("t", logstore.TopicConfig{Partitions: 1, SegmentBytes: 1 << 10, RetentionBytes: 1}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("t")
	p, _ := tp.Partition(0)
	for i := 0; i < 40; i++ {
		if _, err := p.AppendRecords(ctx, []record.Record{{Value: []byte(strings.Repeat("x", 100))}}); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := logstore.OpenOffsetStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := offs.Commit(ctx, "g", map[logstore.TopicPartition]logstore.CommittedOffset{{Topic: "t", Partition: 0}: {Offset: 1, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	start, hw, _ := p.Offsets()
	if start <= 1 {
		t.Fatalf("retention did not delete offset 1 (log start %d)", start)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "--group", "g", "--from", "earliest")
	if code != 0 || int64(strings.Count(out, "\n")) != hw-start {
		t.Fatalf("status %d, %d lines (want %d), stderr %s", code, strings.Count(out, "\n"), hw-start, errs)
	}
}

// TestConsumeJSONBinaryValue: --format json must not silently replace bytes
// that are not UTF-8; they come out in base64.
func TestConsumeJSONBinaryValue(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t", "--partitions", "1"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, env, "\xff\xfeabc\nok\n", "produce", "t"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "--format", "json")
	if code != 0 {
		t.Fatalf("consume: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"value":null`) || !strings.Contains(lines[0], `"value_base64":"//5hYmM="`) || !strings.Contains(lines[1], `"value":"ok"`) {
		t.Fatalf("json output:\n%s", out)
	}
}

// TestRemoteProduceErrors: over the protocol, an unknown topic and a
// partition out of range get the same clear errors as with --data-dir.
func TestRemoteProduceErrors(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{})
	env := map[string]string{"SLUICE_BROKER": srv.Addr}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "p3", "--partitions", "3"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, env, "a\n", "produce", "p3", "--partition", "3"); code != 1 || !strings.Contains(errs, "partition 3 out of range: topic p3 has 3 partitions") {
		t.Fatalf("partition out of range: status %d, stderr %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "a\n", "produce", "nope"); code != 1 || !strings.Contains(errs, "nope") {
		t.Fatalf("unknown topic: status %d, stderr %q", code, errs)
	}
}

// TestConsumeJSONNullHeaderValue: a header whose value is null (length
// -1 on the wire) and one whose value is empty are different things to
// Kafka; consume --format json printed both as "". A null value is JSON
// null now, in headers and header_list, over the broker and over a data
// directory.
func TestConsumeJSONNullHeaderValue(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := srv.Client(t, kgo.DefaultProduceTopic("hdr"), kgo.AllowAutoTopicCreation())
	rec := &kgo.Record{Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const want = `"headers":{"empty":"","null":null},"header_list":[{"key":"null","value":null},{"key":"empty","value":""}]}`
	code, out, errs := runCLI(t, map[string]string{"SLUICE_BROKER": srv.Addr}, "", "consume", "hdr", "-e", "--format", "json")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), want) {
		t.Fatalf("over the broker: status %d, out %s, stderr %s\nwant the suffix %s", code, out, errs, want)
	}
	srv.Close()
	code, out, errs = runCLI(t, map[string]string{"SLUICE_DATA_DIR": srv.Dir}, "", "consume", "hdr", "-e", "--format", "json")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), want) {
		t.Fatalf("over the data directory: status %d, out %s, stderr %s\nwant the suffix %s", code, out, errs, want)
	}
}
