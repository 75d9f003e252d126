package main

import (
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/internal/clusterbench"
)

// TestBenchClusterTiny runs `sluice bench cluster` end to end with tiny
// sizes: a `sluice serve` child, `sluice run --cluster` instances (this
// test binary as the command: SLUICE_TEST_MAIN=1 is inherited by the
// children), the embedded baseline and both failover variants. Figures
// are not compared with any time: only that every section ran, its output
// was exact, and its figures are positive.
func TestBenchClusterTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Setenv("SLUICE_TEST_MAIN", "1")
	code, out, errs := runCLI(t, nil, "", "bench", "cluster", "--records", "2000", "--keys", "100", "--partitions", "2",
		"--instances", "1,2", "--commit-interval", "200ms", "--failover-keys", "2000", "--failover-session-timeouts", "1s",
		"--timeout", "60s", "--dir", t.TempDir(), "--json")
	if code != 0 {
		t.Fatalf("status %d\nstdout %s\nstderr %s", code, out, errs)
	}
	t.Logf("progress:\n%s", errs)
	var res clusterbench.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not the JSON result: %v\n%s", err, out)
	}
	if res.Records != 2000 || res.ExpectedWindows < 100 || res.ProducePerSec <= 0 || res.Machine.CPUs < 1 || len(res.Machine.LoadAverage) != 3 {
		t.Errorf("header: %+v", res)
	}
	if len(res.Throughput) != 2 || res.Throughput[0].Instances != 1 || res.Throughput[1].Instances != 2 {
		t.Fatalf("throughput sections: %+v", res.Throughput)
	}
	check := func(name string, m clusterbench.ThroughputRun) {
		t.Helper()
		if !m.Exact || m.Windows != res.ExpectedWindows || m.Duplicates != 0 {
			t.Errorf("%s: output not exact: %+v", name, m)
		}
		if m.WallSec <= 0 || m.RecordsPerSec <= 0 || m.CPUSec <= 0 || m.RecordsPerCPUSec <= 0 || m.BrokerCPUSec < 0 {
			t.Errorf("%s: figures: %+v", name, m)
		}
	}
	for _, tr := range res.Throughput {
		check("cluster", tr.Median)
		if tr.Median.FirstOutputSec <= 0 || tr.Median.FirstOutputSec > tr.Median.WallSec {
			t.Errorf("first output: %+v", tr.Median)
		}
	}
	if res.Embedded == nil {
		t.Fatal("no embedded run")
	}
	check("embedded", res.Embedded.Median)
	if res.CPURatio <= 0 {
		t.Errorf("CPU ratio %v", res.CPURatio)
	}
	if len(res.Failover) != 2 || !res.Failover[0].Restart || res.Failover[1].Restart || res.Failover[1].SessionTimeoutSec != 1 {
		t.Fatalf("failover variants: %+v", res.Failover)
	}
	for _, f := range res.Failover {
		m := f.Median
		if !m.Exact || m.Duplicates != 0 || m.Keys != 2000 || m.Probes != 2 {
			t.Errorf("failover (restart %v): output not exact: %+v", f.Restart, m)
		}
		if m.BuildSec <= 0 || m.BaselineProbeSec <= 0 || m.FailoverSec <= 0 || m.FirstProbeSec <= 0 || m.FirstProbeSec > m.FailoverSec {
			t.Errorf("failover (restart %v): figures: %+v", f.Restart, m)
		}
		if m.KilledTasks+m.KilledStatefulTasks == 0 {
			t.Errorf("failover (restart %v): the killed instance owned no task: %+v", f.Restart, m)
		}
	}
	// Without a restart the survivor waits for the session timeout before
	// it takes the tasks over.
	if m := res.Failover[1].Median; m.FailoverSec < 1 {
		t.Errorf("failover without a restart took %v s, less than the 1 s session timeout", m.FailoverSec)
	}
}

func TestBenchClusterUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--records", "0"},
		{"--instances", "0"},
		{"--instances", "two"},
		{"--delivery", "sometimes"},
		{"--failover-session-timeouts", "1ms"},
		{"--event-span", "10ms"},
		{"--instances", "", "--embedded=false", "--failover=false"},
		{"extra"},
	} {
		code, _, errs := runCLI(t, nil, "", append([]string{"bench", "cluster"}, args...)...)
		if code != 2 {
			t.Errorf("%v: status %d, stderr %q; want 2", args, code, errs)
		}
	}
}
