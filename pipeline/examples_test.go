package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExamples runs every pipeline in examples/ with a bounded input:
// generators get a record count and no rate, relative paths are taken
// from the repository root and output goes to a temporary directory.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			spec, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if !boundExample(t, spec, out) {
				t.Skip("example needs an external system")
			}
			plan, err := Compile(spec)
			if err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			j, err := plan.Start(context.Background(), &Host{Stdout: &stdout, DataDir: out})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			sum := j.Summary()
			if sum.RecordsIn == 0 || sum.RecordsOut == 0 {
				t.Fatalf("example produced nothing: %+v", sum)
			}
			lines := strings.SplitN(stdout.String(), "\n", 3)
			t.Logf("%+v; stdout %d lines, starting %q", sum, strings.Count(stdout.String(), "\n"), lines[:min(2, len(lines))])
		})
	}
}

// boundExample rewrites spec's connectors for a bounded, local run. It
// returns false for examples that need systems the test does not have.
func boundExample(t *testing.T, spec *Spec, out string) bool {
	ok := true
	fix := func(s *SourceSpec) {
		switch c := s.cfg.(type) {
		case *generateConfig:
			c.cfg.Count = 5000
			c.cfg.Rate = 0
			c.cfg.Start = 1767225600000
			c.cfg.Interval = 50 * time.Millisecond
		case *fileSourceConfig:
			c.cfg.Follow = false
			if !filepath.IsAbs(c.cfg.Path) {
				c.cfg.Path = filepath.Join("..", c.cfg.Path)
			}
		default:
			ok = false
		}
	}
	fix(&spec.Source)
	for i := range spec.Steps {
		if j := spec.Steps[i].Join; j != nil {
			fix(&j.Input)
		}
		if spec.Steps[i].Lookup != nil {
			ok = false // its tables are in PostgreSQL and Redis (lookup_test.go runs the step)
		}
		if en := spec.Steps[i].Enrich; en != nil && en.HTTP != nil {
			en.HTTP.URL = exampleService(t, en.HTTP.URL) // enrich_test.go
		}
	}
	sinks := append([]SinkSpec(nil), spec.Sinks...)
	if spec.Errors.DeadLetter != nil {
		sinks = append(sinks, *spec.Errors.DeadLetter)
	}
	for _, s := range sinks {
		switch c := s.cfg.(type) {
		case *fileSinkConfig:
			c.cfg.Path = filepath.Join(out, filepath.Base(c.cfg.Path))
		case stdoutConfig:
		default:
			ok = false
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	return ok
}
