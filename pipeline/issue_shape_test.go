package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	sluicekafka "github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
)

// issueSpec is the pipeline spec of issue 6, verbatim but for the
// placeholders the test fills in (brokers, bounded, directories).
const issueSpec = `name: revenue-per-user
source:
  kafka: {brokers: ["BROKER"], topic: orders, group: revenue, start: earliest, bounded: BOUNDED}
  format: json                       # json | csv | raw
  event_time: {field: ts, max_out_of_orderness: 5s, idle_timeout: 30s}   # ts: epoch milliseconds or RFC 3339
steps:
  - filter: status == "paid"
  - map: {user: user_id, amount: price * qty}      # the record becomes exactly these fields
  - window:
      key: [user]
      tumbling: 1m                   # or  sliding: {size: 1m, slide: 10s}   or  session: {gap: 30s}
      allowed_lateness: 10s
      aggregate: {orders: count(), revenue: sum(amount)}   # count sum min max avg first last count_distinct
sink:
  kafka: {brokers: ["BROKER"], topic: revenue, key: user}
  format: json
parallelism: 4                       # optional; default: the number of cores
delivery: exactly_once               # or at_least_once
checkpoint: {interval: 5s, dir: CKPT}
errors: {tolerance: all, dead_letter: {file: {path: DEAD}}}   # tolerance: none fails the job
`

// TestIssueSpecKafkaToKafka runs the issue's exact spec from a Kafka topic
// to a Kafka topic (franz-go's kfake, and Sluice's own listener), bounded,
// and checks every window record: the key field, window_start/window_end in
// epoch ms, each aggregate by name, with event times given both as epoch
// ms and as RFC 3339; the output is transactional (exactly_once). Bad
// records (unparsable, no event time, failing expression) are
// dead-lettered with error, origin and offset, and counted.
func TestIssueSpecKafkaToKafka(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"), kfake.SeedTopics(1, "revenue"))
		if err != nil {
			t.Fatal(err)
		}
		defer cluster.Close()
		testIssueSpec(t, cluster.ListenAddrs()[0])
	})
	t.Run("sluice", func(t *testing.T) {
		testIssueSpec(t, sluiceServe(t, map[string]int32{"orders": 4, "revenue": 1}))
	})
}

// sluiceServe starts Sluice's own Kafka listener over a fresh log with the
// given topics and partition counts, as `sluice serve` does, and returns
// its address.
func sluiceServe(t *testing.T, topics map[string]int32) string {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for tp, n := range topics {
		if err := l.CreateTopic(tp, logstore.TopicConfig{Partitions: n}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sluicekafka.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	srv, err := sluicekafka.New(l, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, sluicekafka.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		l.Close()
	})
	return ln.Addr().String()
}

func testIssueSpec(t *testing.T, broker string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("orders"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	base := int64(1_700_000_040_000) // a minute boundary
	rfc := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
	in := []string{
		fmt.Sprintf(`{"ts":%d,"status":"paid","user_id":"a","price":2,"qty":3}`, base+1000),
		fmt.Sprintf(`{"ts":"%s","status":"paid","user_id":"a","price":1.5,"qty":2}`, rfc(base+2000)),
		fmt.Sprintf(`{"ts":%d,"status":"open","user_id":"a","price":100,"qty":1}`, base+3000),
		fmt.Sprintf(`{"ts":%d,"status":"paid","user_id":"b","price":4,"qty":1}`, base+4000),
		fmt.Sprintf(`{"ts":"%s","status":"paid","user_id":"b","price":5,"qty":2}`, rfc(base+61_000)),
		`{"ts":` + fmt.Sprint(base+5000) + `,"status":"paid"`,                                 // does not parse
		`{"status":"paid","user_id":"c","price":1,"qty":1}`,                                   // no event time
		fmt.Sprintf(`{"ts":%d,"status":"paid","user_id":"c","price":"x","qty":1}`, base+6000), // expression fails
	}
	for _, l := range in {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(l)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	src := strings.NewReplacer("BROKER", broker, "BOUNDED", "true",
		"CKPT", filepath.Join(dir, "ckpt"), "DEAD", filepath.Join(dir, "dead")).Replace(issueSpec)
	spec, err := Parse("issue.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(ctx, &Host{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if s := j.Summary(); s.Failed != 3 || j.DeadLetters() != 3 {
		t.Fatalf("summary %+v, dead letters %d; want 3 failed", s, j.DeadLetters())
	}
	dead := readParts(t, filepath.Join(dir, "dead"))
	if len(dead) != 3 {
		t.Fatalf("dead letters: %q", dead)
	}
	for _, d := range dead {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("dead letter %q: %v", d, err)
		}
		for _, k := range []string{"error", "origin", "offset", "stage", "record"} {
			if _, ok := m[k]; !ok {
				t.Errorf("dead letter %s lacks %q", d, k)
			}
		}
	}
	// Read the output topic, committed records only.
	rd, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("revenue"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []string
	keys := map[string]string{}
	for len(got) < 3 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out; got %q", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsTransactional() {
				t.Errorf("record %s was not written in a transaction (delivery: exactly_once)", r.Value)
			}
			got = append(got, string(r.Value))
			keys[string(r.Value)] = string(r.Key)
		})
	}
	sort.Strings(got)
	type win struct {
		User    string  `json:"user"`
		Start   int64   `json:"window_start"`
		End     int64   `json:"window_end"`
		Orders  int64   `json:"orders"`
		Revenue float64 `json:"revenue"`
	}
	want := map[string]win{
		fmt.Sprintf("a/%d", base):       {"a", base, base + 60_000, 2, 9},
		fmt.Sprintf("b/%d", base):       {"b", base, base + 60_000, 1, 4},
		fmt.Sprintf("b/%d", base+60000): {"b", base + 60_000, base + 120_000, 1, 10},
	}
	if len(got) != 3 {
		t.Fatalf("output %q; want 3 windows", got)
	}
	for _, g := range got {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(g), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) != 5 {
			t.Errorf("window record %s: want exactly user, window_start, window_end, orders, revenue", g)
		}
		var w win
		if err := json.Unmarshal([]byte(g), &w); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%s/%d", w.User, w.Start)
		if want[k] != w {
			t.Errorf("window %s = %+v; want %+v", k, w, want[k])
		}
		if keys[g] != w.User {
			t.Errorf("record key %q; want %q", keys[g], w.User)
		}
	}
}

// TestKafkaTxnTimeout: a spec's transaction_timeout is the Kafka sink's
// transaction timeout (default 15 minutes), and one not above the
// checkpoint interval is refused: every transaction stays open for about
// an interval, so the broker would abort each. Before, the sink took 15
// minutes whatever the interval (an hour's interval aborted every
// transaction) and the spec could not change it.
func TestKafkaTxnTimeout(t *testing.T) {
	for _, c := range []struct{ set, interval, want time.Duration }{
		{0, 0, 15 * time.Minute},
		{0, 5 * time.Second, 15 * time.Minute},
		{0, time.Minute, 15 * time.Minute},
		{0, time.Hour, 0},
		{0, 15 * time.Minute, 0},
		{2 * time.Hour, time.Hour, 2 * time.Hour},
		{30 * time.Second, time.Minute, 0},
	} {
		got, err := kafkaTxnTimeout(c.set, c.interval)
		if got != c.want || (err != nil) != (c.want == 0) {
			t.Errorf("set %v, interval %v: timeout %v (%v), want %v", c.set, c.interval, got, err, c.want)
		}
	}
	spec := func(timeout string) string {
		return `
source: {log: {topic: in}}
sink: {kafka: {brokers: ["127.0.0.1:1"], topic: out` + timeout + `}}
delivery: exactly_once
checkpoint: {interval: 1h, dir: ` + t.TempDir() + `}
`
	}
	s, err := Parse("t.yaml", []byte(spec(", transaction_timeout: 2h")))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sinks[0].cfg.(*kafkaSinkConfig).cfg.TransactionTimeout; got != 2*time.Hour {
		t.Fatalf("transaction_timeout: 2h parsed as %v", got)
	}
	if _, err := Parse("t.yaml", []byte(spec(", transaction_timeout: 0s"))); err == nil || !strings.Contains(err.Error(), "transaction_timeout") {
		t.Fatalf("transaction_timeout: 0s: %v, want an error naming it", err)
	}
	s, err = Parse("t.yaml", []byte(spec("")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Sinks[0].cfg.(*kafkaSinkConfig).openBytes(&buildCtx{exactlyOnce: true, checkpointInterval: time.Hour, pipeline: "p"})
	if err == nil || !strings.Contains(err.Error(), "transaction_timeout") {
		t.Fatalf("the default timeout under a 1h checkpoint interval: %v, want an error naming transaction_timeout", err)
	}
}

// TestKafkaSinkTransactionalIDPerPipeline: two pipelines writing one topic
// under exactly_once get distinct default transactional ids (the same
// id would make each fence the other), stable across runs.
func TestKafkaSinkTransactionalIDPerPipeline(t *testing.T) {
	if a, b := kafkaTxnID("revenue", "out"), kafkaTxnID("clicks", "out"); a == b || a != kafkaTxnID("revenue", "out") {
		t.Fatalf("ids %q and %q", a, b)
	}
}
