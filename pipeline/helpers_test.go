package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// runSpec writes the input files into a temporary directory, runs the
// spec (with $DIR replaced by that directory) and returns the stdout
// lines decoded, the job and its error.
func runSpec(t *testing.T, spec string, files map[string]string, opts ...StartOption) ([]map[string]any, *Job, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec = strings.ReplaceAll(spec, "$DIR", dir)
	s, err := Parse("test.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	j, err := p.Start(context.Background(), &Host{Stdout: &out, DataDir: dir}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	err = j.Wait()
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("output %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	return rows, j, err
}

// canon renders rows as sorted JSON strings for order-insensitive
// comparison.
func canon(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		// Numbers compare by value: 174 and 174.0 are the same here
		// (float formatting is tested in package row).
		n := make(map[string]any, len(r))
		for k, v := range r {
			if x, ok := v.(json.Number); ok {
				f, _ := x.Float64()
				v = f
			}
			n[k] = v
		}
		b, _ := json.Marshal(n)
		out[i] = string(b)
	}
	sort.Strings(out)
	return out
}

func jsonLines(recs []map[string]any) string {
	var b strings.Builder
	for _, r := range recs {
		x, _ := json.Marshal(r)
		b.Write(x)
		b.WriteByte('\n')
	}
	return b.String()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
