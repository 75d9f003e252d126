package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/durable"
)

var testPipeline = Pipeline{Name: "job", MaxParallelism: 8, Operators: []Operator{
	{ID: "0", Name: "source", Parallelism: 2},
	{ID: "1", Name: "window", Parallelism: 2},
	{ID: "2", Name: "sink", Parallelism: 1},
}}

// writeCheckpoint writes checkpoint id with one private file per task
// holding content, plus the shared files named in shared (name -> bytes).
func writeCheckpoint(t *testing.T, s Storage, id ID, content string, shared map[string]string) {
	t.Helper()
	p, err := s.Begin(id)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{ID: id, Pipeline: testPipeline}
	for sub := range 2 {
		w, err := p.Create("window-" + string(rune('0'+sub)))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		m.Tasks = append(m.Tasks, TaskState{Task: TaskID{"1", sub}, Files: []string{w.Path()}})
	}
	var sharedPaths []string
	for name, data := range shared {
		if fi, ok := p.Shared(name); ok {
			sharedPaths = append(sharedPaths, fi.Path)
			continue
		}
		local := filepath.Join(t.TempDir(), name)
		os.WriteFile(local, []byte(data), 0o644)
		fi, err := p.PutShared(name, local)
		if err != nil {
			t.Fatal(err)
		}
		sharedPaths = append(sharedPaths, fi.Path)
	}
	m.Tasks = append(m.Tasks, TaskState{Task: TaskID{"2", 0}, Files: sharedPaths, Transaction: Transaction("tx-" + content),
		Sources: []SourcePosition{{Operator: "0", Split: "p0", Position: []byte{byte(id)}}}})
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
}

func quietDir(t *testing.T, root string, opts ...DirOption) (*Dir, *bytes.Buffer) {
	var logs bytes.Buffer
	d, err := NewDir(root, append([]DirOption{WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d, &logs
}

func TestStorageRoundTripAndRetention(t *testing.T) {
	forEachStorage(t, func(t *testing.T, h *storageHarness) {
		d := h.s
		writeCheckpoint(t, d, 1, "one", map[string]string{"a.sst": "AAAA"})
		writeCheckpoint(t, d, 2, "two", map[string]string{"a.sst": "AAAA", "b.sst": "BB"})
		writeCheckpoint(t, d, 3, "three", map[string]string{"b.sst": "BB", "c.sst": "C"})

		ids, err := d.Complete()
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 2 || ids[0] != 2 || ids[1] != 3 {
			t.Fatalf("retained %v, want [2 3]", ids)
		}
		if h.exists(chkName(1) + "/window-0") {
			t.Fatal("a file of checkpoint 1 outlived its retention")
		}
		// a.sst is still named by checkpoint 2; nothing is garbage yet.
		for _, name := range []string{"a.sst", "b.sst", "c.sst"} {
			if !h.exists("shared/" + name) {
				t.Fatalf("shared %s is gone", name)
			}
		}
		writeCheckpoint(t, d, 4, "four", map[string]string{"c.sst": "C"})
		if h.exists("shared/a.sst") {
			t.Fatal("a.sst should be deleted once no retained checkpoint names it")
		}

		c, err := d.Latest(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Manifest.ID != 4 || c.Manifest.Version != FormatVersion {
			t.Fatalf("latest = %d v%d", c.Manifest.ID, c.Manifest.Version)
		}
		if c.Location != d.Location(4) {
			t.Fatalf("location %s, want %s", c.Location, d.Location(4))
		}
		if tx := c.Manifest.Transactions("2"); string(tx[0]) != "tx-four" {
			t.Fatalf("transactions %v", tx)
		}
		if src := c.Manifest.Sources(); len(src) != 1 || src[0].Position[0] != 4 {
			t.Fatalf("sources %v", src)
		}
		f, err := c.Open(c.Manifest.TaskFiles("1")[1])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != "four" {
			t.Fatalf("file = %q", b)
		}
		// Fetch gives a local file (what Pebble opens).
		dst := filepath.Join(t.TempDir(), "c.sst")
		if err := c.Fetch("shared/c.sst", dst); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(dst); string(b) != "C" {
			t.Fatalf("fetched %q", b)
		}
		// Open reads back a stored file by its path.
		f, err = d.Open("shared/c.sst")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(f)
		f.Close()
		if string(b) != "C" {
			t.Fatalf("store file = %q", b)
		}
		// An explicit restore by location (--from-checkpoint).
		c3, err := h.load(d.Location(3))
		if err != nil || c3.Manifest.ID != 3 {
			t.Fatalf("load of %s: %v", d.Location(3), err)
		}
		c3.Close()
		// A fresh storage over the same root sees the shared files of the
		// retained checkpoints (the index is rebuilt from the manifests).
		d2 := h.reopen()
		p, _ := d2.Begin(5)
		if _, ok := p.Shared("c.sst"); !ok {
			t.Fatal("c.sst not found by a new storage")
		}
		p.Abort()
	}, WithRetain(2))
}

// TestStorageSharedWriters: files written straight into the shared area
// (CreateShared, the increment chains of in-memory state) are stored once,
// named by later checkpoints through Shared, read back by Open and
// deleted when no retained checkpoint names them.
func TestStorageSharedWriters(t *testing.T) {
	forEachStorage(t, func(t *testing.T, h *storageHarness) {
		write := func(id ID, name, data string, reuse ...string) {
			t.Helper()
			p, err := h.s.Begin(id)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, r := range reuse {
				fi, ok := p.Shared(r)
				if !ok {
					t.Fatalf("checkpoint %d: shared %s not found", id, r)
				}
				files = append(files, fi.Path)
			}
			if name != "" {
				w, err := p.(SharedCreator).CreateShared(name)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(w, data)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				files = append(files, w.Path())
				if _, err := p.(SharedCreator).CreateShared(name); err == nil {
					t.Fatal("a second shared file of the same name was accepted")
				}
			}
			if err := p.Commit(&Manifest{ID: id, Pipeline: testPipeline, Tasks: []TaskState{{Task: TaskID{"1", 0}, Files: files}}}); err != nil {
				t.Fatal(err)
			}
		}
		big := strings.Repeat("0123456789abcdef", (memBuffer/16)+1000) // beyond the memory buffer
		write(1, "op1.kbase", big)
		write(2, "op1.kdelta", "delta", "op1.kbase")
		write(3, "", "", "op1.kbase", "op1.kdelta")
		f, err := h.s.Open("shared/op1.kbase")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != big {
			t.Fatalf("read back %d bytes, want %d", len(b), len(big))
		}
		write(4, "op1-2.kbase", "new base")
		write(5, "", "", "op1-2.kbase")
		write(6, "", "", "op1-2.kbase")
		if h.exists("shared/op1.kbase") || h.exists("shared/op1.kdelta") {
			t.Fatal("the old chain outlived every checkpoint naming it")
		}
		c, err := h.reopen().Latest(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Manifest.ID != 6 || len(c.Manifest.Files) != 1 || c.Manifest.Files[0].Path != "shared/op1-2.kbase" {
			t.Fatalf("latest: %d %+v", c.Manifest.ID, c.Manifest.Files)
		}
	}, WithRetain(3))
}

// TestStorageDiscard: a discarded writer (its file failed part way)
// stores nothing: no file under its path, nothing offered through Shared,
// and a manifest naming it is refused.
func TestStorageDiscard(t *testing.T) {
	forEachStorage(t, func(t *testing.T, h *storageHarness) {
		p, err := h.s.Begin(1)
		if err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("0123456789abcdef", (memBuffer/16)+1000) // beyond the memory buffer
		var paths []string
		for _, create := range []func() (FileWriter, error){
			func() (FileWriter, error) { return p.Create("window-0") },
			func() (FileWriter, error) { return p.(SharedCreator).CreateShared("op1.kbase") },
		} {
			for _, data := range []string{"part", big} {
				w, err := create()
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(w, data)
				w.Discard()
				w.Discard()
				if h.exists(w.Path()) {
					t.Fatalf("discarded file %s is stored", w.Path())
				}
				paths = append(paths, w.Path())
			}
		}
		if _, ok := p.Shared("op1.kbase"); ok {
			t.Fatal("a discarded shared file is offered for reuse")
		}
		if err := p.Commit(&Manifest{ID: 1, Pipeline: testPipeline, Tasks: []TaskState{{Task: TaskID{"1", 0}, Files: paths[:1]}}}); err == nil {
			t.Fatal("a manifest naming a discarded file was committed")
		}
		p.Abort()
	})
}

func TestStorageSkipsCorrupt(t *testing.T) {
	cases := []struct {
		name   string
		damage func(h *storageHarness)
		warn   string
	}{
		{"missing manifest", func(h *storageHarness) { h.remove(chkName(2) + "/MANIFEST") }, "no manifest"},
		{"truncated manifest", func(h *storageHarness) {
			p := chkName(2) + "/MANIFEST"
			b := h.read(p)
			h.write(p, b[:len(b)-10])
		}, "truncated"},
		{"flipped state byte", func(h *storageHarness) {
			p := chkName(2) + "/window-1"
			b := h.read(p)
			b[0] ^= 1
			h.write(p, b)
		}, "checksum"},
		{"overwritten shared file", func(h *storageHarness) {
			h.write("shared/new.sst", []byte("M")) // same size, other bytes
		}, "checksum"},
		{"truncated state file", func(h *storageHarness) {
			p := chkName(2) + "/window-0"
			h.write(p, h.read(p)[:2])
		}, "manifest says"},
		{"missing shared file", func(h *storageHarness) { h.remove("shared/new.sst") }, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachStorage(t, func(t *testing.T, h *storageHarness) {
				d := h.s
				writeCheckpoint(t, d, 1, "one", nil)
				writeCheckpoint(t, d, 2, "two", map[string]string{"new.sst": "N"})
				tc.damage(h)
				c, err := d.Latest(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if c.Manifest.ID != 1 {
					t.Fatalf("latest = %d, want the previous complete one", c.Manifest.ID)
				}
				if !strings.Contains(h.logs.String(), "skipping checkpoint") || !strings.Contains(h.logs.String(), tc.warn) {
					t.Fatalf("warning %q does not mention %q", h.logs.String(), tc.warn)
				}
				if _, err := h.load(d.Location(2)); err == nil || !errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), tc.warn) {
					t.Fatalf("explicit load of the damaged checkpoint: %v", err)
				}
			})
		})
	}
}

func TestStorageNoCheckpointAndAbort(t *testing.T) {
	forEachStorage(t, func(t *testing.T, h *storageHarness) {
		d := h.s
		if _, err := d.Latest(context.Background()); !errors.Is(err, ErrNoCheckpoint) {
			t.Fatalf("empty storage: %v", err)
		}
		p, _ := d.Begin(1)
		w, _ := p.Create("x")
		io.WriteString(w, "data")
		w.Close()
		if err := p.Abort(); err != nil {
			t.Fatal(err)
		}
		if h.exists(chkName(1) + "/x") {
			t.Fatal("abort left the checkpoint's file")
		}
		if _, err := d.Latest(context.Background()); !errors.Is(err, ErrNoCheckpoint) {
			t.Fatalf("after abort: %v", err)
		}
		p, _ = d.Begin(2)
		err := p.Commit(&Manifest{ID: 2, Tasks: []TaskState{{Task: TaskID{"x", 0}, Files: []string{"chk-x/never"}}}})
		if err == nil || !strings.Contains(err.Error(), "not written") {
			t.Fatalf("commit naming an unwritten file: %v", err)
		}
		if _, err := p.Create("../escape"); err == nil {
			t.Fatal("a file name with a path separator was accepted")
		}
		// Begin discards what an earlier attempt at the same id left.
		p, _ = d.Begin(3)
		w, _ = p.Create("stale")
		io.WriteString(w, "old")
		w.Close()
		if _, err := d.Begin(3); err != nil {
			t.Fatal(err)
		}
		if h.exists(chkName(3) + "/stale") {
			t.Fatal("Begin kept the file of an earlier attempt")
		}
	})
}

// TestStorageCommitManifestThenRetain: CommitManifest completes a
// checkpoint without deleting anything; Retain then applies the
// retention, as Commit does in one step.
func TestStorageCommitManifestThenRetain(t *testing.T) {
	forEachStorage(t, func(t *testing.T, h *storageHarness) {
		d := h.s
		writeCheckpoint(t, d, 1, "one", nil)
		p, err := d.Begin(2)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.(Retainer).CommitManifest(&Manifest{ID: 2, Pipeline: testPipeline}); err != nil {
			t.Fatal(err)
		}
		if ids, _ := d.Complete(); len(ids) != 2 {
			t.Fatalf("complete after CommitManifest: %v, want [1 2]", ids)
		}
		c, err := d.Latest(context.Background())
		if err != nil || c.Manifest.ID != 2 {
			t.Fatalf("latest: %v %v", c, err)
		}
		c.Close()
		p.(Retainer).Retain()
		if ids, _ := d.Complete(); len(ids) != 1 || ids[0] != 2 {
			t.Fatalf("complete after Retain: %v, want [2]", ids)
		}
	}, WithRetain(1))
}

func TestPipelineCompatible(t *testing.T) {
	cur := testPipeline
	cur.Operators = append([]Operator(nil), testPipeline.Operators...)
	cur.Operators[0].Parallelism = 4 // rescaling is fine
	if err := testPipeline.Compatible(cur); err != nil {
		t.Fatalf("rescaled pipeline refused: %v", err)
	}
	cur.MaxParallelism = 16
	cur.Operators[1].Name = "aggregate"
	cur.Operators = cur.Operators[:2]
	cur.Operators = append(cur.Operators, Operator{ID: "9", Name: "filter"})
	err := testPipeline.Compatible(cur)
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"max parallelism 8 in the checkpoint, 16 now", `operator 1 is "window" in the checkpoint, "aggregate" now`,
		"operator 9 (filter) is not in the checkpoint", "operator 2 (sink) of the checkpoint is not in the pipeline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := &Manifest{Version: FormatVersion, ID: 7, Pipeline: testPipeline, Files: []FileInfo{{Path: "chk-x/a", Size: 3, CRC32C: 9}}}
	b, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(b)
	if err != nil || got.ID != 7 || got.Files[0] != m.Files[0] {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	newer := bytes.Replace(b, []byte(" v1 "), []byte(" v9 "), 1)
	if _, err := DecodeManifest(newer); !errors.Is(err, ErrVersion) {
		t.Fatalf("newer version: %v", err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	b, _ := EncodeManifest(&Manifest{Version: 1, ID: 3, Pipeline: testPipeline, Files: []FileInfo{{Path: "shared/x", Size: 1}}})
	f.Add(b)
	f.Add([]byte("SLUICE-CHECKPOINT-MANIFEST v1 len=2 crc32c=00000000\n{}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same manifest.
		again, err := EncodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeManifest(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// TestDirSyncs: which directories a checkpoint syncs and when. Begin syncs
// the root (the checkpoint directory's entry), so Commit, which the
// output of two-phase-commit sinks waits for, syncs only the checkpoint's
// directory, and shared/ only when a file came into it since its last
// sync (the first Commit of a Dir syncs it once). A crash after Commit
// still finds every named file: each was synced in a directory synced
// before the manifest.
func TestDirSyncs(t *testing.T) {
	root := t.TempDir()
	d, _ := quietDir(t, root)
	var synced []string
	d.syncDir = func(dir string) error {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		synced = append(synced, rel)
		return syncDir(dir)
	}
	step := func(id ID, shared map[string]string, want ...string) {
		t.Helper()
		synced = nil
		writeCheckpoint(t, d, id, "x", shared)
		if strings.Join(synced, " ") != strings.Join(want, " ") {
			t.Fatalf("checkpoint %d synced %q, want %q", id, synced, want)
		}
	}
	step(1, nil, ".", "shared", chkName(1))
	step(2, nil, ".", chkName(2))
	step(3, map[string]string{"a.sst": "A"}, ".", "shared", chkName(3))
	step(4, map[string]string{"a.sst": "A"}, ".", chkName(4)) // reused: synced by 3
	// A file put by a checkpoint that was aborted is synced by the next
	// Commit, which may name it.
	p, err := d.Begin(5)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "b.sst")
	os.WriteFile(local, []byte("B"), 0o644)
	if _, err := p.PutShared("b.sst", local); err != nil {
		t.Fatal(err)
	}
	p.Abort()
	step(6, map[string]string{"b.sst": "B"}, ".", "shared", chkName(6))
}

// TestDirCommitManifestThenRetain: CommitManifest completes a checkpoint
// without deleting anything; Retain then applies the retention, as Commit
// does in one step.
func TestDirCommitManifestThenRetain(t *testing.T) {
	root := t.TempDir()
	d, _ := quietDir(t, root, WithRetain(1))
	writeCheckpoint(t, d, 1, "one", nil)
	p, err := d.Begin(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.(Retainer).CommitManifest(&Manifest{ID: 2, Pipeline: testPipeline}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := d.Complete(); len(ids) != 2 {
		t.Fatalf("complete after CommitManifest: %v, want [1 2]", ids)
	}
	c, err := d.Latest(context.Background())
	if err != nil || c.Manifest.ID != 2 {
		t.Fatalf("latest: %v %v", c, err)
	}
	p.(Retainer).Retain()
	if ids, _ := d.Complete(); len(ids) != 1 || ids[0] != 2 {
		t.Fatalf("complete after Retain: %v, want [2]", ids)
	}
}

// TestNewDirRootSurvivesPowerLoss: NewDir creates its root (and shared/)
// durably: the parent directory of each directory it creates is synced,
// so a power loss right after does not take the root away with the
// checkpoints later completed in it.
func TestNewDirRootSurvivesPowerLoss(t *testing.T) {
	crash := &durable.CrashDir{}
	base := t.TempDir()
	root := filepath.Join(base, "job", "checkpoints")
	if _, err := newDir(root, crash.SyncDir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(base, "job"), root, filepath.Join(root, sharedDir)} {
		if !crash.Durable(d) {
			t.Errorf("%s is not durable once NewDir returns (its parent was not synced after its creation)", d)
		}
	}
	if err := crash.Crash(base); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, sharedDir)); err != nil {
		t.Fatalf("after a power loss: %v", err)
	}
}

// TestDirFaultsProperty is TestObjectFaultsProperty for a Dir: checkpoints
// reuse random sets of shared files while random file-system operations
// fail (creates, syncs, renames, removes, reads, directory listings and
// syncs), including those of retention, which can then stop
// part way through a checkpoint's directory. A checkpoint either commits
// or is aborted, Latest is always the last committed one, and every
// complete checkpoint still stored loads (retention never deleted a file
// one of them names, nor left a manifest over missing files).
func TestDirFaultsProperty(t *testing.T) {
	for seed := range int64(40) {
		r := newRand(seed)
		d, logs := quietDir(t, t.TempDir(), WithRetain(1+r.Intn(3)))
		var last ID
		for id := ID(1); id <= 12; id++ {
			rate := r.Intn(4) // in 10: how often an operation fails
			var mu sync.Mutex
			d.fs.fault = func(op fsOp, path string) error {
				mu.Lock()
				defer mu.Unlock()
				if r.Intn(10) < rate {
					return errInjected
				}
				return nil
			}
			if tryCheckpoint(t, d, id, r) {
				last = id
			}
			d.fs.fault = nil
			checkAfterFaults(t, d, func(id ID) (*Checkpoint, error) { return LoadDir(d.Location(id)) }, seed, id, last, logs)
		}
	}
}

var errInjected = errors.New("injected fault")

// TestDirLatestIOErrorFails: an I/O error reading the newest complete
// checkpoint (its manifest, or a file it names) is not corruption. Latest
// must fail with it rather than skip to an older checkpoint: restoring
// that would rewind the sources past output already committed (and, for
// a two-phase-commit sink, emit it again), as ObjectStorage.Latest also
// refuses to.
func TestDirLatestIOErrorFails(t *testing.T) {
	eio := errors.New("input/output error")
	for _, tc := range []struct{ name, file string }{
		{"manifest", chkName(2) + "/" + manifestName},
		{"state file", chkName(2) + "/window-1"},
		{"shared file", "shared/new.sst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			d, logs := quietDir(t, root)
			writeCheckpoint(t, d, 1, "one", nil)
			writeCheckpoint(t, d, 2, "two", map[string]string{"new.sst": "N"})
			bad := filepath.Join(root, filepath.FromSlash(tc.file))
			d.fs.fault = func(op fsOp, path string) error {
				if op == fsRead && path == bad {
					return eio
				}
				return nil
			}
			c, err := d.Latest(context.Background())
			if err == nil {
				c.Close()
				t.Fatalf("Latest returned checkpoint %d despite an I/O error reading checkpoint 2 (logs: %s)", c.Manifest.ID, logs)
			}
			if !errors.Is(err, eio) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoCheckpoint) {
				t.Fatalf("Latest: %v, want the I/O error, not corruption", err)
			}
			if !strings.Contains(err.Error(), "older checkpoint") {
				t.Errorf("error %q does not say why it did not fall back", err)
			}
			// The fault gone, the newest checkpoint is restored.
			d.fs.fault = nil
			c, err = d.Latest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Manifest.ID != 2 {
				t.Fatalf("latest = %d, want 2", c.Manifest.ID)
			}
		})
	}
}
