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
	s := newSink(t, Config{Path: dir, MaxRowsPerFile: 300})
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
	s := newSink(t, Config{Path: dir})
	ctx := context.Background()
	w := openWriter(t, s, stream.SubtaskInfo{})
	cc := w.(interface {
		CommitCheckpoint(context.Context, uint64) error
	})
	write := func(from, to int) {
		var ids []int
		for i := from; i < to; i++ {
			ids = append(ids, i)
		}
		writeRows(t, w, ids...)
	}
	write(0, 10)
	barrier(t, w, 1)
	write(10, 15)
	barrier(t, w, 2)
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
	s := newSink(t, Config{Path: dir, CommitOnBarrier: true})
	ctx := context.Background()
	w := openWriter(t, s, stream.SubtaskInfo{Index: 3})
	writeRows(t, w, 1)
	barrier(t, w, 9)
	files := committed(t, dir)
	if len(files) != 1 || !strings.HasPrefix(files[0], "part-3-") {
		t.Fatalf("files %v", files)
	}
	bad := testRow(2)
	bad.Vals[1] = row.String("two")
	err := w.Write(ctx, []row.Row{testRow(3), bad, testRow(4)})
	var rej *RejectError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Field != "n" || !errors.Is(err, ErrIncompatible) {
		t.Fatalf("err = %v", err)
	}
	closeWriter(t, w)
	wantRows(t, dir, 1, 3, 4)
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
	old := newSink(t, Config{Path: dir})
	w := openWriter(t, old, stream.SubtaskInfo{})
	writeRows(t, w, 1, 2)
	barrier(t, w, 1)
	writeRows(t, w, 3)
	saved := w.(interface{ PreCommitted(uint64) []string }).PreCommitted(1)
	if len(saved) != 1 {
		t.Fatalf("pre-committed %v", saved)
	}
	// The old writer is gone without Close; a new run recovers.
	s2 := newSink(t, Config{Path: dir})
	if err := s2.CommitRecovered(ctx, []string{"../escape.parquet"}); err == nil {
		t.Fatal("a name outside the directory was accepted")
	}
	if err := s2.CommitRecovered(ctx, saved); err != nil {
		t.Fatal(err)
	}
	if err := s2.CommitRecovered(ctx, saved); err != nil { // again: already published
		t.Fatal(err)
	}
	w2 := openWriter(t, s2, stream.SubtaskInfo{})
	writeRows(t, w2, 4)
	closeWriter(t, w2)
	wantRows(t, dir, 1, 2, 4)
	noTemporaryFiles(t, dir)
}

// TestUntypedNumericWidens: an untyped field whose first values are whole
// numbers and later ones fractional (a sum over JSON prices, say) is not
// rejected: the later rows go to a file whose column is a double.
func TestUntypedNumericWidens(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Path: dir})
	ctx := context.Background()
	w := openWriter(t, s, stream.SubtaskInfo{})
	writeRows(t, w, 1)
	r2 := testRow(2)
	r2.Vals[6] = row.Float(2.5)
	if err := w.Write(ctx, []row.Row{r2, testRow(4)}); err != nil {
		t.Fatalf("a fractional value in an untyped field: %v", err)
	}
	// Mixed in the first batch of a writer: the column is a double.
	w2 := openWriter(t, s, stream.SubtaskInfo{Index: 1})
	r5 := testRow(5)
	r5.Vals[6] = row.Float(0.25)
	if err := w2.Write(ctx, []row.Row{testRow(6), r5}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []stream.SinkWriter[row.Row]{w, w2} {
		closeWriter(t, w)
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
		s := newSink(t, Config{Path: dir, TwoPhase: true, CommitOnBarrier: true})
		w := openWriter(t, s, stream.SubtaskInfo{Index: 0, Parallelism: 1})
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
		writeRows(t, w, i)
		barrier(t, w, uint64(i))
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
	wantRows(t, dir, 1, 3)
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
	s := newSink(t, Config{Path: dir, TwoPhase: true})
	info := stream.SubtaskInfo{Parallelism: 1}
	w1 := openWriter(t, s, info)
	c1 := w1.(checkpoint.TwoPhaseCommitter)
	if err := c1.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	writeRows(t, w1, 1)
	tx1, err := c1.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Commit(ctx, tx1); err != nil {
		t.Fatal(err)
	}
	writeRows(t, w1, 2)
	if _, err := c1.PreCommit(ctx, 2); err != nil { // checkpoint 2 never completes
		t.Fatal(err)
	}
	abandon(w1) // the attempt fails

	w2 := openWriter(t, s, info) // the restart, from checkpoint 1
	c2 := w2.(checkpoint.TwoPhaseCommitter)
	if err := c2.Recover(ctx, []checkpoint.Transaction{tx1}); err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 4; i++ {
		writeRows(t, w2, i)
		tx, err := c2.PreCommit(ctx, checkpoint.ID(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	closeWriter(t, w2)
	wantRows(t, dir, 1, 3, 4)
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
	s := newSink(t, Config{Path: dir})
	info := stream.SubtaskInfo{Parallelism: 1}
	w1 := openWriter(t, s, info)
	c1 := w1.(checkpoint.TwoPhaseCommitter)
	if err := c1.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	writeRows(t, w1, 1)
	barrier(t, w1, 1)
	tx1, err := c1.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoint 1 completes, but the process dies before its commit.
	writeRows(t, w1, 2)
	abandon(w1)

	w2 := openWriter(t, s, info) // restored from checkpoint 1
	var restored []checkpoint.Transaction
	if tx1 != nil {
		restored = append(restored, tx1)
	}
	if err := w2.(checkpoint.TwoPhaseCommitter).Recover(ctx, restored); err != nil {
		t.Fatal(err)
	}
	writeRows(t, w2, 2) // replayed
	closeWriter(t, w2)
	wantRows(t, dir, 1, 2)
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

// newSink makes a sink of cfg over the test schema, failing the test on
// an error.
func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := NewSink(cfg, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openWriter opens a writer of s for the subtask info.
func openWriter(t *testing.T, s *Sink, info stream.SubtaskInfo) stream.SinkWriter[row.Row] {
	t.Helper()
	w, err := s.Open(context.Background(), info)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// writeRows writes the test rows of the ids in one Write.
func writeRows(t *testing.T, w stream.SinkWriter[row.Row], ids ...int) {
	t.Helper()
	rs := make([]row.Row, len(ids))
	for i, id := range ids {
		rs[i] = testRow(id)
	}
	if err := w.Write(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

// barrier hands w the barrier of checkpoint id.
func barrier(t *testing.T, w stream.SinkWriter[row.Row], id uint64) {
	t.Helper()
	if err := w.(stream.BarrierWriter).OnBarrier(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

// closeWriter closes w as a job that ends normally does.
func closeWriter(t *testing.T, w stream.SinkWriter[row.Row]) {
	t.Helper()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// abandon closes w with a cancelled context, as a failed attempt does;
// its error is not the test's concern.
func abandon(w stream.SinkWriter[row.Row]) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Close(ctx)
}

// wantRows fails the test unless the committed files in dir hold
// exactly the test rows of the ids.
func wantRows(t *testing.T, dir string, ids ...int) {
	t.Helper()
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = wantLine(id)
	}
	slices.Sort(want)
	if got := readBack(t, dir); !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}
