package nats

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/faultproxy"
	"github.com/sluicehq/sluice/internal/testservice"
	"github.com/sluicehq/sluice/stream"
)

// serverAddr returns the test server's HOST:PORT, or skips.
func serverAddr(t testing.TB) string {
	t.Helper()
	return testservice.Addr(t, "SLUICE_TEST_NATS", "127.0.0.1:4222", "NATS server")
}

func randName(t testing.TB) string { return "sluicetest_" + testservice.Suffix() }

// testStream creates a stream capturing NAME.> and returns its name and
// a JetStream handle; the stream is deleted after the test.
func testStream(t testing.TB, addr string) (string, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := randName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		t.Skipf("JetStream not available at %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return name, js
}

func publishN(t testing.TB, js jetstream.JetStream, subject string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := js.PublishAsync(subject, binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
}

func openJS(t testing.TB, cfg SourceConfig, pos []byte) *jsSplit {
	t.Helper()
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sps, err := src.Splits(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sp := sps[0].(*jsSplit)
	if pos != nil {
		if err := sp.Seek(pos); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = sp.Close() })
	return sp
}

// readValues reads until n values arrived (failing on a gap or a repeat:
// values must come in publish order) and returns the last.
func readValues(t testing.TB, sp stream.Split[connector.Message], first, n int, commitEach bool) {
	t.Helper()
	buf := make([]connector.Message, 64)
	next := first
	deadline := time.Now().Add(90 * time.Second)
	for next < first+n {
		if time.Now().After(deadline) {
			t.Fatalf("read up to %d of %d..%d", next, first, first+n-1)
		}
		k, err := sp.Read(context.Background(), buf[:min(len(buf), first+n-next)])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:k] {
			if v := int(binary.BigEndian.Uint32(m.Value)); v != next {
				t.Fatalf("got %d, want %d (gap or repeat)", v, next)
			}
			next++
		}
		if commitEach && k > 0 {
			// As the runtime does, a failed commit is only logged: the
			// next one covers it.
			if err := sp.(stream.PositionCommitter).CommitPosition(context.Background(), sp.Position()); err != nil {
				t.Log(err)
			}
		}
	}
}

// TestJetStreamSourceRestartsAtCheckpoint: a source restored from a
// checkpoint position reads exactly the messages after it, in order,
// whatever the crashed run had read (and not acknowledged) past it; a
// source started without one continues after its acknowledged floor.
func TestJetStreamSourceRestartsAtCheckpoint(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	publishN(t, js, name+".in", 0, 1000)
	cfg := SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, JetStream: true, Stream: name, Subject: name + ".in", Durable: "d1", Batch: 50, AckOnCheckpoint: true}

	sp := openJS(t, cfg, nil)
	readValues(t, sp, 0, 300, false)
	pos := sp.Position() // the checkpoint's position
	if err := sp.CommitPosition(context.Background(), pos); err != nil {
		t.Fatal(err)
	}
	readValues(t, sp, 300, 300, false) // read, never acknowledged
	if l := sp.Lag(); l < 0 || l > 1000 {
		t.Fatalf("lag %d", l)
	}
	_ = sp.Close()

	// Restored from the checkpoint: 300.. again, in order.
	sp = openJS(t, cfg, pos)
	readValues(t, sp, 300, 200, false)
	pos2 := sp.Position()
	if err := sp.CommitPosition(context.Background(), pos2); err != nil {
		t.Fatal(err)
	}
	_ = sp.Close()

	// No checkpoint: the consumer's acknowledged floor (500) says where.
	sp = openJS(t, cfg, nil)
	readValues(t, sp, 500, 500, true)
	if got := binary.BigEndian.Uint64(sp.Position()); got != 1000 {
		t.Fatalf("position %d, want stream sequence 1000", got)
	}
}

// TestJetStreamSourceSkipsAckWaitRedeliveries: with an ack wait shorter
// than the time to a checkpoint, the server redelivers what was read;
// the source passes each message on once.
func TestJetStreamSourceSkipsAckWaitRedeliveries(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	publishN(t, js, name+".in", 0, 200)
	cfg := SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, JetStream: true, Stream: name, Subject: name + ".in", Durable: "d2", Batch: 200, AckWait: 200 * time.Millisecond, AckOnCheckpoint: true}
	sp := openJS(t, cfg, nil)
	readValues(t, sp, 0, 100, false)
	// All 200 are fetched (the buffer holds them); none is acknowledged,
	// so the server sends them again after the ack wait.
	deadline := time.Now().Add(20 * time.Second)
	for sp.meter.Dropped.Load() < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("%d redeliveries seen, want ≥ 50", sp.meter.Dropped.Load())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	readValues(t, sp, 100, 100, true)
	// Nothing more: every redelivery was skipped.
	n, err := sp.Read(context.Background(), make([]connector.Message, 10))
	if err != nil || n != 0 {
		t.Fatalf("read %d more (%v) after the last message", n, err)
	}
}

// TestJetStreamSinkDedupsReplay: records replayed after a restore from a
// checkpoint get the ids they had, and the stream drops the copies.
func TestJetStreamSinkDedupsReplay(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	sink, err := NewSink(SinkConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, JetStream: true, Subject: name + ".out", ExactlyOnce: true, IDPrefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msgs := func(from, to int) []connector.Message {
		var out []connector.Message
		for i := from; i < to; i++ {
			out = append(out, connector.Message{Value: binary.BigEndian.AppendUint32(nil, uint32(i))})
		}
		return out
	}
	open := func(txs []checkpoint.Transaction) *jsWriter2PC {
		w, err := sink.Open(ctx, stream.SubtaskInfo{})
		if err != nil {
			t.Fatal(err)
		}
		w2 := w.(*jsWriter2PC)
		if err := w2.Recover(ctx, txs); err != nil {
			t.Fatal(err)
		}
		return w2
	}
	w := open(nil)
	if err := w.Write(ctx, msgs(0, 100)); err != nil {
		t.Fatal(err)
	}
	tx, err := w.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, msgs(100, 150)); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(ctx); err != nil { // published, then the job dies
		t.Fatal(err)
	}
	w.nc.Close()

	w = open([]checkpoint.Transaction{tx})
	if err := w.Write(ctx, msgs(100, 200)); err != nil { // the replay, then more
		t.Fatal(err)
	}
	if _, err := w.PreCommit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if d := sink.meter.Dropped.Load(); d != 50 {
		t.Fatalf("%d publishes deduplicated, want 50", d)
	}
	_ = w.Close(ctx)
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 200 {
		t.Fatalf("stream holds %d messages, want 200", info.State.Msgs)
	}
	// A new job (no checkpoint) starts a fresh id base: equal records
	// are not mistaken for replays.
	w = open(nil)
	if err := w.Write(ctx, msgs(0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if info, _ = st.Info(ctx); info.State.Msgs != 210 {
		t.Fatalf("stream holds %d messages, want 210", info.State.Msgs)
	}
}

// TestJetStreamOutage: the link to the server is cut (a proxy drops
// every connection and refuses new ones) while a source reads and a sink
// publishes; once it is back both reconnect: the source reads every
// message once and in order, and the stream receives each published
// record once (retries carry the same message id).
func TestJetStreamOutage(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	px, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	publishN(t, js, name+".in", 0, 2000)
	cfg := SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + px.Addr()}, JetStream: true, Stream: name, Subject: name + ".in", Durable: "d3", Batch: 100, AckOnCheckpoint: true}
	sp := openJS(t, cfg, nil)
	readValues(t, sp, 0, 700, true)
	px.Cut()
	deadline := time.Now().Add(20 * time.Second)
	for sp.meter.Errors.Load() == 0 { // counted by the disconnection handler
		if time.Now().After(deadline) {
			t.Fatal("the source did not notice the outage")
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	px.Restore()
	// What was buffered before the cut and everything after arrives
	// once, in order.
	readValues(t, sp, 700, 1300, true)

	sink, err := NewSink(SinkConfig{ConnConfig: ConnConfig{URL: "nats://" + px.Addr()}, JetStream: true, Subject: name + ".out", AckTimeout: time.Second, IDPrefix: "o"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i += 100 {
		var batch []connector.Message
		for j := i; j < i+100; j++ {
			batch = append(batch, connector.Message{Value: binary.BigEndian.AppendUint32(nil, uint32(j))})
		}
		if err := w.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if i == 1000 {
			px.Cut()
			go func() {
				d := time.Now().Add(20 * time.Second)
				for sink.meter.Errors.Load() == 0 && time.Now().Before(d) {
					time.Sleep(10 * time.Millisecond) // polling a counter
				}
				px.Restore()
			}()
		}
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	_ = w.Close(ctx)
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{FilterSubjects: []string{name + ".out"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint32]bool)
	for len(seen) < 2000 {
		mb, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range mb.Messages() {
			got++
			v := binary.BigEndian.Uint32(m.Data())
			if seen[v] {
				t.Fatalf("record %d stored twice", v)
			}
			seen[v] = true
		}
		if got == 0 {
			t.Fatalf("stream has %d of 2000 records", len(seen))
		}
	}
	st, _ := js.Stream(ctx, name)
	info, _ := st.Info(ctx)
	if info.State.Msgs != 4000 {
		t.Fatalf("stream holds %d messages, want 4000 (2000 in, 2000 out)", info.State.Msgs)
	}
}

// TestCoreNATS: a core subscription receives what a core sink
// publishes, subject from the message key.
func TestCoreNATS(t *testing.T) {
	addr := serverAddr(t)
	name := randName(t)
	src, err := NewSource(SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, Subject: name + ".>"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sps, err := src.Splits(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sp := sps[0]
	defer sp.(interface{ Close() error }).Close()
	sink, err := NewSink(SinkConfig{ConnConfig: ConnConfig{URL: "nats://" + addr}, Subject: name + ".default"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	var batch []connector.Message
	for i := 0; i < 100; i++ {
		m := connector.Message{Value: []byte(fmt.Sprint(i))}
		if i%2 == 0 {
			m.Key = []byte(name + ".even")
		}
		batch = append(batch, m)
	}
	if err := w.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := 0
	buf := make([]connector.Message, 64)
	deadline := time.Now().Add(20 * time.Second)
	for got < 100 && time.Now().Before(deadline) {
		n, err := sp.Read(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:n] {
			var i int
			fmt.Sscan(string(m.Value), &i)
			want := name + ".default"
			if i%2 == 0 {
				want = name + ".even"
			}
			if string(m.Key) != want {
				t.Fatalf("message %d on %s, want %s", i, m.Key, want)
			}
			got++
		}
	}
	if got != 100 {
		t.Fatalf("received %d of 100", got)
	}
	_ = w.Close(ctx)
}
