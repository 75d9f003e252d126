package tier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/tier"
)

// env is a log with a tier on a store, driven by hand: no background
// retention, and the uploader woken only by segment rolls (its passes race
// harmlessly with the tests' own Sync calls, which is part of the test).
type env struct {
	t     *testing.T
	dir   string
	store objstore.Store
	log   *logstore.Log
	tier  *tier.Tier
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openEnv(t *testing.T, dir string, store objstore.Store) *env {
	return openEnvReg(t, dir, store, nil)
}

func openEnvReg(t *testing.T, dir string, store objstore.Store, reg prometheus.Registerer) *env {
	t.Helper()
	return openEnvWith(t, dir, store, func(o *tier.Options) { o.Registerer = reg })
}

// openEnvWith opens an env whose tier options set changes.
func openEnvWith(t *testing.T, dir string, store objstore.Store, set func(*tier.Options)) *env {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	opts := tier.Options{Store: store, Log: l, Logger: quietLogger(), ChunkBytes: 4096, CacheBytes: 64 << 10,
		UploadInterval: time.Hour, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond}
	set(&opts)
	tr, err := tier.Open(opts)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, store: store, log: l, tier: tr}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.tier != nil {
		e.tier.Close()
		e.tier = nil
	}
	if e.log != nil {
		e.log.Close()
		e.log = nil
	}
}

// remoteTopic creates a remote-enabled topic with 4 KiB segments.
func (e *env) remoteTopic(name string, extra map[string]string) *logstore.Partition {
	e.t.Helper()
	cfg := logstore.TopicConfig{Partitions: 1}
	sets := map[string]string{"remote.storage.enable": "true", "segment.bytes": "4096"}
	for k, v := range extra {
		sets[k] = v
	}
	for k, v := range sets {
		if err := cfg.SetConfig(k, &v); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.log.CreateTopic(name, cfg); err != nil {
		e.t.Fatal(err)
	}
	return e.part(name)
}

func (e *env) part(name string) *logstore.Partition {
	e.t.Helper()
	tp, err := e.log.Topic(name)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := tp.Partition(0)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

const baseTime = int64(1_700_000_000_000)

func value(i int) string { return fmt.Sprintf("record-%06d-%s", i, strings.Repeat("x", 60)) }

// produce appends records [from, to) in batches of 5, record i with
// timestamp baseTime+i.
func produce(t *testing.T, p *logstore.Partition, from, to int) {
	t.Helper()
	for i := from; i < to; i += 5 {
		var recs []record.Record
		for j := i; j < min(i+5, to); j++ {
			recs = append(recs, record.Record{Timestamp: baseTime + int64(j), Key: []byte(fmt.Sprint(j)), Value: []byte(value(j))})
		}
		if _, err := p.AppendRecords(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads the partition from offset from to the high watermark with
// small reads and checks that record i is value(i), in order.
func readAll(t *testing.T, p *logstore.Partition, from, want int) {
	t.Helper()
	next := int64(from)
	for next < int64(want) {
		res, err := p.Read(next, 1500)
		if err != nil {
			t.Fatalf("read at %d: %v", next, err)
		}
		if len(res.Batches) == 0 {
			t.Fatalf("read at %d: no batches (high watermark %d)", next, res.HighWatermark)
		}
		err = record.Decode(res.Batches, func(_ record.Header, r record.Record) error {
			if r.Offset < next {
				return nil // the batch started before the offset asked for
			}
			if r.Offset != next || string(r.Value) != value(int(next)) || r.Timestamp != baseTime+next {
				return fmt.Errorf("offset %d: got offset %d value %.20q ts %d", next, r.Offset, r.Value, r.Timestamp)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) sync() {
	e.t.Helper()
	if err := e.tier.Sync(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) retention() {
	e.t.Helper()
	if err := e.log.EnforceRetention(time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// offloadedTopic creates the remote topic "t" with local retention of
// 8 KiB, produces records [0, n), uploads them and applies local
// retention, so the older segments are only in the store.
func (e *env) offloadedTopic(n int) *logstore.Partition {
	e.t.Helper()
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "8192"})
	produce(e.t, p, 0, n)
	e.sync()
	e.retention()
	return p
}

// logObjects counts the segment log objects (keys ending .log) in store.
func logObjects(t *testing.T, store objstore.Store) int {
	t.Helper()
	objs, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	logs := 0
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".log") {
			logs++
		}
	}
	return logs
}

// TestReadsAcrossTiers: segments uploaded and removed locally by local
// retention are read back transparently, in order and intact, over a real
// S3 server (gofakes3 over HTTP); ListOffsets-style queries cover both
// tiers.
func TestReadsAcrossTiers(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstoretest.Open(t))
	const n = 600
	p := e.offloadedTopic(n)
	local := p.LocalLogStart()
	start, hw, _ := p.Offsets()
	if local == 0 || start != 0 || hw != n {
		t.Fatalf("local start %d, log start %d, high watermark %d: want local > 0, start 0, hw %d", local, start, hw, n)
	}
	if st := p.Stats(); st.Bytes > 8192+4096 {
		t.Fatalf("local bytes %d above local retention 8192 + one active segment", st.Bytes)
	}
	readAll(t, p, 0, n)
	readAll(t, p, 7, n) // from the middle of a remote batch
	// Timestamp lookups in the remote range and in the local one.
	for _, want := range []int64{3, local - 1, local + 2} {
		off, ts, found, err := p.OffsetForTime(baseTime + want)
		if err != nil || !found || off != want || ts != baseTime+want {
			t.Fatalf("offset for time of %d: %d %d %v %v", want, off, ts, found, err)
		}
	}
	info, ok := e.tier.Describe("t", 0)
	if !ok || info.Start != 0 || info.End < local || info.Segments == 0 || info.LagSegments != 0 {
		t.Fatalf("describe: %+v %v (local start %d)", info, ok, local)
	}
	// After a restart (cold cache, manifest loaded from the store).
	e.close()
	e2 := openEnv(t, e.dir, e.store)
	p2 := e2.part("t")
	if s, _, _ := p2.Offsets(); s != 0 {
		t.Fatalf("after restart the log start is %d, want 0", s)
	}
	readAll(t, p2, 0, n)
}

// TestStoreDownNothingDeletedLocally: while the store is down producers
// see no error, local reads go on, local retention keeps what is not
// remote (and says so), and uploads catch up afterwards.
func TestStoreDownNothingDeletedLocally(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMem())
	reg := prometheus.NewRegistry()
	e := openEnvReg(t, t.TempDir(), f, reg)
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "8192"})
	produce(t, p, 0, 100)
	e.sync()
	f.SetDown(true)
	produce(t, p, 100, 600) // no error for the producer
	if err := e.tier.Sync(); err == nil {
		t.Fatal("sync with the store down succeeded")
	}
	e.retention()
	st := p.Stats()
	if st.RetentionBlockedBytes == 0 || st.Bytes <= 8192+4096 {
		t.Fatalf("store down: blocked %d bytes, local %d: want the disk over local retention and the blocked bytes reported", st.RetentionBlockedBytes, st.Bytes)
	}
	if ls := p.LocalLogStart(); ls > 100 {
		t.Fatalf("local start %d: segments not uploaded were deleted", ls)
	}
	readAll(t, p, int(p.LocalLogStart()), 600) // local reads go on
	// The metrics say so.
	if v := gauge(t, reg, "sluice_tier_store_up"); v != 0 {
		t.Errorf("sluice_tier_store_up %v during the outage", v)
	}
	if v := gauge(t, reg, "sluice_tier_local_retention_blocked_bytes"); v <= 0 {
		t.Errorf("sluice_tier_local_retention_blocked_bytes %v during the outage", v)
	}
	if v := gauge(t, reg, "sluice_tier_upload_lag_segments"); v <= 0 {
		t.Errorf("sluice_tier_upload_lag_segments %v during the outage", v)
	}
	f.SetDown(false)
	e.sync()
	e.retention()
	if st := p.Stats(); st.RetentionBlockedBytes != 0 || st.Bytes > 8192+4096 {
		t.Fatalf("after the outage: blocked %d, local bytes %d", st.RetentionBlockedBytes, st.Bytes)
	}
	readAll(t, p, 0, 600)
	if v := gauge(t, reg, "sluice_tier_store_up"); v != 1 {
		t.Errorf("sluice_tier_store_up %v after the outage", v)
	}
	if v := gauge(t, reg, "sluice_tier_upload_lag_segments"); v != 0 {
		t.Errorf("sluice_tier_upload_lag_segments %v after catching up", v)
	}
	if v := gauge(t, reg, "sluice_tier_cache_misses_total"); v <= 0 {
		t.Errorf("sluice_tier_cache_misses_total %v after remote reads", v)
	}
	if v := gauge(t, reg, "sluice_tier_remote_segments"); v <= 0 {
		t.Errorf("sluice_tier_remote_segments %v", v)
	}
}

// gauge returns the sum of the named metric's samples.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			}
		}
		return sum
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// TestUploadFailuresRetried: single failed puts (of a log object, an index,
// the manifest) are retried; a failure never lets local retention delete a
// segment, and the orphans of failed attempts are removed at the next
// start.
func TestUploadFailuresRetried(t *testing.T) {
	mem := objstore.NewMem()
	f := objstore.NewFaulty(mem)
	e := openEnv(t, t.TempDir(), f)
	// Fail every manifest write: the segments' objects are stored, but
	// none is uploaded.
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpPut && strings.Contains(key, "/manifest-") {
			return objstore.ErrInjected
		}
		return nil
	})
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096"})
	produce(t, p, 0, 300)
	if err := e.tier.Sync(); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("sync: %v, want the injected failure", err)
	}
	e.retention()
	if ls := p.LocalLogStart(); ls != 0 {
		t.Fatalf("local start %d after a failed manifest write: a segment not in the manifest was deleted", ls)
	}
	f.SetHook(nil)
	// A crash now: the next start removes the orphaned objects.
	e.close()
	before, _ := mem.List(context.Background(), "")
	e2 := openEnv(t, e.dir, f)
	after, _ := mem.List(context.Background(), "")
	if len(after) >= len(before) {
		t.Fatalf("orphans not removed: %d objects before the restart, %d after", len(before), len(after))
	}
	p2 := e2.part("t")
	f.FailNext(objstore.OpPut, 2)
	for i := 0; ; i++ { // each Sync retries what failed last time
		if err := e2.tier.Sync(); err == nil {
			break
		} else if i > 5 {
			t.Fatal(err)
		}
	}
	e2.retention()
	if p2.LocalLogStart() == 0 {
		t.Fatal("local retention deleted nothing after the uploads succeeded")
	}
	readAll(t, p2, 0, 300)
}

// TestRemoteRetention: total retention deletes remote segments (manifest
// first, then objects) and moves the log start offset.
func TestRemoteRetention(t *testing.T) {
	mem := objstore.NewMem()
	e := openEnv(t, t.TempDir(), mem)
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096", "retention.bytes": "16384"})
	produce(t, p, 0, 1000)
	e.sync()
	e.retention()
	e.sync() // remote retention runs after the uploads
	start, _, _ := p.Offsets()
	info, _ := e.tier.Describe("t", 0)
	if start == 0 || info.Bytes+p.Stats().Bytes > 16384+2*4096 {
		t.Fatalf("log start %d, remote %d + local %d bytes: total retention 16384 not applied", start, info.Bytes, p.Stats().Bytes)
	}
	logs := logObjects(t, mem)
	if logs != info.Segments {
		t.Fatalf("%d segment objects in the store, the manifest names %d", logs, info.Segments)
	}
	if _, err := p.Read(0, 1000); !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	readAll(t, p, int(start), 1000)
}

// TestRemoteConfigValidation: the configs are refused where Kafka refuses
// them, with errors that say why.
func TestRemoteConfigValidation(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	bad := []struct {
		sets map[string]string
		want string
	}{
		{map[string]string{"remote.storage.enable": "true", "cleanup.policy": "compact"}, "compact"},
		{map[string]string{"remote.storage.enable": "true", "retention.bytes": "1000", "local.retention.bytes": "2000"}, "local.retention.bytes"},
		{map[string]string{"remote.storage.enable": "true", "retention.ms": "1000", "local.retention.ms": "2000"}, "local.retention.ms"},
	}
	for _, c := range bad {
		cfg := logstore.TopicConfig{Partitions: 1}
		for k, v := range c.sets {
			if err := cfg.SetConfig(k, &v); err != nil {
				t.Fatal(err)
			}
		}
		err := e.log.CreateTopic("bad", cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.sets, err, c.want)
		}
	}
	e.remoteTopic("on", nil)
	if _, err := e.log.AlterTopicConfig("on", false, func(c *logstore.TopicConfig) error { c.RemoteStorage = false; return nil }); err == nil {
		t.Error("turning remote storage off was accepted")
	}
	// A log without a tier refuses remote topics.
	l2, err := logstore.Open(logstore.Options{Dir: t.TempDir(), RetentionCheckInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	v := "true"
	cfg := logstore.TopicConfig{Partitions: 1}
	cfg.SetConfig("remote.storage.enable", &v)
	if err := l2.CreateTopic("x", cfg); !errors.Is(err, logstore.ErrRemoteStorage) || !strings.Contains(err.Error(), "--remote-storage") {
		t.Errorf("remote topic on a log without remote storage: %v", err)
	}
}

// TestRecreatedTopicStartsEmpty: a topic deleted and created again under the
// same name never sees the old one's remote segments.
func TestRecreatedTopicStartsEmpty(t *testing.T) {
	mem := objstore.NewMem()
	e := openEnv(t, t.TempDir(), mem)
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096"})
	produce(t, p, 0, 200)
	e.sync()
	if err := e.log.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	p = e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096"})
	if s, hw, _ := p.Offsets(); s != 0 || hw != 0 {
		t.Fatalf("recreated topic: start %d, hw %d", s, hw)
	}
	if _, ok := e.tier.RemoteStart("t", 0); ok {
		t.Fatal("recreated topic has remote segments")
	}
	produce(t, p, 0, 200)
	e.sync()
	e.retention()
	readAll(t, p, 0, 200)
}

// TestStoreDiesAtEveryOperation: the store stops answering after its k-th
// operation, for every k over an upload-and-retention run (an upload cut
// between its objects and its manifest, a retention cut between its
// manifest and its deletions, ...); the tier restarted on a healthy store
// finds every record readable from one tier or the other, and cleans up.
func TestStoreDiesAtEveryOperation(t *testing.T) {
	const n = 400
	step := 1
	if testing.Short() {
		step = 3
	}
	for k := 1; k <= 40; k += step {
		mem := objstore.NewMem()
		f := objstore.NewFaulty(mem)
		calls := 0
		f.SetHook(func(op objstore.Op, key string) error {
			calls++
			if calls > k {
				return objstore.ErrInjected
			}
			return nil
		})
		dir := t.TempDir()
		e := openEnv(t, dir, f)
		p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "8192", "retention.bytes": "40000"})
		produce(t, p, 0, n)
		e.tier.Sync()
		e.retention()
		e.tier.Sync()
		e.retention()
		e.close()
		e2 := openEnv(t, dir, mem)
		e2.sync()
		e2.retention()
		e2.sync()
		p2 := e2.part("t")
		start, hw, _ := p2.Offsets()
		if hw != n {
			t.Fatalf("k=%d: high watermark %d", k, hw)
		}
		readAll(t, p2, int(start), n)
		// No orphans: every segment object is named by the manifest.
		info, _ := e2.tier.Describe("t", 0)
		logs := logObjects(t, mem)
		if logs != info.Segments {
			t.Fatalf("k=%d: %d segment objects, the manifest names %d", k, logs, info.Segments)
		}
		e2.close()
	}
}

// TestDeleteRecordsInRemoteRange: DeleteRecords below the local start moves
// the log start over both tiers, and the remote segments wholly below it
// are deleted.
func TestDeleteRecordsInRemoteRange(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096"})
	produce(t, p, 0, 600)
	e.sync()
	e.retention()
	local := p.LocalLogStart()
	cut := local / 2
	if cut == 0 {
		t.Fatalf("local start %d: nothing remote", local)
	}
	before, _ := e.tier.Describe("t", 0)
	if got, err := p.DeleteRecords(cut); err != nil || got != cut {
		t.Fatalf("delete records below %d: %d %v", cut, got, err)
	}
	if s, _, _ := p.Offsets(); s != cut {
		t.Fatalf("log start %d after DeleteRecords(%d)", s, cut)
	}
	if _, err := p.Read(cut-1, 1000); !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read below the deleted offset: %v", err)
	}
	readAll(t, p, int(cut), 600)
	e.sync()
	after, _ := e.tier.Describe("t", 0)
	if after.Segments >= before.Segments || after.Start > cut {
		t.Fatalf("remote segments before %+v, after %+v: those below %d not deleted, or too many", before, after, cut)
	}
	if s, _, _ := p.Offsets(); s != cut {
		t.Fatalf("log start %d after remote deletion, want %d", s, cut)
	}
}

// TestRemoteRetentionByTime: retention.ms deletes the remote segments
// whose newest record is older than it (manifest first, then objects),
// and only those; the log start moves past them over both tiers.
func TestRemoteRetentionByTime(t *testing.T) {
	mem := objstore.NewMem()
	e := openEnv(t, t.TempDir(), mem)
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096", "retention.ms": "3600000"})
	produce(t, p, 0, 300) // timestamps of 2023: long expired
	var recs []record.Record
	now := time.Now().UnixMilli()
	for j := 300; j < 320; j++ {
		recs = append(recs, record.Record{Timestamp: now, Value: []byte(value(j))})
	}
	if _, err := p.AppendRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	e.sync()
	e.retention()
	e.sync()
	start, hw, _ := p.Offsets()
	if start == 0 || start > 300 || hw != 320 {
		t.Fatalf("log start %d, high watermark %d: want the expired segments gone (start in (0, 300]), hw 320", start, hw)
	}
	info, _ := e.tier.Describe("t", 0)
	logs := logObjects(t, mem)
	if logs != info.Segments || info.Segments > 1 {
		t.Fatalf("%d segment objects, the manifest names %d: want at most the segment holding the recent records", logs, info.Segments)
	}
	if _, err := p.Read(start-1, 1000); !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	next := start
	for next < hw {
		res, err := p.Read(next, 1500)
		if err != nil || len(res.Batches) == 0 {
			t.Fatalf("read at %d: %d bytes, %v", next, len(res.Batches), err)
		}
		if err := record.Decode(res.Batches, func(_ record.Header, r record.Record) error {
			if r.Offset < next {
				return nil
			}
			if r.Offset != next || string(r.Value) != value(int(next)) {
				return fmt.Errorf("offset %d: got %d %.20q", next, r.Offset, r.Value)
			}
			next++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailedUploadLeavesNoOrphans: an upload that fails after storing the
// segment's log (its index write fails) removes what it stored: the
// retry uploads under a new id, and the store holds no segment object
// that no manifest names, without waiting for a restart.
func TestFailedUploadLeavesNoOrphans(t *testing.T) {
	mem := objstore.NewMem()
	f := objstore.NewFaulty(mem)
	e := openEnv(t, t.TempDir(), f)
	var failed atomic.Bool
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpPut && strings.HasSuffix(key, ".index") && failed.CompareAndSwap(false, true) {
			return objstore.ErrInjected
		}
		return nil
	})
	p := e.remoteTopic("t", nil)
	produce(t, p, 0, 100)
	e.tier.Sync() // this pass or the uploader's fails once
	e.sync()
	if !failed.Load() {
		t.Fatal("no upload failed: the test tests nothing")
	}
	info, _ := e.tier.Describe("t", 0)
	logs := logObjects(t, mem)
	if logs != info.Segments {
		t.Fatalf("%d segment logs in the store, the manifest names %d: the failed attempt's are left", logs, info.Segments)
	}
}
