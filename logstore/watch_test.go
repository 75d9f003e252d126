package logstore

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// woken reports whether ch holds a wake-up, taking it.
func woken(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWatchWakesOnAppend: a watcher is woken by the commit that makes its
// offset readable (the append returns after the send), once; one that is
// already satisfied is woken at once; a stopped one is not woken.
func TestWatchWakesOnAppend(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "watch", TopicConfig{Partitions: 1})

	ch := make(chan struct{}, 1)
	stop := p.Watch(0, false, ch)
	defer stop()
	if woken(ch) {
		t.Fatal("woken on an empty partition")
	}
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	if !woken(ch) {
		t.Fatal("not woken by the append that made offset 0 readable")
	}
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	if woken(ch) {
		t.Fatal("woken twice: a watch is one wake-up")
	}

	// Already readable: woken at once.
	now := make(chan struct{}, 1)
	p.Watch(0, false, now)()
	if !woken(now) {
		t.Fatal("a watch of readable data was not woken at once")
	}

	// Two watchers at the end, one stopped: only the other is woken.
	_, hw, _ := p.Offsets()
	a, b := make(chan struct{}, 1), make(chan struct{}, 1)
	stopA := p.Watch(hw, false, a)
	stopB := p.Watch(hw, false, b)
	defer stopB()
	stopA()
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	if woken(a) || !woken(b) {
		t.Fatal("want only the registered watcher woken")
	}
	p.notifyMu.Lock()
	n := len(p.watchers)
	p.notifyMu.Unlock()
	if n != 0 {
		t.Fatalf("%d watchers left registered after they fired or stopped", n)
	}
}

// TestWatchStableWakesOnMarker: a stable watch is not woken by appends
// while a transaction holds its offset back, and is by the marker.
func TestWatchStableWakesOnMarker(t *testing.T) {
	_, p := e2eOpen(t, t.TempDir(), true)
	ctx := context.Background()
	res := openTxn(t, p)
	ch := make(chan struct{}, 1)
	stop := p.Watch(res.BaseOffset, true, ch)
	defer stop()
	if _, err := p.AppendRecords(ctx, []record.Record{{Key: []byte("x"), Value: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	if woken(ch) {
		t.Fatal("a stable watch was woken by an append while the transaction is open")
	}
	if _, err := p.WriteTxnMarker(ctx, 9, 0, true); err != nil {
		t.Fatal(err)
	}
	if !woken(ch) {
		t.Fatal("a stable watch was not woken by the commit marker")
	}
}
