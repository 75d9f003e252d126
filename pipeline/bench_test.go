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

func benchRun(b *testing.B, n int, steps string) {
	in := benchInput(b, n)
	st, _ := os.Stat(in)
	out := b.TempDir()
	spec := fmt.Sprintf(`
source:
  file: {path: %s}
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
%s
sink:
  file: {path: %s}
parallelism: 1
`, in, steps, out)
	s, err := Parse("bench.yaml", []byte(spec))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	for range b.N {
		if err := Run(context.Background(), p, &Host{}, WithStreamOptions(stream.WithBatchSize(1024))); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/el.Seconds(), "records/s")
	// Records per CPU-second of the whole process (every thread, GC
	// included): the per-core figure, robust to other load on the machine.
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
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

// cpuTime returns the user+system CPU time used by this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
