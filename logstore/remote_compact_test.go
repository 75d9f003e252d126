package logstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// rangeTier is a RemoteTier that holds the offset ranges "uploaded" to it,
// with the package tier's rule: a sealed segment may go locally once it
// ends at or below the end of the newest segment uploaded.
type rangeTier struct {
	mu        sync.Mutex
	remoteEnd int64
	ranges    [][2]int64
}

func (r *rangeTier) Uploaded(_ string, _ int32, _, end int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return end <= r.remoteEnd
}
func (r *rangeTier) RemoteStart(string, int32) (int64, bool) { return 0, false }
func (r *rangeTier) Ready(string, int32) bool                { return true }
func (r *rangeTier) Read(string, int32, int64, int) ([]byte, error) {
	return nil, ErrOffsetOutOfRange
}
func (r *rangeTier) OffsetForTime(string, int32, int64, int64) (int64, int64, bool, error) {
	return 0, 0, false, nil
}
func (r *rangeTier) AbortedTransactions(string, int32, int64, int64) []AbortedTxn { return nil }
func (r *rangeTier) SegmentRolled(string, int32)                                  {}

// upload uploads the partition's sealed segments from the remote end on,
// as the tier's uploader does, at most n of them.
func (r *rangeTier) upload(t *testing.T, p *Partition, n int) {
	t.Helper()
	r.mu.Lock()
	from := r.remoteEnd
	r.mu.Unlock()
	bases, _ := p.SealedSegments(from)
	for _, base := range bases[:min(n, len(bases))] {
		seg, err := p.OpenSealedSegment(base)
		if err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		r.ranges = append(r.ranges, [2]int64{seg.Base, seg.End})
		r.remoteEnd = seg.End
		r.mu.Unlock()
		seg.Close()
	}
}

// TestCompactionUnderwayWhenRemoteEnabled: a compacted topic switched to
// delete with remote storage while a cleaner pass is rewriting (merging)
// its segments. The uploader must not upload the old segments the pass is
// about to replace: after the swap, the merged segment starts below the
// remote end, is never uploaded, and local retention, told that it ends
// below the remote end, deletes it, and with it the offsets that were
// never remote.
func TestCompactionUnderwayWhenRemoteEnabled(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.Cleaner = CleanerOptions{Interval: -1}
	l := mustOpen(t, opts)
	defer l.Close()
	rt := &rangeTier{}
	l.SetRemoteTier(rt)
	if err := l.CreateTopic("c", TopicConfig{Partitions: 1, SegmentBytes: 2 << 10, Cleanup: CleanupCompact}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("c")
	p, _ := tp.Partition(0)
	for i := range 300 {
		rec := record.Record{Key: fmt.Appendf(nil, "k%d", i%10), Value: fmt.Appendf(nil, "v%d-%040d", i, i), Timestamp: time.Now().UnixMilli()}
		if _, err := p.AppendRecords(context.Background(), []record.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.Segments()); n < 6 {
		t.Fatalf("%d segments: too few for the test", n)
	}
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookCleanStep = func(step string) {
		if step == "output synced" {
			once.Do(func() {
				close(entered)
				<-gate
			})
		}
	}
	defer func() { testHookCleanStep = nil }()
	compacted := make(chan error, 1)
	go func() {
		_, err := p.Compact(time.Now(), true)
		compacted <- err
	}()
	<-entered // the pass wrote its output; the swap is to come
	if _, err := l.AlterTopicConfig("c", false, func(c *TopicConfig) error {
		c.Cleanup, c.RemoteStorage, c.LocalRetentionBytes = CleanupDelete, true, 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rt.upload(t, p, 1) // the uploader's pass while the cleaner is at work
	close(gate)
	if err := <-compacted; err != nil {
		t.Fatal(err)
	}
	rt.upload(t, p, 1000)
	if err := l.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	// Every offset below the local start must be in an uploaded range.
	local := p.LocalLogStart()
	covered := int64(0)
	for _, r := range rt.ranges {
		if r[0] > covered {
			break
		}
		covered = max(covered, r[1])
	}
	if covered < local {
		t.Fatalf("local start %d, but the uploaded ranges %v cover only [0, %d): offsets deleted locally that were never remote", local, rt.ranges, covered)
	}
}

// TestRemoteTopicNeverInheritsCompact: a remote-enabled topic that sets no
// cleanup.policy of its own stays delete when the server is restarted with
// compact as its default policy: compaction would merge segments already
// uploaded, and a merged segment that straddles the remote end is never
// uploaded, so local retention waits on it for good. (An explicit compact
// policy is refused with remote storage; the default must not bring it in.)
func TestRemoteTopicNeverInheritsCompact(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.Cleaner = CleanerOptions{Interval: -1}
	l := mustOpen(t, opts)
	l.SetRemoteTier(&rangeTier{})
	if err := l.CreateTopic("r", TopicConfig{Partitions: 1, SegmentBytes: 2 << 10, RemoteStorage: true}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("r")
	p, _ := tp.Partition(0)
	for i := range 300 {
		rec := record.Record{Key: fmt.Appendf(nil, "k%d", i%10), Value: fmt.Appendf(nil, "v%d-%040d", i, i), Timestamp: time.Now().UnixMilli()}
		if _, err := p.AppendRecords(context.Background(), []record.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	before := p.Segments()
	l.Close()

	opts.DefaultCleanup = CleanupCompact
	l = mustOpen(t, opts)
	defer l.Close()
	l.SetRemoteTier(&rangeTier{})
	tp, _ = l.Topic("r")
	p, _ = tp.Partition(0)
	if c := tp.Cleanup(); c != CleanupDelete {
		t.Errorf("cleanup policy of a remote topic on a server whose default is compact: %v, want delete", c)
	}
	if _, err := p.Compact(time.Now(), true); err != nil {
		t.Fatal(err)
	}
	after := p.Segments()
	if len(after) != len(before) {
		t.Fatalf("%d segments before, %d after a compaction pass: a remote topic's segments were merged", len(before), len(after))
	}
	for i := range before {
		if after[i].Base != before[i].Base || after[i].Bytes != before[i].Bytes {
			t.Fatalf("segment %d: %+v before, %+v after a compaction pass: a remote topic's segment was rewritten", i, before[i], after[i])
		}
	}
}
