package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/objstore/objstoretest"
)

// Tiered storage end to end: a child `sluice serve --remote-storage` on an
// S3 server running in this test process (gofakes3 over real HTTP; it
// outlives the child, so a SIGKILLed server finds its objects again).

// startTieredServe runs `sluice serve` with remote storage on srv and
// fast retention and upload intervals, and waits until it serves.
func startTieredServe(t *testing.T, dir string, srv *objstoretest.Server) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	kafkaAddr, cmd, stderr := startServeWith(t, dir, []string{"--remote-storage", "s3://tier/run", "--retention-check-interval", "50ms",
		"--remote-upload-interval", "100ms", "--schema-registry=false"}, srv.Env())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return kafkaAddr, cmd, stderr
}

// tierValue is record i's value: its number and 80 bytes that do not
// compress, so that segments fill at the rate of the records.
func tierValue(i int) string {
	h := sha256.Sum256([]byte(strconv.Itoa(i)))
	return fmt.Sprintf("rec-%08d-%x%x", i, h, h[:8])
}

// tierID is the number in a value made by tierValue.
func tierID(t *testing.T, v string) int {
	t.Helper()
	var id int
	if _, err := fmt.Sscanf(v, "rec-%08d-", &id); err != nil || v != tierValue(id) {
		t.Fatalf("record %.40q is not one the test produced intact", v)
	}
	return id
}

// localLogBytes sums the partition's local segment files.
func localLogBytes(t *testing.T, dir, topic string) int64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "topics", topic, "0", "*.log"))
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// produceRange produces records [from, to) to partition 0 (uncompressed)
// in batches of at most 8000 bytes (the segments are small) and returns
// the numbers of those acknowledged.
func produceRange(ctx context.Context, addr, topic string, from, to int) ([]int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordRetries(3), kgo.RequestRetries(3), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(8000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var mu sync.Mutex
	var acked []int
	var firstErr error
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Partition: 0, Value: []byte(tierValue(i))}, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				acked = append(acked, i)
			} else if firstErr == nil {
				firstErr = err
			}
		})
	}
	cl.Flush(ctx)
	mu.Lock()
	defer mu.Unlock()
	return acked, firstErr
}

// consumeAll reads partition 0 from offset 0 to the high watermark with
// franz-go and returns the values.
func consumeAll(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	hw := listOffset(t, adm, topic, -1)
	var out []string
	for int64(len(out)) < hw {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), hw)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(len(out)) {
				t.Fatalf("record at offset %d, expected %d", r.Offset, len(out))
			}
			out = append(out, string(r.Value))
		})
	}
	return out
}

// listOffset asks ListOffsets for partition 0 at ts (-1 latest, -2
// earliest, -4 earliest local).
func listOffset(t *testing.T, cl *kgo.Client, topic string, ts int64) int64 {
	t.Helper()
	req := kmsgListOffsets(topic, ts)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets %d: error %d", ts, p.ErrorCode)
	}
	return p.Offset
}

// TestTieredConsumeFromZero is the test: a known stream with 64 KiB
// segments and a local retention of three segments; the whole stream is
// read from offset 0 with franz-go and with kcat, intact and in order, and
// the local disk stays under the local retention bound (plus the active
// segment) while the total grows.
func TestTieredConsumeFromZero(t *testing.T) {
	srv := objstoretest.StartServer(t)
	srv.Bucket(t, "tier", "")
	dir := t.TempDir()
	addr, _, stderr := startTieredServe(t, dir, srv)
	env := map[string]string{"SLUICE_BROKER": addr}
	const seg, localBound = 64 << 10, 3 * (64 << 10)
	if code, out, errs := runCLI(t, env, "", "topic", "create", "events", "--remote", "--segment-bytes", fmt.Sprint(seg), "--local-retention-bytes", fmt.Sprint(localBound)); code != 0 {
		t.Fatalf("create: %s %s", out, errs)
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	total, rounds := 0, 4
	if testing.Short() {
		rounds = 2
	}
	for r := 0; r < rounds; r++ {
		acked, err := produceRange(context.Background(), addr, "events", total, total+5000)
		if err != nil || len(acked) != 5000 {
			t.Fatalf("produce: %d acknowledged, %v", len(acked), err)
		}
		total += len(acked)
		// Wait (deadline only) for uploads and local retention to catch up.
		deadline := time.Now().Add(90 * time.Second)
		for localLogBytes(t, dir, "events") > localBound+seg {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: local segments hold %d bytes, bound %d + one active segment; server log:\n%s", r, localLogBytes(t, dir, "events"), localBound, stderr)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
		if earliest, local := listOffset(t, adm, "events", -2), listOffset(t, adm, "events", -4); earliest != 0 || local == 0 {
			t.Fatalf("round %d: earliest %d (want 0: the remote range counts), earliest local %d (want > 0)", r, earliest, local)
		}
	}
	got := consumeAll(t, addr, "events")
	if len(got) != total {
		t.Fatalf("franz-go read %d records, produced %d", len(got), total)
	}
	for i, v := range got {
		if v != tierValue(i) {
			t.Fatalf("franz-go: record %d is %.30q", i, v)
		}
	}
	// kcat (librdkafka), if installed.
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Log("kcat not installed: skipping the kcat half (apt-get install kcat)")
	} else {
		out, err := exec.Command(kcat, "-C", "-b", addr, "-t", "events", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o %s\n").Output()
		if err != nil {
			t.Fatalf("kcat: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != total {
			t.Fatalf("kcat read %d records, produced %d", len(lines), total)
		}
		for i, l := range lines {
			if l != fmt.Sprintf("%d %s", i, tierValue(i)) {
				t.Fatalf("kcat: line %d is %.40q", i, l)
			}
		}
	}
	// `topic describe` through the broker shows both tiers' ranges and the
	// local size (the remote size is the server's metric).
	code, out, errs := runCLI(t, env, "", "topic", "describe", "events")
	if code != 0 || !strings.Contains(out, "LOCAL-START") {
		t.Fatalf("describe: %d %s %s", code, out, errs)
	}
	var row []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 6 && f[0] == "0" {
			row = f
		}
	}
	if row == nil {
		t.Fatalf("describe: no row for partition 0:\n%s", out)
	}
	if ls, err := strconv.ParseInt(row[2], 10, 64); err != nil || ls <= 0 || row[1] != "0" || row[3] != strconv.Itoa(total) {
		t.Fatalf("describe: partition 0 row %q: want earliest 0, a local start above 0, latest %d", row, total)
	}
	if size, err := strconv.ParseFloat(row[5], 64); err != nil || size <= 0 {
		t.Fatalf("describe: partition 0 row %q: local size unknown", row)
	}
}

// TestTieredSIGKILL kills the server at random moments while it produces,
// uploads and deletes local segments; after each restart every
// acknowledged record is readable from one tier or the other.
func TestTieredSIGKILL(t *testing.T) {
	srv := objstoretest.StartServer(t)
	srv.Bucket(t, "tier", "")
	dir := t.TempDir()
	kills := 12
	if testing.Short() {
		kills = 6
	}
	seed := time.Now().UnixNano()
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	acked := map[int]bool{} // every record number a producer saw acknowledged
	next := 0               // the next record number to produce
	// check reads everything from offset 0: every acknowledged record is
	// there, intact, once, and in the order produced.
	check := func(addr, when string, stderr *bytes.Buffer) {
		t.Helper()
		got := consumeAll(t, addr, "k")
		seen := map[int]bool{}
		last := -1
		for _, v := range got {
			id := tierID(t, v)
			if seen[id] || id <= last {
				t.Fatalf("%s: record %d duplicated or out of order (after %d)", when, id, last)
			}
			seen[id], last = true, id
		}
		for id := range acked {
			if !seen[id] {
				t.Fatalf("%s: acknowledged record %d is missing (%d readable, %d acknowledged)\nserver log:\n%s", when, id, len(got), len(acked), stderr)
			}
		}
	}
	for k := 0; k < kills; k++ {
		addr, cmd, stderr := startTieredServe(t, dir, srv)
		if k == 0 {
			env := map[string]string{"SLUICE_BROKER": addr}
			if code, out, errs := runCLI(t, env, "", "topic", "create", "k", "--remote", "--segment-bytes", "16384", "--local-retention-bytes", "32768"); code != 0 {
				t.Fatalf("create: %s %s", out, errs)
			}
		}
		check(addr, fmt.Sprintf("restart %d", k), stderr)
		// Produce while the server uploads and deletes local segments;
		// kill it at a random moment.
		ctx, cancel := context.WithCancel(context.Background())
		delay := time.Duration(50+rng.Intn(400)) * time.Millisecond
		killer := time.AfterFunc(delay, func() { cmd.Process.Kill(); cancel() })
		ids, _ := produceRange(ctx, addr, "k", next, next+4000)
		killer.Stop()
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		for _, id := range ids {
			acked[id] = true
		}
		next += 4000
		t.Logf("kill %d after %v: %d acknowledged in total", k, delay, len(acked))
	}
	addr, _, stderr := startTieredServe(t, dir, srv)
	check(addr, "final", stderr)
	// The kills may have come before any upload finished: the restarted
	// server uploads and applies local retention on its own; wait for it.
	deadline := time.Now().Add(90 * time.Second)
	for {
		earliest, local := listOffsetOn(t, addr, "k", -2), listOffsetOn(t, addr, "k", -4)
		if earliest != 0 {
			t.Fatalf("final: earliest %d: want the remote range to start at 0", earliest)
		}
		if local > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final: earliest local offset still 0 after 90s: local retention never moved data to the remote tier\nserver log:\n%s", stderr)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's background uploader
	}
	check(addr, "final, after local retention", stderr)
}

func listOffsetOn(t *testing.T, addr, topic string, ts int64) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return listOffset(t, cl, topic, ts)
}

// TestTieredEnableByAlter: remote storage turned on for a topic that has
// data, through AlterConfigs (`sluice topic alter`): its sealed segments
// are uploaded, local retention then moves the local start, every record
// stays readable from 0; turning it off again is refused.
func TestTieredEnableByAlter(t *testing.T) {
	srv := objstoretest.StartServer(t)
	srv.Bucket(t, "tier", "")
	dir := t.TempDir()
	addr, _, stderr := startTieredServe(t, dir, srv)
	env := map[string]string{"SLUICE_BROKER": addr}
	if code, out, errs := runCLI(t, env, "", "topic", "create", "a", "--segment-bytes", "16384"); code != 0 {
		t.Fatalf("create: %s %s", out, errs)
	}
	acked, err := produceRange(context.Background(), addr, "a", 0, 3000)
	if err != nil || len(acked) != 3000 {
		t.Fatalf("produce: %d acknowledged, %v", len(acked), err)
	}
	if code, out, errs := runCLI(t, env, "", "topic", "alter", "a", "--config", "remote.storage.enable=true", "--config", "local.retention.bytes=32768"); code != 0 {
		t.Fatalf("alter: %s %s", out, errs)
	}
	deadline := time.Now().Add(90 * time.Second)
	for listOffsetOn(t, addr, "a", -4) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("local start still 0 90s after remote storage was enabled; server log:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling the server's uploader and retention
	}
	if e := listOffsetOn(t, addr, "a", -2); e != 0 {
		t.Fatalf("earliest %d after enabling remote storage: want 0 (the remote range)", e)
	}
	got := consumeAll(t, addr, "a")
	if len(got) != 3000 {
		t.Fatalf("read %d records, produced 3000", len(got))
	}
	for i, v := range got {
		if v != tierValue(i) {
			t.Fatalf("record %d is %.30q", i, v)
		}
	}
	if code, _, _ := runCLI(t, env, "", "topic", "alter", "a", "--config", "remote.storage.enable=false"); code == 0 {
		t.Fatal("turning remote storage off was accepted")
	}
}
