package file

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// rotate renames the followed file p to p.1 after appending tail to it,
// and creates a new p holding fresh, as logrotate's create rotation does
// while the writer appends until it reopens.
func rotate(t *testing.T, p, tail, fresh string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(tail); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(fresh), 0o644); err != nil {
		t.Fatal(err)
	}
}

// records returns "value@file:line" for each message.
func records(ms []connector.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Value) + "@" + filepath.Base(m.Origin) + ":" + strconv.FormatInt(m.Offset, 10)
	}
	return out
}

// readN reads one record at a time (each Read may be followed by a
// checkpoint) until n records came, polling at most tries times.
func readN(t *testing.T, sp stream.Split[connector.Message], n, tries int) []connector.Message {
	t.Helper()
	var out []connector.Message
	buf := make([]connector.Message, 1)
	for range tries {
		if len(out) == n {
			return out
		}
		k, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if k > 0 {
			m := buf[0]
			m.Value = append([]byte(nil), m.Value...)
			out = append(out, m)
		}
	}
	return out
}

// TestSourceFollowRenameRotation follows a file that is renamed away and
// replaced by a new one under its name (logrotate's create rotation): the
// source must read the renamed file to its end, the lines written to it
// before the rename included (and a partial last line as a record), then
// the new file from its first line, as tail -F does.
func TestSourceFollowRenameRotation(t *testing.T) {
	for _, tc := range []struct{ name, tail, last string }{
		{"complete lines", "c\n", "c@app.log:3"},
		{"partial last line", "c", "c@app.log:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(p, []byte("a\nb\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			sp := oneSplit(t, SourceConfig{Path: p, Follow: true, PollInterval: 1, Logger: slog.New(slog.DiscardHandler)})
			if got := records(readN(t, sp, 2, 3)); strings.Join(got, " ") != "a@app.log:1 b@app.log:2" {
				t.Fatalf("before rotation: %v", got)
			}
			readN(t, sp, 1, 1) // at the end: waits for more
			rotate(t, p, tc.tail, "d\ne\n")
			got := records(readN(t, sp, 3, 10))
			if want := tc.last + " d@app.log:1 e@app.log:2"; strings.Join(got, " ") != want {
				t.Fatalf("after rotation: %v, want %s", got, want)
			}
		})
	}
}

// TestSourceFollowRenameRotationRestore restores positions taken before a
// rename-style rotation, and while the renamed file is being finished,
// into a new split after the rotation: every record after the position
// comes once, none before it (exactly-once across a restore), and when
// the renamed file is gone the new file is read from its start.
func TestSourceFollowRenameRotationRestore(t *testing.T) {
	all := []string{"a@app.log:1", "b@app.log:2", "c@app.log:3", "d@app.log:4", "x@app.log:1", "y@app.log:2"}
	for after := 1; after < len(all); after++ {
		t.Run(strconv.Itoa(after), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(p, []byte("a\nb\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := SourceConfig{Path: p, Follow: true, PollInterval: 1, Logger: slog.New(slog.DiscardHandler)}
			sp := oneSplit(t, cfg)
			var got []connector.Message
			if after <= 2 {
				got = readN(t, sp, after, 3)
				rotate(t, p, "c\nd\n", "x\ny\n")
			} else {
				got = readN(t, sp, 2, 3)
				readN(t, sp, 1, 1) // at the end
				rotate(t, p, "c\nd\n", "x\ny\n")
				got = append(got, readN(t, sp, after-2, 10)...)
			}
			pos := sp.Position()
			sp2 := oneSplit(t, cfg)
			if err := sp2.Seek(pos); err != nil {
				t.Fatal(err)
			}
			got = append(got, readN(t, sp2, len(all)-after, 10)...)
			if g := records(got); !slices.Equal(g, all) {
				t.Fatalf("restored after %d records: %v, want %v", after, g, all)
			}
		})
	}
	t.Run("renamed file gone", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "app.log")
		if err := os.WriteFile(p, []byte("a\nb\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cfg := SourceConfig{Path: p, Follow: true, PollInterval: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		sp := oneSplit(t, cfg)
		readN(t, sp, 1, 3)
		pos := sp.Position()
		rotate(t, p, "", "x\ny\n")
		if err := os.Remove(p + ".1"); err != nil {
			t.Fatal(err)
		}
		sp2 := oneSplit(t, cfg)
		if err := sp2.Seek(pos); err != nil {
			t.Fatal(err)
		}
		if g := records(readN(t, sp2, 2, 10)); strings.Join(g, " ") != "x@app.log:1 y@app.log:2" {
			t.Fatalf("after the renamed file was removed: %v", g)
		}
		if !strings.Contains(logs.String(), "renamed file is gone") {
			t.Fatalf("no warning: %q", logs.String())
		}
	})
}

// TestSourceFollowRotationProperty checks a followed file against a
// simple oracle (every line written, in order, once) over random scripts
// of appends (some in two pieces, a partial line first), reads of random
// sizes, rename-style rotations and restores of the position into a new
// split. A rotation comes only once the reader has opened the current
// file (read a line of it): a file renamed away twice before the reader
// opens it is skipped by tail -F as well.
func TestSourceFollowRotationProperty(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			dir := t.TempDir()
			p := filepath.Join(dir, "app.log")
			gen, next := 0, 0
			var want, got []string
			line := func() string {
				l := fmt.Sprintf("g%d-%d", gen, next)
				next++
				want = append(want, l)
				return l
			}
			appendTo := func(s string) {
				f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(s); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			appendTo(line() + "\n")
			cfg := SourceConfig{Path: p, Follow: true, PollInterval: 1, Logger: slog.New(slog.DiscardHandler)}
			sp := oneSplit(t, cfg)
			readGen := false // a line of the current generation was read
			read := func(polls int) {
				buf := make([]connector.Message, 1+rng.Intn(3))
				for range polls {
					n, err := sp.Read(context.Background(), buf)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range buf[:n] {
						got = append(got, string(m.Value))
						if strings.HasPrefix(string(m.Value), fmt.Sprintf("g%d-", gen)) {
							readGen = true
						}
					}
				}
			}
			for step := 0; step < 30; step++ {
				switch op := rng.Intn(10); {
				case op < 3:
					for range 1 + rng.Intn(3) {
						l := line()
						if rng.Intn(3) == 0 {
							k := 1 + rng.Intn(len(l)-1)
							appendTo(l[:k])
							read(1)
							appendTo(l[k:] + "\n")
						} else {
							appendTo(l + "\n")
						}
					}
				case op < 6:
					read(1 + rng.Intn(3))
				case op < 8:
					pos := sp.Position()
					sp.(io.Closer).Close()
					sp = oneSplit(t, cfg)
					if err := sp.Seek(pos); err != nil {
						t.Fatal(err)
					}
				default:
					if !readGen {
						read(3)
						continue
					}
					gen++
					if err := os.Rename(p, fmt.Sprintf("%s.%d", p, gen)); err != nil {
						t.Fatal(err)
					}
					readGen = false
					appendTo(line() + "\n")
				}
			}
			for range 50 {
				if len(got) >= len(want) {
					break
				}
				read(1)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("read %v\nwant %v", got, want)
			}
		})
	}
}
