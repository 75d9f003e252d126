package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

func readAll(t *testing.T, sp stream.Split[connector.Message]) []connector.Message {
	t.Helper()
	var out []connector.Message
	buf := make([]connector.Message, 3)
	for {
		n, err := sp.Read(context.Background(), buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSourceDirectoryInNameOrder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.jsonl"), []byte("3\n4"), 0o644) // no final newline
	os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte("1\r\n\n2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "_tmp"), []byte("x\n"), 0o644)
	src, err := NewSource(SourceConfig{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	splits, err := src.Splits(context.Background(), 1)
	if err != nil || len(splits) != 1 {
		t.Fatalf("%d splits, %v", len(splits), err)
	}
	msgs := readAll(t, splits[0])
	var got []string
	for _, m := range msgs {
		got = append(got, fmt.Sprintf("%s@%s:%d", m.Value, filepath.Base(m.Origin), m.Offset))
	}
	want := "1@a.jsonl:1 2@a.jsonl:3 3@b.jsonl:1 4@b.jsonl:2"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

func TestSourceSplitsAndSeek(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		var b strings.Builder
		for j := range 100 {
			fmt.Fprintf(&b, "f%d-%d\n", i, j)
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.txt", i)), []byte(b.String()), 0o644)
	}
	src, _ := NewSource(SourceConfig{Path: dir})
	splits, err := src.Splits(context.Background(), 2)
	if err != nil || len(splits) != 2 {
		t.Fatalf("%d splits, %v", len(splits), err)
	}
	var all []string
	for _, sp := range splits {
		for _, m := range readAll(t, sp) {
			all = append(all, string(m.Value))
		}
	}
	if len(all) != 500 {
		t.Fatalf("%d lines, want 500", len(all))
	}
	// Resume from every position reached after a partial read: the rest
	// is exactly what a full read returns after that point.
	src2, _ := NewSource(SourceConfig{Path: dir})
	sp, _ := src2.Splits(context.Background(), 1)
	full := readAll(t, sp[0])
	for _, cut := range []int{1, 99, 100, 101, 250, 499} {
		s, _ := src2.Splits(context.Background(), 1)
		buf := make([]connector.Message, cut)
		n := 0
		for n < cut {
			k, err := s[0].Read(context.Background(), buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
		pos := s[0].Position()
		r, _ := src2.Splits(context.Background(), 1)
		if err := r[0].Seek(pos); err != nil {
			t.Fatal(err)
		}
		rest := readAll(t, r[0])
		if len(rest) != len(full)-cut || string(rest[0].Value) != string(full[cut].Value) || rest[0].Offset != full[cut].Offset {
			t.Fatalf("cut %d: resumed with %d records starting %q@%d, want %d starting %q@%d", cut, len(rest), rest[0].Value, rest[0].Offset, len(full)-cut, full[cut].Value, full[cut].Offset)
		}
	}
	if err := sp[0].Seek([]byte{1}); !errors.Is(err, stream.ErrBadPosition) {
		t.Errorf("bad position: %v", err)
	}
}

func TestSourceHeader(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x,y\n1,2\n3,4\n"), 0o644)
	src, _ := NewSource(SourceConfig{Path: dir, Header: true})
	sp, _ := src.Splits(context.Background(), 1)
	msgs := readAll(t, sp[0])
	if len(msgs) != 2 || string(msgs[0].Headers[0].Value) != "x,y" || msgs[0].Headers[0].Key != HeaderKey || msgs[0].Offset != 2 {
		t.Fatalf("got %+v", msgs)
	}
}

// TestSourceFollow appends to a followed file and adds a new file, and
// waits (with a deadline) until the source has returned everything.
func TestSourceFollow(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	os.WriteFile(p, []byte("1\n2"), 0o644)
	src, _ := NewSource(SourceConfig{Path: dir, Follow: true, PollInterval: time.Millisecond})
	sp, _ := src.Splits(context.Background(), 4)
	if len(sp) != 1 {
		t.Fatalf("following source has %d splits", len(sp))
	}
	defer sp[0].(io.Closer).Close()
	var got []string
	buf := make([]connector.Message, 10)
	read := func(want int) {
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < want {
			if time.Now().After(deadline) {
				t.Fatalf("timed out with %v", got)
			}
			n, err := sp[0].Read(context.Background(), buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range buf[:n] {
				got = append(got, string(m.Value))
			}
		}
	}
	read(1)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("2\n3\n")
	f.Close()
	read(3)
	os.WriteFile(filepath.Join(dir, "b.log"), []byte("4\n"), 0o644)
	read(4)
	if strings.Join(got, ",") != "1,22,3,4" {
		t.Fatalf("got %v", got)
	}
}

func TestSinkCommitsAtomically(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSink(SinkConfig{Path: dir, RollBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Open(context.Background(), stream.SubtaskInfo{Index: 3, Parallelism: 4})
	visible := func() []string {
		ents, _ := os.ReadDir(dir)
		var out []string
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				out = append(out, e.Name())
			}
		}
		sort.Strings(out)
		return out
	}
	ctx := context.Background()
	w.Write(ctx, []connector.Message{{Value: []byte("aaaa")}})
	if v := visible(); len(v) != 0 {
		t.Fatalf("uncommitted part visible: %v", v)
	}
	w.Write(ctx, []connector.Message{{Value: []byte("bbbbbb")}, {Value: []byte("c")}})
	if v := visible(); len(v) != 1 {
		t.Fatalf("after a roll: %v", v)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	v := visible()
	if len(v) != 2 || !strings.HasSuffix(v[0], "-3-000000.jsonl") {
		t.Fatalf("after close: %v", v)
	}
	var all string
	for _, f := range v {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		all += string(b)
	}
	if all != "aaaa\nbbbbbb\nc\n" {
		t.Fatalf("content %q", all)
	}
	if n, _ := os.ReadDir(dir); len(n) != 2 {
		t.Fatalf("temporary files left: %v", n)
	}
}

func TestSinkTwoPhase(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewSink(SinkConfig{Path: dir, TwoPhase: true, RollBytes: 4, Prefix: "p-x"})
	sw, _ := s.Open(context.Background(), stream.SubtaskInfo{})
	w := sw.(*Writer)
	var _ checkpoint.TwoPhaseCommitter = w
	ctx := context.Background()
	count := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "p-x-*"))
		return len(m)
	}
	w.Write(ctx, []connector.Message{{Value: []byte("11111")}, {Value: []byte("2")}}) // rolls after the first
	if err := w.OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	tx1, err := w.PreCommit(ctx, 1)
	if err != nil || tx1 == nil {
		t.Fatalf("pre-commit 1: %v, %v", tx1, err)
	}
	w.Write(ctx, []connector.Message{{Value: []byte("3")}})
	tx2, _ := w.PreCommit(ctx, 2)
	w.Write(ctx, []connector.Message{{Value: []byte("4")}})
	tx3, _ := w.PreCommit(ctx, 3)
	if count() != 0 {
		t.Fatal("staged parts visible before commit")
	}
	if err := w.Commit(ctx, tx1); err != nil {
		t.Fatal(err)
	}
	if count() != 2 {
		t.Fatalf("after commit 1: %d parts", count())
	}
	if err := w.Commit(ctx, tx1); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := w.Abort(ctx, tx2); err != nil {
		t.Fatal(err)
	}
	// Staged after the checkpoint that a restart restores: aborted by the
	// restarted writer's Recover.
	w.Write(ctx, []connector.Message{{Value: []byte("orphan")}})
	if _, err := w.PreCommit(ctx, 4); err != nil {
		t.Fatal(err)
	}
	w.Write(ctx, []connector.Message{{Value: []byte("lost")}})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}
	// A new run (after a crash) recovers the checkpoint that staged tx3.
	s2, _ := NewSink(SinkConfig{Path: dir, TwoPhase: true, Prefix: "p-x"})
	w2, _ := s2.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
	if err := w2.(*Writer).Recover(ctx, []checkpoint.Transaction{tx3}); err != nil {
		t.Fatal(err)
	}
	if count() != 3 {
		t.Fatalf("after recover: %d parts", count())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Fatalf("%d entries left: aborted or unstaged parts remain", len(ents))
	}
	var all []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		all = append(all, strings.TrimSpace(string(b)))
	}
	sort.Strings(all)
	if strings.Join(all, ",") != "11111,2,4" {
		t.Fatalf("committed content %v", all)
	}
	if _, err := decodeParts([]byte{5, 1}); !errors.Is(err, ErrBadTransaction) {
		t.Errorf("bad handle: %v", err)
	}
}

func TestParseStaged(t *testing.T) {
	s := &Sink{cfg: SinkConfig{Prefix: "part", Suffix: ".jsonl"}}
	for _, tc := range []struct {
		name string
		run  string
		sub  int
		ok   bool
	}{
		{".part-20260101T000000-abcd0123-3-000007.jsonl.inprogress", "20260101T000000-abcd0123", 3, true},
		{".part-20260101T000000-abcd0123-1-2.jsonl.inprogress", "20260101T000000-abcd0123", 1, true},
		{".part-x-1-2.jsonl.inprogress", "", 0, false},
		{".part-x-20260101T000000-abcd0123-1-2.jsonl.inprogress", "", 0, false},
		{"part-x-1-2.jsonl", "", 0, false},
		{".part-x-y-2.jsonl.inprogress", "", 0, false},
		{".part--1.jsonl.inprogress", "", 0, false},
		{".other-x-1-2.jsonl.inprogress", "", 0, false},
	} {
		run, sub, ok := s.parseStaged(tc.name)
		if run != tc.run || sub != tc.sub || ok != tc.ok {
			t.Errorf("%s: %q %d %v", tc.name, run, sub, ok)
		}
	}
}

// TestRecoverSparesSinkWithLongerPrefix: two exactly-once sinks share a
// directory with prefixes "p" and "p-x". The recovery of the first must not
// take the second's staged parts (".p-x-<run>-0-000000...") for its own
// earlier runs' and delete them, which loses a pre-committed part.
func TestRecoverSparesSinkWithLongerPrefix(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	long, _ := NewSink(SinkConfig{Path: dir, TwoPhase: true, Prefix: "p-x"})
	lw, _ := long.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
	if err := lw.Write(ctx, []connector.Message{{Value: []byte("kept")}}); err != nil {
		t.Fatal(err)
	}
	tx, err := lw.(*Writer).PreCommit(ctx, 1)
	if err != nil || tx == nil {
		t.Fatalf("pre-commit: %v, %v", tx, err)
	}
	short, _ := NewSink(SinkConfig{Path: dir, TwoPhase: true, Prefix: "p"})
	sw, _ := short.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
	if err := sw.(*Writer).Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := lw.(*Writer).Commit(ctx, tx); err != nil {
		t.Fatalf("commit of the other sink's staged part: %v", err)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "p-x-*"))
	if len(m) != 1 {
		t.Fatalf("committed parts: %v", m)
	}
}

// TestRestartWithTheSameSink: Execute restarts a failed job in-process
// with the same Sink, whose writers are opened again. The restarted
// writer must neither reuse the part names of the failed attempt (its
// first commit renamed a new part over a committed one) nor keep that
// attempt's orphaned staged parts.
func TestRestartWithTheSameSink(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := NewSink(SinkConfig{Path: dir, TwoPhase: true})
	info := stream.SubtaskInfo{Parallelism: 1}
	w1, _ := s.Open(ctx, info)
	if err := w1.(*Writer).Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	w1.Write(ctx, []connector.Message{{Value: []byte("first")}})
	tx1, err := w1.(*Writer).PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.(*Writer).Commit(ctx, tx1); err != nil {
		t.Fatal(err)
	}
	w1.Write(ctx, []connector.Message{{Value: []byte("orphan")}})
	if _, err := w1.(*Writer).PreCommit(ctx, 2); err != nil { // checkpoint 2 never completes
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w1.Close(cctx) // the attempt fails

	w2, _ := s.Open(ctx, info) // the restart, from checkpoint 1
	if err := w2.(*Writer).Recover(ctx, []checkpoint.Transaction{tx1}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"second", "third"} {
		w2.Write(ctx, []connector.Message{{Value: []byte(v)}})
		tx, err := w2.(*Writer).PreCommit(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := w2.(*Writer).Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var all []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		all = append(all, e.Name()[:1]+":"+strings.TrimSpace(string(b)))
	}
	sort.Strings(all)
	if got := strings.Join(all, ","); got != "p:first,p:second,p:third" {
		t.Fatalf("directory holds %s", got)
	}
}
