package tier_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/tier"
)

// TestDeleteRecordsBeforeManifestLoaded: DeleteRecords below the local
// start of a partition whose manifest the tier has not read yet (the
// store down since the start) cannot know the log start: it fails with
// the retriable ErrRemoteNotReady rather than answering the local start
// as the new low watermark having deleted nothing, after which the
// records below the offset were served again once the manifest loaded.
func TestDeleteRecordsBeforeManifestLoaded(t *testing.T) {
	f, dir, e, p := offloadedEnv(t)
	cut := p.LocalLogStart() / 2
	if cut == 0 {
		t.Fatal("nothing only remote")
	}
	e.close()
	f.SetDown(true)
	e = openEnv(t, dir, f)
	p = e.part("t")
	got, err := p.DeleteRecords(cut)
	if err == nil {
		f.SetDown(false)
		e.sync()
		if _, rerr := p.Read(cut-1, 1000); !errors.Is(rerr, logstore.ErrOffsetOutOfRange) {
			t.Fatalf("DeleteRecords(%d) answered low watermark %d without an error, yet offset %d is read back once the manifest is loaded (%v)", cut, got, cut-1, rerr)
		}
		return
	}
	if !errors.Is(err, logstore.ErrRemoteNotReady) {
		t.Fatalf("DeleteRecords(%d) before the manifest is loaded: %v, want ErrRemoteNotReady", cut, err)
	}
	f.SetDown(false)
	e.sync()
	if got, err := p.DeleteRecords(cut); err != nil || got != cut {
		t.Fatalf("DeleteRecords(%d) once loaded: %d, %v", cut, got, err)
	}
	if _, err := p.Read(cut-1, 1000); !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read below the deleted offset: %v", err)
	}
	readAll(t, p, int(cut), 600)
}

// TestOffsetForTimeAboveDeleteFloor: a timestamp lookup answered from the
// remote tier after DeleteRecords cut into a remote segment is the first
// record at or after the new log start whose timestamp is at or after ts,
// with that record's timestamp: not the log start paired with the
// timestamp of a deleted record, whose own timestamp may be older than
// the one asked for.
func TestOffsetForTimeAboveDeleteFloor(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "8192"})
	ts := func(i int) int64 {
		if i >= 240 && i < 260 {
			return baseTime // late records
		}
		return baseTime + int64(i)
	}
	for i := 0; i < 600; i += 5 {
		var recs []record.Record
		for j := i; j < i+5; j++ {
			recs = append(recs, record.Record{Timestamp: ts(j), Value: []byte(value(j))})
		}
		if _, err := p.AppendRecords(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	e.sync()
	e.retention()
	if p.LocalLogStart() <= 300 {
		t.Fatalf("local start %d: want offsets up to 300 only remote", p.LocalLogStart())
	}
	if _, err := p.DeleteRecords(242); err != nil {
		t.Fatal(err)
	}
	for _, q := range []int64{baseTime, baseTime + 100, baseTime + 250, baseTime + 261, baseTime + 599} {
		var want int64 = -1
		for i := 242; i < 600; i++ {
			if ts(i) >= q {
				want = int64(i)
				break
			}
		}
		off, rts, found, err := p.OffsetForTime(q)
		if err != nil || !found || off != want || rts != ts(int(want)) {
			t.Fatalf("OffsetForTime(%d) = %d, %d, %v, %v; want %d, %d", q-baseTime, off, rts-baseTime, found, err, want, ts(int(want))-baseTime)
		}
	}
}

// TestTruncatedSegmentObjectIsCorrupt: a remote segment whose log object
// is shorter than its manifest says (truncated at rest) is reported as
// corrupt data, with the key and the sizes, over the S3 protocol and in
// memory: not as the store being unreachable (the read is retriable
// ErrRemoteUnavailable, sluice_tier_store_up drops to 0 and the tier logs
// "remote storage unreachable" while the store answers every call).
func TestTruncatedSegmentObjectIsCorrupt(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) objstore.Store{
		"mem": func(*testing.T) objstore.Store { return objstore.NewMem() },
		"s3":  func(t *testing.T) objstore.Store { return objstoretest.Open(t) },
	} {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			dir := t.TempDir()
			e := openEnv(t, dir, store)
			e.offloadedTopic(600)
			e.close()
			ctx := context.Background()
			objs, err := store.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			key := ""
			for _, o := range objs {
				if strings.HasSuffix(o.Key, ".log") {
					key = o.Key // the first segment: offset 0
					break
				}
			}
			b, err := objstore.ReadAll(ctx, store, key)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Put(ctx, key, bytes.NewReader(b[:len(b)/3]), int64(len(b)/3)); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			e = openEnvReg(t, dir, store, reg)
			p := e.part("t")
			for _, off := range []int64{0, 20} { // both in the first segment, which is one chunk
				_, err := p.Read(off, 100)
				if !errors.Is(err, logstore.ErrCorrupt) || errors.Is(err, logstore.ErrRemoteUnavailable) || !strings.Contains(err.Error(), key) {
					t.Fatalf("read at %d of a truncated segment object: %v, want ErrCorrupt naming %s", off, err, key)
				}
			}
			if v := gauge(t, reg, "sluice_tier_store_up"); v != 1 {
				t.Fatalf("sluice_tier_store_up %v after a read of a truncated object from a store that answered", v)
			}
		})
	}
}

// TestAbortedTxnMarkedAfterUploadStaysKnown: a transaction open when its
// first segment was uploaded and aborted later (its abort marker in a
// later segment) is still listed for read_committed fetches of the first
// segment's range once both segments are only remote: the first segment's
// upload could not know it, and the local producer state forgets it when
// local retention deletes the marker's segment.
func TestAbortedTxnMarkedAfterUploadStaysKnown(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096"})
	const pid = 77
	b, err := record.AppendBatch(nil, []record.Record{{Timestamp: baseTime, Value: []byte("aborted")}},
		record.BatchOptions{ProducerID: pid, BaseSequence: 0, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	first := res.BaseOffset
	produce(t, p, 0, 100) // rolls the transaction's segment
	e.sync()              // uploads it with the transaction still open
	marker, err := p.WriteTxnMarker(context.Background(), pid, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 100, 400)
	e.sync()
	e.retention()
	if ls := p.LocalLogStart(); ls <= marker {
		t.Fatalf("local start %d: want the abort marker (%d) only remote", ls, marker)
	}
	want := logstore.AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: marker}
	for _, to := range []int64{first + 1, marker, marker + 1} {
		got := p.AbortedTransactions(first, to)
		found := false
		for _, a := range got {
			found = found || a == want
		}
		if !found {
			t.Fatalf("AbortedTransactions(%d, %d) = %+v, want it to hold %+v", first, to, got, want)
		}
	}
}

// TestMissingSegmentObjectIsCorrupt: an object of a remote segment that
// the manifest names but the store no longer has (deleted by hand, a
// bucket lifecycle rule) fails reads and timestamp lookups with
// ErrCorrupt naming the key, not with an unclassified error (Kafka's
// UNKNOWN_SERVER_ERROR) nor as the store being down.
func TestMissingSegmentObjectIsCorrupt(t *testing.T) {
	for _, suffix := range []string{".index", ".log"} {
		t.Run(suffix, func(t *testing.T) {
			store := objstore.NewMem()
			dir := t.TempDir()
			e := openEnv(t, dir, store)
			e.offloadedTopic(600)
			e.close()
			objs, err := store.List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			key := ""
			for _, o := range objs {
				if strings.HasSuffix(o.Key, suffix) {
					key = o.Key // of the first segment: offset 0
					break
				}
			}
			if err := store.Delete(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			e = openEnv(t, dir, store)
			p := e.part("t")
			if _, err := p.Read(0, 100); !errors.Is(err, logstore.ErrCorrupt) || !strings.Contains(err.Error(), key) {
				t.Fatalf("read of a segment whose %s object is missing: %v, want ErrCorrupt naming %s", suffix, err, key)
			}
			if _, _, _, err := p.OffsetForTime(baseTime); !errors.Is(err, logstore.ErrCorrupt) || !strings.Contains(err.Error(), key) {
				t.Fatalf("timestamp lookup in a segment whose %s object is missing: %v, want ErrCorrupt naming %s", suffix, err, key)
			}
		})
	}
}

// deadlineStore records how long each Put of a segment's log was given.
type deadlineStore struct {
	objstore.Store
	mu   sync.Mutex
	logs []time.Duration
}

func (s *deadlineStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasSuffix(key, ".log") {
		dl, ok := ctx.Deadline()
		s.mu.Lock()
		if ok {
			s.logs = append(s.logs, time.Until(dl))
		} else {
			s.logs = append(s.logs, -1)
		}
		s.mu.Unlock()
	}
	return s.Store.Put(ctx, key, r, size)
}

// TestLargeSegmentUploadGivenTimeForItsSize: the upload of a segment's
// log is given OpTimeout plus the time its size takes at 1 MiB/s, not
// OpTimeout alone for the whole segment with its indexes and manifest: a
// segment too large to go in OpTimeout (128 MiB, the default segment
// size, in 2 minutes needs 1.1 MB/s) failed every attempt, retried for
// ever while the local disk filled.
func TestLargeSegmentUploadGivenTimeForItsSize(t *testing.T) {
	store := &deadlineStore{Store: objstore.NewMem()}
	e := openEnvWith(t, t.TempDir(), store, func(o *tier.Options) { o.OpTimeout = time.Second })
	p := e.remoteTopic("big", map[string]string{"segment.bytes": strconv.Itoa(8 << 20)})
	big := bytes.Repeat([]byte("v"), 512<<10)
	for i := 0; i < 18; i++ {
		if _, err := p.AppendRecords(context.Background(), []record.Record{{Timestamp: baseTime, Value: big}}); err != nil {
			t.Fatal(err)
		}
	}
	e.sync()
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.logs) == 0 {
		t.Fatal("no segment uploaded")
	}
	for _, d := range store.logs {
		if d < 8*time.Second {
			t.Fatalf("the upload of an 8 MiB segment's log was given %v (OpTimeout 1s), want at least 8s (1 MiB/s)", d)
		}
	}
}

// TestLocalReadReportsRemoteLogStart: a read served from the local tier
// of a remote-enabled partition reports the log start offset of both
// tiers (Fetch's log_start_offset), as a remote read and Offsets do, not
// the local start.
func TestLocalReadReportsRemoteLogStart(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	p := e.offloadedTopic(600)
	local := p.LocalLogStart()
	if local == 0 {
		t.Fatal("nothing only remote")
	}
	start, _, _ := p.Offsets()
	if start != 0 {
		t.Fatalf("log start %d, want 0 (the remote start)", start)
	}
	for _, off := range []int64{0, local, 599, 600} {
		res, err := p.Read(off, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if res.LogStartOffset != start {
			t.Fatalf("read at %d (local start %d): log start offset %d, want %d", off, local, res.LogStartOffset, start)
		}
	}
}

// TestOpenWithHangingStoreTriesOnce: Open, which `sluice serve` waits for
// before it listens, gives up loading manifests at the first that fails on
// the store: with a store that does not answer (a blackholed endpoint)
// it waited OpTimeout for every remote partition in turn (2 minutes each
// by default), keeping the server from serving even its local topics. The
// uploader loads the rest in the background.
func TestOpenWithHangingStoreTriesOnce(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMem())
	dir := t.TempDir()
	e := openEnv(t, dir, f)
	cfg := logstore.TopicConfig{Partitions: 8}
	for k, v := range map[string]string{"remote.storage.enable": "true", "segment.bytes": "4096"} {
		if err := cfg.SetConfig(k, &v); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.log.CreateTopic("many", cfg); err != nil {
		t.Fatal(err)
	}
	e.close()
	f.SetLatency(time.Hour) // every call waits for its context
	before := f.Calls(objstore.OpList)
	e = openEnvWith(t, dir, f, func(o *tier.Options) { o.OpTimeout = 20 * time.Millisecond })
	if n := f.Calls(objstore.OpList) - before; n > 1 {
		t.Fatalf("Open listed %d partition folders of a store that does not answer, each waiting OpTimeout; want it to stop at the first", n)
	}
	f.SetLatency(0)
	e.sync()
	tp, err := e.log.Topic("many")
	if err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < tp.NumPartitions(); i++ {
		if _, ok := e.tier.Describe("many", i); !ok {
			t.Fatalf("partition %d: manifest not loaded after the store answered again", i)
		}
	}
}

// TestGapInRemoteRangeIsNotOutOfRange: offsets above the log start that
// no remote segment holds (named only by a damaged manifest version, whose
// segment local retention already deleted) fail a read with ErrCorrupt,
// not ErrOffsetOutOfRange, on which a consumer resets its position: to
// the latest offset, skipping every record after the gap, or to the
// earliest, reading everything again.
func TestGapInRemoteRangeIsNotOutOfRange(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMem())
	dir := t.TempDir()
	e := openEnv(t, dir, f)
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "1"})
	produce(t, p, 0, 600)
	e.sync()
	e.retention() // every uploaded segment leaves the disk
	local := p.LocalLogStart()
	info, _ := e.tier.Describe("t", 0)
	if info.End != local {
		t.Fatalf("remote end %d, local start %d: want every sealed segment only remote", info.End, local)
	}
	e.close()
	newest, _ := corruptNewestManifest(t, f) // the newest version, the only one naming the last segment
	e = openEnv(t, dir, f)
	p = e.part("t")
	if _, err := p.Read(0, 1000); err != nil {
		t.Fatalf("read below the gap: %v", err)
	}
	_, err := p.Read(local-1, 1000)
	if errors.Is(err, logstore.ErrOffsetOutOfRange) || !errors.Is(err, logstore.ErrCorrupt) {
		t.Fatalf("read at %d, named only by the damaged manifest %s: %v, want ErrCorrupt", local-1, newest, err)
	}
}
