package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/kvtopic"
)

// faultyKV is an in-memory _schemas whose writes can fail in the ways a
// log append can: after the batch reached the log (a timeout once it was
// assigned its offset), or before it did but landing later (the batch
// assigned and written by a later commit of the partition). Its reads
// can fail too.
type faultyKV struct {
	mu   sync.Mutex
	recs []kvtopic.Entry
	// failLanded: the next PutAll appends, then fails.
	failLanded bool
	// failLate: the next PutAll fails without appending; its entries
	// land right after the following PutAll's.
	failLate bool
	late     []kvtopic.Entry
	// failReplay: Replay fails.
	failReplay bool
}

var errInjected = errors.New("injected: timed out waiting for the append")

func (f *faultyKV) Replay(ctx context.Context, fn func(key, value []byte)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReplay {
		return errors.New("injected: read failed")
	}
	for _, e := range f.recs {
		fn(e.Key, e.Value)
	}
	return nil
}

func (f *faultyKV) PutAll(ctx context.Context, entries []kvtopic.Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.failLanded:
		f.failLanded = false
		f.recs = append(f.recs, entries...)
		return errInjected
	case f.failLate:
		f.failLate = false
		f.late = append(f.late, entries...)
		return errInjected
	}
	f.recs = append(f.recs, entries...)
	f.recs = append(f.recs, f.late...)
	f.late = nil
	return nil
}

func avroRecord(name string) Schema {
	return Schema{Type: Avro, Text: fmt.Sprintf(`{"type":"record","name":%q,"fields":[{"name":"a","type":"int"}]}`, name)}
}

// checkIDs reopens the registry from kv and checks that every id handed
// out names the schema it was handed out for, and that no two version
// records in the topic give one id to different schemas.
func checkIDs(t *testing.T, kv *faultyKV, given map[int]Schema) {
	t.Helper()
	r, err := openStore(context.Background(), kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	texts := map[int]string{}
	for _, e := range kv.recs {
		var rec versionRecord
		if e.Value == nil || json.Unmarshal(e.Value, &rec) != nil || rec.ID == 0 {
			continue
		}
		if prev, ok := texts[rec.ID]; ok && prev != rec.Schema {
			t.Errorf("id %d given to two schemas: %s and %s (version %d of %s)", rec.ID, prev, rec.Schema, rec.Version, rec.Subject)
		}
		texts[rec.ID] = rec.Schema
	}
	for id, want := range given {
		got, err := r.SchemaByID(id)
		if err != nil {
			t.Fatalf("id %d: %v", id, err)
		}
		if got.Text != want.Text {
			t.Errorf("id %d was given for %s but names %s after a reopen", id, want.Text, got.Text)
		}
	}
}

// TestFailedWriteDoesNotReuseID: a Register whose write to _schemas
// failed, though its record reached the log (or reached it later), must
// not let the registry give the same id to another schema: after a
// reopen the id would name the first one, and consumers would decode the
// second schema's data with it.
func TestFailedWriteDoesNotReuseID(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*faultyKV)
	}{
		{"landed", func(f *faultyKV) { f.failLanded = true }},
		{"lands later", func(f *faultyKV) { f.failLate = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			kv := &faultyKV{}
			r, err := openStore(ctx, kv, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			given := map[int]Schema{}
			first, err := r.Register(ctx, "a", avroRecord("First"), RegisterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			given[first.ID] = first.Schema
			tc.set(kv)
			if _, err := r.Register(ctx, "b", avroRecord("Lost"), RegisterOptions{}); err == nil {
				t.Fatal("the injected write failure was not reported")
			}
			other, err := r.Register(ctx, "c", avroRecord("Other"), RegisterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			given[other.ID] = other.Schema
			checkIDs(t, kv, given)
		})
	}
}

// TestRetryAfterFailedWriteIsIdempotent: registering the same schema
// again after a write that failed but landed finds it (the registry
// re-read the topic): same id, same version, nothing new.
func TestRetryAfterFailedWriteIsIdempotent(t *testing.T) {
	ctx := context.Background()
	kv := &faultyKV{}
	r, err := openStore(ctx, kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kv.failLanded = true
	if _, err := r.Register(ctx, "a", avroRecord("X"), RegisterOptions{}); err == nil {
		t.Fatal("the injected write failure was not reported")
	}
	got, err := r.Register(ctx, "a", avroRecord("X"), RegisterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 1 || got.Version != 1 {
		t.Errorf("retry registered id %d version %d, want the landed id 1 version 1", got.ID, got.Version)
	}
	if vs, _ := r.Versions("a", true); len(vs) != 1 {
		t.Errorf("subject has versions %v after the retry, want [1]", vs)
	}
	checkIDs(t, kv, map[int]Schema{1: avroRecord("X")})
}

// TestWritesWaitForTheReread: while the topic cannot be re-read after a
// failed write, writes are refused (nothing is allocated from a memory
// that may miss records); once it can, they go on.
func TestWritesWaitForTheReread(t *testing.T) {
	ctx := context.Background()
	kv := &faultyKV{}
	r, err := openStore(ctx, kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kv.failLanded, kv.failReplay = true, true
	if _, err := r.Register(ctx, "a", avroRecord("X"), RegisterOptions{}); err == nil {
		t.Fatal("the injected write failure was not reported")
	}
	_, err = r.Register(ctx, "b", avroRecord("Y"), RegisterOptions{})
	var se *Error
	if !errors.As(err, &se) || se.Code != CodeStoreError {
		t.Fatalf("a write while the topic cannot be re-read: %v, want a store error", err)
	}
	kv.mu.Lock()
	kv.failReplay = false
	kv.mu.Unlock()
	y, err := r.Register(ctx, "b", avroRecord("Y"), RegisterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if y.ID != 2 {
		t.Errorf("Y got id %d, want 2 (X landed with 1)", y.ID)
	}
	checkIDs(t, kv, map[int]Schema{1: avroRecord("X"), 2: avroRecord("Y")})
}
