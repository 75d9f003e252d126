package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

func openStoreLog(t *testing.T, dir string, sz offsetsSizing) (*Log, *OffsetStore) {
	t.Helper()
	l, err := Open(Options{Dir: dir, RetentionCheckInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := openOffsetStore(context.Background(), l, sz)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return l, s
}

func TestOffsetStoreCommitFetchRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, s := openStoreLog(t, dir, defaultOffsetsSizing)
	a0, a1, b0 := TopicPartition{"a", 0}, TopicPartition{"a", 1}, TopicPartition{"b", 0}
	if err := s.Commit(ctx, "g1", map[TopicPartition]CommittedOffset{
		a0: {Offset: 10, LeaderEpoch: 2, Metadata: "m", CommitTime: 5},
		a1: {Offset: 20, LeaderEpoch: -1},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "g1", map[TopicPartition]CommittedOffset{a0: {Offset: 11, LeaderEpoch: 2, CommitTime: 6}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "g2", map[TopicPartition]CommittedOffset{b0: {Offset: 1, CommitTime: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "g3", map[TopicPartition]CommittedOffset{b0: {Offset: 1, CommitTime: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, "g3"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, "nobody"); err != nil {
		t.Fatalf("delete of an unknown group: %v", err)
	}
	if err := s.Commit(ctx, "g1", map[TopicPartition]CommittedOffset{a0: {Metadata: strings.Repeat("x", MaxOffsetMetadata+1)}}); !errors.Is(err, ErrOffsetMetadataTooLarge) {
		t.Fatalf("oversized metadata: %v", err)
	}
	g1 := s.Fetch("g1")
	if g1[a0].Offset != 11 || g1[a0].Metadata != "" || g1[a1].Offset != 20 || g1[a1].LeaderEpoch != -1 || len(g1) != 2 {
		t.Fatalf("g1 = %+v", g1)
	}
	if g1[a1].CommitTime == 0 {
		t.Fatal("commit time not filled in")
	}
	want := map[string]map[TopicPartition]CommittedOffset{"g1": g1, "g2": s.Fetch("g2")}
	if got := s.Groups(); !slices.Equal(got, []string{"g1", "g2"}) {
		t.Fatalf("groups = %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, s = openStoreLog(t, dir, defaultOffsetsSizing)
	defer l.Close()
	if got := s.Groups(); !slices.Equal(got, []string{"g1", "g2"}) {
		t.Fatalf("groups after restart = %v (the deleted g3 must stay deleted)", got)
	}
	for g, w := range want {
		if got := s.Fetch(g); !maps.Equal(got, w) {
			t.Fatalf("%s after restart = %+v, want %+v", g, got, w)
		}
	}
	if got := s.Fetch("g3"); len(got) != 0 {
		t.Fatalf("deleted group after restart: %+v", got)
	}
	if !slices.Contains(l.Topics(), OffsetsTopic) {
		t.Fatalf("topics %v lack %s", l.Topics(), OffsetsTopic)
	}
}

// offsetsOracle is the model: a plain map per group.
type offsetsOracle map[string]map[TopicPartition]CommittedOffset

func (o offsetsOracle) check(t *testing.T, s *OffsetStore, when string) {
	t.Helper()
	var groups []string
	for g, m := range o {
		if len(m) > 0 {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	if got := s.Groups(); !slices.Equal(got, groups) {
		t.Fatalf("%s: groups %v, oracle %v", when, got, groups)
	}
	for _, g := range groups {
		if got := s.Fetch(g); !maps.Equal(got, o[g]) {
			t.Fatalf("%s: group %s = %v, oracle %v", when, g, got, o[g])
		}
	}
}

// TestOffsetStoreProperty runs random commits, deletions, restarts and
// compaction of the offsets topic against a map, with the topic sized so
// that many segments roll and are compacted.
func TestOffsetStoreProperty(t *testing.T) {
	tiny := offsetsSizing{segmentBytes: 4 << 10}
	for seed := range uint64(2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			l, s := openStoreLog(t, dir, tiny)
			defer func() { l.Close() }()
			o := offsetsOracle{}
			passes := 0
			compact := func() {
				t.Helper()
				tp, _ := l.Topic(OffsetsTopic)
				p, _ := tp.Partition(0)
				// Much later: tombstones are past delete.retention.ms.
				ran, err := p.Compact(time.Now().Add(48*time.Hour), true)
				if err != nil {
					t.Fatalf("compact: %v", err)
				}
				if ran {
					passes++
				}
			}
			for step := range 300 {
				g := fmt.Sprintf("group-%d", rng.IntN(5))
				switch r := rng.IntN(100); {
				case r < 80:
					offs := map[TopicPartition]CommittedOffset{}
					for range 1 + rng.IntN(4) {
						tp := TopicPartition{fmt.Sprintf("topic-%d", rng.IntN(3)), rng.Int32N(4)}
						offs[tp] = CommittedOffset{Offset: rng.Int64N(1e6), LeaderEpoch: rng.Int32N(3) - 1, Metadata: strings.Repeat("m", rng.IntN(20)), CommitTime: int64(step + 1)}
					}
					if err := s.Commit(ctx, g, offs); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					if o[g] == nil {
						o[g] = map[TopicPartition]CommittedOffset{}
					}
					maps.Copy(o[g], offs)
				case r < 88:
					if err := s.DeleteGroup(ctx, g); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					delete(o, g)
				case r < 94:
					compact()
				default:
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					l, s = openStoreLog(t, dir, tiny)
					o.check(t, s, fmt.Sprintf("step %d after restart", step))
				}
				o.check(t, s, fmt.Sprintf("step %d", step))
			}
			compact()
			tp, _ := l.Topic(OffsetsTopic)
			p, _ := tp.Partition(0)
			if st := p.Stats(); passes == 0 || st.Cleaner.RecordsRemoved == 0 {
				t.Fatalf("compaction never dropped superseded commits (%d passes, %+v): the test does not test what it says", passes, st.Cleaner)
			}
			l.Close()
			l, s = openStoreLog(t, dir, tiny)
			o.check(t, s, "final restart")
		})
	}
}

// TestOffsetStoreConcurrentCommits checks that concurrent commits of the
// same keys leave memory equal to what a replay of the log gives.
func TestOffsetStoreConcurrentCommits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, s := openStoreLog(t, dir, defaultOffsetsSizing)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				tp := TopicPartition{"t", int32(i % 3)}
				g := fmt.Sprintf("g%d", i%2)
				if err := s.Commit(ctx, g, map[TopicPartition]CommittedOffset{tp: {Offset: int64(w*1000 + i)}}); err != nil {
					errs <- err
					return
				}
				if w == 0 && i%10 == 9 {
					if err := s.DeleteGroup(ctx, g); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := offsetsOracle{}
	for _, g := range s.Groups() {
		want[g] = s.Fetch(g)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, s = openStoreLog(t, dir, defaultOffsetsSizing)
	defer l.Close()
	want.check(t, s, "after restart")
}

func FuzzDecodeOffsetRecord(f *testing.F) {
	k := encodeOffsetKey(nil, "group", TopicPartition{"topic", 3})
	v := encodeOffsetValue(nil, CommittedOffset{Offset: 42, LeaderEpoch: 1, Metadata: "meta", CommitTime: 9})
	f.Add(k, v, false)
	f.Add(k, []byte(nil), true)
	f.Add([]byte{0, 1, 0, 0}, []byte{0, 1}, false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		group, tp, val, err := decodeOffsetRecord(key, value)
		if err != nil {
			if !errors.Is(err, errBadOffsetRecord) {
				t.Fatalf("error %v does not wrap errBadOffsetRecord", err)
			}
			return
		}
		// The encoding is canonical: what decodes re-encodes to the same bytes.
		if got := encodeOffsetKey(nil, group, tp); !bytes.Equal(got, key) {
			t.Fatalf("key re-encodes to %x, was %x", got, key)
		}
		if (val == nil) != tombstone {
			t.Fatalf("tombstone = %v for value %x", val == nil, value)
		}
		if val != nil {
			if got := encodeOffsetValue(nil, *val); !bytes.Equal(got, value) {
				t.Fatalf("value re-encodes to %x, was %x", got, value)
			}
		}
	})
}

// BenchmarkOffsetCommit measures durable commits of 10 partitions from 8
// concurrent committers (their fsyncs are shared by group commit).
func BenchmarkOffsetCommit(b *testing.B) {
	l, err := Open(Options{Dir: b.TempDir(), RetentionCheckInterval: -1, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s, err := OpenOffsetStore(context.Background(), l)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		offs := map[TopicPartition]CommittedOffset{}
		var n int64
		for pb.Next() {
			n++
			for p := range int32(10) {
				offs[TopicPartition{"topic", p}] = CommittedOffset{Offset: n}
			}
			if err := s.Commit(context.Background(), fmt.Sprintf("g%d", n%4), offs); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestOffsetStoreDeleteTopicOffsets: DeleteTopicOffsets deletes every
// group's offsets of the topic's partitions, durably, and no other.
func TestOffsetStoreDeleteTopicOffsets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, s := openStoreLog(t, dir, defaultOffsetsSizing)
	a0, a1, ab0 := TopicPartition{"a", 0}, TopicPartition{"a", 1}, TopicPartition{"ab", 0}
	for _, g := range []string{"g1", "g2"} {
		if err := s.Commit(ctx, g, map[TopicPartition]CommittedOffset{a0: {Offset: 1}, a1: {Offset: 2}, ab0: {Offset: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, "g3", map[TopicPartition]CommittedOffset{a1: {Offset: 4}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteTopicOffsets(ctx, "a")
	if err != nil || n != 5 {
		t.Fatalf("DeleteTopicOffsets = %d, %v; want 5 deleted", n, err)
	}
	check := func(s *OffsetStore, when string) {
		t.Helper()
		for _, g := range []string{"g1", "g2"} {
			if got := s.Fetch(g); len(got) != 1 || got[ab0].Offset != 3 {
				t.Errorf("%s: %s = %+v, want only %v", when, g, got, ab0)
			}
		}
		if got := s.Groups(); !slices.Equal(got, []string{"g1", "g2"}) {
			t.Errorf("%s: groups = %v", when, got)
		}
	}
	check(s, "after the delete")
	l.Close()
	l, s = openStoreLog(t, dir, defaultOffsetsSizing)
	defer l.Close()
	check(s, "after a reopen")
}

// TestDeleteTopicOffsetsOneBatch: the tombstones of every group's offsets
// of a deleted topic go in one batch (one fsync), not one per group, and
// stay deleted after a reopen.
func TestDeleteTopicOffsetsOneBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, s := openStoreLog(t, dir, defaultOffsetsSizing)
	const groups = 50
	for i := range groups {
		g := fmt.Sprintf("g%02d", i)
		if err := s.Commit(ctx, g, map[TopicPartition]CommittedOffset{{"a", 0}: {Offset: 1}, {"a", 1}: {Offset: 2}, {"b", 0}: {Offset: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.partitionFor("g00")
	if err != nil {
		t.Fatal(err)
	}
	_, before, _ := p.Offsets()
	n, err := s.DeleteTopicOffsets(ctx, "a")
	if err != nil || n != 2*groups {
		t.Fatalf("DeleteTopicOffsets = %d, %v; want %d", n, err, 2*groups)
	}
	r, err := p.Read(before, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for rest := r.Batches; len(rest) > 0; batches++ {
		h, err := record.ParseHeader(rest)
		if err != nil {
			t.Fatal(err)
		}
		rest = rest[h.Size():]
	}
	if batches != 1 {
		t.Errorf("the deletion appended %d batches, want 1 for %d groups", batches, groups)
	}
	l.Close()
	l, s = openStoreLog(t, dir, defaultOffsetsSizing)
	defer l.Close()
	for i := range groups {
		g := fmt.Sprintf("g%02d", i)
		if got := s.Fetch(g); len(got) != 1 || got[TopicPartition{"b", 0}].Offset != 3 {
			t.Fatalf("after a reopen: %s = %+v, want only b/0", g, got)
		}
	}
}

// TestDeleteTopicOffsetsPastBatchLimit: tombstones beyond one batch's
// limit are split into batches that each fit; all are deleted.
func TestDeleteTopicOffsetsPastBatchLimit(t *testing.T) {
	ctx := context.Background()
	l, s := openStoreLog(t, t.TempDir(), offsetsSizing{segmentBytes: 2048})
	defer l.Close()
	const groups = 50
	for i := range groups {
		if err := s.Commit(ctx, fmt.Sprintf("group-%02d", i), map[TopicPartition]CommittedOffset{{"a", 0}: {Offset: 1}, {"a", 1}: {Offset: 2}, {"b", 0}: {Offset: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteTopicOffsets(ctx, "a")
	if err != nil || n != 2*groups {
		t.Fatalf("DeleteTopicOffsets = %d, %v; want %d", n, err, 2*groups)
	}
	for i := range groups {
		g := fmt.Sprintf("group-%02d", i)
		if got := s.Fetch(g); len(got) != 1 {
			t.Fatalf("%s = %+v, want only b/0", g, got)
		}
	}
}
