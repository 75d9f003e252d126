package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newLongPollServer returns a server whose log has the topic lp of one
// partition.
func newLongPollServer(t *testing.T) *Server {
	t.Helper()
	l := openTestLog(t)
	s, err := New(l, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := l.CreateTopic("lp", logstore.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	return s
}

// longPollFetch asks partition 0 of each topic from offset 0 for at least
// a byte, waiting up to ten minutes.
func longPollFetch(topics ...string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 600000, 1, 1<<20
	for _, topic := range topics {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
	}
	return req
}

// TestFetchLongPollWakes checks that a Fetch waiting for data (MinBytes not
// reached) answers as soon as data arrives, for read_uncommitted and for
// read_committed readers.
func TestFetchLongPollWakes(t *testing.T) {
	for _, iso := range []int8{0, readCommitted} {
		s := newLongPollServer(t)
		waiting := make(chan struct{}, 16)
		s.fetchWaiting = func() { waiting <- struct{}{} }

		req := longPollFetch("lp")
		req.IsolationLevel = iso
		// The fetch may wait ten minutes: only new data can end it within
		// the test's deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan *kmsg.FetchResponse, 1)
		go func() { done <- s.handleFetch(ctx, req).(*kmsg.FetchResponse) }()
		select {
		case <-waiting:
		case <-ctx.Done():
			t.Fatal("the fetch never started waiting")
		}
		p, _ := s.log.Topic("lp")
		part, _ := p.Partition(0)
		if _, err := part.AppendRecords(ctx, []record.Record{{Value: []byte("wake")}}); err != nil {
			t.Fatal(err)
		}
		resp := <-done
		if ctx.Err() != nil {
			t.Fatalf("isolation %d: the fetch did not wake on new data", iso)
		}
		got := resp.Topics[0].Partitions[0]
		if got.HighWatermark != 1 || len(got.RecordBatches) == 0 {
			t.Fatalf("isolation %d: answer %+v", iso, got)
		}
	}
}

// TestFetchErrorAnsweredAtOnce: a long-polling Fetch in which one partition
// cannot be read (an unknown topic, here) is answered at once with the
// error, as Kafka answers a fetch with an error without waiting; it waited
// MaxWaitMillis for the other partitions' data, delaying the client's
// recovery (a metadata refresh after a deleted topic, say) by its whole
// max wait.
func TestFetchErrorAnsweredAtOnce(t *testing.T) {
	s := newLongPollServer(t)
	s.fetchWaiting = func() { t.Error("the fetch waited although a partition has an error") }
	req := longPollFetch("lp", "gone")
	// The fetch may wait ten minutes: the test's deadline ends it if it
	// waits at all.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp := s.handleFetch(ctx, req).(*kmsg.FetchResponse)
	if len(resp.Topics) != 2 || resp.Topics[1].Partitions[0].ErrorCode == 0 {
		t.Fatalf("answer %+v, want the unknown topic's error", resp.Topics)
	}
}
