package pipeline

import (
	"path/filepath"
	"testing"
)

// TestExamplesValidate compiles every example, including those whose
// systems the test cannot run.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}
