package observe

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

func openLog(t *testing.T) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func appendN(t *testing.T, l *logstore.Log, topic string, p int32, n int) {
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
		recs[i] = record.Record{Timestamp: t0.UnixMilli(), Value: []byte("0123456789")}
	}
	if _, err := part.AppendRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func TestTopicsGroupsAndLag(t *testing.T) {
	l := openLog(t)
	if err := l.CreateTopic("clicks", logstore.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	offs, err := logstore.OpenOffsetStore(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	o := New(Options{Log: l, Now: clk.Now})
	o.SetOffsets(offs)
	appendN(t, l, "clicks", 0, 10)
	o.Sample()
	clk.Advance(2 * time.Second)
	appendN(t, l, "clicks", 0, 30)
	appendN(t, l, "clicks", 1, 4)
	if err := offs.Commit(context.Background(), "billing", map[logstore.TopicPartition]logstore.CommittedOffset{
		{Topic: "clicks", Partition: 0}: {Offset: 25, LeaderEpoch: -1},
		{Topic: "gone", Partition: 0}:   {Offset: 3, LeaderEpoch: -1},
	}); err != nil {
		t.Fatal(err)
	}
	snap := o.Sample()
	ts, err := snap.Topic("clicks")
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := ts.Partitions[0], ts.Partitions[1]
	if p0.EarliestOffset != 0 || p0.LatestOffset != 40 || p1.LatestOffset != 4 || ts.Records != 44 {
		t.Fatalf("offsets: %+v", ts)
	}
	if p0.RecordsPerSec != 15 || p1.RecordsPerSec != 2 || ts.RecordsPerSec != 17 {
		t.Fatalf("rates p0 %v p1 %v topic %v, want 15, 2, 17", p0.RecordsPerSec, p1.RecordsPerSec, ts.RecordsPerSec)
	}
	if len(p0.Groups) != 1 || p0.Groups[0] != (PartitionGroupLag{Group: "billing", Committed: 25, Lag: 15}) {
		t.Fatalf("partition groups %+v", p0.Groups)
	}
	g, ok := snap.Group("billing")
	if !ok || g.TotalLag != 15 || len(g.Partitions) != 2 || g.Partitions[0].Topic != "clicks" || g.Partitions[1].Known {
		t.Fatalf("group %+v", g)
	}
	if _, err := snap.Topic("nope"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}

	// Group figures as Prometheus metrics, on one registry with the log's
	// own metrics: no series is collected twice.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	l2, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Registerer: reg, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if err := l2.CreateTopic("clicks", logstore.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	o.SetLog(l2) // the Observer and the log now describe the same partitions
	o.Sample()
	for _, c := range []struct {
		name   string
		labels string
		want   float64
	}{
		{"sluice_group_lag", `group="billing",partition="0",topic="clicks"`, 0},
		{"sluice_group_committed_offset", `group="billing",partition="0",topic="clicks"`, 25},
		{"sluice_group_committed_offset", `group="billing",partition="0",topic="gone"`, 3},
		{"sluice_log_high_watermark", `partition="0",topic="clicks"`, 0},
	} {
		if got, ok := metricValue(t, reg, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s{%s} = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := metricValue(t, reg, "sluice_group_lag", `group="billing",partition="0",topic="gone"`); ok {
		t.Error("lag reported for a partition that does not exist")
	}
}

// metricValue gathers g and returns the value of the series name{labels},
// labels written as Prometheus renders them (sorted, quoted).
func metricValue(t *testing.T, g prometheus.Gatherer, name, labels string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, lp := range m.GetLabel() {
				parts = append(parts, lp.GetName()+"="+strconv.Quote(lp.GetValue()))
			}
			if strings.Join(parts, ",") == labels {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func countSeries(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestJobMetricsExposition(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	j := newFakeJob(sm("op", 0, 1, "op", 0, 0, 0, 0, 0, noWM))
	if _, err := o.Register("wc", j); err != nil {
		t.Fatal(err)
	}
	o.Sample()
	clk.Advance(time.Second)
	j.set(sm("op", 0, 1, "op", 500, 400, 300*ms, 100*ms, 600*ms, t0.UnixMilli()-250))
	o.Sample()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	l := `job="wc",operator="op",subtask="0"`
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"sluice_operator_backpressured_ms_per_second", l, 600},
		{"sluice_operator_busy_ms_per_second", l, 300},
		{"sluice_operator_records_in_total", l, 500},
		{"sluice_operator_records_out_total", l, 400},
		{"sluice_operator_backpressured_seconds_total", l, 0.6},
		{"sluice_operator_watermark_lag_ms", l, 1250},
		{"sluice_operator_watermark_ms", l, float64(t0.UnixMilli() - 250)},
		{"sluice_job_running", `job="wc"`, 1},
		{"sluice_job_records_in_per_second", `job="wc"`, 400}, // what the source emitted
	} {
		if got, ok := metricValue(t, reg, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s{%s} = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// No checkpoint series for a job that reports none.
	if n := countSeries(t, reg, "sluice_checkpoint_completed_total"); n != 0 {
		t.Fatalf("%d checkpoint series for a job without checkpoints", n)
	}
}

type fakeCkpt []CheckpointStats

func (f fakeCkpt) Checkpoints() []CheckpointStats { return f }

func TestCheckpointReporter(t *testing.T) {
	o := New(Options{})
	ck := fakeCkpt{
		{ID: 1, Status: CheckpointCompleted, Duration: 80 * ms, SizeBytes: 1 << 20},
		{ID: 2, Status: CheckpointFailed, Error: "sink pre-commit failed"},
		{ID: 3, Status: CheckpointInProgress},
	}
	if _, err := o.Register("c", newFakeJob(sm("op", 0, 1, "op", 0, 0, 0, 0, 0, noWM)), WithCheckpoints(ck)); err != nil {
		t.Fatal(err)
	}
	js, _ := o.Sample().Job("c")
	if !js.CheckpointsAvailable || js.LastCheckpoint == nil || js.LastCheckpoint.ID != 2 {
		t.Fatalf("last checkpoint %+v", js.LastCheckpoint)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	if got, ok := metricValue(t, reg, "sluice_checkpoint_failed_total", `job="c"`); !ok || got != 1 {
		t.Errorf("failed checkpoints %v %v", got, ok)
	}
	if got, ok := metricValue(t, reg, "sluice_checkpoint_last_completed_id", `job="c"`); !ok || got != 1 {
		t.Errorf("last completed id %v %v", got, ok)
	}
	if got, ok := metricValue(t, reg, "sluice_checkpoint_last_size_bytes", `job="c"`); !ok || got != 1<<20 {
		t.Errorf("last size %v %v", got, ok)
	}
	line := FormatStatus(js, t0)
	if !strings.Contains(line, "ckpt #2 FAILED") {
		t.Fatalf("status line %q", line)
	}
}

func TestStatusLine(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	j := newFakeJob(sm("op", 0, 1, "op", 0, 0, 0, 0, 0, noWM))
	if _, err := o.Register("wc", j); err != nil {
		t.Fatal(err)
	}
	if err := StatusLine(context.Background(), &bytes.Buffer{}, o, "nope", StatusOptions{}); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("unknown job: %v", err)
	}
	var quiet bytes.Buffer
	if err := StatusLine(context.Background(), &quiet, o, "wc", StatusOptions{Quiet: true}); err != nil || quiet.Len() != 0 {
		t.Fatalf("quiet printed %q (%v)", quiet.String(), err)
	}
	for _, term := range []bool{false, true} {
		var buf bytes.Buffer
		clk.Advance(time.Second)
		j.set(sm("op", 0, 1, "op", 1500, 1500, 0, 0, 0, math.MaxInt64))
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // print one final line and return
		if err := StatusLine(ctx, &buf, o, "wc", StatusOptions{Terminal: &term}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, "wc running") || !strings.Contains(out, "wm end") || !strings.Contains(out, "ckpt n/a") || !strings.HasSuffix(out, "\n") {
			t.Fatalf("terminal=%v: %q", term, out)
		}
		if strings.HasPrefix(out, "\r") != term {
			t.Fatalf("terminal=%v: carriage return mismatch in %q", term, out)
		}
	}
}

func TestFormatStatus(t *testing.T) {
	wm := t0.Add(-1500 * ms).UnixMilli()
	lag := 1500.0
	cases := []struct {
		js   JobStatus
		want string
	}{
		{JobStatus{ID: "a", Status: "running", RecordsInPerSec: 120500, RecordsOutPerSec: 98000, Backpressure: "ok",
			Watermark: Watermark{WatermarkMs: &wm, WatermarkLag: &lag}},
			"a running  in 120.5k/s  out 98.0k/s  wm 11:59:58 (lag 1.5s)  ckpt n/a  bp ok"},
		{JobStatus{ID: "b", Status: "failed", Backpressure: "high", Error: "boom", CheckpointsAvailable: true},
			"b failed  in 0/s  out 0/s  wm -  ckpt none  bp high  error: boom"},
		{JobStatus{ID: "c", Status: "running", RecordsInPerSec: 2.5e6, Backpressure: "low", CheckpointsAvailable: true,
			LastCheckpoint: &CheckpointStats{ID: 9, Status: CheckpointCompleted, Duration: 42 * ms}},
			"c running  in 2.5M/s  out 0/s  wm -  ckpt #9 ok 42ms  bp low"},
	}
	for _, c := range cases {
		if got := FormatStatus(c.js, t0); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestProgressRedrawsAndPads(t *testing.T) {
	var buf bytes.Buffer
	done := make(chan struct{})
	calls := 0
	term := true
	Progress(context.Background(), &buf, done, func(final bool) string {
		calls++
		switch {
		case final:
			return "end"
		case calls == 1:
			return "a long first line"
		default:
			if calls == 2 {
				close(done)
			}
			return "short"
		}
	}, StatusOptions{Terminal: &term, Every: time.Microsecond})
	out := buf.String()
	if !strings.HasPrefix(out, "\ra long first line\rshort            ") || !strings.HasSuffix(out, "\rend"+strings.Repeat(" ", 2)+"\n") {
		t.Fatalf("terminal output %q", out)
	}
	buf.Reset()
	Progress(context.Background(), &buf, nil, func(bool) string { return "x" }, StatusOptions{Quiet: true})
	if buf.Len() != 0 {
		t.Fatalf("quiet printed %q", buf.String())
	}
}
