package sql_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateErrors = flag.Bool("update-errors", false, "rewrite testdata/errors.txt with the errors the statements get (review the diff)")

// errorsSetup is executed before every block of testdata/errors.txt
// (${dir} is a temporary directory).
const errorsSetup = `
CREATE TABLE orders (
  id BIGINT,
  customer VARCHAR,
  amount INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${dir}/orders.json', 'format' = 'json');
CREATE TABLE customers (id BIGINT, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = '${dir}/customers.json', 'format' = 'json');
CREATE TABLE out_append (customer VARCHAR, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '${dir}/out', 'format' = 'json');
CREATE TABLE out_capture (customer VARCHAR, n BIGINT) WITH ('connector' = 'capture');
`

type errorBlock struct {
	comments []string
	input    string
	want     string
}

// parseErrorBlocks reads blocks of statements, each ended by a line
// "==> error"; "#" lines before a block are its comments.
func parseErrorBlocks(text string) []errorBlock {
	var blocks []errorBlock
	var cur errorBlock
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "==> "):
			cur.input = strings.Join(lines, "\n")
			cur.want = strings.TrimPrefix(l, "==> ")
			blocks = append(blocks, cur)
			cur, lines = errorBlock{}, nil
		case strings.HasPrefix(l, "#") && len(lines) == 0:
			cur.comments = append(cur.comments, l)
		case strings.TrimSpace(l) == "" && len(lines) == 0:
		default:
			lines = append(lines, l)
		}
	}
	return blocks
}

const errorsHeader = `# Bad statements and the exact error each gets. Each block runs in a
# fresh session after the setup in errors_test.go (tables orders,
# customers, out_append (filesystem, append-only), out_capture): all its
# statements but the last succeed, the last fails with the error after
# "==> ". Regenerate with go test -run TestErrors -update-errors and
# review the diff.
`

// TestErrors runs each block of testdata/errors.txt in a fresh session.
func TestErrors(t *testing.T) {
	path := filepath.Join("testdata", "errors.txt")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseErrorBlocks(string(src))
	if len(blocks) == 0 {
		t.Fatal("no blocks in errors.txt")
	}
	var out strings.Builder
	out.WriteString(errorsHeader)
	for i := range blocks {
		b := &blocks[i]
		dir := t.TempDir()
		for _, f := range []string{"orders.json", "customers.json"} {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sess, _ := newConfSession(t, 1)
		ctx := context.Background()
		if err := sess.ExecuteScript(ctx, strings.ReplaceAll(errorsSetup, "${dir}", dir)); err != nil {
			t.Fatalf("setup: %v", err)
		}
		got := "no error"
		if err := sess.ExecuteScript(ctx, b.input); err != nil {
			got = strings.ReplaceAll(err.Error(), dir, "${dir}")
		}
		if *updateErrors {
			out.WriteString("\n")
			for _, c := range b.comments {
				if !strings.Contains(errorsHeader, c+"\n") {
					out.WriteString(c + "\n")
				}
			}
			out.WriteString(b.input + "\n==> " + got + "\n")
			continue
		}
		if got != b.want {
			t.Errorf("%s\n  got:  %s\n  want: %s", b.input, got, b.want)
		}
	}
	if *updateErrors {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
