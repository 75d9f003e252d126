package pipeline

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// wakeSplit is a connector split whose Read waits for data that never
// comes, until Wake (as a Kafka split waits in its poll).
type wakeSplit struct {
	woke    chan struct{}
	waiting chan struct{}
}

func (s *wakeSplit) ID() string            { return "wake" }
func (s *wakeSplit) Position() []byte      { return nil }
func (s *wakeSplit) Seek(pos []byte) error { return nil }
func (s *wakeSplit) Wake()                 { close(s.woke) }
func (s *wakeSplit) Read(ctx context.Context, _ []connector.Message) (int, error) {
	close(s.waiting)
	select {
	case <-s.woke:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// TestIngestSplitForwardsWake: the pipeline's decoding split passes the
// runtime's Wake (sent when a checkpoint barrier is due) on to the
// connector's split, so a Read waiting for data returns and the barrier
// leaves at once instead of after the connector's poll interval.
func TestIngestSplitForwardsWake(t *testing.T) {
	inner := &wakeSplit{woke: make(chan struct{}), waiting: make(chan struct{})}
	var sp stream.Split[tsRow] = &ingestSplit{inner: inner, read: &atomic.Int64{}}
	w, ok := sp.(stream.Waker)
	if !ok {
		t.Fatal("ingestSplit does not implement stream.Waker")
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := sp.Read(t.Context(), make([]tsRow, 8))
		done <- result{n, err}
	}()
	<-inner.waiting
	w.Wake()
	if r := <-done; r.n != 0 || r.err != nil {
		t.Fatalf("woken Read returned (%d, %v), want (0, nil)", r.n, r.err)
	}
	// A split without the capability: Wake does nothing.
	(&ingestSplit{inner: stream.Split[connector.Message](nil)}).Wake()
}

// bufferedSplit reports whether records remain, as a Kafka split does.
type bufferedSplit struct {
	wakeSplit
	more bool
}

func (s *bufferedSplit) Buffered() bool { return s.more }

// TestIngestSplitForwardsBuffered: the decoding split reports what the
// connector's split says about records remaining, so that batches inside
// YAML pipelines follow the buffer timeout; a split without the
// capability reports nothing remaining (batches leave after each read).
func TestIngestSplitForwardsBuffered(t *testing.T) {
	inner := &bufferedSplit{more: true}
	var sp stream.Split[tsRow] = &ingestSplit{inner: inner, read: &atomic.Int64{}}
	b, ok := sp.(stream.Buffered)
	if !ok {
		t.Fatal("ingestSplit does not implement stream.Buffered")
	}
	if !b.Buffered() {
		t.Fatal("records remain in the connector's split, the decoding split says none")
	}
	inner.more = false
	if b.Buffered() {
		t.Fatal("no record remains, the decoding split says some do")
	}
	if (&ingestSplit{inner: &wakeSplit{}}).Buffered() {
		t.Fatal("a split without the capability reported records remaining")
	}
}
