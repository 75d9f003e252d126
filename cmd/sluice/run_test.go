package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateEveryExample(t *testing.T) {
	t.Chdir("../..")
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	code, out, errs := runCLI(t, nil, "", append([]string{"validate"}, files...)...)
	if code != 0 {
		t.Fatalf("validate: status %d\n%s%s", code, out, errs)
	}
	if strings.Count(out, ": ok") != len(files) {
		t.Fatalf("validate printed %q", out)
	}
}

func TestValidateReportsFileAndLine(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	spec := "name: bad\nsource:\n  generate: {preset: orders, count: 10}\n  format: json\nsteps:\n  - filtr: amount > 1\nsink:\n  stdout: {}\n"
	if err := os.WriteFile(bad, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, nil, "", "validate", bad)
	if code != 1 || !strings.Contains(errs, "bad.yaml:6") || !strings.Contains(errs, "filtr") {
		t.Fatalf("status %d, stderr %q: want an error naming bad.yaml:6 and the unknown key", code, errs)
	}
}

// TestRunReadmeMainJob runs the pipeline the README's quick start runs,
// from a scratch directory that sees the repository's examples, so that the
// outputs the spec writes under ./data stay out of the repository.
func TestRunReadmeMainJob(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	if err := os.Symlink(examples, filepath.Join(scratch, "examples")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(scratch)
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	code, out, errs := runCLI(t, env, "", "run", "--quiet", "examples/revenue-per-user-file.yaml")
	if code != 0 {
		t.Fatalf("run: status %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 || !strings.Contains(lines[0], `"window_start"`) || !strings.Contains(lines[0], `"revenue"`) {
		t.Fatalf("run printed %d lines, first %q", len(lines), lines[0])
	}
}

// TestRunToleranceNoneSaysWhatToDo: a bad record under tolerance none
// fails the run with the record's stage, origin and offset, and says how
// to route bad records to a dead-letter sink instead.
func TestRunToleranceNoneSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte("{\"a\":1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(spec, []byte("name: p\nsource: {file: {path: "+in+"}}\nsink: {stdout: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": dir}, "", "run", "--quiet", spec)
	if code != 1 || !strings.Contains(errs, "offset 2") || !strings.Contains(errs, "tolerance: all, dead_letter") {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
}
