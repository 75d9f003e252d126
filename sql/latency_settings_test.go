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
// 'metrics.latency.interval' reach the job: its buffer timeout, and
// latency markers recorded at its operators.
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
		// With markers every microsecond, the source's first read
		// (which comes later than that after it started) emits one, and
		// the operators record it.
		markers := uint64(0)
		for _, h := range jobs[0].Latency() {
			if h.Kind == "marker" {
				markers += h.Count
			}
		}
		if markers == 0 {
			t.Errorf("metrics.latency.interval set, but no operator recorded a latency marker: %+v", jobs[0].Latency())
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
