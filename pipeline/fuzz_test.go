package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the spec parser and planner: they
// must never panic, and every error must be a *SpecError (or a list of
// them) that names a position.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../examples/*.yaml")
	more, _ := filepath.Glob("testdata/spec/*.txt")
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("source: &a {generate: *a}\nsink: {stdout: {}}"))
	f.Add([]byte("steps: [{window: {aggregate: {x: 'sum('}}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err == nil {
			_, err = Compile(s)
		}
		if err == nil {
			return
		}
		var se *SpecError
		if !errors.As(err, &se) {
			t.Fatalf("error %v (%T) is not a *SpecError", err, err)
		}
	})
}
