package file

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// readUntil calls Read up to tries times (each empty Read is one poll of
// the followed file) and returns the records of the first Read that
// returned any.
func readUntil(t *testing.T, sp interface {
	Read(context.Context, []connector.Message) (int, error)
}, tries int) []connector.Message {
	t.Helper()
	buf := make([]connector.Message, 10)
	for range tries {
		n, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return buf[:n]
		}
	}
	return nil
}

// TestSourceFollowTruncatedInPlace follows a file that is truncated in
// place (copytruncate rotation) to less than what was read of it, with and
// without a partial last line: the source must warn and read the file
// again from its first byte, with line numbers from 1.
func TestSourceFollowTruncatedInPlace(t *testing.T) {
	for _, tc := range []struct{ name, before string }{
		{"after complete lines", "first\nsecond\n"},
		{"inside a partial line", "first\nsecond\npartial-line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(p, []byte(tc.before), 0o644); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			sp := oneSplit(t, SourceConfig{Path: p, Follow: true, PollInterval: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if got := readUntil(t, sp, 3); len(got) != 2 {
				t.Fatalf("before truncation: %d records, want 2", len(got))
			}
			// The partial line, if any, is taken into the split's buffer.
			readUntil(t, sp, 1)
			if err := os.WriteFile(p, []byte("new\n"), 0o644); err != nil { // O_TRUNC: same inode
				t.Fatal(err)
			}
			got := readUntil(t, sp, 5)
			if len(got) != 1 || string(got[0].Value) != "new" || got[0].Offset != 1 {
				for _, m := range got {
					t.Logf("record %q@%d", m.Value, m.Offset)
				}
				t.Fatalf("after truncation: %d records, want \"new\"@1", len(got))
			}
			if !strings.Contains(logs.String(), "truncated") {
				t.Fatalf("no warning logged: %q", logs.String())
			}
		})
	}
}

// TestSourceFollowPartialLineBounded follows a file that grows without a
// newline, each piece shorter than MaxLineBytes: once the partial line
// kept across polls is longer than MaxLineBytes the source must fail as
// it does for a complete line, not buffer it without bound.
func TestSourceFollowPartialLineBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(p, []byte("ok\n0123456"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := oneSplit(t, SourceConfig{Path: p, Follow: true, PollInterval: 1, MaxLineBytes: 10})
	buf := make([]connector.Message, 10)
	for i := 0; ; i++ {
		n, err := sp.Read(context.Background(), buf)
		if err != nil {
			if !strings.Contains(err.Error(), "line 2: longer than 10 bytes") {
				t.Fatalf("error %q, want line 2 longer than 10 bytes", err)
			}
			return
		}
		if i == 1 && n == 0 {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("789abc")
			f.Close()
		}
		if i == 5 {
			t.Fatalf("no error after %d reads of a partial line longer than MaxLineBytes", i+1)
		}
	}
}

// oneSplit opens a source of cfg as one split, closed when the test ends.
func oneSplit(t *testing.T, cfg SourceConfig) stream.Split[connector.Message] {
	t.Helper()
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := src.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp[0].(io.Closer).Close() })
	return sp[0]
}
