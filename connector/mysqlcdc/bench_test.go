package mysqlcdc

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBinlogVsWrites compares the binlog source with what the server
// accepts, on the same run: a write loop inserts rows of 100 bytes
// (multi-row INSERTs of 100 rows, autocommit) and its rows/s are the
// server's rate; then the source, connected before the writes, reads
// those changes from the binlog into messages, and its rows/s and rows
// per CPU-second of this process are reported. The target: the source
// at least 80% of the server's rate (cdc/server ≥ 0.8).
//
//	go test -run XXX -bench BinlogVsWrites -benchtime 1x ./connector/mysqlcdc/
func BenchmarkBinlogVsWrites(b *testing.B) {
	c := server(b)
	name := newTable(b, c, "bench", "id INT PRIMARY KEY, payload CHAR(96) NOT NULL")
	const rows, batch = 200000, 100
	cfg := testConfig(name)
	cfg.Snapshot = SnapshotNever
	var writeRate, readRate, perCPU, valueBytes float64
	for i := range b.N {
		mustExec(b, c, "TRUNCATE TABLE "+name)
		_, sp := openSplit(b, cfg, nil)
		expectQuiet(b, sp)
		// The server's rate: a write loop.
		stmts := make([]string, 0, rows/batch)
		for from := 0; from < rows; from += batch {
			var sb strings.Builder
			sb.WriteString("INSERT INTO " + name + " VALUES ")
			for id := from; id < from+batch; id++ {
				if id > from {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "(%d, '%096d')", id+i*rows, id) // 4 + 96 bytes a row
			}
			stmts = append(stmts, sb.String())
		}
		b.ResetTimer()
		t0 := time.Now()
		for _, q := range stmts {
			mustExec(b, c, q)
		}
		wrote := time.Since(t0)
		// The source's rate: the same changes out of the binlog.
		buf := make([]connector.Message, 1024)
		cpu0, t1 := cpuTime(), time.Now()
		var got, bytes int
		for got < rows {
			n, err := sp.Read(context.Background(), buf)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range buf[:n] {
				bytes += len(m.Value)
			}
			got += n
			if time.Since(t1) > 5*time.Minute {
				b.Fatalf("read %d of %d", got, rows)
			}
		}
		read, cpu := time.Since(t1), cpuTime()-cpu0
		b.StopTimer()
		writeRate = rows / wrote.Seconds()
		readRate = rows / read.Seconds()
		perCPU = rows / cpu.Seconds()
		valueBytes = float64(bytes) / rows
		_ = sp.(interface{ Close() error }).Close()
	}
	b.ReportMetric(writeRate, "server-rows/s")
	b.ReportMetric(readRate, "cdc-rows/s")
	b.ReportMetric(perCPU, "cdc-rows/cpu-s")
	b.ReportMetric(readRate/writeRate, "cdc/server")
	b.ReportMetric(valueBytes, "message-bytes")
}
