package logstore

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func openProducerIDs(t *testing.T, dir string) (*Log, *ProducerIDs) {
	t.Helper()
	l, err := Open(Options{Dir: dir, RetentionCheckInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenProducerIDs(context.Background(), l)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return l, a
}

func TestProducerIDsNeverReused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	seen := map[int64]bool{}
	take := func(a *ProducerIDs, n int) int64 {
		t.Helper()
		var last int64
		for range n {
			id, err := a.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] || id < 0 {
				t.Fatalf("id %d handed out twice (or negative)", id)
			}
			seen[id] = true
			last = id
		}
		return last
	}
	l, a := openProducerIDs(t, dir)
	if first := take(a, 1); first != 0 {
		t.Fatalf("first id = %d, want 0", first)
	}
	take(a, producerIDBlock+5) // crosses a block boundary
	l.Close()
	// After a restart the allocator continues after the last reserved block,
	// whatever was handed out of it: a crash cannot lead to reuse.
	for round := range 3 {
		l, a = openProducerIDs(t, dir)
		id := take(a, 1)
		if id%producerIDBlock != 0 {
			t.Fatalf("round %d: first id after restart %d does not start a fresh block", round, id)
		}
		take(a, 3)
		l.Close()
	}
}

func TestProducerIDsConcurrent(t *testing.T) {
	ctx := context.Background()
	l, a := openProducerIDs(t, t.TempDir())
	defer l.Close()
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 600 {
				id, err := a.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				dup := seen[id]
				seen[id] = true
				mu.Unlock()
				if dup {
					errs <- errors.New("duplicate id")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != 2400 {
		t.Fatalf("%d distinct ids, want 2400", len(seen))
	}
}

func FuzzDecodeProducerIDRecord(f *testing.F) {
	f.Add(encodeProducerIDRecord(nil, 1000))
	f.Add([]byte{0, 1, 0xff, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		limit, err := decodeProducerIDRecord(b)
		if err != nil {
			if !errors.Is(err, errBadProducerIDRecord) {
				t.Fatalf("error %v does not wrap errBadProducerIDRecord", err)
			}
			return
		}
		if limit < 0 {
			t.Fatalf("negative limit %d accepted", limit)
		}
		if got := encodeProducerIDRecord(nil, limit); string(got) != string(b) {
			t.Fatalf("re-encodes to %x, was %x", got, b)
		}
	})
}
