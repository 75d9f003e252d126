package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The multi-process tests of cluster mode: real `sluice run` processes
// (this test binary as the command) share a pipeline through a broker,
// are killed, stopped, added and removed, and the committed output
// (read_committed) must equal what one process computes: every window
// exactly once.

// clusterTestSpec is a keyed tumbling window whose key (user) differs from
// the source topic's partitioning, so records cross a repartition topic.
const clusterTestSpec = `name: revenue
cluster: {application_id: %s, commit_interval: 200ms, session_timeout: 6s}
source:
  kafka: {topic: orders}
  format: json
  event_time: {field: ts, max_out_of_orderness: 500ms}
steps:
  - filter: amount >= 0
  - window: {key: [user], tumbling: 1s, aggregate: {n: count(), total: sum(amount)}}
sink:
  kafka: {topic: revenue, key: user}
delivery: exactly_once
`

const clusterBase = int64(1_700_000_000_000)

// clusterOrder is order number i: its partition, record and window.
func clusterOrder(i int) (part int32, value []byte, user string, start, amount int64) {
	user = fmt.Sprintf("u%d", i%17)
	ts := clusterBase + int64(i)*3 - int64(i%7)*40
	amount = int64(i % 100)
	value, _ = json.Marshal(map[string]any{"user": user, "amount": amount, "ts": ts, "region": fmt.Sprintf("r%d", i%5)})
	return int32(i % 4), value, user, ts - ts%1000, amount
}

// clusterWant is the single-process result for orders 0..n-1.
func clusterWant(n int) map[string]string {
	acc := map[string][2]int64{}
	for i := range n {
		_, _, user, start, amount := clusterOrder(i)
		k := fmt.Sprintf("%s|%d", user, start)
		a := acc[k]
		a[0]++
		a[1] += amount
		acc[k] = a
	}
	out := map[string]string{}
	for k, a := range acc {
		out[k] = fmt.Sprintf("%d %d", a[0], a[1])
	}
	return out
}

// clusterFixture is a broker with the orders topic, a spec file and the
// instances started on it.
type clusterFixture struct {
	t      *testing.T
	addr   string
	spec   string
	dir    string
	mu     sync.Mutex
	procs  map[string]*exec.Cmd
	logs   map[string]*strings.Builder
	prod   *kgo.Client
	seeded int
}

func newClusterFixture(t *testing.T, addr, app string) *clusterFixture {
	t.Helper()
	dir := t.TempDir()
	spec := filepath.Join(dir, "revenue.yaml")
	if err := os.WriteFile(spec, fmt.Appendf(nil, clusterTestSpec, app), 0o644); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	adm := kadm.NewClient(prod)
	resp, err := adm.CreateTopic(context.Background(), 4, -1, nil, "orders")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &clusterFixture{t: t, addr: addr, spec: spec, dir: dir, procs: map[string]*exec.Cmd{}, logs: map[string]*strings.Builder{}, prod: prod}
	t.Cleanup(f.killAll)
	return f
}

// produce writes orders [from, to).
func (f *clusterFixture) produce(from, to int) {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		p, v, _, _, _ := clusterOrder(i)
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Key: []byte(fmt.Sprintf("r%d", i%5)), Value: v})
	}
	if err := f.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		f.t.Errorf("producing orders: %v", err)
	}
}

// finish writes one far-future order per partition: every watermark
// passes every real window.
func (f *clusterFixture) finish() {
	for p := range int32(4) {
		b, _ := json.Marshal(map[string]any{"user": "end", "amount": 0, "ts": clusterBase + 1_000_000_000})
		if err := f.prod.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Partition: p, Value: b}).FirstErr(); err != nil {
			f.t.Errorf("producing the end: %v", err)
		}
	}
}

// start runs an instance named id.
func (f *clusterFixture) start(id string) {
	f.t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--cluster", f.addr, "--instance-id", id, "--log-format", "text", "--data-dir", filepath.Join(f.dir, id), f.spec)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
	pr, pw, err := os.Pipe()
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stderr, cmd.Stdout = pw, pw
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	pw.Close()
	f.mu.Lock()
	lb := f.logs[id]
	if lb == nil {
		lb = &strings.Builder{}
		f.logs[id] = lb
	}
	f.procs[id] = cmd
	f.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			f.mu.Lock()
			lb.WriteString(sc.Text() + "\n")
			f.mu.Unlock()
		}
	}()
}

func (f *clusterFixture) signal(id string, sig syscall.Signal) {
	f.mu.Lock()
	cmd := f.procs[id]
	f.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs an instance and waits for it to die.
func (f *clusterFixture) kill(id string) {
	f.mu.Lock()
	cmd := f.procs[id]
	delete(f.procs, id)
	f.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// stop SIGTERMs an instance and waits for it to leave.
func (f *clusterFixture) stop(id string) error {
	f.mu.Lock()
	cmd := f.procs[id]
	delete(f.procs, id)
	f.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("instance %s did not stop within 30 s of SIGTERM", id)
	}
}

func (f *clusterFixture) killAll() {
	f.mu.Lock()
	ids := make([]string, 0, len(f.procs))
	for id := range f.procs {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	for _, id := range ids {
		f.signal(id, syscall.SIGCONT)
		f.kill(id)
	}
	if f.t.Failed() || os.Getenv("SLUICE_TEST_CLUSTER_LOGS") != "" {
		f.mu.Lock()
		for id, lb := range f.logs {
			s := lb.String()
			if len(s) > 6000 {
				s = "...\n" + s[len(s)-6000:]
			}
			f.t.Logf("instance %s log:\n%s", id, s)
		}
		f.mu.Unlock()
	}
}

// output reads the committed output until it holds n results or the
// deadline passes; it also returns the longest wait between two fetches
// that brought output, once output started.
func (f *clusterFixture) output(n int, deadline time.Duration) (map[string][]string, time.Duration) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(f.addr, ",")...), kgo.ConsumeTopics("revenue"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]string{}
	count := 0
	var last time.Time
	var gap time.Duration
	end := time.Now().Add(deadline)
	for count < n && time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		before := count
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				User  string `json:"user"`
				Start int64  `json:"window_start"`
				N     int64  `json:"n"`
				Total int64  `json:"total"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				f.t.Errorf("output %q: %v", r.Value, err)
				return
			}
			if v.User == "end" {
				return
			}
			k := fmt.Sprintf("%s|%d", v.User, v.Start)
			got[k] = append(got[k], fmt.Sprintf("%d %d", v.N, v.Total))
			count++
		})
		if count > before {
			if !last.IsZero() {
				gap = max(gap, time.Since(last))
			}
			last = time.Now()
		}
	}
	return got, gap
}

// exact fails the test unless got holds every window of want once, with
// want's result, and nothing else.
func exact(t *testing.T, got map[string][]string, want map[string]string) {
	t.Helper()
	var bad []string
	for k, w := range want {
		if g := got[k]; len(g) != 1 || g[0] != w {
			bad = append(bad, fmt.Sprintf("%s: want [%s], got %v", k, w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("%s: not expected, got %v", k, g))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		if len(bad) > 12 {
			bad = append(bad[:12], fmt.Sprintf("... and %d more", len(bad)-12))
		}
		t.Fatalf("%d of %d windows wrong:\n%s", len(bad), len(want), strings.Join(bad, "\n"))
	}
}

// clusterSIGKILL is the crash test on a broker at addr: three instances,
// orders produced in steps while instances are killed with SIGKILL at
// random moments and restarted under the same instance id.
func clusterSIGKILL(t *testing.T, addr string) {
	f := newClusterFixture(t, addr, "crash")
	ids := []string{"i1", "i2", "i3"}
	for _, id := range ids {
		f.start(id)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	const n, steps = 24000, 12
	kills := 0
	for s := range steps {
		f.produce(s*n/steps, (s+1)*n/steps)
		time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
		if s%3 == 1 {
			id := ids[rng.IntN(len(ids))]
			f.kill(id)
			kills++
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			f.start(id)
		}
	}
	f.finish()
	want := clusterWant(n)
	got, _ := f.output(len(want), 120*time.Second)
	t.Logf("%d kills, %d windows", kills, len(want))
	exact(t, got, want)
	for _, id := range ids {
		if err := f.stop(id); err != nil {
			t.Errorf("stopping %s: %v", id, err)
		}
	}
}

func TestClusterSIGKILLOnSluiceServe(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	addr, cmd, _ := startServe(t, t.TempDir())
	defer cmd.Process.Kill()
	clusterSIGKILL(t, addr)
}

// waitMembers polls the group until it has n members.
func (f *clusterFixture) waitMembers(app string, n int, within time.Duration) {
	f.t.Helper()
	adm := kadm.NewClient(f.prod)
	end := time.Now().Add(within)
	for time.Now().Before(end) {
		gs, err := adm.DescribeGroups(context.Background(), app)
		if err == nil {
			if g, ok := gs[app]; ok && g.Err == nil && len(g.Members) == n && g.State == "Stable" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("group %s did not reach %d stable members within %v", app, n, within)
}

// TestClusterScaleUpAndDown adds a fourth instance under load and then
// stops one with SIGTERM; the result stays exact, and the longest wait
// between two deliveries of output is reported.
func TestClusterScaleUpAndDown(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	addr, cmd, _ := startServe(t, t.TempDir())
	defer cmd.Process.Kill()
	f := newClusterFixture(t, addr, "scale")
	for _, id := range []string{"i1", "i2", "i3"} {
		f.start(id)
	}
	f.waitMembers("scale", 3, 30*time.Second)
	const n, steps = 24000, 12
	want := clusterWant(n)
	type result struct {
		got map[string][]string
		gap time.Duration
	}
	res := make(chan result, 1)
	go func() {
		got, gap := f.output(len(want), 120*time.Second)
		res <- result{got, gap}
	}()
	for s := range steps {
		f.produce(s*n/steps, (s+1)*n/steps)
		time.Sleep(250 * time.Millisecond)
		switch s {
		case 3:
			f.start("i4")
			f.waitMembers("scale", 4, 30*time.Second)
		case 7:
			if err := f.stop("i2"); err != nil {
				t.Fatal(err)
			}
			f.waitMembers("scale", 3, 30*time.Second)
		}
	}
	f.finish()
	r := <-res
	t.Logf("longest wait between deliveries of output: %v", r.gap)
	exact(t, r.got, want)
}

// TestClusterZombieFenced stops an instance with SIGSTOP until the group
// moved its tasks, then resumes it: whatever it still writes is fenced,
// and the result stays exact.
func TestClusterZombieFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	addr, cmd, _ := startServe(t, t.TempDir())
	defer cmd.Process.Kill()
	f := newClusterFixture(t, addr, "zombie")
	f.start("i1")
	f.start("i2")
	f.waitMembers("zombie", 2, 30*time.Second)
	const n, steps = 16000, 8
	for s := range steps {
		f.produce(s*n/steps, (s+1)*n/steps)
		time.Sleep(200 * time.Millisecond)
		if s == 2 {
			f.signal("i1", syscall.SIGSTOP)
			// The session times out and i2 takes every task.
			f.waitMembers("zombie", 1, 30*time.Second)
		}
		if s == 5 {
			f.signal("i1", syscall.SIGCONT)
		}
	}
	f.finish()
	want := clusterWant(n)
	got, _ := f.output(len(want), 120*time.Second)
	exact(t, got, want)
	// The zombie found out and came back as a new member.
	f.waitMembers("zombie", 2, 30*time.Second)
	f.mu.Lock()
	log := f.logs["i1"].String()
	f.mu.Unlock()
	if !strings.Contains(log, "was fenced") && !strings.Contains(log, "transaction aborted") {
		t.Errorf("instance i1 never noticed it was a zombie:\n%s", log)
	}
	for _, id := range []string{"i1", "i2"} {
		if err := f.stop(id); err != nil {
			t.Errorf("stopping %s: %v", id, err)
		}
	}
}

// TestClusterSIGKILLOnKfake is the crash test against franz-go's kfake, an
// independent Kafka implementation, with three brokers.
func TestClusterSIGKILLOnKfake(t *testing.T) {
	clusterSIGKILL(t, multiProcessKfake(t, 3))
}

// multiProcessKfake skips a multi-process test under -short, else starts
// a kfake cluster of n brokers for it and returns its addresses.
func multiProcessKfake(t *testing.T, n int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// TestClusterSIGKILLFailover kills instances with SIGKILL and does not
// restart them under their id: their tasks move to the others once the
// session times out, and the new owners restore the changelogs past the
// killed instances' open transactions (aborted by the transaction
// timeout). Two of four instances die, one after the other, while orders
// arrive; the result stays exact.
func TestClusterSIGKILLFailover(t *testing.T) {
	f := newClusterFixture(t, multiProcessKfake(t, 1), "failover")
	ids := []string{"i1", "i2", "i3", "i4"}
	for _, id := range ids {
		f.start(id)
	}
	f.waitMembers("failover", 4, 60*time.Second)
	const n, steps = 16000, 8
	for s := range steps {
		f.produce(s*n/steps, (s+1)*n/steps)
		time.Sleep(300 * time.Millisecond)
		switch s {
		case 2:
			f.kill("i2")
		case 5:
			f.waitMembers("failover", 3, 60*time.Second)
			f.kill("i4")
		}
	}
	f.finish()
	want := clusterWant(n)
	got, _ := f.output(len(want), 180*time.Second)
	exact(t, got, want)
	for _, id := range []string{"i1", "i3"} {
		if err := f.stop(id); err != nil {
			t.Errorf("stopping %s: %v", id, err)
		}
	}
}
