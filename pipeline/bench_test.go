package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// benchInput writes n order records as JSON lines (about 130 bytes each,
// the shape of the example) and returns the file.
func benchInput(b *testing.B, n int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "orders.jsonl")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	statuses := []string{"paid", "paid", "paid", "pending", "cancelled"}
	for i := range n {
		fmt.Fprintf(w, `{"ts":%d,"order_id":%d,"user_id":"u%d","status":"%s","price":%d.%02d,"qty":%d,"channel":"web"}`+"\n",
			1767225600000+int64(i)*10, i, (i*7919)%10000, statuses[i%5], 1+i%97, i%100, 1+i%4)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

func benchRun(b *testing.B, n int, steps string) { benchRunWith(b, n, steps, "") }

func benchRunWith(b *testing.B, n int, steps, extra string) {
	in := benchInput(b, n)
	st, _ := os.Stat(in)
	out := b.TempDir()
	extra = strings.ReplaceAll(extra, "$OUT", out)
	spec := fmt.Sprintf(`
source:
  file: {path: %s}
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
%s
sink:
  file: {path: %s/out}
parallelism: 1
%s
`, in, steps, out, extra)
	s, err := Parse("bench.yaml", []byte(spec))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	var checkpoints uint64
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	for i := range b.N {
		if extra != "" {
			// A fresh checkpoint directory: a run must not restore the
			// previous one's final checkpoint.
			p.Spec.Checkpoint.Dir = filepath.Join(out, fmt.Sprintf("chk-%d", i))
		}
		j, err := p.Start(context.Background(), &Host{}, WithStreamOptions(stream.WithBatchSize(1024)))
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			b.Fatal(err)
		}
		checkpoints += j.CheckpointStats().Completed
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/el.Seconds(), "records/s")
	// Records per CPU-second of the whole process (every thread, GC
	// included): the per-core figure, robust to other load on the machine.
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
	if extra != "" {
		b.ReportMetric(float64(checkpoints)/float64(b.N), "checkpoints/run")
	}
	b.StopTimer()
	os.RemoveAll(out)
}

// BenchmarkStatelessFileToFile is the stateless target: a JSON
// lines file through filter and map to rolling JSON-lines files, on one
// core (parallelism 1); records/s counts input records.
func BenchmarkStatelessFileToFile(b *testing.B) {
	benchRun(b, 500_000, `  - filter: status == "paid"
  - map: {user: user_id, amount: price * qty, order: order_id, ts: ts}`)
}

// BenchmarkStatelessSetFileToFile keeps every field (set: with
// pass-through of the unreferenced ones).
func BenchmarkStatelessSetFileToFile(b *testing.B) {
	benchRun(b, 500_000, `  - filter: status == "paid"
  - set: {amount: price * qty}`)
}

// BenchmarkWindowedFileToFile is the example spec (filter, map,
// tumbling window per user with count and sum) from a file to files.
func BenchmarkWindowedFileToFile(b *testing.B) {
	benchRun(b, 500_000, strings.Join([]string{
		`  - filter: status == "paid"`,
		`  - map: {user: user_id, amount: price * qty}`,
		`  - window:`,
		`      key: [user]`,
		`      tumbling: 1m`,
		`      allowed_lateness: 10s`,
		`      aggregate: {orders: count(), revenue: sum(amount)}`,
	}, "\n"))
}

// BenchmarkWindowedFileToFileExactlyOnce is the windowed spec with
// exactly-once delivery and a checkpoint every 100ms (the issue asks for
// every 5s; a run here lasts well under a second): window state is
// snapshotted and the file sink commits in two phases.
func BenchmarkWindowedFileToFileExactlyOnce(b *testing.B) {
	benchRunWith(b, 500_000, strings.Join([]string{
		`  - filter: status == "paid"`,
		`  - map: {user: user_id, amount: price * qty}`,
		`  - window:`,
		`      key: [user]`,
		`      tumbling: 1m`,
		`      allowed_lateness: 10s`,
		`      aggregate: {orders: count(), revenue: sum(amount)}`,
	}, "\n"), "delivery: exactly_once\ncheckpoint: {interval: 100ms, dir: $OUT/chk}")
}

// cpuTime returns the user+system CPU time used by this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
