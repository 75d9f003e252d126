package observe

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/stream"
)

// TestSourcePartitionLag: a source subtask's split lag is exported as
// sluice_source_partition_lag{job,operator,split} and shown on the
// subtask in the job graph; splits that cannot tell (-1) and operators
// that are not sources export nothing.
func TestSourcePartitionLag(t *testing.T) {
	lagging := func(sub int, split string, lag int64) stream.SubtaskMetrics {
		m := sm("src", sub, 3, "src", 10, 10, 0, 0, 0, noWM)
		m.Split, m.Lag = split, lag
		return m
	}
	other := sm("map", 0, 1, "src", 10, 10, 0, 0, 0, noWM)
	other.Lag = -1
	o := New(Options{})
	if _, err := o.Register("lj", newFakeJob(lagging(0, "t/0", 42), lagging(1, "t/1", 0), lagging(2, "t/2", -1), other)); err != nil {
		t.Fatal(err)
	}
	snap := o.Sample()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	for _, c := range []struct {
		split string
		want  float64
	}{{"t/0", 42}, {"t/1", 0}} {
		if got, ok := metricValue(t, reg, "sluice_source_partition_lag", `job="lj",operator="src",split="`+c.split+`"`); !ok || got != c.want {
			t.Errorf("lag of %s = %v (found %v), want %v", c.split, got, ok, c.want)
		}
	}
	if n := countSeries(t, reg, "sluice_source_partition_lag"); n != 2 {
		t.Errorf("%d lag series, want 2", n)
	}
	js, err := snap.Job("lj")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, v := range js.Vertices {
		for _, s := range v.Subtasks {
			if v.ID != "src" {
				if s.Split != "" || s.Lag != nil {
					t.Errorf("%s/%d: split %q lag %v", v.ID, s.Index, s.Split, s.Lag)
				}
				continue
			}
			if s.Lag == nil {
				got[s.Split] = -1
			} else {
				got[s.Split] = *s.Lag
			}
		}
	}
	if len(got) != 3 || got["t/0"] != 42 || got["t/1"] != 0 || got["t/2"] != -1 {
		t.Fatalf("subtask lags %v", got)
	}
}
