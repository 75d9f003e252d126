package nats

import (
	"context"
	"testing"
	"time"
)

// TestJetStreamSourceResumesAfterResetAtMaxAckPending: when the consumer
// is recreated mid-run (a lost delivery, the consumer deleted or
// interrupted) from the last acknowledged message, the messages read
// since are delivered again and skipped. When they fill MaxAckPending, as
// they do whenever the source reads a full checkpoint's worth, the server
// delivers nothing more until some are acknowledged: the checkpoint that
// covers them must acknowledge them on the new consumer, or the source
// never reads again.
func TestJetStreamSourceResumesAfterResetAtMaxAckPending(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	publishN(t, js, name+".in", 0, 200)
	cfg := SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, JetStream: true, Stream: name, Subject: name + ".in", Durable: "d5", Batch: 50, MaxAckPending: 50, AckOnCheckpoint: true}
	sp := openJS(t, cfg, nil)
	readValues(t, sp, 0, 50, false) // MaxAckPending reached: nothing more is delivered
	pos := sp.Position()            // a checkpoint's barrier
	// The pull is interrupted (as by a lost delivery or an error of the
	// iterator): the source recreates the consumer from its acknowledged
	// floor, 0.
	sp.mu.Lock()
	it := sp.iter
	sp.mu.Unlock()
	it.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for sp.meter.Dropped.Load() < 50 { // the 50 read, delivered again and skipped
		if time.Now().After(deadline) {
			t.Fatalf("%d redeliveries seen after the reset, want 50", sp.meter.Dropped.Load())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	// The checkpoint completes: its 50 messages are acknowledged, and the
	// rest flows, each message once, in order.
	if err := sp.CommitPosition(context.Background(), pos); err != nil {
		t.Fatal(err)
	}
	readValues(t, sp, 50, 150, true)
}

// TestJetStreamSourceCloseDuringReset: Close can come while the fetcher
// recreates the consumer (reset, after a lost delivery or an iterator
// error, typically during an outage): Close stops the iterator it finds
// and waits for the fetcher. A consumer whose creation completes after
// that must not hand the fetcher a live iterator, which nobody would
// stop: the fetcher would wait in Next for messages that never come, and
// Close with it, forever.
func TestJetStreamSourceCloseDuringReset(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	publishN(t, js, name+".in", 0, 10)
	cfg := SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, JetStream: true, Stream: name, Subject: name + ".in", Durable: "d6", AckOnCheckpoint: true}
	sp := openJS(t, cfg, nil)
	readValues(t, sp, 0, 10, false)
	// What Close does first: the fetcher is told to stop, and the
	// iterator it reads is stopped (the rest of Close, closing the
	// connection, is left to the end of the test).
	sp.closeOne.Do(func() { close(sp.stop) })
	defer sp.nc.Close()
	sp.mu.Lock()
	it := sp.iter
	sp.mu.Unlock()
	it.Stop()
	<-sp.done
	// The reset that had already passed its check of stop now creates
	// the consumer (after the last message: nothing would ever come).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if it, err := sp.consume(ctx, 11); err == nil {
		it.Stop()
		t.Fatal("consume handed out a live iterator after Close began")
	}
}
