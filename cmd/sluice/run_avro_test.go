package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/schema"
)

// TestRunAvroEmbeddedRegistry: `sluice run` with format avro on log
// connectors and no registry in the spec uses the embedded log's registry:
// one run writes Avro in the Confluent wire format and registers its
// derived schema under <topic>-value in the data directory's _schemas, a
// second run reads those records back through the ids alone, and the
// registry that `sluice serve` would serve from that directory holds the
// schema.
func TestRunAvroEmbeddedRegistry(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "in.jsonl")
	var lines []string
	for i := range 20 {
		lines = append(lines, `{"user":"u`+string(rune('a'+i%3))+`","amount":`+strconv.Itoa(i)+`}`)
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := writeSpec(t, dir, "write.yaml", `
name: write
source: {file: {path: `+in+`}, types: {amount: int}}
steps: [{map: {user: user, amount: amount}}]
sink: {log: {topic: orders, partitions: 1}, format: avro}
`)
	read := writeSpec(t, dir, "read.yaml", `
name: read
source: {log: {topic: orders, bounded: true}, format: avro}
steps: [{filter: amount >= 15}]
sink: {stdout: {}}
`)
	env := map[string]string{"SLUICE_DATA_DIR": data}
	if code, _, errs := runCLI(t, env, "", "run", "--quiet", write); code != 0 {
		t.Fatalf("write: status %d: %s", code, errs)
	}
	code, out, errs := runCLI(t, env, "", "run", "--quiet", read)
	if code != 0 {
		t.Fatalf("read: status %d: %s", code, errs)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(got)
	want := []string{`{"amount":15,"user":"ua"}`, `{"amount":16,"user":"ub"}`, `{"amount":17,"user":"uc"}`, `{"amount":18,"user":"ua"}`, `{"amount":19,"user":"ub"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read printed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// The data directory's registry holds the derived schema (the second
	// run found it by the ids in the records alone).
	l, err := logstore.Open(logstore.Options{Dir: data, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg, err := schema.Open(context.Background(), l, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := reg.Version("orders-value", -1, false)
	if err != nil || ss.Type != schema.Avro || !strings.Contains(ss.Text, `"amount"`) {
		t.Fatalf("orders-value in the embedded registry: %+v %v", ss, err)
	}
}

// TestRunAvroKafkaNeedsRegistry: format avro on kafka without a registry
// fails to start with an error naming the block and saying what to set;
// the embedded registry is not used for a topic of another cluster.
func TestRunAvroKafkaNeedsRegistry(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, "k.yaml", `
name: k
source: {kafka: {brokers: ["127.0.0.1:1"], topic: orders}, format: avro}
steps: [{filter: amount > 1}]
sink: {stdout: {}}
`)
	code, _, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": filepath.Join(dir, "data")}, "", "run", "--quiet", spec)
	for _, want := range []string{"k.yaml:3", "source", "registry: {url: http://HOST:PORT}", "--http-addr", "framing: none"} {
		if code != 1 || !strings.Contains(errs, want) {
			t.Fatalf("status %d, stderr %q: want %q", code, errs, want)
		}
	}
}

func writeSpec(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
