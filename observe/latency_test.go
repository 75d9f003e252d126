package observe

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/stream"
)

// latencyJob is a fakeJob that reports latency histograms.
type latencyJob struct {
	*fakeJob
	hs []stream.LatencyHistogram
}

func (j *latencyJob) Latency() []stream.LatencyHistogram { return j.hs }

// hist builds a histogram over the engine's bounds with n observations of
// d each.
func hist(kind, op, stage string, prev stream.LatencyHistogram, n uint64, d time.Duration) stream.LatencyHistogram {
	bounds := []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond}
	h := stream.LatencyHistogram{Kind: kind, Operator: op, Stage: stage, Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
	if prev.Counts != nil {
		copy(h.Counts, prev.Counts)
		h.Count, h.Sum = prev.Count, prev.Sum
	}
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.Counts[i] += n
	h.Count += n
	h.Sum += time.Duration(n) * d
	return h
}

// TestLatencyExportAndSummary: a job's latency histograms become
// Prometheus histograms (sluice_sink_latency_seconds and friends) and
// per-histogram p50/p99 in the job status, recent ones from the
// observations since the previous sample.
func TestLatencyExportAndSummary(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	write := hist(stream.LatencySink, "out", stream.StageWrite, stream.LatencyHistogram{}, 100, 5*time.Millisecond)
	j := &latencyJob{fakeJob: newFakeJob(sm("out", 0, 1, "out", 0, 0, 0, 0, 0, noWM)), hs: []stream.LatencyHistogram{
		write,
		hist(stream.LatencyMarker, "map", "", stream.LatencyHistogram{}, 3, 500*time.Microsecond),
		hist(stream.LatencyCheckpoint, "", "total", stream.LatencyHistogram{}, 2, 50*time.Millisecond),
	}}
	if _, err := o.Register("etl", j); err != nil {
		t.Fatal(err)
	}
	js, err := o.Sample().Job("etl")
	if err != nil {
		t.Fatal(err)
	}
	if len(js.Latency) != 3 || js.Latency[0].Count != 100 || js.Latency[0].RecentCount != 100 {
		t.Fatalf("first sample latency: %+v", js.Latency)
	}
	// The next interval: 10 records, all slow (50ms); the recent median
	// sees only them.
	j.hs[0] = hist(stream.LatencySink, "out", stream.StageWrite, write, 10, 50*time.Millisecond)
	clk.Advance(time.Second)
	js, err = o.Sample().Job("etl")
	if err != nil {
		t.Fatal(err)
	}
	l := js.Latency[0]
	if l.RecentCount != 10 || l.RecentP50Ms == nil || *l.RecentP50Ms <= 10 || l.P50Ms > 10 {
		t.Fatalf("second sample: %+v (recent p50 %v)", l, l.RecentP50Ms)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sluice_sink_latency_seconds":     "stage",
		"sluice_operator_latency_seconds": "operator",
		"sluice_checkpoint_phase_seconds": "phase",
	}
	for _, mf := range mfs {
		label, ok := want[mf.GetName()]
		if !ok {
			continue
		}
		delete(want, mf.GetName())
		m := mf.GetMetric()[0]
		if m.GetHistogram() == nil {
			t.Fatalf("%s is not a histogram", mf.GetName())
		}
		found := false
		for _, lp := range m.GetLabel() {
			found = found || lp.GetName() == label
		}
		if !found {
			t.Fatalf("%s lacks label %s", mf.GetName(), label)
		}
		if mf.GetName() == "sluice_sink_latency_seconds" && m.GetHistogram().GetSampleCount() != 110 {
			t.Fatalf("sink latency count %d, want 110", m.GetHistogram().GetSampleCount())
		}
	}
	if len(want) > 0 {
		t.Fatalf("metrics missing: %v", want)
	}
}
