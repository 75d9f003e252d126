package redisstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/faultproxy"
	"github.com/sluicehq/sluice/stream"
)

const testAddr = "127.0.0.1:6379"

// server connects to the local Redis or skips the test.
func server(t testing.TB) *redis.Client {
	t.Helper()
	cli := redis.NewClient(&redis.Options{Addr: testAddr, DialTimeout: 2 * time.Second})
	if err := cli.Ping(context.Background()).Err(); err != nil {
		cli.Close()
		t.Skipf("no Redis at %s: %v", testAddr, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// streamName is a stream unique to the test, deleted afterwards.
func streamName(t testing.TB, cli *redis.Client, name string) string {
	s := fmt.Sprintf("sluice-test-%s-%d", name, time.Now().UnixNano())
	t.Cleanup(func() { cli.Del(context.Background(), s) })
	return s
}

func add(t *testing.T, cli *redis.Client, s string, from, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := cli.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := from; i < from+n; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"value", "m" + strconv.Itoa(i)}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var dbg func()

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			if dbg != nil {
				dbg()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func want(from, n int) []string {
	out := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, "m"+strconv.Itoa(i))
	}
	slices.Sort(out)
	return out
}

func sorted(ms []string) []string {
	out := slices.Clone(ms)
	slices.Sort(out)
	return out
}

func pending(t *testing.T, cli *redis.Client, s, group string) int64 {
	t.Helper()
	p, err := cli.XPending(context.Background(), s, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

func openSplit(t *testing.T, cfg SourceConfig) *split {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	splits, err := src.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return splits[0].(*split)
}

func readN(t *testing.T, sp *split, n int) []string {
	t.Helper()
	var out []string
	buf := make([]connector.Message, 64)
	waitFor(t, fmt.Sprintf("%d entries", n), 20*time.Second, func() bool {
		k, err := sp.Read(context.Background(), buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:k] {
			out = append(out, string(m.Value))
		}
		return len(out) >= n
	})
	return out
}

// TestStreamToStream runs a checkpointed job from one stream through the
// sink into another: every entry once in the output, nothing left pending
// in the group (each acknowledged after its checkpoint), MAXLEN applied.
func TestStreamToStream(t *testing.T) {
	cli := server(t)
	in, out := streamName(t, cli, "in"), streamName(t, cli, "out")
	const n = 3000
	add(t, cli, in, 0, n)
	src, err := NewSource(SourceConfig{Options: redis.Options{Addr: testAddr}, Stream: in, Group: "g", Consumer: "c1", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(SinkConfig{Options: redis.Options{Addr: testAddr}, Stream: out, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(t.TempDir(), 50*time.Millisecond))
	stream.To(stream.FromSource(env, "redis", src, stream.WatermarkStrategy[connector.Message]{}), stream.Sink[connector.Message](sink))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { job.Cancel(); _ = job.Wait() })
	waitFor(t, "the output and the acknowledgements", 60*time.Second, func() bool {
		return cli.XLen(context.Background(), out).Val() >= n && pending(t, cli, in, "g") == 0 && src.meter.Records.Load() >= n && src.Meter().Lag.Load() == 0
	})
	msgs, err := cli.XRange(context.Background(), out, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Values["value"].(string))
	}
	if !slices.Equal(sorted(got), want(0, n)) {
		t.Fatalf("output: %d entries, want %d each once", len(got), n)
	}
}

// TestMaxLen: the sink caps the stream (approximately by default, exactly
// when asked).
func TestMaxLen(t *testing.T) {
	cli := server(t)
	for _, exact := range []bool{false, true} {
		s := streamName(t, cli, "maxlen")
		sink, err := NewSink(SinkConfig{Options: redis.Options{Addr: testAddr}, Stream: s, MaxLen: 100, Exact: exact, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		w, _ := sink.Open(context.Background(), stream.SubtaskInfo{})
		ms := make([]connector.Message, 1000)
		for i := range ms {
			ms[i] = connector.Message{Key: []byte("k"), Value: []byte("m" + strconv.Itoa(i))}
		}
		if err := w.Write(context.Background(), ms); err != nil {
			t.Fatal(err)
		}
		w.Close(context.Background())
		l := cli.XLen(context.Background(), s).Val()
		if exact && l != 100 || !exact && (l < 100 || l > 300) {
			t.Fatalf("exact %v: length %d, want about 100", exact, l)
		}
		last, _ := cli.XRevRangeN(context.Background(), s, "+", "-", 1).Result()
		if len(last) != 1 || last[0].Values["value"] != "m999" || last[0].Values["key"] != "k" {
			t.Fatalf("last entry %+v", last)
		}
	}
}

// TestRestartAfterCompletedCheckpoint is the crash window: entries
// handed over before a barrier, the checkpoint complete, the process gone
// before XACK. On restart the pending entries the checkpoint covers are
// acknowledged, not handed over again; the others are.
func TestRestartAfterCompletedCheckpoint(t *testing.T) {
	cli := server(t)
	s := streamName(t, cli, "restart")
	add(t, cli, s, 0, 50)
	cfg := SourceConfig{Options: redis.Options{Addr: testAddr}, Stream: s, Group: "g", Consumer: "c1", ClaimIdle: -1}
	sp := openSplit(t, cfg)
	first := readN(t, sp, 20)
	pos := sp.Position()       // barrier; checkpoint completes
	second := readN(t, sp, 10) // read after the barrier, not covered
	sp.Close()                 // crash before any XACK
	if p := pending(t, cli, s, "g"); p != 30 {
		t.Fatalf("%d pending, want 30", p)
	}
	sp2 := openSplit(t, cfg)
	defer sp2.Close()
	if err := sp2.Seek(pos); err != nil {
		t.Fatal(err)
	}
	after := readN(t, sp2, 30)
	if got := sorted(append(first, after...)); !slices.Equal(got, want(0, 50)) {
		t.Fatalf("before the crash %v, after %v", first, after)
	}
	if !slices.Equal(after[:10], second) {
		t.Fatalf("the pending entries not covered came back as %v, want %v", after[:10], second)
	}
	if err := sp2.CommitPosition(context.Background(), sp2.Position()); err != nil {
		t.Fatal(err)
	}
	if p := pending(t, cli, s, "g"); p != 0 {
		t.Fatalf("%d pending after the commit", p)
	}
}

// TestClaimDeadConsumer: a consumer that read entries and died leaves them
// pending; after ClaimIdle another consumer claims them (XAUTOCLAIM) and
// hands them over, and a restart after a checkpoint covering the claims
// does not hand them over again.
func TestClaimDeadConsumer(t *testing.T) {
	cli := server(t)
	s := streamName(t, cli, "claim")
	ctx := context.Background()
	if err := cli.XGroupCreateMkStream(ctx, s, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	add(t, cli, s, 0, 40)
	// The dead consumer reads 15 entries and never acknowledges them.
	if _, err := cli.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{s, ">"}, Count: 15}).Result(); err != nil {
		t.Fatal(err)
	}
	cfg := SourceConfig{Options: redis.Options{Addr: testAddr}, Stream: s, Group: "g", Consumer: "alive", ClaimIdle: 200 * time.Millisecond}
	sp := openSplit(t, cfg)
	got := readN(t, sp, 40) // 25 of its own, then the 15 claimed once idle
	if !slices.Equal(sorted(got), want(0, 40)) {
		t.Fatalf("got %v", got)
	}
	pos := sp.Position()
	sp.Close() // crash before the XACK
	sp2 := openSplit(t, cfg)
	defer sp2.Close()
	if err := sp2.Seek(pos); err != nil {
		t.Fatal(err)
	}
	add(t, cli, s, 40, 5)
	after := readN(t, sp2, 5)
	if !slices.Equal(sorted(after), want(40, 5)) {
		t.Fatalf("after the restart: %v, want only the 5 new entries", after)
	}
	if err := sp2.CommitPosition(ctx, sp2.Position()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no pending entries", 10*time.Second, func() bool { return pending(t, cli, s, "g") == 0 })
	cons, err := cli.XInfoConsumers(ctx, s, "g").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cons {
		if c.Pending != 0 {
			t.Fatalf("consumer %s has %d pending", c.Name, c.Pending)
		}
	}
}

// TestOwnEntriesNotClaimed: entries of the split's own that wait longer
// than ClaimIdle for their checkpoint are not claimed and handed over a
// second time.
func TestOwnEntriesNotClaimed(t *testing.T) {
	cli := server(t)
	s := streamName(t, cli, "own")
	add(t, cli, s, 0, 10)
	cfg := SourceConfig{Options: redis.Options{Addr: testAddr}, Stream: s, Group: "g", Consumer: "c", ClaimIdle: 50 * time.Millisecond, Block: 20 * time.Millisecond}
	sp := openSplit(t, cfg)
	defer sp.Close()
	got := readN(t, sp, 10)
	buf := make([]connector.Message, 64)
	deadline := time.Now().Add(1500 * time.Millisecond) // several claim passes
	for time.Now().Before(deadline) {
		k, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if k > 0 {
			t.Fatalf("handed over again: %v (first %v)", buf[:k], got)
		}
	}
	if err := sp.CommitPosition(context.Background(), sp.Position()); err != nil {
		t.Fatal(err)
	}
	if p := pending(t, cli, s, "g"); p != 0 {
		t.Fatalf("%d pending", p)
	}
}

// TestOutage cuts the connection to Redis (a TCP proxy) under a
// checkpointed job and restores it: the outage is logged, the source
// carries on, every entry reaches the pipeline exactly once and ends
// acknowledged.
func TestOutage(t *testing.T) {
	cli := server(t)
	s := streamName(t, cli, "outage")
	p, err := faultproxy.Start(testAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var lg logs
	const n = 4000
	add(t, cli, s, 0, n/2)
	src, err := NewSource(SourceConfig{Options: redis.Options{Addr: p.Addr(), MaxRetries: -1}, Stream: s, Group: "g", Consumer: "c", Batch: 100, Logger: slog.New(slog.NewTextHandler(&lg, nil))})
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(t.TempDir(), 50*time.Millisecond))
	sink := stream.Collect(stream.Map(stream.FromSource(env, "redis", src, stream.WatermarkStrategy[connector.Message]{}), func(m connector.Message) string { return string(m.Value) }))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { job.Cancel(); _ = job.Wait() })
	dbg = func() {
		t.Logf("len %d pending %d read %d logs:\n%s", sink.Len(), pending(t, cli, s, "g"), src.Meter().Records.Load(), lg.String())
	}
	waitFor(t, "some entries", 30*time.Second, func() bool { return sink.Len() > 300 })
	p.Cut()
	add(t, cli, s, n/2, n/2)
	waitFor(t, "the outage to be logged", 30*time.Second, func() bool { return strings.Contains(lg.String(), "server unreachable") })
	p.Restore()
	waitFor(t, "every entry", 20*time.Second, func() bool { return sink.Len() >= n })
	waitFor(t, "no pending entries", 30*time.Second, func() bool { return pending(t, cli, s, "g") == 0 })
	if got := sorted(sink.Values()); !slices.Equal(got, want(0, n)) {
		t.Fatalf("collected %d entries, want %d each once", len(got), n)
	}
	if !strings.Contains(lg.String(), "reconnected") {
		t.Fatalf("no reconnection logged:\n%s", lg.String())
	}
}

// TestSinkOutage: the sink retries through an outage; nothing is lost.
func TestSinkOutage(t *testing.T) {
	cli := server(t)
	s := streamName(t, cli, "sinkout")
	p, err := faultproxy.Start(testAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var lg logs
	sink, err := NewSink(SinkConfig{Options: redis.Options{Addr: p.Addr(), MaxRetries: -1}, Stream: s, Logger: slog.New(slog.NewTextHandler(&lg, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, _ := sink.Open(ctx, stream.SubtaskInfo{})
	defer w.Close(ctx)
	for b := range 10 {
		if b == 5 {
			p.Cut()
			go func() {
				waitFor(t, "the outage to be logged", 30*time.Second, func() bool { return strings.Contains(lg.String(), "server unreachable") })
				p.Restore()
			}()
		}
		ms := make([]connector.Message, 100)
		for i := range ms {
			ms[i] = connector.Message{Value: []byte("m" + strconv.Itoa(b*100+i))}
		}
		if err := w.Write(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := cli.XRange(ctx, s, "-", "+").Result()
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Values["value"].(string)] = true
	}
	for _, m := range want(0, 1000) {
		if !seen[m] {
			t.Fatalf("entry %s lost", m)
		}
	}
}

// FuzzDecodePosition: positions come from checkpoint files.
func FuzzDecodePosition(f *testing.F) {
	f.Add(position{own: entryID{1700000000000, 3}, claims: []entryID{{1, 2}, {5, 0}}}.encode())
	f.Add(position{}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePosition(b)
		if err != nil {
			if !errors.Is(err, stream.ErrBadPosition) {
				t.Fatalf("error %v is not ErrBadPosition", err)
			}
			return
		}
		q, err := decodePosition(p.encode())
		if err != nil || q.own != p.own || !slices.Equal(q.claims, p.claims) {
			t.Fatalf("%x decodes to %+v, which round-trips to %+v, %v", b, p, q, err)
		}
	})
}
