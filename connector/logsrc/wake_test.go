package logsrc

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// readResult is what a Read returned.
type readResult struct {
	n   int
	err error
}

// TestReadWakesOnAppend: a Read waiting for data returns the record
// appended while it waits. The poll interval is an hour, so only the
// partition's append notification can end the wait (no polling).
func TestReadWakesOnAppend(t *testing.T) {
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	p := part(t, tp, 0)
	src, err := NewSource(l, SourceConfig{Topic: "t", PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sp := splits(t, src)[0]
	if b, ok := sp.(stream.Buffered); !ok || b.Buffered() {
		t.Fatalf("an empty split reports records buffered (or lacks stream.Buffered)")
	}
	buf := make([]connector.Message, 4)
	done := make(chan readResult, 1)
	go func() {
		n, err := sp.Read(context.Background(), buf)
		done <- readResult{n, err}
	}()
	appendValues(t, p, "a")
	r := <-done
	if r.err != nil || r.n != 1 || string(buf[0].Value) != "a" {
		t.Fatalf("read %d, %v (%q), want the appended record", r.n, r.err, buf[0].Value)
	}
	appendValues(t, p, "b", "c")
	if !sp.(stream.Buffered).Buffered() {
		t.Fatal("records appended but the split says nothing is buffered")
	}
}

// TestWakeEndsWait: Wake makes a waiting Read return (0, nil) so that the
// runtime can emit a checkpoint barrier; a Wake while no Read waits ends
// the next wait at once.
func TestWakeEndsWait(t *testing.T) {
	l := openLog(t)
	createTopic(t, l, "t", 1)
	src, err := NewSource(l, SourceConfig{Topic: "t", PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sp := splits(t, src)[0]
	w, ok := sp.(stream.Waker)
	if !ok {
		t.Fatal("log split does not implement stream.Waker")
	}
	w.Wake() // before the Read: the next wait ends at once
	buf := make([]connector.Message, 4)
	if n, err := sp.Read(context.Background(), buf); n != 0 || err != nil {
		t.Fatalf("read after Wake: %d, %v; want 0, nil", n, err)
	}
	done := make(chan readResult, 1)
	go func() {
		n, err := sp.Read(context.Background(), buf)
		done <- readResult{n, err}
	}()
	// Whether the Wake lands before the Read waits (kept for it) or
	// during the wait (which it cancels), the Read returns.
	w.Wake()
	if r := <-done; r.n != 0 || r.err != nil {
		t.Fatalf("woken read: %d, %v; want 0, nil", r.n, r.err)
	}
}
