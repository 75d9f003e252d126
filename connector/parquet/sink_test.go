package parquet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

var testSchema = row.MustSchema(
	row.Field{Name: "user", Kind: row.KindString},
	row.Field{Name: "n", Kind: row.KindInt},
	row.Field{Name: "amount", Kind: row.KindFloat},
	row.Field{Name: "paid", Kind: row.KindBool},
	row.Field{Name: "at", Kind: row.KindTimestamp},
	row.Field{Name: "meta", Kind: row.KindJSON},
	row.Field{Name: "free"}, // untyped: an int from the data
)

func testRow(i int) row.Row {
	r := row.Row{Vals: []row.Value{
		row.String(fmt.Sprintf("u%d", i%5)), row.Int(int64(i)), row.Float(float64(i) / 2), row.Bool(i%2 == 0),
		row.Timestamp(1_700_000_000_000 + int64(i)), row.JSON(fmt.Sprintf(`{"i":%d}`, i)), row.Int(int64(-i)),
	}}
	if i%7 == 3 {
		r.Vals[0] = row.Null()
	}
	return r
}

// wantLine renders a test row as readBack does.
func wantLine(i int) string {
	user := fmt.Sprintf("u%d", i%5)
	if i%7 == 3 {
		user = "NULL"
	}
	return fmt.Sprintf("%s|%d|%v|%v|%d|{\"i\":%d}|%d", user, i, float64(i)/2, i%2 == 0, 1_700_000_000_000+int64(i), i, -i)
}

// committed lists the part files readers can see.
func committed(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".parquet") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// readBack reads every committed file with parquet-go's generic reader and
// renders rows as "user|n|amount|paid|at|meta|free" in field order.
func readBack(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range committed(t, dir) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := pq.OpenFile(f, st.Size())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sch := pf.Schema()
		cols := map[string]int{}
		for i, path := range sch.Columns() {
			cols[path[0]] = i
		}
		if lt, ok := sch.Lookup("at"); !ok || lt.Node.Type().LogicalType() == nil || !strings.Contains(lt.Node.Type().LogicalType().String(), "unit=MILLIS") {
			t.Fatalf("column at is not a timestamp: %v", sch)
		}
		r := pq.NewReader(f)
		rows := make([]pq.Row, 10)
		for {
			n, err := r.ReadRows(rows)
			for _, pr := range rows[:n] {
				var parts []string
				for _, field := range testSchema.Names() {
					v := pr[cols[field]]
					switch {
					case v.IsNull():
						parts = append(parts, "NULL")
					case v.Kind() == pq.Boolean:
						parts = append(parts, fmt.Sprint(v.Boolean()))
					case v.Kind() == pq.Int64:
						parts = append(parts, fmt.Sprint(v.Int64()))
					case v.Kind() == pq.Double:
						parts = append(parts, fmt.Sprint(v.Double()))
					default:
						parts = append(parts, string(v.ByteArray()))
					}
				}
				out = append(out, strings.Join(parts, "|"))
			}
			if err != nil {
				break
			}
		}
		r.Close()
		f.Close()
	}
	slices.Sort(out)
	return out
}

func TestPipelineRoundTrip(t *testing.T) {
	dir := t.TempDir()
	var in []row.Row
	var want []string
	for i := range 1000 {
		in = append(in, testRow(i))
		want = append(want, wantLine(i))
	}
	slices.Sort(want)
	s, err := NewSink(Config{Path: dir, MaxRowsPerFile: 300}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(2))
	stream.To(stream.FromSource(env, "rows", stream.FromSlice(in, 2), stream.WatermarkStrategy[row.Row]{}), stream.Sink[row.Row](s))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if files := committed(t, dir); len(files) < 4 {
		t.Fatalf("files %v: want at least 2 per subtask (500 rows, 300 per file)", files)
	}
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("read back %d rows, want %d; first %v vs %v", len(got), len(want), got[:2], want[:2])
	}
	noTemporaryFiles(t, dir)
}

func TestFilesAppearOnlyWhenCommitted(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSink(Config{Path: dir}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	cc := w.(interface {
		CommitCheckpoint(context.Context, uint64) error
	})
	bw := w.(stream.BarrierWriter)
	write := func(from, to int) {
		var rs []row.Row
		for i := from; i < to; i++ {
			rs = append(rs, testRow(i))
		}
		if err := w.Write(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 10)
	if err := bw.OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	write(10, 15)
	if err := bw.OnBarrier(ctx, 2); err != nil {
		t.Fatal(err)
	}
	write(15, 20)
	if got := committed(t, dir); len(got) != 0 {
		t.Fatalf("visible before any checkpoint completed: %v", got)
	}
	if err := cc.CommitCheckpoint(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, dir); len(got) != 10 {
		t.Fatalf("after checkpoint 1: %d rows", len(got))
	}
	if err := cc.CommitCheckpoint(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, dir); len(got) != 15 {
		t.Fatalf("after checkpoint 2: %d rows", len(got))
	}
	// Stopped early: the file in progress (rows 15-19) is discarded.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Close(cancelled); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, dir); len(got) != 15 {
		t.Fatalf("after abort: %d rows", len(got))
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d entries, want the 2 committed files", len(ents))
	}
}

func TestCommitOnBarrierAndReject(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSink(Config{Path: dir, CommitOnBarrier: true}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, _ := s.Open(ctx, stream.SubtaskInfo{Index: 3})
	if err := w.Write(ctx, []row.Row{testRow(1)}); err != nil {
		t.Fatal(err)
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 9); err != nil {
		t.Fatal(err)
	}
	files := committed(t, dir)
	if len(files) != 1 || !strings.HasPrefix(files[0], "part-3-") {
		t.Fatalf("files %v", files)
	}
	bad := testRow(2)
	bad.Vals[1] = row.String("two")
	err = w.Write(ctx, []row.Row{testRow(3), bad, testRow(4)})
	var rej *RejectError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Field != "n" || !errors.Is(err, ErrIncompatible) {
		t.Fatalf("err = %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{wantLine(1), wantLine(3), wantLine(4)}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows %v", got)
	}
	if _, err := NewSink(Config{}, testSchema); err == nil {
		t.Fatal("no path accepted")
	}
	if _, err := NewSink(Config{Path: dir}, row.MustSchema()); err == nil {
		t.Fatal("empty schema accepted")
	}
}

// A writer that dies after pre-committing a file at barrier 1 and while
// writing another: recovery publishes the pre-committed file, and the
// next run's first Open deletes the abandoned temporary one.
func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	old, err := NewSink(Config{Path: dir}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := old.Open(ctx, stream.SubtaskInfo{})
	if err := w.Write(ctx, []row.Row{testRow(1), testRow(2)}); err != nil {
		t.Fatal(err)
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, []row.Row{testRow(3)}); err != nil {
		t.Fatal(err)
	}
	saved := w.(interface{ PreCommitted(uint64) []string }).PreCommitted(1)
	if len(saved) != 1 {
		t.Fatalf("pre-committed %v", saved)
	}
	// The old writer is gone without Close; a new run recovers.
	s2, err := NewSink(Config{Path: dir}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.CommitRecovered(ctx, []string{"../escape.parquet"}); err == nil {
		t.Fatal("a name outside the directory was accepted")
	}
	if err := s2.CommitRecovered(ctx, saved); err != nil {
		t.Fatal(err)
	}
	if err := s2.CommitRecovered(ctx, saved); err != nil { // again: already published
		t.Fatal(err)
	}
	w2, err := s2.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(ctx, []row.Row{testRow(4)}); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{wantLine(1), wantLine(2), wantLine(4)}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	noTemporaryFiles(t, dir)
}

// TestUntypedNumericWidens: an untyped field whose first values are whole
// numbers and later ones fractional (a sum over JSON prices, say) is not
// rejected: the later rows go to a file whose column is a double.
func TestUntypedNumericWidens(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSink(Config{Path: dir}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, _ := s.Open(ctx, stream.SubtaskInfo{})
	if err := w.Write(ctx, []row.Row{testRow(1)}); err != nil {
		t.Fatal(err)
	}
	r2 := testRow(2)
	r2.Vals[6] = row.Float(2.5)
	if err := w.Write(ctx, []row.Row{r2, testRow(4)}); err != nil {
		t.Fatalf("a fractional value in an untyped field: %v", err)
	}
	// Mixed in the first batch of a writer: the column is a double.
	w2, _ := s.Open(ctx, stream.SubtaskInfo{Index: 1})
	r5 := testRow(5)
	r5.Vals[6] = row.Float(0.25)
	if err := w2.Write(ctx, []row.Row{testRow(6), r5}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []stream.SinkWriter[row.Row]{w, w2} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{wantLine(1), strings.TrimSuffix(wantLine(2), "|-2") + "|2.5", strings.Replace(wantLine(4), "|-4", "|-4", 1),
		strings.TrimSuffix(wantLine(5), "|-5") + "|0.25", strings.Replace(wantLine(6), "|-6", "|-6", 1)}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows\n%v\nwant\n%v", got, want)
	}
}

// TestTwoPhase: with TwoPhase, files stay hidden through PreCommit and
// appear at Commit (idempotent); Abort deletes staged files; Recover in a
// new run commits the restored checkpoint's files and deletes the other
// staged ones.
func TestTwoPhase(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (stream.SinkWriter[row.Row], checkpoint.TwoPhaseCommitter) {
		s, err := NewSink(Config{Path: dir, TwoPhase: true, CommitOnBarrier: true}, testSchema)
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Open(ctx, stream.SubtaskInfo{Index: 0, Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		c, ok := w.(checkpoint.TwoPhaseCommitter)
		if !ok {
			t.Fatal("not a TwoPhaseCommitter")
		}
		return w, c
	}
	w, c := open()
	if err := c.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	write := func(w stream.SinkWriter[row.Row], i int) {
		if err := w.Write(ctx, []row.Row{testRow(i)}); err != nil {
			t.Fatal(err)
		}
		if err := w.(stream.BarrierWriter).OnBarrier(ctx, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	write(w, 1)
	tx1, err := c.PreCommit(ctx, 1)
	if err != nil || len(tx1) == 0 {
		t.Fatalf("precommit: %v %q", err, tx1)
	}
	if files := committed(t, dir); len(files) != 0 {
		t.Fatalf("visible before commit: %v", files)
	}
	if err := c.Commit(ctx, tx1); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, tx1); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	write(w, 2)
	tx2, _ := c.PreCommit(ctx, 2)
	if err := c.Abort(ctx, tx2); err != nil {
		t.Fatal(err)
	}
	write(w, 3)
	tx3, _ := c.PreCommit(ctx, 3) // restored below
	write(w, 4)
	if _, err := c.PreCommit(ctx, 4); err != nil { // left staged by a crash
		t.Fatal(err)
	}
	if got := readBack(t, dir); !slices.Equal(got, []string{wantLine(1)}) {
		t.Fatalf("rows %v", got)
	}
	// A new run restores checkpoint 3.
	_, c2 := open()
	if err := c2.Recover(ctx, []checkpoint.Transaction{tx3}); err != nil {
		t.Fatal(err)
	}
	want := []string{wantLine(1), wantLine(3)}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows after recovery %v, want %v", got, want)
	}
	noTemporaryFiles(t, dir)
	if err := c2.Commit(ctx, checkpoint.Transaction("../x\n")); !errors.Is(err, ErrBadTransaction) {
		t.Fatalf("bad handle: %v", err)
	}
}

func FuzzDecodeTx(f *testing.F) {
	f.Add([]byte("part-0-abc-000001.parquet\n"))
	f.Add([]byte("part-0-abc-000001.parquet\npart-1-abc-000002.parquet\n"))
	f.Add([]byte("../etc/passwd\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		names, err := decodeTx(b)
		if err != nil {
			return
		}
		for _, n := range names {
			if filepath.Base(n) != n || strings.ContainsAny(n, "/\n") {
				t.Fatalf("unsafe name %q", n)
			}
		}
	})
}

// TestRestartWithTheSameSink: Execute restarts a failed job in-process
// with the same Sink, whose writers are opened again. The restarted
// writer must neither reuse the file names of the failed attempt (its
// first commit renamed a new file over a committed one) nor keep that
// attempt's orphaned staged files.
func TestRestartWithTheSameSink(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := NewSink(Config{Path: dir, TwoPhase: true}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	info := stream.SubtaskInfo{Parallelism: 1}
	w1, _ := s.Open(ctx, info)
	c1 := w1.(checkpoint.TwoPhaseCommitter)
	if err := c1.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := w1.Write(ctx, []row.Row{testRow(1)}); err != nil {
		t.Fatal(err)
	}
	tx1, err := c1.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Commit(ctx, tx1); err != nil {
		t.Fatal(err)
	}
	if err := w1.Write(ctx, []row.Row{testRow(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.PreCommit(ctx, 2); err != nil { // checkpoint 2 never completes
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w1.Close(cctx) // the attempt fails

	w2, _ := s.Open(ctx, info) // the restart, from checkpoint 1
	c2 := w2.(checkpoint.TwoPhaseCommitter)
	if err := c2.Recover(ctx, []checkpoint.Transaction{tx1}); err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 4; i++ {
		if err := w2.Write(ctx, []row.Row{testRow(i)}); err != nil {
			t.Fatal(err)
		}
		tx, err := c2.PreCommit(ctx, checkpoint.ID(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{wantLine(1), wantLine(3), wantLine(4)}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	noTemporaryFiles(t, dir)
}

// TestDefaultModeUnderCheckpointing drives a sink of the default mode
// (neither TwoPhase nor CommitOnBarrier) as the stream runtime does: the
// writer is a checkpoint.TwoPhaseCommitter, so at barrier 1 the runtime
// calls OnBarrier then PreCommit, commits the handle when checkpoint 1
// completes (it never calls CommitCheckpoint), and after a failure calls
// Recover with the restored checkpoint's handles. The rows before barrier
// 1 are past the restored positions: they must be published, not deleted
// as another run's temporary file.
func TestDefaultModeUnderCheckpointing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := NewSink(Config{Path: dir}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	info := stream.SubtaskInfo{Parallelism: 1}
	w1, _ := s.Open(ctx, info)
	c1 := w1.(checkpoint.TwoPhaseCommitter)
	if err := c1.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := w1.Write(ctx, []row.Row{testRow(1)}); err != nil {
		t.Fatal(err)
	}
	if err := w1.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	tx1, err := c1.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoint 1 completes, but the process dies before its commit.
	if err := w1.Write(ctx, []row.Row{testRow(2)}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w1.Close(cctx)

	w2, _ := s.Open(ctx, info) // restored from checkpoint 1
	var restored []checkpoint.Transaction
	if tx1 != nil {
		restored = append(restored, tx1)
	}
	if err := w2.(checkpoint.TwoPhaseCommitter).Recover(ctx, restored); err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(ctx, []row.Row{testRow(2)}); err != nil { // replayed
		t.Fatal(err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{wantLine(1), wantLine(2)}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

// noTemporaryFiles fails t if dir holds a temporary or staged file (a
// name starting with a dot) that a commit or recovery should have removed
// or published.
func noTemporaryFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temporary or staged file left: %s", e.Name())
		}
	}
}
