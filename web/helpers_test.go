package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

// startJob starts a small unbounded stream job: a two-split generator
// stamped two seconds in the past, a chained map, a rebalance into a
// filter and a sink that pauses a millisecond per batch (so the job does
// not burn the CPU and shows backpressure), and a second sink "audit"
// chained to the map (a fan-out). With checkpoints, it takes an
// at-least-once checkpoint every 300 ms. It is cancelled at cleanup.
func startJob(t *testing.T, checkpoints bool) *stream.Job {
	t.Helper()
	opts := []stream.Option{stream.WithParallelism(2), stream.WithBatchSize(64)}
	if checkpoints {
		opts = append(opts, stream.WithCheckpointing(t.TempDir(), 300*time.Millisecond), stream.WithDelivery(stream.AtLeastOnce))
	}
	env := stream.New(opts...)
	src := stream.FromSource(env, "numbers", stream.Generate(-1, 2, func(i int64) [2]int64 {
		return [2]int64{i, time.Now().Add(-2 * time.Second).UnixMilli()}
	}), stream.BoundedOutOfOrderness(func(v [2]int64) int64 { return v[1] }, 500*time.Millisecond))
	sq := stream.Map(src, func(v [2]int64) int64 { return v[0] * v[0] }, stream.Name("square"))
	even := stream.Filter(stream.Rebalance(sq), func(v int64) bool { return v%2 == 0 }, stream.Name("even"), stream.Parallelism(1))
	stream.To(even, stream.SinkFunc[int64](func(ctx context.Context, recs []int64) error {
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond): // throttle: this is the workload, not synchronisation
		}
		return nil
	}), stream.Name("sink"))
	stream.To(sq, stream.SinkFunc[int64](func(context.Context, []int64) error { return nil }), stream.Name("audit"))
	ctx, cancel := context.WithCancel(context.Background())
	j, err := env.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = j.Wait()
	})
	return j
}

// jobGraph is startJob's dataflow, as a command would describe it with
// observe.WithGraph (its plan says the same).
var jobGraph = observe.Graph{
	Vertices: []observe.GraphVertex{{ID: "numbers", Kind: "source"}, {ID: "square", Kind: "map"}, {ID: "even", Kind: "filter"}, {ID: "sink", Kind: "sink"}, {ID: "audit", Kind: "sink"}},
	Edges: []observe.Edge{{From: "numbers", To: "square", Exchange: "chained"}, {From: "square", To: "even", Exchange: "rebalance"},
		{From: "even", To: "sink", Exchange: "chained"}, {From: "square", To: "audit", Exchange: "chained"}},
}

// openLog opens a log in a temporary directory with topic "clicks" of two
// partitions holding a few records.
func openLog(t *testing.T) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := l.CreateTopic("clicks", logstore.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		appendRecords(t, l, "clicks", p, 5+int(p)*3)
	}
	return l
}

func appendRecords(t *testing.T, l *logstore.Log, topic string, p int32, n int) {
	t.Helper()
	tp, err := l.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	part, err := tp.Partition(p)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: time.Now().UnixMilli(), Value: []byte("click")}
	}
	if _, err := part.AppendRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// serve starts s and returns its base URL; it stops at cleanup and the
// test fails if Serve returned an error.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// getJSON GETs url with an optional token and decodes a JSON body into v
// (when not nil); it returns the status code.
func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); v != nil && ct != "application/json" {
		t.Fatalf("GET %s: content type %q, body %s", url, ct, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
