package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
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
