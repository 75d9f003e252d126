package logsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

func openLog(t *testing.T) *logstore.Log { return openLogB(t) }

func openLogB(t testing.TB) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{
		Dir:                    t.TempDir(),
		DefaultFsync:           logstore.FsyncPolicy{Mode: logstore.FsyncNever},
		RetentionCheckInterval: -1,
		Logger:                 slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func createTopic(t *testing.T, l *logstore.Log, name string, parts int32) *logstore.Topic {
	t.Helper()
	if err := l.CreateTopic(name, logstore.TopicConfig{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	tp, err := l.Topic(name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func part(t *testing.T, tp *logstore.Topic, p int32) *logstore.Partition {
	t.Helper()
	pp, err := tp.Partition(p)
	if err != nil {
		t.Fatal(err)
	}
	return pp
}

func appendValues(t *testing.T, p *logstore.Partition, vals ...string) {
	t.Helper()
	recs := make([]record.Record, len(vals))
	for i, v := range vals {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000 + int64(i), Value: []byte(v)}
	}
	if _, err := p.AppendRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// readAll reads a split to its end with read buffers of random sizes.
func readAll(t *testing.T, sp stream.Split[connector.Message], rng *rand.Rand) []connector.Message {
	t.Helper()
	var out []connector.Message
	ctx := context.Background()
	for {
		dst := make([]connector.Message, 1+rng.IntN(7))
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

func splits(t *testing.T, src *Source) []stream.Split[connector.Message] {
	t.Helper()
	sp, err := src.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestBoundedReadsOffsetsPresentAtStart(t *testing.T) {
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	p := part(t, tp, 0)
	appendValues(t, p, "a", "b", "c")
	appendValues(t, p, "d")
	src, err := NewSource(l, SourceConfig{Topic: "t", Bounded: true})
	if err != nil {
		t.Fatal(err)
	}
	sp := splits(t, src)
	appendValues(t, p, "late") // after the job started: not part of the bounded run
	got := readAll(t, sp[0], rand.New(rand.NewPCG(1, 2)))
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(values(got), want) {
		t.Fatalf("got %v, want %v", values(got), want)
	}
	for i, m := range got {
		if m.Offset != int64(i) || m.Origin != "t/0" || m.Timestamp == 0 {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if pos, _ := DecodePosition(sp[0].Position()); pos != 4 {
		t.Fatalf("position %d, want 4", pos)
	}
}

func TestStartModes(t *testing.T) {
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	appendValues(t, part(t, tp, 0), "a", "b", "c", "d", "e")
	for _, tc := range []struct {
		name string
		cfg  SourceConfig
		want []string
	}{
		{"earliest", SourceConfig{Start: StartEarliest}, []string{"a", "b", "c", "d", "e"}},
		{"latest", SourceConfig{Start: StartLatest}, []string{}},
		{"offset", SourceConfig{Start: StartOffset, Offset: 3}, []string{"d", "e"}},
		{"offset past end", SourceConfig{Start: StartOffset, Offset: 99}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Topic, tc.cfg.Bounded = "t", true
			src, err := NewSource(l, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := values(readAll(t, splits(t, src)[0], rand.New(rand.NewPCG(3, 4))))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	l := openLog(t)
	for _, cfg := range []SourceConfig{
		{Topic: ""},
		{Topic: "bad name"},
		{Topic: "t", Start: StartOffset, Offset: -1},
		{Topic: "t", Start: 7},
	} {
		if _, err := NewSource(l, cfg); err == nil {
			t.Errorf("NewSource(%+v): no error", cfg)
		}
	}
	src, err := NewSource(l, SourceConfig{Topic: "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Splits(context.Background(), 1); !errors.Is(err, logstore.ErrUnknownTopic) {
		t.Fatalf("Splits of a missing topic: %v", err)
	}
	if _, err := ParseStart("newest"); err == nil {
		t.Fatal("ParseStart accepted newest")
	}
}

// A restored position continues exactly after the last record read, for
// every cut point.
func TestPositionSeekResumesExactly(t *testing.T) {
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	p := part(t, tp, 0)
	var all []string
	for b := range 6 {
		var vals []string
		for i := range 1 + b {
			vals = append(vals, fmt.Sprintf("%d.%d", b, i))
		}
		appendValues(t, p, vals...)
		all = append(all, vals...)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for cut := 0; cut <= len(all); cut++ {
		src, _ := NewSource(l, SourceConfig{Topic: "t", Bounded: true})
		first := splits(t, src)[0]
		var got []string
		for len(got) < cut {
			dst := make([]connector.Message, min(cut-len(got), 1+rng.IntN(4)))
			n, err := first.Read(context.Background(), dst)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, values(dst[:n])...)
		}
		second := splits(t, src)[0]
		if err := second.Seek(first.Position()); err != nil {
			t.Fatal(err)
		}
		got = append(got, values(readAll(t, second, rng))...)
		if !slices.Equal(got, all) {
			t.Fatalf("cut %d: got %v, want %v", cut, got, all)
		}
	}
	if err := splits(t, mustSource(t, l, "t"))[0].Seek([]byte{1, 2}); !errors.Is(err, stream.ErrBadPosition) {
		t.Fatalf("Seek of 2 bytes: %v", err)
	}
}

func mustSource(t *testing.T, l *logstore.Log, topic string) *Source {
	t.Helper()
	src, err := NewSource(l, SourceConfig{Topic: topic, Bounded: true})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func txnBatch(t *testing.T, pid int64, seq int32, vals ...string) []byte {
	t.Helper()
	recs := make([]record.Record, len(vals))
	for i, v := range vals {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000, Value: []byte(v)}
	}
	b, err := record.AppendBatch(nil, recs, record.BatchOptions{ProducerID: pid, BaseSequence: seq, Idempotent: true, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadCommittedSkipsAbortedAndStopsAtLastStable(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	p := part(t, tp, 0)
	appendValues(t, p, "plain1")
	mustAppend := func(b []byte) {
		t.Helper()
		if _, err := p.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	marker := func(pid int64, commit bool) {
		t.Helper()
		if _, err := p.WriteTxnMarker(ctx, pid, 0, commit); err != nil {
			t.Fatal(err)
		}
	}
	// Interleaved: producer 1 aborts, producer 2 commits.
	mustAppend(txnBatch(t, 1, 0, "abort1", "abort2"))
	mustAppend(txnBatch(t, 2, 0, "commit1"))
	mustAppend(txnBatch(t, 1, 2, "abort3"))
	marker(1, false)
	mustAppend(txnBatch(t, 2, 1, "commit2"))
	marker(2, true)
	appendValues(t, p, "plain2")
	// Producer 3 leaves a transaction open: the last stable offset stops
	// before it, and so does a read_committed reader.
	mustAppend(txnBatch(t, 3, 0, "open1"))
	appendValues(t, p, "plain3")

	committed := []string{"plain1", "commit1", "commit2", "plain2"}
	src := mustSource(t, l, "t")
	sp := splits(t, src)[0]
	if got := values(readAll(t, sp, rand.New(rand.NewPCG(7, 8)))); !slices.Equal(got, committed) {
		t.Fatalf("read_committed: got %v, want %v", got, committed)
	}
	unc, _ := NewSource(l, SourceConfig{Topic: "t", Bounded: true, Isolation: ReadUncommitted})
	wantAll := []string{"plain1", "abort1", "abort2", "commit1", "abort3", "commit2", "plain2", "open1", "plain3"}
	if got := values(readAll(t, splits(t, unc)[0], rand.New(rand.NewPCG(9, 10)))); !slices.Equal(got, wantAll) {
		t.Fatalf("read_uncommitted: got %v, want %v", got, wantAll)
	}

	// An unbounded reader waits at the open transaction and goes on once it
	// commits.
	live, _ := NewSource(l, SourceConfig{Topic: "t", PollInterval: 20 * time.Millisecond})
	lsp := splits(t, live)[0]
	got := readUntil(t, lsp, len(committed))
	if !slices.Equal(values(got), committed) {
		t.Fatalf("live before commit: %v", values(got))
	}
	n, err := lsp.Read(ctx, make([]connector.Message, 4))
	if n != 0 || err != nil {
		t.Fatalf("read behind an open transaction: %d, %v", n, err)
	}
	marker(3, true)
	got = readUntil(t, lsp, 2)
	if want := []string{"open1", "plain3"}; !slices.Equal(values(got), want) {
		t.Fatalf("live after commit: got %v, want %v", values(got), want)
	}
}

// readUntil reads an unbounded split until it returned n messages, failing
// after a generous deadline.
func readUntil(t *testing.T, sp stream.Split[connector.Message], n int) []connector.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []connector.Message
	for len(out) < n {
		dst := make([]connector.Message, n-len(out))
		k, err := sp.Read(ctx, dst)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, dst[:k]...)
	}
	return out
}

func TestUnboundedSeesAppendsWhileWaiting(t *testing.T) {
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	p := part(t, tp, 0)
	src, _ := NewSource(l, SourceConfig{Topic: "t", Start: StartLatest, PollInterval: time.Hour})
	sp := splits(t, src)[0]
	done := make(chan []connector.Message)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		dst := make([]connector.Message, 10)
		n, _ := sp.Read(ctx, dst) // blocks in Wait: the poll interval is long
		done <- dst[:n]
	}()
	appendValues(t, p, "x", "y")
	if got := values(<-done); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("got %v", got)
	}
}

func TestDataLostToRetention(t *testing.T) {
	l := openLog(t)
	if err := l.CreateTopic("t", logstore.TopicConfig{Partitions: 1, SegmentBytes: 1024, RetentionBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("t")
	p := part(t, tp, 0)
	for range 20 {
		appendValues(t, p, string(make([]byte, 300)))
	}
	if err := l.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	if start, _, _ := p.Offsets(); start == 0 {
		t.Fatal("retention deleted nothing")
	}
	sp := splits(t, mustSource(t, l, "t"))[0]
	if err := sp.Seek(make([]byte, 8)); err != nil { // offset 0, deleted
		t.Fatal(err)
	}
	if _, err := sp.Read(context.Background(), make([]connector.Message, 1)); !errors.Is(err, ErrDataLost) {
		t.Fatalf("Read at a deleted offset: %v", err)
	}
}

// The sink places keyed records where Kafka's partitioner says, keeps each
// partition's order, and a bounded source reads back exactly what was
// written: end to end through the stream runtime.
func TestSinkThenSourceThroughPipeline(t *testing.T) {
	l := openLog(t)
	createTopic(t, l, "in", 3)
	const n = 3000
	msgs := make([]connector.Message, n)
	for i := range msgs {
		msgs[i] = connector.Message{
			Key:     fmt.Appendf(nil, "user-%d", i%17),
			Value:   fmt.Appendf(nil, "%d", i),
			Headers: []connector.Header{{Key: "h", Value: []byte("v")}},
		}
	}
	sink, err := NewSink(l, SinkConfig{Topic: "in", MaxBatchBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(1))
	stream.To(stream.FromSource(env, "gen", stream.FromSlice(msgs, 1), stream.WatermarkStrategy[connector.Message]{}), stream.Sink[connector.Message](sink))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}

	out, err := NewSink(l, SinkConfig{Topic: "out", CreatePartitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	env = stream.New(stream.WithParallelism(2))
	got := stream.Collect(stream.FromSource(env, "log", mustSource(t, l, "in"), stream.WatermarkStrategy[connector.Message]{}))
	// Unkeyed copy to a second, auto-created topic.
	copied := stream.Map(stream.FromSource(env, "log2", mustSource(t, l, "in"), stream.WatermarkStrategy[connector.Message]{}),
		func(m connector.Message) connector.Message { m.Key = nil; return m })
	stream.To(copied, stream.Sink[connector.Message](out))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	vals := got.Values()
	if len(vals) != n {
		t.Fatalf("read %d messages, want %d", len(vals), n)
	}
	lastPerKey := map[string]int{}
	for _, m := range vals {
		var i int
		fmt.Sscan(string(m.Value), &i)
		wantPart := record.KafkaPartition(m.Key, 3)
		if m.Origin != fmt.Sprintf("in/%d", wantPart) {
			t.Fatalf("key %s in %s, want partition %d", m.Key, m.Origin, wantPart)
		}
		if prev, ok := lastPerKey[string(m.Key)]; ok && prev > i {
			t.Fatalf("key %s: %d after %d", m.Key, i, prev)
		}
		lastPerKey[string(m.Key)] = i
		if len(m.Headers) != 1 || m.Headers[0].Key != "h" || string(m.Headers[0].Value) != "v" {
			t.Fatalf("headers %+v", m.Headers)
		}
	}
	tout, err := l.Topic("out")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for p := range tout.NumPartitions() {
		_, hw, _ := part(t, tout, p).Offsets()
		if hw == 0 {
			t.Errorf("round robin left partition %d empty", p)
		}
		total += hw
	}
	if total != n {
		t.Fatalf("copied %d records, want %d", total, n)
	}
}

func TestSinkMissingTopic(t *testing.T) {
	l := openLog(t)
	s, err := NewSink(l, SinkConfig{Topic: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(context.Background(), stream.SubtaskInfo{}); !errors.Is(err, logstore.ErrUnknownTopic) {
		t.Fatalf("Open: %v", err)
	}
}

// A random history of plain appends and transactions of several producers,
// committed or aborted, interleaved: a read_committed reader with random
// read sizes, cut and resumed at random positions, returns exactly the
// oracle's committed records in offset order.
func TestReadCommittedProperty(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			ctx := context.Background()
			l := openLog(t)
			p := part(t, createTopic(t, l, "t", 1), 0)
			type txn struct {
				vals []string
				seq  int32
			}
			open := map[int64]*txn{}
			var want []string
			n := 0
			next := func() string { n++; return fmt.Sprintf("r%d", n) }
			for range 60 {
				pid := int64(1 + rng.IntN(3))
				switch op := rng.IntN(4); {
				case op == 0:
					v := next()
					appendValues(t, p, v)
					want = append(want, v)
				case op == 1 || open[pid] == nil:
					tx := open[pid]
					if tx == nil {
						tx = &txn{}
						open[pid] = tx
					}
					var vals []string
					for range 1 + rng.IntN(3) {
						vals = append(vals, next())
					}
					if _, err := p.Append(ctx, txnBatch(t, pid, tx.seq, vals...)); err != nil {
						t.Fatal(err)
					}
					tx.seq += int32(len(vals))
					tx.vals = append(tx.vals, vals...)
				default:
					commit := rng.IntN(2) == 0
					if _, err := p.WriteTxnMarker(ctx, pid, 0, commit); err != nil {
						t.Fatal(err)
					}
					if commit {
						// Committed records come in offset order, which
						// interleaves with other producers: recomputed below.
						want = append(want, open[pid].vals...)
					}
					open[pid].vals = nil
				}
			}
			// Close every open transaction by aborting it.
			for pid, tx := range open {
				if len(tx.vals) > 0 {
					if _, err := p.WriteTxnMarker(ctx, pid, 0, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The oracle in offset order: the committed values sorted by
			// the offset read_uncommitted reports for them.
			unc, _ := NewSource(l, SourceConfig{Topic: "t", Bounded: true, Isolation: ReadUncommitted})
			all := readAll(t, splits(t, unc)[0], rng)
			isWanted := map[string]bool{}
			for _, v := range want {
				isWanted[v] = true
			}
			var oracle []string
			for _, m := range all {
				if isWanted[string(m.Value)] {
					oracle = append(oracle, string(m.Value))
				}
			}
			if len(oracle) != len(want) {
				t.Fatalf("oracle has %d records, want %d", len(oracle), len(want))
			}

			src := mustSource(t, l, "t")
			sp := splits(t, src)[0]
			var got []string
			for {
				dst := make([]connector.Message, 1+rng.IntN(5))
				k, err := sp.Read(ctx, dst)
				got = append(got, values(dst[:k])...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if rng.IntN(4) == 0 { // restart from the position
					pos := sp.Position()
					sp = splits(t, src)[0]
					if err := sp.Seek(pos); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !slices.Equal(got, oracle) {
				t.Fatalf("got %v\nwant %v", got, oracle)
			}
		})
	}
}

// TestSinkKeepsWithinMaxMessageBytes: the sink splits its batches to fit
// the topic's max.message.bytes, which the log enforces, set before or
// while it writes.
func TestSinkKeepsWithinMaxMessageBytes(t *testing.T) {
	l := openLog(t)
	if err := l.CreateTopic("small-batches", logstore.TopicConfig{Partitions: 1, MaxMessageBytes: 2048}); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(l, SinkConfig{Topic: "small-batches"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Open(context.Background(), stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]connector.Message, 100)
	for i := range msgs {
		msgs[i] = connector.Message{Value: make([]byte, 100)}
	}
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatalf("10 KB of records to a topic with max.message.bytes 2048: %v", err)
	}
	v := "1024"
	if _, err := l.AlterTopicConfig("small-batches", false, func(c *logstore.TopicConfig) error {
		return c.SetConfig("max.message.bytes", &v)
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatalf("after lowering max.message.bytes to 1024: %v", err)
	}
	tp, _ := l.Topic("small-batches")
	p, _ := tp.Partition(0)
	if hw := p.Stats().HighWatermark; hw != 200 {
		t.Fatalf("high watermark %d, want 200", hw)
	}
}
