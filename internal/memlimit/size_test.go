package memlimit

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"256MiB", 256 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"512MB", 512e6, ""},
		{"1073741824", 1 << 30, ""},
		{"100B", 100, ""},
		{"4KiB", 4096, ""},
		{"4kib", 4096, ""},
		{"2K", 2048, ""},
		{"3M", 3 << 20, ""},
		{"1G", 1 << 30, ""},
		{"1TiB", 1 << 40, ""},
		{"2TB", 2e12, ""},
		{"1.5GiB", 3 << 29, ""},
		{" 64 MiB ", 64 << 20, ""},
		{"0", 0, ""},
		{"", 0, "empty"},
		{"MiB", 0, "want"},
		{"-1MiB", 0, "non-negative"},
		{"1e9", 0, "non-negative"},
		{"12XB", 0, "want a"},
		{"1.2.3MiB", 0, "want a number"},
		{"12QB", 0, "want a number"},
		{"0x10", 0, "non-negative"},
		{"9999999TiB", 0, "too large"},
		{"99999999999999999999", 0, "want a number"},
		{"NaNMiB", 0, "want a number"},
	} {
		got, err := ParseSize(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatSizeRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1 << 10, 3 << 20, 256 << 20, 5 << 30, 7 << 40, 1<<20 + 1} {
		s := FormatSize(n)
		got, err := ParseSize(s)
		if err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, got, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"256MiB", "1.5GiB", "512MB", "7", "", "-1", "1e3K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, n)
		}
	})
}
