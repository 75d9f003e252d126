package pipeline

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/spec cases")

// TestSpecErrors runs the cases in testdata/spec: each file is a spec,
// a line "----", and the expected result of Parse and Compile (the error
// messages, one per line, or "ok: FIELDS" with the output schema). Run
// with -rewrite to update the expectations.
func TestSpecErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/spec/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, found := strings.Cut(string(data), "\n----\n")
			if !found {
				t.Fatalf("%s: no ---- separator", f)
			}
			got := specResult(in)
			if *rewrite {
				if err := os.WriteFile(f, []byte(in+"\n----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func specResult(in string) string {
	s, err := Parse("spec.yaml", []byte(in))
	if err == nil {
		var p *Plan
		p, err = Compile(s)
		if err == nil {
			return "ok: " + p.OutputSchema().String() + "\n"
		}
	}
	var se *SpecError
	if !errors.As(err, &se) {
		return "NOT A SPEC ERROR: " + err.Error() + "\n"
	}
	return err.Error() + "\n"
}

func TestSpecDefaults(t *testing.T) {
	s, err := Parse("x.yaml", []byte("source: {generate: {count: 1}}\nsink: {stdout: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "x" || s.Delivery != DeliveryAtLeastOnce || s.Errors.Tolerance != ToleranceNone || s.Source.Format != "json" || s.Parallelism != 0 {
		t.Errorf("defaults: %+v", s)
	}
	s, err = Parse("x.yaml", []byte("source: {generate: {}}\nsink: {stdout: {}}\ncheckpoint: {interval: 5s, dir: /tmp/x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Delivery != DeliveryExactlyOnce || s.Checkpoint.Interval.Seconds() != 5 {
		t.Errorf("checkpoint defaults: %+v %+v", s, s.Checkpoint)
	}
}
