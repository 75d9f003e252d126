package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// runCLI runs a command line in-process with stdin and returns its exit
// status, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	code := run(context.Background(), c, args)
	return code, out.String(), errb.String()
}

// TestHelpEverywhere checks that every command answers --help on stdout
// with status 0, and that every leaf command's help ends with examples of
// itself, lists its flags as "-name" or "-name TYPE" (a flag usage with a
// quoted command in backquotes once showed as "-source sluice nexmark
// generate"), and has no empty "Flags:" section.
func TestHelpEverywhere(t *testing.T) {
	leaves := map[string]bool{}
	var walk func(cmd *command, path []string)
	walk = func(cmd *command, path []string) {
		args := append(append([]string(nil), path...), "--help")
		code, out, errs := runCLI(t, nil, "", args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: status %d, stdout %q, stderr %q", args, code, out, errs)
		}
		if len(cmd.sub) == 0 {
			name := strings.Join(append([]string{"sluice"}, path...), " ")
			leaves[name] = true
			_, ex, ok := strings.Cut(out, "\nExamples:\n")
			if !ok {
				t.Errorf("%s --help has no examples:\n%s", name, out)
			}
			for _, line := range strings.Split(strings.TrimSpace(ex), "\n") {
				if line = strings.TrimSpace(line); !strings.Contains(line, name) {
					t.Errorf("%s --help: example %q does not run %s", name, line, name)
				}
			}
			if strings.Contains(out, "(default -") {
				t.Errorf("%s --help shows a negative default, a sentinel that reads as a value:\n%s", name, out)
			}
			if strings.Contains(out, "Flags:\n\n") || strings.HasSuffix(out, "Flags:\n") {
				t.Errorf("%s --help has an empty Flags section:\n%s", name, out)
			}
			for _, line := range strings.Split(out, "\n") {
				head, _, _ := strings.Cut(line, "\t") // a one-letter flag's usage follows a tab
				if strings.HasPrefix(line, "  -") && len(strings.Fields(head)) > 2 {
					t.Errorf("%s --help: flag line %q: a flag is -name or -name TYPE", name, line)
				}
			}
		}
		for _, s := range cmd.sub {
			walk(s, append(append([]string(nil), path...), s.name))
		}
	}
	walk(commands(), nil)
	for name := range commandExamples {
		if !leaves[name] {
			t.Errorf("examples of %q, which is no command", name)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"nosuchcommand"},
		{"topic", "nosuch"},
		{"topic", "create"},
		{"topic", "create", "a", "b", "--data-dir", dir},
		{"topic", "create", "t", "--partitions", "0", "--data-dir", dir},
		{"topic", "create", "t", "--fsync", "sometimes", "--data-dir", dir},
		{"produce", "t", "--partition", "-2", "--data-dir", dir},
		{"consume", "t", "--from", "yesterday", "--data-dir", dir},
		{"consume", "t", "--format", "xml", "--data-dir", dir},
		{"produce", "--data-dir", dir},
		{"serve", "--nosuchflag"},
		{"serve", "--cleaner-max-duty-cycle", "0"},
		{"serve", "--cleaner-max-duty-cycle", "1.5"},
		{"sql", "--nosuchflag"},
		{"nexmark", "generate", "--nosuchflag"},
	} {
		// The usage goes to stdout on --help only, not with a usage error.
		code, out, errs := runCLI(t, nil, "", args...)
		if code != 2 || errs == "" || out != "" {
			t.Errorf("%v: status %d (want 2), stderr %q, stdout %q (want none)", args, code, errs, out)
		}
	}
}

func TestTopicLifecycleAndProduceConsume(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, env, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: status %d, stderr %s", args, code, errs)
		}
		return out
	}
	mustRun("", "topic", "create", "orders", "--partitions", "3", "--retention", "24h")
	if code, _, errs := runCLI(t, env, "", "topic", "create", "orders", "--partitions", "3"); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("duplicate create: status %d, %s", code, errs)
	}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "bad/name"); code != 1 || errs == "" {
		t.Fatalf("invalid name: status %d, %s", code, errs)
	}
	var in strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&in, "{\"user\":\"u%d\",\"n\":%d}\n", i%7, i)
	}
	out := mustRun(in.String(), "produce", "orders", "--key-field", "user")
	if !strings.Contains(out, "acknowledged 300 records") {
		t.Fatalf("produce summary: %s", out)
	}
	out = mustRun("", "topic", "describe", "orders")
	if !strings.Contains(out, "partitions: 3") || !strings.Contains(out, "retention: 24h") {
		t.Fatalf("describe: %s", out)
	}
	out = mustRun("", "consume", "orders", "-e")
	if got := strings.Count(out, "\n"); got != 300 {
		t.Fatalf("consume -e printed %d lines, want 300", got)
	}
	// Every record of one user lands in one partition.
	out = mustRun("", "consume", "orders", "-e", "--format", "json")
	part := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.Index(line, `"partition":`)
		p := line[i : i+14]
		u := line[strings.Index(line, `\"user\":\"`)+11:]
		u = u[:strings.Index(u, `\"`)]
		if prev, ok := part[u]; ok && prev != p {
			t.Fatalf("user %s in two partitions", u)
		}
		part[u] = p
	}
	// -n limits; a group resumes where it stopped.
	out = mustRun("", "consume", "orders", "-e", "-n", "100", "--group", "g1")
	if strings.Count(out, "\n") != 100 {
		t.Fatalf("-n 100 printed %d", strings.Count(out, "\n"))
	}
	out = mustRun("", "consume", "orders", "-e", "--group", "g1")
	if strings.Count(out, "\n") != 200 {
		t.Fatalf("group resume printed %d, want 200", strings.Count(out, "\n"))
	}
	out = mustRun("", "topic", "list")
	if !strings.Contains(out, "orders") || strings.Contains(out, "__consumer_offsets") {
		t.Fatalf("list: %s", out)
	}
	mustRun("", "topic", "delete", "orders")
	if code, _, errs := runCLI(t, env, "", "consume", "orders", "-e"); code != 1 || !strings.Contains(errs, "orders") {
		t.Fatalf("consume deleted topic: status %d, %s", code, errs)
	}
}

func TestProducePartitionOutOfRange(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	runCLI(t, env, "", "topic", "create", "t", "--partitions", "2")
	code, out, errs := runCLI(t, env, "a\n", "produce", "t", "--partition", "5")
	if code != 1 || !strings.Contains(errs, "out of range") {
		t.Fatalf("status %d, %s", code, errs)
	}
	// Nothing was acknowledged: no "acknowledged 0 records" beside the error.
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
}
