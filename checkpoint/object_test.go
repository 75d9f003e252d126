package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/objstore"
)

func faultyStorage(t *testing.T, opts ...DirOption) (*ObjectStorage, *objstore.Faulty, *objstore.Mem, *bytes.Buffer) {
	mem := objstore.NewMem()
	f := objstore.NewFaulty(mem)
	var logs bytes.Buffer
	s := NewObjectStorage(f, "mem://job", append([]DirOption{WithLocalDir(t.TempDir()), WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, opts...)...)
	return s, f, mem, &logs
}

// TestObjectManifestPutLast: every object a checkpoint names is put
// before its manifest.
func TestObjectManifestPutLast(t *testing.T) {
	s, f, _, _ := faultyStorage(t)
	var mu sync.Mutex
	var puts []string
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpPut {
			mu.Lock()
			puts = append(puts, key)
			mu.Unlock()
		}
		return nil
	})
	writeCheckpoint(t, s, 1, "one", map[string]string{"a.sst": "A", "b.sst": "B"})
	if len(puts) != 5 || puts[len(puts)-1] != chkName(1)+"/MANIFEST" {
		t.Fatalf("puts %v: want the four files, then the manifest", puts)
	}
	puts = nil
	writeCheckpoint(t, s, 2, "two", map[string]string{"a.sst": "A", "b.sst": "B"})
	if len(puts) != 3 {
		t.Fatalf("puts %v: the shared files were put again", puts)
	}
}

// TestObjectFailedPuts: a failed put of a file fails its writer's Close
// (the task declines the checkpoint, which is aborted); a failed put of
// the manifest fails the commit and leaves the previous checkpoint the
// latest; the next checkpoint succeeds.
func TestObjectFailedPuts(t *testing.T) {
	s, f, mem, _ := faultyStorage(t)
	ctx := context.Background()
	writeCheckpoint(t, s, 1, "one", map[string]string{"a.sst": "A"})

	p, err := s.Begin(2)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Create("window-0")
	io.WriteString(w, "two")
	f.FailNext(objstore.OpPut, 1)
	if err := w.Close(); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("close of a file whose put failed: %v", err)
	}
	if err := p.Commit(&Manifest{ID: 2, Tasks: []TaskState{{Task: TaskID{"1", 0}, Files: []string{w.Path()}}}}); err == nil {
		t.Fatal("a manifest naming a file whose put failed was committed")
	}
	p.Abort()

	p, _ = s.Begin(3)
	w, _ = p.Create("window-0")
	io.WriteString(w, "three")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpPut && strings.HasSuffix(key, "/MANIFEST") {
			return objstore.ErrInjected
		}
		return nil
	})
	if err := p.Commit(&Manifest{ID: 3, Pipeline: testPipeline, Tasks: []TaskState{{Task: TaskID{"1", 0}, Files: []string{w.Path()}}}}); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("commit whose manifest put failed: %v", err)
	}
	f.SetHook(nil)
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat(ctx, chkName(3)+"/window-0"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("the aborted checkpoint's file is left: %v", err)
	}
	c, err := s.Latest(ctx)
	if err != nil || c.Manifest.ID != 1 {
		t.Fatalf("latest after a failed manifest put: %v %v", c, err)
	}
	c.Close()

	// The store goes away: Begin fails (the checkpoint is declined);
	// when it is back, checkpoints complete again.
	f.SetDown(true)
	if _, err := s.Begin(4); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("begin while the store is down: %v", err)
	}
	f.SetDown(false)
	writeCheckpoint(t, s, 5, "five", map[string]string{"a.sst": "A"})
	c, err = NewObjectStorage(mem, "mem://job", WithLocalDir(t.TempDir())).Latest(ctx)
	if err != nil || c.Manifest.ID != 5 {
		t.Fatalf("latest: %v %v", c, err)
	}
	c.Close()
}

// TestObjectRetentionFailedDeletes: deletes that fail during retention
// cost storage, not correctness: the commit succeeds, nothing a retained
// manifest names is deleted, and a later retention collects the garbage.
func TestObjectRetentionFailedDeletes(t *testing.T) {
	s, f, mem, logs := faultyStorage(t, WithRetain(1))
	ctx := context.Background()
	writeCheckpoint(t, s, 1, "one", map[string]string{"old.sst": "O", "keep.sst": "K"})
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpDelete {
			return objstore.ErrInjected
		}
		return nil
	})
	writeCheckpoint(t, s, 2, "two", map[string]string{"keep.sst": "K"})
	f.SetHook(nil)
	if !strings.Contains(logs.String(), "checkpoint retention") {
		t.Fatalf("failed deletes were not logged: %s", logs.String())
	}
	if c, err := s.Latest(ctx); err != nil || c.Manifest.ID != 2 {
		t.Fatalf("latest with garbage left: %v %v", c, err)
	} else {
		c.Close()
	}
	writeCheckpoint(t, s, 3, "three", map[string]string{"keep.sst": "K"})
	objs, _ := mem.List(ctx, "")
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	want := []string{chkName(3) + "/MANIFEST", chkName(3) + "/window-0", chkName(3) + "/window-1", "shared/keep.sst"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("objects after retention: %v, want %v", keys, want)
	}
}

// TestObjectLoadURL: Load takes the s3:// URL of a checkpoint; malformed
// ones are refused with the expected form.
func TestObjectLoadURL(t *testing.T) {
	for _, loc := range []string{"s3://bucket", "s3://bucket/prefix", "s3://bucket/chk-x"} {
		if _, err := Load(context.Background(), loc, objstore.Config{}); err == nil || !strings.Contains(err.Error(), "chk-NNN") {
			t.Errorf("Load(%s): %v", loc, err)
		}
	}
}

// TestObjectValidKey: a manifest's file paths become local paths when a
// checkpoint is downloaded; those that would leave the download
// directory are refused.
func TestObjectValidKey(t *testing.T) {
	for p, ok := range map[string]bool{
		"shared/a.sst": true, "chk-00000000000000000001/window-0": true,
		"": false, "/etc/passwd": false, "../x": false, "shared/../../x": false,
		"a/./b": false, "a//b": false, `a\b`: false, "shared/": false, ".": false,
	} {
		if err := validKey(p); (err == nil) != ok {
			t.Errorf("validKey(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// TestObjectLatestStoreFailureIsAnError: a read that fails because of the
// store (not a damaged checkpoint) makes Latest fail, rather than restore
// an older checkpoint (losing progress, and letting the next Begin delete
// the good newest one).
func TestObjectLatestStoreFailureIsAnError(t *testing.T) {
	s, f, _, _ := faultyStorage(t)
	ctx := context.Background()
	writeCheckpoint(t, s, 1, "one", map[string]string{"a.sst": "A"})
	writeCheckpoint(t, s, 2, "two", map[string]string{"b.sst": "B"})
	for _, failing := range []string{"/MANIFEST", "/window-0", "b.sst"} {
		f.SetHook(func(op objstore.Op, key string) error {
			if op == objstore.OpGet && strings.HasSuffix(key, failing) {
				return errors.New("connection reset by peer")
			}
			return nil
		})
		c, err := s.Latest(ctx)
		if err == nil {
			id := c.Manifest.ID
			c.Close()
			t.Fatalf("get of %s failing: Latest restored checkpoint %d instead of failing", failing, id)
		}
	}
	f.SetHook(nil)
	c, err := s.Latest(ctx)
	if err != nil || c.Manifest.ID != 2 {
		t.Fatalf("latest once the store answers: %v %v", c, err)
	}
	c.Close()
}

// TestObjectLatestRetentionRace: a restore that lists the checkpoints
// while another instance of the job (the one it replaces, still running)
// commits newer ones and retention deletes the listed ones finds a
// checkpoint that exists, never ErrNoCheckpoint.
func TestObjectLatestRetentionRace(t *testing.T) {
	s, f, mem, _ := faultyStorage(t, WithRetain(2))
	writeCheckpoint(t, s, 1, "one", map[string]string{"a.sst": "A"})
	writeCheckpoint(t, s, 2, "two", map[string]string{"b.sst": "B"})
	// The other instance writes to the same objects, not through f.
	other := NewObjectStorage(mem, "mem://job", WithRetain(2), WithLocalDir(t.TempDir()), WithLogger(slog.New(slog.DiscardHandler)))
	raced := false
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpGet && key == chkName(2)+"/"+manifestName && !raced {
			raced = true
			writeCheckpoint(t, other, 3, "three", map[string]string{"c.sst": "C"})
			writeCheckpoint(t, other, 4, "four", map[string]string{"d.sst": "D"})
		}
		return nil
	})
	c, err := s.Latest(context.Background())
	if err != nil {
		t.Fatalf("latest while retention deleted the listed checkpoints: %v", err)
	}
	defer c.Close()
	if !raced || c.Manifest.ID != 4 {
		t.Fatalf("raced %v, restored checkpoint %d, want 4", raced, c.Manifest.ID)
	}
}

// TestObjectFaultsProperty runs checkpoints that reuse random sets of
// shared files while random puts, deletes and lists of the store fail:
// a checkpoint either commits or is aborted, Latest (with the store
// answering) is always the last committed one with its own content, and
// every complete checkpoint still stored loads (retention never deleted a
// file one of them names).
func TestObjectFaultsProperty(t *testing.T) {
	for seed := range int64(20) {
		r := newRand(seed)
		s, f, _, logs := faultyStorage(t, WithRetain(1+r.Intn(3)))
		ctx := context.Background()
		var last ID
		for id := ID(1); id <= 12; id++ {
			rate := r.Intn(4) // in 10: how often a put, delete or list fails
			var mu sync.Mutex
			f.SetHook(func(op objstore.Op, key string) error {
				mu.Lock()
				defer mu.Unlock()
				if op != objstore.OpGet && r.Intn(10) < rate {
					return objstore.ErrInjected
				}
				return nil
			})
			if tryCheckpoint(t, s, id, r) {
				last = id
			}
			f.SetHook(nil)
			checkAfterFaults(t, s, func(id ID) (*Checkpoint, error) { return s.load(ctx, id, nil) }, seed, id, last, logs)
		}
	}
}

// checkAfterFaults checks a round of a fault property test, with the
// storage answering again: Latest is the last committed checkpoint (none
// while last is 0), and every complete checkpoint still stored loads.
func checkAfterFaults(t *testing.T, s Storage, load func(ID) (*Checkpoint, error), seed int64, id, last ID, logs *bytes.Buffer) {
	t.Helper()
	c, err := s.Latest(context.Background())
	if last == 0 {
		if !errors.Is(err, ErrNoCheckpoint) {
			t.Fatalf("seed %d id %d: latest %v %v, want none", seed, id, c, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("seed %d id %d: latest: %v (last committed %d)", seed, id, err, last)
	}
	got := c.Manifest.ID
	c.Close()
	if got != last {
		t.Fatalf("seed %d id %d: latest %d, last committed %d\n%s", seed, id, got, last, logs)
	}
	complete, err := s.Complete()
	if err != nil {
		t.Fatal(err)
	}
	for _, cid := range complete {
		c, err := load(cid)
		if err != nil {
			t.Fatalf("seed %d id %d: complete checkpoint %d: %v\n%s", seed, id, cid, err, logs)
		}
		c.Close()
	}
}

// tryCheckpoint writes checkpoint id naming a random set of shared files
// (each name always with the same bytes) and reports whether it
// committed; a failure aborts it.
func tryCheckpoint(t *testing.T, s Storage, id ID, r interface{ Intn(int) int }) bool {
	t.Helper()
	p, err := s.Begin(id)
	if err != nil {
		return false
	}
	m := &Manifest{ID: id, Pipeline: testPipeline}
	fail := func() bool { _ = p.Abort(); return false }
	w, err := p.Create("state")
	if err != nil {
		return fail()
	}
	io.WriteString(w, "content")
	if err := w.Close(); err != nil {
		return fail()
	}
	files := []string{w.Path()}
	for i := range 6 {
		if r.Intn(2) == 0 {
			continue
		}
		name := string(rune('a'+i)) + ".sst"
		if fi, ok := p.Shared(name); ok {
			files = append(files, fi.Path)
			continue
		}
		local := t.TempDir() + "/" + name
		if err := os.WriteFile(local, []byte(strings.Repeat(name, 10)), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := p.PutShared(name, local)
		if err != nil {
			return fail()
		}
		files = append(files, fi.Path)
	}
	m.Tasks = append(m.Tasks, TaskState{Task: TaskID{"1", 0}, Files: files})
	if err := p.Commit(m); err != nil {
		return fail()
	}
	return true
}
