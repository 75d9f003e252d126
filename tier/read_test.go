package tier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/tier"
)

// TestConcurrentRemoteReadsKeepTheirBytes: readers of the remote range at
// once, with a cache small enough that chunks are evicted and their buffers
// reused all the time (poisoned when released), each get the right records,
// and every batch returned stays intact after all the reads that followed
// it: no returned batch shares a buffer the tier reuses. Run it with -race.
func TestConcurrentRemoteReadsKeepTheirBytes(t *testing.T) {
	e := openEnvWith(t, t.TempDir(), objstore.NewMem(), func(o *tier.Options) { o.CacheBytes = 4 * 4096 })
	tier.PoisonChunkBuffers(e.tier)
	const n = 600
	p := e.offloadedTopic(n)
	local := p.LocalLogStart()
	if local < 300 {
		t.Fatalf("local start %d: too little is remote for the test", local)
	}
	const readers = 6
	kept := make([][][]byte, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := int64(r * 7) // readers at different places
			for next < local {
				res, err := p.Read(next, 1500+r*1000)
				if err != nil {
					t.Errorf("reader %d at %d: %v", r, next, err)
					return
				}
				if err := checkRecords(res.Batches, &next); err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				kept[r] = append(kept[r], res.Batches)
			}
		}()
	}
	wg.Wait()
	for r, reads := range kept {
		next := int64(r * 7)
		for _, b := range reads {
			if err := checkRecords(b, &next); err != nil {
				t.Fatalf("reader %d, a batch read earlier changed since: %v", r, err)
			}
		}
	}
	e.tier.Close()
	if live := tier.LiveChunkBuffers(e.tier); live != 0 {
		t.Fatalf("%d chunk buffers still held after every read", live)
	}
}

// checkRecords checks that the records of batches from *next on are
// value(i), in order, and moves *next past them.
func checkRecords(batches []byte, next *int64) error {
	if len(batches) == 0 {
		return fmt.Errorf("no batches at %d", *next)
	}
	return record.Decode(batches, func(_ record.Header, r record.Record) error {
		if r.Offset < *next {
			return nil // the batch started before the offset asked for
		}
		if r.Offset != *next || string(r.Value) != value(int(*next)) || r.Timestamp != baseTime+*next {
			return fmt.Errorf("offset %d: got offset %d value %.20q", *next, r.Offset, r.Value)
		}
		*next++
		return nil
	})
}

// TestReadAheadIntoNextSegments: after a read, a sequential reader's next
// bytes are fetched in the background, past the segment's end into the
// next segments, with their offset indexes, so that the read crossing into
// a segment waits for no store call.
func TestReadAheadIntoNextSegments(t *testing.T) {
	f, dir, e, p := offloadedEnv(t)
	if ls := p.LocalLogStart(); ls < 300 {
		t.Fatalf("local start %d: too little remote for the test", ls)
	}
	e.close()
	e = openEnv(t, dir, f) // cold: no chunk, no index fetched
	var mu sync.Mutex
	gets := map[string]bool{}
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpGet {
			mu.Lock()
			gets[key] = true
			mu.Unlock()
		}
		return nil
	})
	if _, err := e.part("t").Read(0, 1500); err != nil {
		t.Fatal(err)
	}
	tier.WaitBackground(e.tier)
	f.SetHook(nil)
	// The read-ahead after a read of 1500 bytes is 4 chunks of 4 KiB (the
	// minimum): the rest of the first segment and the next four segments'
	// first bytes, each with its offset index.
	logs, indexes := 0, 0
	for k := range gets {
		switch {
		case strings.HasSuffix(k, ".log"):
			logs++
		case strings.HasSuffix(k, ".index"):
			indexes++
		}
	}
	if logs < 5 || indexes < 5 {
		t.Fatalf("after one read of the first segment: %d segment logs and %d offset indexes fetched, want at least 5 each (the read's, and 4 segments of read-ahead): %v", logs, indexes, gets)
	}
	readAll(t, e.part("t"), 0, 600)
}

// TestBackgroundFetchesBounded: with maxBackgroundFetches chunks on their
// way in the background, a read starts no prefetch or read-ahead: it
// fetches what it needs itself, and nothing more.
func TestBackgroundFetchesBounded(t *testing.T) {
	f, dir, e, _ := offloadedEnv(t)
	e.close()
	e = openEnv(t, dir, f)
	var mu sync.Mutex
	var gets []string
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpGet {
			mu.Lock()
			gets = append(gets, key)
			mu.Unlock()
		}
		return nil
	})
	tier.SetBackgroundFetching(e.tier, tier.MaxBackgroundFetches)
	if _, err := e.part("t").Read(0, 1500); err != nil {
		t.Fatal(err)
	}
	tier.WaitBackground(e.tier)
	f.SetHook(nil)
	logs := 0
	for _, k := range gets {
		if strings.HasSuffix(k, ".log") {
			logs++
		}
	}
	if logs != 1 {
		t.Fatalf("at the bound of background fetches, a read of one chunk made %d chunk GETs, want 1: %v", logs, gets)
	}
	tier.SetBackgroundFetching(e.tier, 0)
	readAll(t, e.part("t"), 0, 600)
}

// TestIndexReadAheadBounded: the read-ahead's fetches of the next
// segments' offset indexes count against maxBackgroundFetches like its
// chunk fetches: with one background fetch left, a read-ahead at the end
// of a segment starts one (the next segment's index), not an index fetch
// per segment it looks ahead into. The store holds every GET until the
// read-ahead returned, so none finishes early and frees its place.
func TestIndexReadAheadBounded(t *testing.T) {
	f, dir, e, _ := offloadedEnv(t)
	e.close()
	e = openEnv(t, dir, f)                // cold: no index fetched
	if err := e.tier.Sync(); err != nil { // loaded
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var mu sync.Mutex
	var gets []string
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpGet {
			<-gate
			mu.Lock()
			gets = append(gets, key)
			mu.Unlock()
		}
		return nil
	})
	tier.SetBackgroundFetching(e.tier, tier.MaxBackgroundFetches-1)
	tier.ReadAheadAfterSegment(e.tier, "t", 0, 0, 64<<10)
	close(gate)
	tier.WaitBackground(e.tier)
	f.SetHook(nil)
	tier.SetBackgroundFetching(e.tier, 0)
	indexes, logs := 0, 0
	for _, k := range gets {
		switch {
		case strings.HasSuffix(k, ".index"):
			indexes++
		case strings.HasSuffix(k, ".log"):
			logs++
		}
	}
	if indexes+logs > 1 {
		t.Fatalf("with one background fetch left, a read-ahead started %d index and %d chunk fetches, want one in all: %v", indexes, logs, gets)
	}
	readAll(t, e.part("t"), 0, 600)
}

// TestSegmentDeletedUnderReadKeepsStoreUp: a remote read that finds its
// segment deleted by remote retention meanwhile (the store answers "no
// such object") fails with ErrOffsetOutOfRange, and the tier does not
// report the store unreachable: sluice_tier_store_up stays 1 and no
// "remote storage unreachable" warning is logged for an answer.
func TestSegmentDeletedUnderReadKeepsStoreUp(t *testing.T) {
	f, dir, e, p := offloadedEnv(t)
	e.close()
	reg := prometheus.NewRegistry()
	e = openEnvReg(t, dir, f, reg) // cold: the first read fetches the segment's index
	p = e.part("t")
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpGet && strings.HasSuffix(key, ".index") {
			once.Do(func() {
				close(entered)
				<-gate
			})
		}
		return nil
	})
	read := make(chan error, 1)
	go func() {
		_, err := p.Read(0, 1000)
		read <- err
	}()
	<-entered
	// Remote retention deletes the segment holding offset 0 meanwhile.
	if _, err := p.DeleteRecords(100); err != nil {
		t.Fatal(err)
	}
	e.sync()
	close(gate)
	if err := <-read; !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read of a segment deleted under it: %v, want ErrOffsetOutOfRange", err)
	}
	if v := gauge(t, reg, "sluice_tier_store_up"); v != 1 {
		t.Fatalf("sluice_tier_store_up %v after the store answered that a deleted segment does not exist", v)
	}
}

// gatedGetStore holds a Get of a key for which hold says so once the
// store has answered it, until gate is closed.
type gatedGetStore struct {
	objstore.Store
	hold    func(key string) bool
	entered chan struct{}
	gate    chan struct{}
}

func (s *gatedGetStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, off, n)
	if err == nil && s.hold(key) {
		close(s.entered)
		<-s.gate
	}
	return rc, err
}

// TestIndexOfSegmentDeletedUnderReadNotKept: a read that fetched a
// segment's index just before remote retention deleted the segment does
// not keep that index in memory for good (retention drops the indexes of
// the segments it deletes; one stored after that was never dropped).
func TestIndexOfSegmentDeletedUnderReadNotKept(t *testing.T) {
	mem := objstore.NewMem()
	dir := t.TempDir()
	e := openEnv(t, dir, mem)
	p := e.offloadedTopic(600)
	e.close()
	var once sync.Once
	gs := &gatedGetStore{Store: mem, entered: make(chan struct{}), gate: make(chan struct{})}
	gs.hold = func(key string) bool {
		held := false
		if strings.HasSuffix(key, ".timeindex") {
			once.Do(func() { held = true })
		}
		return held
	}
	e = openEnv(t, dir, gs) // cold: the first read fetches the segment's indexes
	p = e.part("t")
	read := make(chan error, 1)
	go func() {
		_, err := p.Read(0, 1000)
		read <- err
	}()
	<-gs.entered // both indexes of the segment holding 0 are fetched
	if _, err := p.DeleteRecords(100); err != nil {
		t.Fatal(err)
	}
	e.sync() // remote retention deletes that segment
	close(gs.gate)
	if err := <-read; !errors.Is(err, logstore.ErrOffsetOutOfRange) {
		t.Fatalf("read of a segment deleted under it: %v, want ErrOffsetOutOfRange", err)
	}
	if n := tier.IndexedSegments(e.tier, "t", 0); n != 0 {
		t.Fatalf("%d segment indexes kept in memory after the only one read was deleted", n)
	}
}

// offloadedEnv opens an env on a faulty in-memory store in a new
// directory and writes 600 records to topic "t" (4 KiB segments of ~40
// records, 8 KiB kept locally), uploads them and applies local retention,
// so that most of "t" is only remote.
func offloadedEnv(t *testing.T) (*objstore.Faulty, string, *env, *logstore.Partition) {
	t.Helper()
	f := objstore.NewFaulty(objstore.NewMem())
	dir := t.TempDir()
	e := openEnv(t, dir, f)
	p := e.offloadedTopic(600)
	return f, dir, e, p
}
