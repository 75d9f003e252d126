package sql_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/stream"
)

// TestLatencySettings checks that SET 'execution.buffer-timeout' and SET
// 'metrics.latency.interval' reach the job: its buffer timeout and its
// latency marker interval.
func TestLatencySettings(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       time.Duration
	}{
		{"execution.buffer-timeout", "5 ms", 5 * time.Millisecond},
		{"execution.buffer-timeout.interval", "0", 0},
		{"", "", stream.DefaultBufferTimeout},
	} {
		var jobs []*stream.Job
		var out bytes.Buffer
		s := sql.NewSession(sql.Options{Out: &out, Format: "json",
			OnJob: func(_ string, j *stream.Job, _ string) { jobs = append(jobs, j) }})
		script := "SET 'parallelism.default' = '1';\nSET 'metrics.latency.interval' = '0.001 ms';\n"
		if tc.key != "" {
			script += "SET '" + tc.key + "' = '" + tc.value + "';\n"
		}
		script += "SELECT x + 1 AS y FROM (VALUES (1), (2), (3)) AS t(x);\n"
		if err := s.ExecuteScript(context.Background(), script); err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 {
			t.Fatalf("%d jobs, want 1", len(jobs))
		}
		if got := jobs[0].BufferTimeout(); got != tc.want {
			t.Errorf("%s = %q: buffer timeout %v, want %v", tc.key, tc.value, got, tc.want)
		}
		// That markers, once set, are emitted and recorded at the
		// operators is stream's TestLatencyMarkers (on a fake clock: with
		// a real one, a read of three rows can take less than the
		// interval, and none is due).
		if got := jobs[0].LatencyMarkerInterval(); got != time.Microsecond {
			t.Errorf("metrics.latency.interval = '0.001 ms': marker interval %v, want 1µs", got)
		}
		if got := strings.Count(out.String(), "\n"); got != 3 {
			t.Errorf("output %q: %d lines, want 3", out.String(), got)
		}
	}
}

func TestLatencySettingsBadInput(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"execution.buffer-timeout", "-1", "is negative"},
		{"execution.buffer-timeout", "soon", "not a duration"},
		{"metrics.latency.interval", "-5", "is negative"},
		{"metrics.latency.interval", "-5 ms", "not a duration"},
		{"execution.buffer-timout", "1 ms", "did you mean 'execution.buffer-timeout'"},
	} {
		err := sql.NewSession(sql.Options{}).Set(tc.key, tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%q, %q) = %v, want an error containing %q", tc.key, tc.value, err, tc.want)
		}
	}
}
