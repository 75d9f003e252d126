package main

import (
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "1GiB": 1 << 30, "10GiB": 10 << 30, "1TiB": 1 << 40, "2MB": 2e6, "1KB": 1000, "5B": 5, "1.5GiB": 3 << 29, "8 mib": 8 << 20} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "x", "10XB", "1e6", "GiB"} {
		var b byteSize
		if err := b.Set(in); err == nil || !strings.Contains(err.Error(), "64MiB") {
			t.Errorf("%q accepted as %d (err %v), want an error naming the forms", in, b, err)
		}
	}
	if b := byteSize(32 << 20); b.String() != "32MiB" {
		t.Errorf("String of 32 MiB: %q", b.String())
	}
}

func TestByteRate(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "5000": 5000, "2.5e6": 2.5e6, "5MiB": 5 << 20, "5MiB/s": 5 << 20, "1.5MB/s": 1.5e6} {
		var r byteRate
		if err := r.Set(in); err != nil || float64(r) != want {
			t.Errorf("%q: %v, %v; want %v", in, r, err, want)
		}
	}
	for _, in := range []string{"", "-1", "fast", "5MiB/m"} {
		var r byteRate
		if err := r.Set(in); err == nil {
			t.Errorf("%q accepted as %v", in, r)
		}
	}
}

// TestNamespaceHumanSizes: namespace create reads --max-storage,
// --produce-rate and --fetch-rate as sizes (10GiB, 5MiB/s), refuses a bad
// one with the forms it takes, and stores bytes.
func TestNamespaceHumanSizes(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, out, errs := runCLI(t, env, "", "tenant", "create", "acme"); code != 0 {
		t.Fatalf("tenant create: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "", "namespace", "create", "acme/prod", "--max-storage", "10XB"); code != 2 || !strings.Contains(errs, "max-storage") || !strings.Contains(errs, "10GiB") {
		t.Fatalf("bad --max-storage: %d %q", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "namespace", "create", "acme/prod", "--max-storage", "10GiB", "--produce-rate", "5MiB/s", "--fetch-rate", "20MB"); code != 0 {
		t.Fatalf("namespace create: %d %q %q", code, out, errs)
	}
	code, out, _ := runCLI(t, env, "", "tenant", "list")
	if code != 0 || !strings.Contains(out, "10737418240") || !strings.Contains(out, "5242880") || !strings.Contains(out, "20000000") {
		t.Fatalf("tenant list: %d %q", code, out)
	}
}
