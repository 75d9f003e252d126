package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	sluicekafka "github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

// sluiceServe starts Sluice's own Kafka listener over a fresh log with the
// given topics, as `sluice serve` does, and returns its address.
func sluiceServe(t *testing.T, partitions int32, topics ...string) []string {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		if err := l.CreateTopic(tp, logstore.TopicConfig{Partitions: partitions}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sluicekafka.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	srv, err := sluicekafka.New(l, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, sluicekafka.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		l.Close()
	})
	return []string{ln.Addr().String()}
}

// The connector against `sluice serve`: the transactional sink's output is
// invisible to read_committed readers until its checkpoint commits, and
// the bounded source then reads it back exactly.
func TestAgainstSluiceServe(t *testing.T) {
	brokers := sluiceServe(t, 2, "out")
	ctx := ctxT(t)
	sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c := w.(checkpoint.TwoPhaseCommitter)
	if err := c.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	in := []connector.Message{{Key: []byte("k1"), Value: []byte("a")}, {Key: []byte("k2"), Value: []byte("b")}, {Key: []byte("k3"), Value: []byte("c")}}
	if err := w.Write(ctx, in); err != nil {
		t.Fatal(err)
	}
	tx, err := c.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); len(got) != 0 {
		t.Fatalf("visible before commit: %v", got)
	}
	if err := c.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after commit: %v", got)
	}

	// Group offsets through Sluice's group coordinator.
	cfg := SourceConfig{Brokers: brokers, Topic: "out", Group: "g", Bounded: true}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(2))
	stream.Collect(stream.FromSource(env, "kafka", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}))
	if err := env.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.CommitFinished(ctx); err != nil {
		t.Fatal(err)
	}
	plain, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out"})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := plain.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Write(ctx, []connector.Message{{Key: []byte("k4"), Value: []byte("d")}}); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sp := range splitsOf(t, cfg) {
		got = append(got, values(readAll(t, sp))...)
	}
	if !slices.Equal(got, []string{"d"}) {
		t.Fatalf("after the group's commit: %v", got)
	}
}
