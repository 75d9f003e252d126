package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompatibilityMatrix runs the cases of testdata/compat/*.txt: schema
// versions of one subject, oldest first, the last one being the candidate,
// and the verdict under each level. A file is a list of cases:
//
//	=== name
//	--- TYPE              (AVRO, PROTOBUF or JSON; one block per version)
//	schema text
//	--- TYPE
//	schema text
//	----
//	NONE=yes BACKWARD=no BACKWARD_TRANSITIVE=no FORWARD=yes ...
//
// Lines before the first case and lines starting with # between cases are
// comments. The verdicts are written by hand from Confluent's documentation
// (each file says which documented behaviours it encodes), never generated
// from this code.
func TestCompatibilityMatrix(t *testing.T) {
	files, err := filepath.Glob("testdata/compat/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	total := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cases := strings.Split("\n"+string(raw), "\n=== ")[1:]
		for _, c := range cases {
			name, body, _ := strings.Cut(c, "\n")
			total++
			t.Run(filepath.Base(file)+"/"+name, func(t *testing.T) {
				versions, want := parseCase(t, body)
				var prev []prior
				var cand parsed
				for i, s := range versions {
					p, err := parseSchema(s, nil)
					if err != nil {
						t.Fatalf("version %d does not parse: %v", i+1, err)
					}
					if i == len(versions)-1 {
						cand = p
					} else {
						prev = append(prev, prior{version: i + 1, schema: p})
					}
				}
				var got []string
				var why []string
				for _, l := range []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive} {
					msgs := checkCompatibility(l, cand, prev)
					verdict := "yes"
					if len(msgs) > 0 {
						verdict = "no"
						why = append(why, fmt.Sprintf("%s: %s", l, strings.Join(msgs, "; ")))
					}
					got = append(got, string(l)+"="+verdict)
				}
				if g := strings.Join(got, " "); g != want {
					t.Errorf("got  %s\nwant %s\nreasons:\n%s", g, want, strings.Join(why, "\n"))
				}
			})
		}
	}
	if total < 40 {
		t.Errorf("only %d cases", total)
	}
}

func parseCase(t *testing.T, body string) ([]Schema, string) {
	t.Helper()
	text, verdicts, ok := strings.Cut(body, "\n----\n")
	if !ok {
		t.Fatalf("case without ---- line")
	}
	var out []Schema
	for _, block := range strings.Split("\n"+text, "\n--- ")[1:] {
		typ, schemaText, _ := strings.Cut(block, "\n")
		out = append(out, Schema{Type: Type(strings.TrimSpace(typ)), Text: schemaText})
	}
	if len(out) < 2 {
		t.Fatalf("a case needs at least two versions, has %d", len(out))
	}
	lines := strings.Split(strings.TrimSpace(verdicts), "\n")
	return out, strings.Join(strings.Fields(lines[0]), " ")
}
