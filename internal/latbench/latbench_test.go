package latbench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestValueRoundTrip(t *testing.T) {
	for _, size := range []int{1, 40, 100, 1000} {
		v := appendValue(nil, 12345, 987654321012, size)
		if size >= 60 && len(v) != size {
			t.Fatalf("size %d: value has %d bytes: %s", size, len(v), v)
		}
		var m map[string]any
		if err := yaml.Unmarshal(v, &m); err != nil {
			t.Fatalf("size %d: not JSON: %v: %s", size, err, v)
		}
		if seq, ok := intField(v, "seq"); !ok || seq != 12345 {
			t.Fatalf("seq = %d, %v", seq, ok)
		}
		if sent, ok := intField(v, "sent_ns"); !ok || sent != 987654321012 {
			t.Fatalf("sent_ns = %d, %v", sent, ok)
		}
	}
	// As a pipeline may write them: other order, spaces, floats.
	for in, want := range map[string]int64{
		`{"pad": "x", "sent_ns" : 42}`:  42,
		`{"sent_ns":-7,"seq":1}`:        -7,
		`{"sent_ns":1.5e3}`:             1500,
		`{"seq":1,"sent_ns":123}`:       123,
		`{"a":{"sent_ns":9},"seq":"x"}`: 9,
	} {
		if got, ok := intField([]byte(in), "sent_ns"); !ok || got != want {
			t.Errorf("%s: got %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{`{}`, `{"sent_ns":"12"}`, `{"sent_ns"}`, `{"sent_ns":`} {
		if _, ok := intField([]byte(in), "sent_ns"); ok {
			t.Errorf("%s: parsed a number", in)
		}
	}
}

func TestScheduleMeasuredWindow(t *testing.T) {
	s := schedule{start: 1000, rate: 4, first: 8, count: 4, total: 12}
	if s.due(0) != 1000 || s.due(8) != 1000+2*int64(time.Second) {
		t.Fatalf("due: %d %d", s.due(0), s.due(8))
	}
	for i, want := range map[int64]bool{-1: false, 7: false, 8: true, 11: true, 12: false} {
		if s.measured(i) != want {
			t.Errorf("measured(%d) = %v", i, !want)
		}
	}
}

func spec(t *testing.T, base string, mode Mode) map[string]any {
	t.Helper()
	out, err := specFor([]byte(base), runSpec{broker: "127.0.0.1:1", inTopic: "IN", outTopic: "OUT", group: "G",
		delivery: mode, interval: 150 * time.Millisecond, checkpointDir: "/tmp/ck"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSpecFillsInBrokerTopicsAndDelivery(t *testing.T) {
	m := spec(t, BuiltinSpec, ExactlyOnce)
	src := m["source"].(map[string]any)["kafka"].(map[string]any)
	sink := m["sink"].(map[string]any)["kafka"].(map[string]any)
	if src["topic"] != "IN" || src["group"] != "G" || src["start"] != "earliest" || src["brokers"].([]any)[0] != "127.0.0.1:1" {
		t.Fatalf("source: %v", src)
	}
	if sink["topic"] != "OUT" || sink["brokers"].([]any)[0] != "127.0.0.1:1" {
		t.Fatalf("sink: %v", sink)
	}
	ck := m["checkpoint"].(map[string]any)
	if m["delivery"] != "exactly_once" || ck["interval"] != "150ms" || ck["dir"] != "/tmp/ck" {
		t.Fatalf("delivery %v checkpoint %v", m["delivery"], ck)
	}

	user := `name: mine
source:
  kafka: {brokers: [elsewhere:9092], topic: orders, partitions: [0], bounded: true}
  format: json
steps:
  - set: {seen: true}
sinks:
  - stdout: {}
  - kafka: {brokers: [elsewhere:9092], topic: enriched, transactional_id: x}
parallelism: 1
`
	m = spec(t, user, AtLeastOnce)
	src = m["source"].(map[string]any)["kafka"].(map[string]any)
	sinks := m["sinks"].([]any)
	sink = sinks[1].(map[string]any)["kafka"].(map[string]any)
	if m["name"] != "mine" || m["parallelism"] != 1 || src["topic"] != "IN" || src["bounded"] != false || src["partitions"] != nil {
		t.Fatalf("user spec: %v", m)
	}
	if sink["topic"] != "OUT" || sink["transactional_id"] != nil || sinks[0].(map[string]any)["stdout"] == nil {
		t.Fatalf("user sinks: %v", sinks)
	}

	for _, bad := range []string{
		"",
		"source: {file: {path: x}}\nsink: {kafka: {brokers: [a], topic: b}}\n",
		"source: {kafka: {brokers: [a], topic: b}}\nsink: {stdout: {}}\n",
		"source: {kafka: {brokers: [a], topic: b}}\nsinks: [{kafka: {topic: c}}, {kafka: {topic: d}}]\n",
		"source: [\n",
	} {
		if _, err := specFor([]byte(bad), runSpec{delivery: AtLeastOnce}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestWriteSpecLoads checks that the filled-in built-in spec is a valid
// pipeline for both deliveries, and that an invalid user spec is reported
// before any process starts.
func TestWriteSpecLoads(t *testing.T) {
	dir := t.TempDir()
	for _, m := range []Mode{AtLeastOnce, ExactlyOnce} {
		if _, err := writeSpec(dir, []byte(BuiltinSpec), runSpec{broker: "127.0.0.1:1", inTopic: "i", outTopic: "o", group: "g",
			delivery: m, interval: time.Second, checkpointDir: filepath.Join(dir, "ck")}); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	bad := strings.Replace(BuiltinSpec, "map:", "mapp:", 1)
	if _, err := writeSpec(dir, []byte(bad), runSpec{delivery: AtLeastOnce, interval: time.Second}); err == nil || !strings.Contains(err.Error(), "mapp") {
		t.Fatalf("bad spec: %v", err)
	}
}

// TestRunDirect runs the direct mode against an in-process server with
// tiny settings: every measured record arrives once, and the figures are
// ordered. (The pipeline modes need the sluice binary; cmd/sluice's test
// runs them.)
func TestRunDirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	live := &Live{}
	res, err := Run(ctx, Config{DataDir: t.TempDir(), Rate: 500, Duration: 400 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Partitions: 2, Modes: []Mode{Direct}, Live: live})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Modes) != 1 {
		t.Fatalf("modes: %+v", res.Modes)
	}
	m := res.Modes[0]
	if m.Mode != Direct || m.Sent != 200 || m.Received != 200 || m.Missing != 0 || m.Duplicates != 0 || m.Rate <= 0 {
		t.Fatalf("result: %+v", m)
	}
	if !(m.MinLat <= m.P50 && m.P50 <= m.P99 && m.P99 <= m.P999 && m.P999 <= m.Max) {
		t.Fatalf("figures out of order: %+v", m)
	}
	if !strings.Contains(res.String(), "direct") || !strings.Contains(live.Line(), "done") {
		t.Fatalf("output %q, live %q", res.String(), live.Line())
	}
	if _, err := Run(ctx, Config{Modes: []Mode{AtLeastOnce}}); err == nil {
		t.Fatal("pipeline mode without a binary accepted")
	}
	if _, err := Run(ctx, Config{Pipeline: filepath.Join(t.TempDir(), "missing.yaml"), Binary: os.Args[0]}); err == nil {
		t.Fatal("missing spec file accepted")
	}
}
