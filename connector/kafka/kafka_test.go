package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

func cluster(t *testing.T, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func client(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// produce writes values to one partition.
func produce(t *testing.T, cl *kgo.Client, topic string, part int32, vals ...string) {
	t.Helper()
	rs := make([]*kgo.Record, len(vals))
	for i, v := range vals {
		rs[i] = &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func manual() kgo.Opt { return kgo.RecordPartitioner(kgo.ManualPartitioner()) }

func readAll(t *testing.T, sp stream.Split[connector.Message]) []connector.Message {
	t.Helper()
	ctx := ctxT(t)
	var out []connector.Message
	dst := make([]connector.Message, 3)
	for {
		n, err := sp.Read(ctx, dst)
		out = append(out, dst[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func values(ms []connector.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Value)
	}
	return out
}

func splitsOf(t *testing.T, cfg SourceConfig) []stream.Split[connector.Message] {
	t.Helper()
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sps, err := src.Splits(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, sp := range sps {
			sp.(io.Closer).Close()
		}
	})
	return sps
}

func TestSourceBoundedStartsAndSeek(t *testing.T) {
	brokers := cluster(t, 2, "t")
	cl := client(t, brokers, manual())
	produce(t, cl, "t", 0, "a", "b", "c", "d")
	produce(t, cl, "t", 1, "x")

	sps := splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", Bounded: true})
	if len(sps) != 2 {
		t.Fatalf("%d splits", len(sps))
	}
	produce(t, cl, "t", 0, "late") // after the start: outside the bounded run
	got := readAll(t, sps[0])
	if !slices.Equal(values(got), []string{"a", "b", "c", "d"}) {
		t.Fatalf("partition 0: %v", values(got))
	}
	if got[2].Offset != 2 || got[2].Origin != "t/0" || got[2].Timestamp == 0 {
		t.Fatalf("message %+v", got[2])
	}
	if got := values(readAll(t, sps[1])); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("partition 1: %v", got)
	}

	for _, tc := range []struct {
		name string
		cfg  SourceConfig
		want []string
	}{
		{"latest", SourceConfig{Start: StartLatest}, nil},
		{"offset", SourceConfig{Start: StartOffset, Offset: 3}, []string{"d", "late"}},
	} {
		tc.cfg.Brokers, tc.cfg.Topic, tc.cfg.Bounded, tc.cfg.Partitions = brokers, "t", true, []int32{0}
		if got := values(readAll(t, splitsOf(t, tc.cfg)[0])); !slices.Equal(got, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}

	// Read two, take the position, resume elsewhere.
	first := splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", Bounded: true, Partitions: []int32{0}})[0]
	dst := make([]connector.Message, 2)
	n := 0
	for n < 2 {
		k, err := first.Read(ctxT(t), dst[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	second := splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", Bounded: true, Partitions: []int32{0}})[0]
	if err := second.Seek(first.Position()); err != nil {
		t.Fatal(err)
	}
	if got := values(readAll(t, second)); !slices.Equal(got, []string{"c", "d", "late"}) {
		t.Fatalf("resumed: %v", got)
	}
	if err := second.Seek([]byte{1}); !errors.Is(err, stream.ErrBadPosition) {
		t.Fatalf("bad seek: %v", err)
	}
}

func TestSourceErrors(t *testing.T) {
	brokers := cluster(t, 1, "t")
	for _, cfg := range []SourceConfig{
		{Topic: "t"},
		{Brokers: brokers},
		{Brokers: brokers, Topic: "t", Start: StartOffset, Offset: -2},
	} {
		if _, err := NewSource(cfg); err == nil {
			t.Errorf("NewSource(%+v): no error", cfg)
		}
	}
	src, err := NewSource(SourceConfig{Brokers: brokers, Topic: "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Splits(ctxT(t), 1); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("missing topic: %v", err)
	}
}

func TestSourceReadCommitted(t *testing.T) {
	brokers := cluster(t, 1, "t")
	plain := client(t, brokers, manual())
	produce(t, plain, "t", 0, "p1")
	txn := client(t, brokers, manual(), kgo.TransactionalID("test-txn"))
	ctx := ctxT(t)
	inTxn := func(commit kgo.TransactionEndTry, vals ...string) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(t, txn, "t", 0, vals...)
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	inTxn(kgo.TryAbort, "a1", "a2")
	inTxn(kgo.TryCommit, "c1")
	produce(t, plain, "t", 0, "p2")
	inTxn(kgo.TryAbort, "a3") // the last thing in the partition: an abort marker

	got := values(readAll(t, splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", Bounded: true})[0]))
	if want := []string{"p1", "c1", "p2"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: got %v, want %v", got, want)
	}
	got = values(readAll(t, splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", Bounded: true, Isolation: ReadUncommitted})[0]))
	if want := []string{"p1", "a1", "a2", "c1", "p2", "a3"}; !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted: got %v, want %v", got, want)
	}
}

func TestGroupOffsetsCommittedByCommitPosition(t *testing.T) {
	brokers := cluster(t, 1, "t")
	cl := client(t, brokers, manual())
	produce(t, cl, "t", 0, "a", "b", "c")
	cfg := SourceConfig{Brokers: brokers, Topic: "t", Group: "g", Bounded: true}
	sp := splitsOf(t, cfg)[0]
	if got := values(readAll(t, sp)); len(got) != 3 {
		t.Fatalf("first run: %v", got)
	}
	// Nothing committed yet: a new run starts over.
	again := splitsOf(t, cfg)[0]
	if got := values(readAll(t, again)); len(got) != 3 {
		t.Fatalf("second run before commit: %v", got)
	}
	c := again.(interface {
		CommitPosition(context.Context, []byte) error
	})
	if err := c.CommitPosition(ctxT(t), []byte{0, 0, 0, 0, 0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, "t", 0, "d")
	if got := values(readAll(t, splitsOf(t, cfg)[0])); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("after commit: %v", got)
	}
}

func TestUnboundedSourceFollows(t *testing.T) {
	brokers := cluster(t, 1, "t")
	cl := client(t, brokers, manual())
	sp := splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", PollInterval: 20 * time.Millisecond})[0]
	produce(t, cl, "t", 0, "a", "b")
	ctx := ctxT(t)
	var got []string
	dst := make([]connector.Message, 4)
	for len(got) < 2 {
		n, err := sp.Read(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, values(dst[:n])...)
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("got %v", got)
	}
}

// consumeAll reads a topic's committed records up to its current end.
func consumeAll(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	var out []string
	for _, sp := range splitsOf(t, SourceConfig{Brokers: brokers, Topic: topic, Bounded: true}) {
		out = append(out, values(readAll(t, sp))...)
	}
	sort.Strings(out)
	return out
}

func TestSinkThroughPipeline(t *testing.T) {
	brokers := cluster(t, 3, "out")
	msgs := make([]connector.Message, 500)
	var want []string
	for i := range msgs {
		msgs[i] = connector.Message{Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "v%03d", i), Timestamp: 1_700_000_000_000 + int64(i),
			Headers: []connector.Header{{Key: "h", Value: []byte("1")}}}
		want = append(want, string(msgs[i].Value))
	}
	sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out"})
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(2))
	stream.To(stream.FromSource(env, "in", stream.FromSlice(msgs, 2), stream.WatermarkStrategy[connector.Message]{}), stream.Sink[connector.Message](sink))
	if err := env.Execute(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	// Keys land where Kafka's partitioner puts them: one partition per key.
	where := map[string]string{}
	for _, sp := range splitsOf(t, SourceConfig{Brokers: brokers, Topic: "out", Bounded: true}) {
		for _, m := range readAll(t, sp) {
			if o, ok := where[string(m.Key)]; ok && o != m.Origin {
				t.Fatalf("key %s in %s and %s", m.Key, o, m.Origin)
			}
			// The same partition as the log sink and every Kafka client.
			if want := fmt.Sprintf("out/%d", record.KafkaPartition(m.Key, 3)); m.Origin != want {
				t.Fatalf("key %s in %s, want %s", m.Key, m.Origin, want)
			}
			where[string(m.Key)] = m.Origin
			if len(m.Headers) != 1 || m.Timestamp < 1_700_000_000_000 {
				t.Fatalf("message %+v", m)
			}
		}
	}
}

func TestTransactionalSinkCommitsAtCheckpoint(t *testing.T) {
	brokers := cluster(t, 1, "out")
	sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true, MaxPendingCheckpoints: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c := w.(checkpoint.TwoPhaseCommitter)
	if err := c.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	write := func(vals ...string) {
		t.Helper()
		ms := make([]connector.Message, len(vals))
		for i, v := range vals {
			ms[i] = connector.Message{Value: []byte(v)}
		}
		if err := w.Write(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	preCommit := func(id checkpoint.ID) checkpoint.Transaction {
		t.Helper()
		tx, err := c.PreCommit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	write("a", "b")
	tx1 := preCommit(1)
	write("c") // the next transaction
	if got := consumeAll(t, brokers, "out"); len(got) != 0 {
		t.Fatalf("visible before the checkpoint completed: %v", got)
	}
	if err := c.Commit(ctx, tx1); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after checkpoint 1: %v", got)
	}
	tx2 := preCommit(2)
	write("d")
	tx3 := preCommit(3)
	// Checkpoint 2 did not complete (the runtime commits its transaction
	// with the next checkpoint that does): two transactions are pending,
	// one more than MaxPendingCheckpoints. The next write begins a third
	// and lets the oldest go idle, but commits nothing before its
	// checkpoint completes: a restore from checkpoint 1 would replay "c".
	write("e")
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("committed before their checkpoint completed: %v", got)
	}
	if n := sink.IdledTransactions(); n != 1 {
		t.Fatalf("idled transactions %d", n)
	}
	// Checkpoint 3 completes: it holds both transactions.
	for _, tx := range []checkpoint.Transaction{tx2, tx3} {
		if err := c.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("after checkpoint 3: %v", got)
	}
	// A job stopped early aborts what is open.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Close(cancelled); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("after abort: %v", got)
	}

	// A writer without checkpoints (no two-phase commit) writes one
	// transaction, committed at the end of the input.
	w2, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(ctx, []connector.Message{{Value: []byte("f")}}); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c", "d", "f"}) {
		t.Fatalf("after second run: %v", got)
	}
}

// A bounded run through the stream runtime, then CommitFinished: the next
// run with the same group reads only what came after.
func TestCommitFinishedAfterBoundedRun(t *testing.T) {
	brokers := cluster(t, 2, "t")
	cl := client(t, brokers, manual())
	produce(t, cl, "t", 0, "a", "b")
	produce(t, cl, "t", 1, "c")
	cfg := SourceConfig{Brokers: brokers, Topic: "t", Group: "g", Bounded: true}
	run := func() []string {
		t.Helper()
		src, err := NewSource(cfg)
		if err != nil {
			t.Fatal(err)
		}
		env := stream.New(stream.WithParallelism(2))
		out := stream.Collect(stream.FromSource(env, "kafka", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}))
		if err := env.Execute(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := src.CommitFinished(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		got := values(out.Values())
		sort.Strings(got)
		return got
	}
	if got := run(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("first run: %v", got)
	}
	produce(t, cl, "t", 1, "d")
	if got := run(); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("second run: %v", got)
	}
	if got := run(); len(got) != 0 {
		t.Fatalf("third run: %v", got)
	}
}

// TestTransactionalSinkTwoPhase drives the transactional writer as the
// stream runtime does (checkpoint.TwoPhaseCommitter): records become
// visible only at Commit, Commit is idempotent, Abort discards a
// pre-committed transaction, and the handle of a checkpoint with no
// records names no transaction.
func TestTransactionalSinkTwoPhase(t *testing.T) {
	brokers := cluster(t, 1, "out")
	sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := w.(checkpoint.TwoPhaseCommitter)
	if !ok {
		t.Fatal("the transactional writer is not a checkpoint.TwoPhaseCommitter")
	}
	if err := c.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	write := func(vals ...string) {
		t.Helper()
		for _, v := range vals {
			if err := w.Write(ctx, []connector.Message{{Value: []byte(v)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	barrier := func(id checkpoint.ID) checkpoint.Transaction {
		t.Helper()
		tx, err := c.PreCommit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	if h, err := DecodeTxn(barrier(1)); err != nil || h.TransactionalID != "" || h.Next != 0 {
		t.Fatalf("a checkpoint without records: handle %+v, %v", h, err)
	}
	write("a", "b")
	tx2 := barrier(2)
	write("c")
	tx3 := barrier(3)
	if got := consumeAll(t, brokers, "out"); len(got) != 0 {
		t.Fatalf("visible before commit: %v", got)
	}
	if err := c.Commit(ctx, tx2); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, tx2); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	if err := c.Abort(ctx, tx3); err != nil {
		t.Fatal(err)
	}
	write("d")
	tx4 := barrier(4)
	if err := c.Commit(ctx, tx4); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "d"}) {
		t.Fatalf("committed: %v", got)
	}
	if err := c.Commit(ctx, checkpoint.Transaction("bad")); !errors.Is(err, ErrBadTransaction) {
		t.Fatalf("bad handle: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSinkCompression: the produced batches carry the configured codec
// (Kafka's compression.type), and an unknown codec is refused up front.
func TestSinkCompression(t *testing.T) {
	for _, tc := range []struct {
		name string
		want uint8 // the batch attributes' codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	}{{"none", 0}, {"gzip", 1}, {"lz4", 3}, {"zstd", 4}} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := cluster(t, 1, "out")
			msgs := make([]connector.Message, 200)
			for i := range msgs {
				msgs[i] = connector.Message{Value: bytes.Repeat([]byte{'a' + byte(i%26)}, 100)}
			}
			sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Compression: tc.name})
			if err != nil {
				t.Fatal(err)
			}
			env := stream.New(stream.WithParallelism(1))
			stream.To(stream.FromSource(env, "in", stream.FromSlice(msgs, 1), stream.WatermarkStrategy[connector.Message]{}), stream.Sink[connector.Message](sink))
			if err := env.Execute(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			cl := client(t, brokers, kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			n := 0
			for n < len(msgs) {
				fs := cl.PollFetches(ctxT(t))
				if err := fs.Err0(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					n++
					if got := r.Attrs.CompressionType(); got != tc.want {
						t.Fatalf("record %d: batch codec %d, want %d (%s)", n, got, tc.want, tc.name)
					}
				})
			}
		})
	}
	if _, err := NewSink(SinkConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "out", Compression: "brotli"}); err == nil || !strings.Contains(err.Error(), "none, gzip, snappy, lz4, zstd") {
		t.Fatalf("unknown codec: %v", err)
	}
}

// TestProducerOneClockReadPerWrite: messages without a timestamp get the
// time of the write, read once for all of them (the client read the clock
// for each record before), and a message's own timestamp is kept.
func TestProducerOneClockReadPerWrite(t *testing.T) {
	brokers := cluster(t, 1, "ts")
	p := producer{cl: client(t, brokers, kgo.DefaultProduceTopic("ts"))}
	msgs := make([]connector.Message, 50)
	for i := range msgs {
		msgs[i] = connector.Message{Value: []byte{byte(i)}}
	}
	msgs[7].Timestamp = 1_700_000_000_123
	var mu sync.Mutex
	stamps := map[byte]time.Time{}
	before := time.Now()
	err := p.produceWith(ctxT(t), "ts", msgs, func(r *kgo.Record, err error) {
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		stamps[r.Value[0]] = r.Timestamp
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := stamps[7]; !got.Equal(time.UnixMilli(1_700_000_000_123)) {
		t.Fatalf("message 7 stamped %v, want its own timestamp", got)
	}
	first := stamps[0]
	// Kafka timestamps are milliseconds: the stamp is the write's time
	// cut to the millisecond, so it is compared with before cut the same.
	if first.Before(before.Truncate(time.Millisecond)) {
		t.Fatalf("message 0 stamped %v, before the write (%v)", first, before)
	}
	for i := range msgs {
		if i != 7 && !stamps[byte(i)].Equal(first) {
			t.Fatalf("message %d stamped %v, message 0 %v: one write, one time", i, stamps[byte(i)], first)
		}
	}
}

// TestRecordsOneAllocation: the client's records of a write are built in
// one allocation (one more for all their headers), not one per message,
// and carry each message's key, value, headers and timestamp.
func TestRecordsOneAllocation(t *testing.T) {
	msgs := make([]connector.Message, 64)
	for i := range msgs {
		msgs[i] = connector.Message{Key: []byte{'k', byte(i)}, Value: []byte{byte(i)}}
	}
	if n := testing.AllocsPerRun(20, func() { records("t", msgs) }); n != 1 {
		t.Fatalf("%v allocations for %d records without headers, want 1", n, len(msgs))
	}
	msgs[3].Headers = []connector.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	msgs[9].Headers = []connector.Header{{Key: "c", Value: []byte("3")}}
	msgs[5].Timestamp = 1_700_000_000_123
	if n := testing.AllocsPerRun(20, func() { records("t", msgs) }); n != 2 {
		t.Fatalf("%v allocations for %d records with headers, want 2", n, len(msgs))
	}
	recs := records("t", msgs)
	for i, r := range recs {
		if r.Topic != "t" || !bytes.Equal(r.Key, msgs[i].Key) || !bytes.Equal(r.Value, msgs[i].Value) {
			t.Fatalf("record %d: topic %q key %q value %q, want t %q %q", i, r.Topic, r.Key, r.Value, msgs[i].Key, msgs[i].Value)
		}
		if len(r.Headers) != len(msgs[i].Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(r.Headers), len(msgs[i].Headers))
		}
		for j, h := range r.Headers {
			if h.Key != msgs[i].Headers[j].Key || !bytes.Equal(h.Value, msgs[i].Headers[j].Value) {
				t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, j, h.Key, h.Value, msgs[i].Headers[j].Key, msgs[i].Headers[j].Value)
			}
		}
	}
	// A header appended to one record must not show in the next.
	recs[3].Headers = append(recs[3].Headers, kgo.RecordHeader{Key: "x"})
	if recs[9].Headers[0].Key != "c" {
		t.Fatalf("record 9's header overwritten through record 3's: %q", recs[9].Headers[0].Key)
	}
	if got := recs[5].Timestamp; !got.Equal(time.UnixMilli(1_700_000_000_123)) {
		t.Fatalf("record 5 stamped %v, want its own timestamp", got)
	}
}

// BenchmarkProduceRecords is the per-write cost of building the client's
// records of a 100-record fetch (the 100 k/s latency benchmark's burst).
func BenchmarkProduceRecords(b *testing.B) {
	msgs := make([]connector.Message, 100)
	for i := range msgs {
		msgs[i] = connector.Message{Value: make([]byte, 100)}
	}
	b.ReportAllocs()
	for b.Loop() {
		records("t", msgs)
	}
}
