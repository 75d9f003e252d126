package clusterbench

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestExpectedMatchesNaiveCount checks the expected output against a
// map-based count of the same orders.
func TestExpectedMatchesNaiveCount(t *testing.T) {
	o := orders{n: 5000, keys: 37, parts: 3, span: 45_000}
	type win struct {
		user  int
		start int64
	}
	n, sum := map[win]int64{}, map[win]int64{}
	var amount int64
	for i := range o.n {
		u, a, ts := o.at(i)
		if ts < baseTS || ts >= baseTS+o.span {
			t.Fatalf("order %d: time %d outside the span", i, ts)
		}
		w := win{u, ts - ts%windowMs}
		n[w]++
		sum[w] += a
		amount += a
	}
	e := o.expected()
	if e.windows != int64(len(n)) || e.count != int64(o.n) || e.amount != amount {
		t.Fatalf("expected %+v; naive: %d windows, %d orders, amount %d", e, len(n), o.n, amount)
	}
	// Feeding the naive result to a tally makes it exact; a repeat is a
	// duplicate, a wrong sum or an unknown user makes it inexact.
	tally := newWindowTally(o)
	for w, c := range n {
		tally.add(fmt.Appendf(nil, `{"user":"u%d","window_start":%d,"window_end":%d,"n":%d,"total":%d}`, w.user, w.start, w.start+windowMs, c, sum[w]))
	}
	tally.add([]byte(`{"user":"end","window_start":1,"window_end":2,"n":4,"total":0}`))
	if !tally.exact(e) || tally.end != 1 {
		t.Fatalf("tally of the naive result not exact: %+v", tally)
	}
	for w, c := range n {
		tally.add(fmt.Appendf(nil, `{"user":"u%d","window_start":%d,"window_end":%d,"n":%d,"total":%d}`, w.user, w.start, w.start+windowMs, c, sum[w]))
		break
	}
	if tally.duplicates != 1 || tally.exact(e) {
		t.Fatalf("a repeated window: %+v", tally)
	}
	bad := newWindowTally(o)
	bad.add([]byte(`{"user":"u99999","window_start":1700000000000,"n":1,"total":1}`))
	bad.add([]byte(`{"user":"x","n":1}`))
	if bad.bad != 2 {
		t.Fatalf("bad records not counted: %+v", bad)
	}
}

func TestFields(t *testing.T) {
	v := []byte(`{"user":"u123","window_start":1700000010000,"window_end":1700000020000,"n":7,"total":-5}`)
	if u, ok := userField(v); !ok || u != 123 {
		t.Errorf("user %d %v", u, ok)
	}
	for name, want := range map[string]int64{"window_start": 1700000010000, "n": 7, "total": -5} {
		if got, ok := intField(v, name); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", name, got, ok, want)
		}
	}
	if _, ok := intField(v, "amount"); ok {
		t.Error("a missing field was found")
	}
	if got := string(appendOrder(nil, "u5", 42, 1700000000001)); got != `{"user":"u5","amount":42,"ts":1700000000001}` {
		t.Errorf("order %s", got)
	}
}

// TestSpecsLoad plans every spec the benchmark writes.
func TestSpecsLoad(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"cluster.yaml":      clusterSpec("app1", "orders", "out", "exactly_once", time.Second, 0),
		"cluster-alo.yaml":  clusterSpec("app2", "orders", "out", "at_least_once", 200*time.Millisecond, 3*time.Second),
		"embedded.yaml":     embeddedSpec("127.0.0.1:9092", "g", "orders", "out", "exactly_once", time.Second, dir+"/chk"),
		"dedup.yaml":        dedupSpec("app3", "in", "out", "exactly_once", time.Second, 10*time.Second),
		"embedded-alo.yaml": embeddedSpec("127.0.0.1:9092", "g", "orders", "out", "at_least_once", time.Second, dir+"/chk"),
	} {
		if _, err := writeSpec(dir, name, text); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	m := medianThroughput([]ThroughputRun{{Instances: 2, WallSec: 3, Exact: true}, {Instances: 2, WallSec: 1, Exact: true, Duplicates: 2}, {Instances: 2, WallSec: 2, Exact: false}})
	if m.Instances != 2 || m.WallSec != 2 || m.Exact || m.Duplicates != 2 {
		t.Errorf("medianThroughput: %+v", m)
	}
}

func TestLogLines(t *testing.T) {
	ll, ok := parseLogLine(`{"time":"x","level":"INFO","msg":"cluster: task restored","task":"1_0","records":4945,"bytes":81361,"from":0,"to":4946,"elapsed":14000000}`)
	if !ok || ll.Msg != "cluster: task restored" || ll.Records != 4945 || ll.Bytes != 81361 {
		t.Fatalf("%+v %v", ll, ok)
	}
	if d, err := ll.elapsed(); err != nil || d != 14*time.Millisecond {
		t.Errorf("elapsed %v %v", d, err)
	}
	ll.Elapsed = json.RawMessage(`"1.5s"`)
	if d, err := ll.elapsed(); err != nil || d != 1500*time.Millisecond {
		t.Errorf("elapsed %v %v", d, err)
	}
	if _, ok := parseLogLine("time=x level=INFO msg=hello"); ok {
		t.Error("a text line parsed as JSON")
	}
}

func TestRestoreLog(t *testing.T) {
	l := &restoreLog{}
	w := l.watcher(true)
	before := time.Now()
	w(`{"msg":"cluster: task restored","records":5,"bytes":50,"elapsed":1000000}`, before) // before the kill: ignored
	l.since = before.Add(time.Millisecond)
	at := l.since.Add(time.Second)
	w(`{"msg":"cluster: tasks assigned","assigned":"t[0]","tasks":1}`, at)
	w(`{"msg":"cluster: task restored","records":7,"bytes":70,"elapsed":3000000}`, at)
	w(`{"msg":"cluster: task restored","records":1,"bytes":10,"elapsed":2000000}`, at)
	if !l.assigned.Equal(at) || l.tasks != 2 || l.records != 8 || l.bytes != 80 || l.longest != 3*time.Millisecond {
		t.Fatalf("%+v", l)
	}
}

func TestLiveCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, ok := liveCPU(os.Getpid()); !ok {
		t.Fatal("own CPU time not readable")
	}
	if _, ok := liveCPU(-1); ok {
		t.Fatal("CPU time of no process")
	}
}

func TestGroupSettled(t *testing.T) {
	g := group{state: "Stable", owned: map[string]map[string]int{"i1": {"in": 2, "rep": 2}, "i2": {"in": 2}}}
	if !g.settled(2) || g.settled(3) {
		t.Error("settled")
	}
	g.owned["i2"] = map[string]int{}
	if g.settled(2) {
		t.Error("a member without partitions is not settled")
	}
	g.owned["i2"]["rep"] = 1
	g.state = "CompletingRebalance"
	if g.settled(2) {
		t.Error("a rebalancing group is not settled")
	}
}

func TestResultString(t *testing.T) {
	r := Result{Records: 2_000_000, Keys: 100_000, Partitions: 4, EventSpan: "1m0s", ExpectedWindows: 600_000, Runs: 3, Delivery: "exactly_once", CommitInterval: "1s",
		Throughput: []ThroughputResult{{Instances: 1, Median: ThroughputRun{Instances: 1, WallSec: 10, RecordsPerSec: 200_000, CPUSec: 9, Exact: true}}},
		Embedded:   &ThroughputResult{Median: ThroughputRun{WallSec: 5, CPUSec: 6, Exact: true}}, CPURatio: 1.5,
		Failover: []FailoverResult{{Restart: true, SessionTimeoutSec: 10, Median: FailoverRun{FailoverSec: 2.5, Exact: true}}, {SessionTimeoutSec: 3, Median: FailoverRun{FailoverSec: 7}}}, FailoverKeys: 1_000_000}
	s := r.String()
	for _, want := range []string{"2,000,000 orders", "median of 3 runs", "embedded", "1.50x (target ≤ 1.5x)", "restart with same id", "no restart", "1,000,000 keys", "NO"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
}
