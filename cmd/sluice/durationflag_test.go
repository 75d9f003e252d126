package main

import (
	"strings"
	"testing"
	"time"
)

func TestDurationValue(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "250ms": 250 * time.Millisecond} {
		var d durationValue
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("%q: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{"", "x", "7 d", "1y", "300000d"} {
		var d durationValue
		if err := d.Set(in); err == nil {
			t.Errorf("%q accepted as %v", in, time.Duration(d))
		}
	}
}

// TestRetentionInDays: --retention 7d, the form specs accept, was refused
// by the flag package's durations with "parse error".
func TestRetentionInDays(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t", "--retention", "7d"); code != 0 {
		t.Fatalf("status %d, %s", code, errs)
	}
	if _, out, _ := runCLI(t, env, "", "topic", "describe", "t"); !strings.Contains(out, "retention: 168h") {
		t.Errorf("describe: %s", out)
	}
	code, _, errs := runCLI(t, env, "", "topic", "create", "u", "--retention", "a week")
	if code != 2 || !strings.Contains(errs, "like 500ms, 10s, 5m, 1h or 7d") {
		t.Errorf("status %d, stderr %q: want 2 and the forms allowed", code, errs)
	}
}
