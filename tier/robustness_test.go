package tier_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/tier"
)

// openBackground opens a log and a tier whose uploader runs on its own
// (a short interval), as `sluice serve` runs it.
func openBackground(t *testing.T, store objstore.Store, reg prometheus.Registerer) *env {
	t.Helper()
	return openEnvWith(t, t.TempDir(), store, func(o *tier.Options) {
		o.Registerer = reg
		o.UploadInterval, o.RetryMax = 5*time.Millisecond, 40*time.Millisecond
	})
}

// waitFor polls cond until it holds; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 60s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling state the background uploader changes
	}
}

// TestUploaderResumesAfterLongOutage: once the backoff grew longer than
// the upload interval, ticks and rolls must not keep restarting the retry
// timer: the background uploader resumes by itself when the store is back.
func TestUploaderResumesAfterLongOutage(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMem())
	f.SetDown(true)
	reg := prometheus.NewRegistry()
	e := openBackground(t, f, reg)
	p := e.remoteTopic("t", nil)
	produce(t, p, 0, 300)
	// Enough failures that the backoff (up to 40ms) exceeds the interval.
	waitFor(t, "upload failures during the outage", func() bool { return gauge(t, reg, "sluice_tier_upload_failures_total") >= 8 })
	f.SetDown(false)
	waitFor(t, "uploads caught up after the outage", func() bool {
		return gauge(t, reg, "sluice_tier_upload_lag_segments") == 0 && gauge(t, reg, "sluice_tier_remote_segments") > 0
	})
}

// TestUnreadableManifestsKeepRemoteData: when manifests exist but none
// can be read, the tier refuses to start the partition from an empty
// manifest, which would delete every remote segment as an orphan.
func TestUnreadableManifestsKeepRemoteData(t *testing.T) {
	mem := objstore.NewMem()
	e := openEnv(t, t.TempDir(), mem)
	p := e.remoteTopic("t", nil)
	produce(t, p, 0, 300)
	e.sync()
	ctx := context.Background()
	objs, err := mem.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	segments := 0
	for _, o := range objs {
		if strings.Contains(o.Key, "/manifest-") {
			if err := mem.Put(ctx, o.Key, strings.NewReader("not a manifest"), -1); err != nil {
				t.Fatal(err)
			}
		} else {
			segments++
		}
	}
	if segments == 0 {
		t.Fatal("nothing uploaded")
	}
	dir := e.dir
	e.close()
	e2 := openEnvDir(t, dir, mem)
	_ = e2.tier.Sync() // must fail for the damaged partition, and delete nothing
	after, err := mem.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, o := range after {
		if !strings.Contains(o.Key, "/manifest-") {
			left++
		}
	}
	if left != segments {
		t.Fatalf("%d of %d remote segment objects left after reopening with unreadable manifests", left, segments)
	}
}

// openEnvDir reopens a log directory with a tier; an error of the tier's
// start is tolerated (a damaged partition is refused, not the server).
func openEnvDir(t *testing.T, dir string, store objstore.Store) *env {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, store: store, log: l}
	t.Cleanup(e.close)
	tr, err := tier.Open(tier.Options{Store: store, Log: l, Logger: quietLogger(), ChunkBytes: 4096, CacheBytes: 64 << 10,
		UploadInterval: time.Hour, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Logf("tier.Open: %v", err)
		return e
	}
	e.tier = tr
	return e
}

// deleteOfflineAndSweep deletes topic from the data directory dir with no
// tier running (as `sluice topic delete` does), so that its remote folder
// is left for the sweep, then opens an env on it and runs the sweep.
func deleteOfflineAndSweep(t *testing.T, dir string, store objstore.Store, topic string) *env {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	l.Close()
	e := openEnv(t, dir, store)
	if err := tier.SweepDeletedTopics(e.tier); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestForeignObjectsUnderThePrefixKept: the sweep of deleted topics'
// folders removes only the folders of topics this data directory deleted,
// never other objects under the same prefix, nor the folders of topics it
// never had.
func TestForeignObjectsUnderThePrefixKept(t *testing.T) {
	mem := objstore.NewMem()
	ctx := context.Background()
	foreign := []string{"chk-000001/MANIFEST", "chk-000001/task-0", "my-backups/x", "other-topic-0123456789abcdef/readme",
		"unknown-0123456789abcdef/0/manifest-00000000000000000001"} // a topic this data directory never had
	for _, k := range foreign {
		if err := mem.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	e := openEnv(t, t.TempDir(), mem)
	dir := e.dir
	produce(t, e.remoteTopic("d", nil), 0, 100)
	e.sync()
	e.close()
	uploaded := segmentObjects(t, mem)
	deleteOfflineAndSweep(t, dir, mem, "d")
	left := segmentObjects(t, mem)
	for k := range uploaded {
		if strings.HasPrefix(k, "d-") && left[k] {
			t.Errorf("%s: the deleted topic's object was not removed", k)
		}
	}
	for _, k := range foreign {
		if _, err := mem.Stat(ctx, k); err != nil {
			t.Errorf("%s: %v (the tier deleted an object it did not write)", k, err)
		}
	}
}

// TestRemoteRangeUnloadedIsNotOutOfRange: after a restart while the store
// is unreachable, the partition's manifest is not loaded yet: a read of
// the remote range must fail with an error a consumer retries, not with
// ErrOffsetOutOfRange, on which a Kafka consumer with
// auto.offset.reset=earliest jumps to the local start and skips every
// remote record for good.
func TestRemoteRangeUnloadedIsNotOutOfRange(t *testing.T) {
	f, dir, e, p := offloadedEnv(t)
	if p.LocalLogStart() == 0 {
		t.Fatal("nothing only remote")
	}
	e.close()
	f.SetDown(true)
	e = openEnv(t, dir, f)
	p = e.part("t")
	_, err := p.Read(0, 1000)
	if !errors.Is(err, logstore.ErrRemoteNotReady) {
		t.Fatalf("read of the remote range before its manifest is loaded: %v, want ErrRemoteNotReady (retriable)", err)
	}
	// Nor is the log start (ListOffsets earliest) or the offset of a
	// timestamp in the remote range known.
	if err := p.RemoteReady(); !errors.Is(err, logstore.ErrRemoteNotReady) {
		t.Fatalf("RemoteReady before the manifest is loaded: %v", err)
	}
	if off, _, _, err := p.OffsetForTime(baseTime + 3); !errors.Is(err, logstore.ErrRemoteNotReady) {
		t.Fatalf("offset for a time in the remote range before its manifest is loaded: %d, %v; want ErrRemoteNotReady", off, err)
	}
	f.SetDown(false)
	e.sync()
	if err := p.RemoteReady(); err != nil {
		t.Fatal(err)
	}
	readAll(t, p, 0, 600)
}

// TestRemoteEnabledByAlterReadyAtOnce: a topic given remote storage while
// the server runs has a fresh remote folder, so its log start is known at
// once (before the uploader first reads its manifest) even though local
// retention deleted its oldest records: ListOffsets earliest and reads
// answer as before, not "remote storage not available yet".
func TestRemoteEnabledByAlterReadyAtOnce(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	cfg := logstore.TopicConfig{Partitions: 1}
	for k, v := range map[string]string{"segment.bytes": "4096", "retention.bytes": "8192"} {
		if err := cfg.SetConfig(k, &v); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.log.CreateTopic("t", cfg); err != nil {
		t.Fatal(err)
	}
	p := e.part("t")
	produce(t, p, 0, 600)
	e.retention()
	ls := p.LocalLogStart()
	if ls == 0 {
		t.Fatal("retention deleted nothing")
	}
	if _, err := e.log.AlterTopicConfig("t", false, func(c *logstore.TopicConfig) error { c.RemoteStorage = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoteReady(); err != nil {
		t.Fatalf("a topic just given remote storage: %v", err)
	}
	if _, err := p.Read(ls-1, 1000); !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read below the start of a topic just given remote storage: %v, want ErrOffsetOutOfRange", err)
	}
}

// segmentObjects lists the keys of the segment objects (not manifests)
// corruptNewestManifest flips a byte of the newest manifest version in
// store (its CRC check then fails) and returns its key and damaged bytes.
func corruptNewestManifest(t *testing.T, store objstore.Store) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	objs, err := store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, o := range objs {
		if strings.Contains(o.Key, "/manifest-") && o.Key > newest {
			newest = o.Key
		}
	}
	b, err := objstore.ReadAll(ctx, store, newest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0xff
	if err := store.Put(ctx, newest, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return newest, b
}

// in store.
func segmentObjects(t *testing.T, store objstore.Store) map[string]bool {
	t.Helper()
	objs, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, o := range objs {
		if !strings.Contains(o.Key, "manifest-") {
			out[o.Key] = true
		}
	}
	return out
}

// TestCorruptNewestManifestDeletesNothing: when the newest manifest
// version is damaged, the tier falls back to the previous one for reads,
// but deletes no segment object the damaged version may name: not when it
// loads the partition, not after it published versions above the damaged
// one, not at the next start. The damaged version is kept for the
// operator (reported in sluice_tier_unreadable_manifests).
func TestCorruptNewestManifestDeletesNothing(t *testing.T) {
	f, dir, e, p := offloadedEnv(t)
	produce(t, p, 600, 700) // more sealed segments, not uploaded yet
	e.close()
	ctx := context.Background()
	newest, b := corruptNewestManifest(t, f)
	before := segmentObjects(t, f)
	check := func(when string) {
		t.Helper()
		after := segmentObjects(t, f)
		for k := range before {
			if !after[k] {
				t.Fatalf("%s: segment object %s deleted though the damaged manifest %s may name it", when, k, newest)
			}
		}
		if _, err := f.Stat(ctx, newest); err != nil {
			t.Fatalf("%s: the damaged manifest %s was removed or overwritten: %v", when, newest, err)
		}
		if got, _ := objstore.ReadAll(ctx, f, newest); string(got) != string(b) {
			t.Fatalf("%s: the damaged manifest %s was overwritten", when, newest)
		}
	}
	reg := prometheus.NewRegistry()
	e = openEnvReg(t, dir, f, reg)
	check("after loading")
	if n := gauge(t, reg, "sluice_tier_unreadable_manifests"); n != 1 {
		t.Fatalf("sluice_tier_unreadable_manifests = %v, want 1", n)
	}
	// Uploads go on, in versions above the damaged one.
	e.sync()
	e.sync()
	e.sync()
	check("after uploads")
	e.close()
	e = openEnv(t, dir, f)
	e.sync()
	check("after a restart")
	// Every record stays readable: the segments past the previous
	// version's end are still local (local retention keeps what the
	// manifest in use does not name) and uploaded again.
	readAll(t, e.part("t"), 0, 700)
}

// TestUnknownRemoteFoldersKept: the sweep of deleted topics' folders
// removes only the folders of topics this data directory deleted, never
// those of topics it does not know: a server started on a new or emptied
// data directory (a lost disk, a wrong --data-dir) with the same store
// must not delete the remote data, which may be the only copy left. A
// topic deleted while no tier ran (sluice topic delete on the data
// directory) has its folder removed at the next start with one.
func TestUnknownRemoteFoldersKept(t *testing.T) {
	mem := objstore.NewMem()
	e := openEnv(t, t.TempDir(), mem)
	dir := e.dir
	p := e.remoteTopic("t", nil)
	produce(t, p, 0, 300)
	e.sync()
	e.close()
	before := segmentObjects(t, mem)
	if len(before) == 0 {
		t.Fatal("nothing uploaded")
	}
	fresh := openEnv(t, t.TempDir(), mem) // another data directory, same store
	fresh.remoteTopic("u", nil)
	if err := tier.SweepDeletedTopics(fresh.tier); err != nil {
		t.Fatal(err)
	}
	after := segmentObjects(t, mem)
	for k := range before {
		if !after[k] {
			t.Fatalf("a server on another data directory deleted %s, of a topic it never had", k)
		}
	}
	fresh.close()
	e = deleteOfflineAndSweep(t, dir, mem, "t")
	after = segmentObjects(t, mem)
	for k := range before {
		if after[k] {
			t.Fatalf("%s left after the sweep: its topic was deleted from this data directory", k)
		}
	}
	if err := tier.SweepDeletedTopics(e.tier); err != nil {
		t.Fatal(err)
	}
}
