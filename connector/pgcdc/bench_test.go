package pgcdc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a local process's user+system CPU seconds (/proc/PID/stat;
// -1 when it cannot be read, as for a server on another machine).
func procCPU(pid int) float64 {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command (which may hold spaces) start after
	// the last ')'; utime and stime are the 14th and 15th fields.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (ut + st) / 100 // clock ticks (USER_HZ, 100 on Linux)
}

// BenchmarkCDCvsPgbench compares the change stream's throughput with what
// the server accepts: pgbench inserts 100-byte rows (one per transaction,
// -c 4, for -T seconds; the server's writes/s), then the connector reads
// all of them from its slot as fast as it can (records/s of wall time and
// per CPU-second of this process). Run with -benchtime 1x:
//
//	go test -run XXX -bench CDCvsPgbench -benchtime 1x ./connector/pgcdc/
//
// SLUICE_BENCH_PGBENCH_SECONDS sets -T (default 10);
// SLUICE_BENCH_ROWS_PER_TX the rows each pgbench transaction inserts
// (default 1; larger batches take the commit cost out of the server's
// side and so test the connector harder).
func BenchmarkCDCvsPgbench(b *testing.B) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		b.Skip("pgbench is not installed")
	}
	f := newFixture(b, `CREATE TABLE %s (id bigserial PRIMARY KEY, payload text NOT NULL)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	cfg.StatusInterval = time.Second
	s := openSplit(b, cfg, nil)
	if _, err := s.sp.Read(context.Background(), s.buf[:1]); err != nil { // creates the slot
		b.Fatal(err)
	}
	s.sp.Close()
	// A second slot for pg_recvlogical, PostgreSQL's own client of the
	// same decoding: how fast the server sends the stream at all.
	recvSlot := f.slot + "_recv"
	f.exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", recvSlot)
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_PGBENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	// 8-byte id + 92-byte payload: a 100-byte row.
	script := filepath.Join(b.TempDir(), "insert.sql")
	perTx := 1
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_ROWS_PER_TX")); err == nil && v > 0 {
		perTx = v
	}
	if err := os.WriteFile(script, []byte(fmt.Sprintf("INSERT INTO %s (payload) SELECT repeat('x', 92) FROM generate_series(1, %d);\n", f.table, perTx)), 0o644); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("pgbench", "-n", "-f", script, "-c", "4", "-j", "2", "-T", strconv.Itoa(secs), f.dsn).CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench printed no tps:\n%s", out)
	}
	pgTPS, _ := strconv.ParseFloat(string(m[1]), 64)
	pgTPS *= float64(perTx) // rows/s
	var rows int
	if err := f.db.QueryRow(context.Background(), "SELECT count(*) FROM "+f.table).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	var recvRate float64
	if _, err := exec.LookPath("pg_recvlogical"); err == nil {
		var end string
		if err := f.db.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		out, err := exec.Command("pg_recvlogical", "-d", f.dsn, "--slot", recvSlot, "--start", "--endpos", end, "--no-loop", "-f", "/dev/null",
			"-o", "proto_version=1", "-o", "publication_names="+f.pub).CombinedOutput()
		if err != nil {
			b.Fatalf("pg_recvlogical: %v\n%s", err, out)
		}
		recvRate = float64(rows) / time.Since(t0).Seconds()
		b.ReportMetric(recvRate, "pg_recvlogical-rows/s")
	}
	b.ResetTimer()
	r := openSplit(b, cfg, nil)
	r.buf = make([]connector.Message, 1024)
	cpu0, t0 := cpuTime(), time.Now()
	got, bytes := 0, 0
	var sender int // the walsender serving the connector's slot
	var senderCPU0 float64
	for got < rows {
		n, err := r.sp.Read(context.Background(), r.buf)
		if err != nil {
			b.Fatal(err)
		}
		if sender == 0 {
			_ = f.db.QueryRow(context.Background(), "SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1", f.slot).Scan(&sender)
			senderCPU0 = procCPU(sender)
		}
		for _, m := range r.buf[:n] {
			bytes += len(m.Value)
		}
		got += n
	}
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	senderCPU := procCPU(sender) - senderCPU0
	b.StopTimer()
	// How busy the server's walsender was while the connector read: near
	// 1 CPU-second per second, decoding on the server is the bound.
	if sender != 0 && senderCPU >= 0 {
		b.ReportMetric(senderCPU/wall.Seconds(), "walsender-cpu/s")
		b.Logf("walsender pid %d: %.2f CPU-s in %v (%.0f %% of one core)", sender, senderCPU, wall.Round(time.Millisecond), 100*senderCPU/wall.Seconds())
	}
	rate := float64(got) / wall.Seconds()
	b.ReportMetric(pgTPS, "pgbench-rows/s")
	b.ReportMetric(rate, "cdc-records/s")
	b.ReportMetric(float64(got)/cpu.Seconds(), "cdc-records/cpu-s")
	b.ReportMetric(rate/pgTPS, "cdc/pgbench")
	b.ReportMetric(float64(bytes)/float64(got), "json-bytes/record")
	b.Logf("pgbench: %d rows at %.0f rows/s; pg_recvlogical %.0f rows/s; connector: %d records in %v (%.0f/s, %.0f per CPU-second, %.2f× pgbench, %.2f× pg_recvlogical)",
		rows, pgTPS, recvRate, got, wall.Round(time.Millisecond), rate, float64(got)/cpu.Seconds(), rate/pgTPS, rate/recvRate)
}

// BenchmarkDecodeInsert is the connector's CPU per change without a
// server: one pgoutput Insert of a 100-byte row (bigint key, 92-byte
// text) decoded into its JSON record, as the replication goroutine does
// for every change (the receive loop and the hand-over to Read aside).
func BenchmarkDecodeInsert(b *testing.B) {
	r := fuzzReader()
	rels := map[uint32]*relation{}
	var tx txState
	ctx := context.Background()
	for _, m := range [][]byte{
		relationMsg(1, "public", "t", relCol{true, "id", oidInt8}, relCol{false, "payload", 25}),
		beginMsg(100, 7),
	} {
		if _, err := r.decode(ctx, m, rels, &tx); err != nil {
			b.Fatal(err)
		}
	}
	msg := insertMsg(1, sp("1234567"), sp(strings.Repeat("x", 92)))
	b.ReportAllocs()
	for b.Loop() {
		items, err := r.decode(ctx, msg, rels, &tx)
		if err != nil || len(items) != 1 {
			b.Fatal(err, len(items))
		}
		r.pos = items[0].pos
	}
}
