package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
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

// TestRunFromCheckpoint: a checkpointed run of a bounded file-to-file
// pipeline ends with a final checkpoint; a second run whose spec points at
// another, empty, checkpoint directory but restores that checkpoint
// explicitly (--from-checkpoint) resumes at the end of the input and
// writes nothing twice. Without the flag it would start over. A spec
// without a checkpoint section refuses the flag.
func TestRunFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	writeSpec := func(name, chk string) string {
		p := filepath.Join(dir, name)
		spec := fmt.Sprintf("name: resume\nsource: {file: {path: %s}}\nsteps:\n  - filter: n >= 0\nsink: {file: {path: %s}}\ndelivery: exactly_once\ncheckpoint: {interval: 5ms, dir: %s}\n", in, out, chk)
		if chk == "" {
			spec = fmt.Sprintf("name: resume\nsource: {file: {path: %s}}\nsink: {stdout: {}}\n", in)
		}
		if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	if code, _, errs := runCLI(t, env, "", "run", "--quiet", writeSpec("a.yaml", filepath.Join(dir, "chk-a"))); code != 0 {
		t.Fatalf("first run: status %d: %s", code, errs)
	}
	chks, err := filepath.Glob(filepath.Join(dir, "chk-a", "chk-*"))
	if err != nil || len(chks) == 0 {
		t.Fatalf("no checkpoint after the first run: %v", err)
	}
	sort.Strings(chks)
	last := chks[len(chks)-1]
	if code, _, errs := runCLI(t, env, "", "run", "--quiet", "--from-checkpoint", last, writeSpec("b.yaml", filepath.Join(dir, "chk-b"))); code != 0 {
		t.Fatalf("run from %s: status %d: %s", last, code, errs)
	}
	var got []string
	parts, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range parts {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("staged part left behind: %s", e.Name())
		}
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	sort.Strings(got)
	want := slices.Clone(lines)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("output has %d lines, want exactly the %d input lines once", len(got), len(want))
	}
	code, _, errs := runCLI(t, env, "", "run", "--quiet", "--from-checkpoint", last, writeSpec("c.yaml", ""))
	if code == 0 || !strings.Contains(errs, "no checkpoint section") {
		t.Fatalf("restoring without a checkpoint section: status %d, stderr %q", code, errs)
	}
}
