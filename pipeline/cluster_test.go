package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

// clusterSpec is a keyed tumbling window whose key (user) differs from
// the source's partitioning (region), so it crosses a repartition topic.
const clusterSpec = `
name: revenue
cluster: {brokers: [%q], application_id: %s, commit_interval: 100ms, session_timeout: 6s}
source:
  kafka: {topic: orders}
  format: json
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - filter: amount >= 0
  - set: {amount2: amount * 2}
  - window: {key: [user], tumbling: 10s, aggregate: {n: count(), total: sum(amount2)}}
  - filter: n > 0
sink:
  kafka: {topic: revenue, key: user}
delivery: %s
`

// clusterInput writes n orders over 4 partitions keyed by region, with
// event times slightly out of order, then one far-future order per
// partition that pushes every watermark past the real windows. It
// returns the expected window results (user|start -> "n total").
func clusterInput(t *testing.T, cl *kgo.Client, n int) map[string]string {
	t.Helper()
	produceOrders(t, cl, 0, n)
	produceEnd(t, cl)
	return wantOrders(n)
}

// order is order number i: its record, user and window start.
func order(i int) (*kgo.Record, string, int64, int64) {
	base := int64(1_700_000_000_000)
	user := fmt.Sprintf("u%d", i%13)
	ts := base + int64(i)*37 - int64(i%5)*100
	amount := int64(i % 100)
	region := fmt.Sprintf("r%d", i%7)
	b, _ := json.Marshal(map[string]any{"user": user, "amount": amount, "ts": ts, "region": region})
	return &kgo.Record{Topic: "orders", Partition: int32(i % 4), Key: []byte(region), Value: b}, user, ts - ts%10_000, amount
}

func produceOrders(t *testing.T, cl *kgo.Client, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		r, _, _, _ := order(i)
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceEnd writes one far-future order per partition, which pushes
// every watermark past the real windows.
func produceEnd(t *testing.T, cl *kgo.Client) {
	t.Helper()
	for p := range int32(4) {
		b, _ := json.Marshal(map[string]any{"user": "end", "amount": 0, "ts": int64(1_700_000_000_000) + 10_000_000})
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Partition: p, Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// wantOrders is the single-process result of orders 0..n-1 (user|start
// -> "n total").
func wantOrders(n int) map[string]string {
	want := map[string][2]int64{}
	for i := range n {
		_, user, start, amount := order(i)
		k := fmt.Sprintf("%s|%d", user, start)
		w := want[k]
		w[0]++
		w[1] += amount * 2
		want[k] = w
	}
	out := map[string]string{}
	for k, w := range want {
		out[k] = fmt.Sprintf("%d %d", w[0], w[1])
	}
	return out
}

// readResults reads the committed output until it holds want's count of
// results (or the deadline), and returns every result with its count.
func readResults(t *testing.T, addr string, want int, deadline time.Duration) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	readCommitted(t, addr, "revenue", want, deadline, func(r *kgo.Record) bool {
		var v struct {
			User        string `json:"user"`
			WindowStart int64  `json:"window_start"`
			N           int64  `json:"n"`
			Total       int64  `json:"total"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Errorf("output %s: %v", r.Value, err)
			return false
		}
		if v.User == "end" {
			return false
		}
		k := fmt.Sprintf("%s|%d", v.User, v.WindowStart)
		got[k] = append(got[k], fmt.Sprintf("%d %d", v.N, v.Total))
		return true
	})
	return got
}

// readCommitted reads topic's committed records from its start and gives
// each to take, which says whether it counts, until n have counted or
// the deadline has passed.
func readCommitted(t *testing.T, addr, topic string, n int, deadline time.Duration, take func(*kgo.Record) bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	count := 0
	end := time.Now().Add(deadline)
	for count < n && time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if take(r) {
				count++
			}
		})
	}
}

func checkResults(t *testing.T, got map[string][]string, want map[string]string) {
	t.Helper()
	var bad []string
	for k, w := range want {
		g := got[k]
		if len(g) != 1 || g[0] != w {
			bad = append(bad, fmt.Sprintf("%s: want [%s], got %v", k, w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("%s: unexpected %v", k, g))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("... %d more", len(bad)-10))
		}
		t.Fatalf("%d of %d windows wrong:\n%s", len(bad), len(want), fmt.Sprint(bad))
	}
}

// clusterTopology parses and compiles the spec in data (named file) and
// returns the cluster configuration and topology of instance id.
func clusterTopology(t *testing.T, ctx context.Context, file string, data []byte, id string) (cluster.Config, *cluster.Topology) {
	t.Helper()
	spec, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg, topo, err := plan.ClusterTopology(ctx, nil, ClusterOverrides{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, topo
}

func startClusterInstances(t *testing.T, ctx context.Context, addr, app, delivery string, ids ...string) []chan error {
	t.Helper()
	spec, err := Parse("revenue.yaml", fmt.Appendf(nil, clusterSpec, addr, app, delivery))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var done []chan error
	for _, id := range ids {
		cfg, topo, err := plan.ClusterTopology(ctx, nil, ClusterOverrides{InstanceID: id})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := cluster.New(ctx, cfg, topo)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan error, 1)
		go func() { ch <- inst.Run(ctx) }()
		done = append(done, ch)
	}
	return done
}

func TestClusterWindowAcrossInstances(t *testing.T) {
	for _, delivery := range []string{DeliveryExactlyOnce, DeliveryAtLeastOnce} {
		t.Run(delivery, func(t *testing.T) {
			srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
			cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			adm := kadm.NewClient(cl)
			if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, "orders"); err != nil {
				t.Fatal(err)
			}
			want := clusterInput(t, cl, 3000)
			ctx, cancel := context.WithCancel(context.Background())
			done := startClusterInstances(t, ctx, srv.Addr, "rev-"+delivery[:5], delivery, "a", "b", "c")
			var once sync.Once
			stop := func() {
				once.Do(func() {
					cancel()
					for _, ch := range done {
						if err := <-ch; err != nil {
							t.Errorf("instance: %v", err)
						}
					}
				})
			}
			defer stop()
			got := readResults(t, srv.Addr, len(want), 60*time.Second)
			stop()
			if delivery == DeliveryExactlyOnce {
				checkResults(t, got, want)
				return
			}
			// At-least-once: every window present with the right result
			// (a rebalance may repeat one).
			for k, w := range want {
				if g := got[k]; len(g) == 0 || g[0] != w {
					t.Fatalf("%s: want %s, got %v", k, w, g)
				}
			}
		})
	}
}

// TestClusterHTTPIngest: an http source runs on every instance and writes
// into the ingest topic; requests sent to either instance end up in one
// exact result.
func TestClusterHTTPIngest(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	const specText = `
name: hits
cluster: {brokers: [%q], application_id: hits, commit_interval: 100ms, session_timeout: 6s, partitions: 2}
source:
  http: {addr: "127.0.0.1:0"}
  format: json
  event_time: {field: ts, max_out_of_orderness: 0s, idle_timeout: 3s}
steps:
  - window: {key: [user], tumbling: 10s, aggregate: {n: count()}}
sink:
  kafka: {topic: revenue, key: user}
delivery: exactly_once
`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var addrs []string
	var done []chan error
	for _, id := range []string{"a", "b"} {
		spec, err := Parse("hits.yaml", fmt.Appendf(nil, specText, srv.Addr))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := Compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		srcs := make(chan interface{ Addr() string }, 1)
		host := &Host{DataDir: t.TempDir(), OnSourceOpen: func(_ string, s stream.Source[connector.Message]) {
			if a, ok := s.(interface{ Addr() string }); ok {
				srcs <- a
			}
		}}
		cp, err := plan.Cluster(ctx, host, ClusterOverrides{InstanceID: id})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := cluster.New(ctx, cp.Config, cp.Topology)
		if err != nil {
			t.Fatal(err)
		}
		job, err := cp.Ingest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = job.Wait() }()
		addrs = append(addrs, (<-srcs).Addr())
		ch := make(chan error, 1)
		go func() { ch <- inst.Run(ctx) }()
		done = append(done, ch)
	}
	base := int64(1_700_000_000_000)
	want := map[string]string{}
	counts := map[string]int{}
	post := func(addr, body string) {
		resp, err := http.Post("http://"+addr+"/ingest", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST: %s", resp.Status)
		}
	}
	for r := range 100 {
		var lines []string
		for j := range 4 {
			i := r*4 + j
			user := fmt.Sprintf("u%d", i%5)
			ts := base + int64(i)*100
			lines = append(lines, fmt.Sprintf(`{"user":%q,"ts":%d}`, user, ts))
			counts[fmt.Sprintf("%s|%d", user, ts-ts%10_000)]++
		}
		post(addrs[r%2], strings.Join(lines, "\n"))
	}
	// Every record is committed to the ingest topic (requests are answered
	// after their commit); far-future records close the windows, and a
	// partition that gets none goes idle (idle_timeout: long enough that
	// no partition goes idle between two requests on a loaded machine).
	for i := range 4 {
		post(addrs[i%2], fmt.Sprintf(`{"user":"end","ts":%d}`, base+10_000_000))
	}
	for k, n := range counts {
		want[k] = fmt.Sprintf("%d 0", n)
	}
	got := readResults(t, srv.Addr, len(want), 60*time.Second)
	cancel()
	for _, ch := range done {
		if err := <-ch; err != nil {
			t.Errorf("instance: %v", err)
		}
	}
	checkResults(t, got, want)
}

// TestClusterLocalStateSnapshot: an instance that stops writes its tasks'
// state to its data dir; started again under the same instance id it
// loads it and reads no changelog record written before, and the result
// stays exact.
func TestClusterLocalStateSnapshot(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	spec, err := Parse("revenue.yaml", fmt.Appendf(nil, clusterSpec, srv.Addr, "snap", DeliveryExactlyOnce))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	run := func(until func() bool) cluster.Status {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cp, err := plan.Cluster(ctx, &Host{DataDir: dataDir}, ClusterOverrides{InstanceID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := cluster.New(ctx, cp.Config, cp.Topology)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- inst.Run(ctx) }()
		deadline := time.Now().Add(60 * time.Second)
		for !until() {
			if time.Now().After(deadline) {
				t.Fatal("the instance did not get there within 60 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		st := inst.Status(context.Background())
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return st
	}
	// First run: half the orders (no end marker: the last windows stay
	// open, their state in the changelog).
	produceOrders(t, cl, 0, 1500)
	want := wantOrders(3000)
	adm := kadm.NewClient(cl)
	// The first run stops once the orders are consumed and the window
	// tasks committed progress on their repartition topic (so that they
	// hold state to snapshot).
	consumed := func() bool {
		offs, err := adm.FetchOffsets(context.Background(), "snap")
		if err != nil {
			return false
		}
		var n, rep int64
		offs.Each(func(o kadm.OffsetResponse) {
			switch o.Topic {
			case "orders":
				n += o.At
			case "snap-step2-window-repartition":
				rep += max(o.At, 0)
			}
		})
		return n >= 1500 && rep > 0
	}
	var got map[string][]string
	first := run(consumed)
	files, _ := filepath.Glob(filepath.Join(dataDir, "cluster", "snap", "a", "*.state"))
	if len(files) == 0 {
		t.Fatalf("no state snapshot written (status %+v)", first)
	}
	// Second run: it loads the snapshots and finishes the job.
	produceOrders(t, cl, 1500, 3000)
	produceEnd(t, cl)
	second := run(func() bool {
		got = readResults(t, srv.Addr, len(want), 200*time.Millisecond)
		n := 0
		for _, g := range got {
			n += len(g)
		}
		return n >= len(want)
	})
	if second.RestoreRecords != 0 {
		t.Errorf("the second run read %d changelog records; its snapshots were current", second.RestoreRecords)
	}
	checkResults(t, got, want)
}

// TestClusterStandbyReplicas: with standby_replicas: 1 each of two
// instances keeps a warm copy of the other's window tasks; when one
// stops, the other takes its tasks over from the standbys, reading only
// the changelog records the standby had not applied, and the result is
// exact.
func TestClusterStandbyReplicas(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(fmt.Sprintf(clusterSpec, srv.Addr, "stby", DeliveryExactlyOnce), "session_timeout: 6s}", "session_timeout: 6s, standby_replicas: 1}", 1)
	spec, err := Parse("revenue.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	type running struct {
		inst   *cluster.Instance
		cancel context.CancelFunc
		done   chan error
	}
	start := func(id string) running {
		ctx, cancel := context.WithCancel(context.Background())
		cp, err := plan.Cluster(ctx, &Host{}, ClusterOverrides{InstanceID: id})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := cluster.New(ctx, cp.Config, cp.Topology)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- inst.Run(ctx) }()
		return running{inst, cancel, done}
	}
	a, b := start("a"), start("b")
	defer func() {
		b.cancel()
		<-b.done
	}()
	produceOrders(t, cl, 0, 1500)
	// Wait until each instance owns window tasks and follows the other's.
	deadline := time.Now().Add(60 * time.Second)
	for {
		sa, sb := a.inst.Status(context.Background()), b.inst.Status(context.Background())
		if len(sa.Standbys) > 0 && len(sb.Standbys) > 0 && len(sa.Standbys)+len(sb.Standbys) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standbys not placed: a %v, b %v", sa.Standbys, sb.Standbys)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let a commit what it read and b's standbys catch up with a's
	// changelog, then stop a (it leaves the group: b takes its tasks at
	// once).
	adm := kadm.NewClient(cl)
	consumedAll := func() bool {
		offs, err := adm.FetchOffsets(context.Background(), "stby")
		if err != nil {
			return false
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == "orders" {
				n += o.At
			}
		})
		return n >= 1500
	}
	for {
		ends, err := adm.ListCommittedOffsets(context.Background(), "stby-step2-window-changelog")
		caughtUp := err == nil && consumedAll()
		sb := b.inst.Status(context.Background())
		if caughtUp {
			for _, s := range sb.Standbys {
				if o, ok := ends.Lookup(s.Topic, int32(s.ID[len(s.ID)-1]-'0')); !ok || o.Offset != s.Offset || o.Offset == 0 {
					caughtUp = false
				}
			}
		}
		if caughtUp && len(sb.Standbys) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's standbys did not catch up: %+v", sb.Standbys)
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := b.inst.Status(context.Background()).RestoreRecords
	a.cancel()
	if err := <-a.done; err != nil {
		t.Fatal(err)
	}
	produceOrders(t, cl, 1500, 3000)
	produceEnd(t, cl)
	want := wantOrders(3000)
	got := readResults(t, srv.Addr, len(want), 60*time.Second)
	checkResults(t, got, want)
	st := b.inst.Status(context.Background())
	var owned int
	for _, ts := range st.Tasks {
		if strings.HasSuffix(ts.Topic, "-repartition") {
			owned++
		}
	}
	if owned != 4 {
		t.Fatalf("b owns %d window tasks after a left, want 4", owned)
	}
	// a's last commit on stopping may add a few changelog records after
	// the standbys caught up; the rest the standbys had.
	if d := st.RestoreRecords - before; d > 20 {
		t.Errorf("b read %d changelog records to take over a's tasks; its standbys had them", d)
	}
}
