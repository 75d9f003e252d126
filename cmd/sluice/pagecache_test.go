package main

import "testing"

// TestParseSizeOrOff checks the --page-cache-window and --segment-prefill
// values: sizes in the --memory units, off (or 0) as -1 (what
// logstore.Options.PageCacheWindow and SegmentPrefill read as off), and
// refusals.
func TestParseSizeOrOff(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64MiB", 64 << 20, true},
		{"1GiB", 1 << 30, true},
		{"4KiB", 4096, true},
		{"100MB", 100e6, true},
		{"off", -1, true},
		{"OFF", -1, true},
		{"0", -1, true},
		{"100", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"lots", 0, false},
	} {
		got, err := parseSizeOrOff(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseSizeOrOff(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
