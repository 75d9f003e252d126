package file

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/connector"
)

// TestSourceFollowHeaderNotYetWritten follows a directory of CSV files
// (Header) whose last file is empty, or holds only part of its header
// line, when the split opens it: the header must be taken once its line is
// complete, not be read as a record, and the records must carry it.
func TestSourceFollowHeaderNotYetWritten(t *testing.T) {
	for _, tc := range []struct{ name, first, rest string }{
		{"empty", "", "x,y\n1,2\n"},
		{"partial header", "x,", "y\n1,2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "a.csv")
			if err := os.WriteFile(p, []byte(tc.first), 0o644); err != nil {
				t.Fatal(err)
			}
			src, _ := NewSource(SourceConfig{Path: dir, Follow: true, Header: true, PollInterval: 1})
			sp, err := src.Splits(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer sp[0].(io.Closer).Close()
			buf := make([]connector.Message, 10)
			if n, err := sp[0].Read(context.Background(), buf); n != 0 || err != nil {
				t.Fatalf("before the header: %d records, %v", n, err)
			}
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tc.rest)
			f.Close()
			n, err := sp[0].Read(context.Background(), buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || string(buf[0].Value) != "1,2" || len(buf[0].Headers) != 1 || string(buf[0].Headers[0].Value) != "x,y" || buf[0].Offset != 2 {
				for _, m := range buf[:n] {
					t.Logf("record %q@%d headers %q", m.Value, m.Offset, m.Headers)
				}
				t.Fatalf("got %d records, want one \"1,2\"@2 with header \"x,y\"", n)
			}
		})
	}
}
