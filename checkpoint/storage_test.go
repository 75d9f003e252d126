package checkpoint

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
)

// storageHarness is one Store implementation under test, with direct
// access to what it stores, for tests that damage checkpoints.
type storageHarness struct {
	s    Store
	logs *bytes.Buffer
	// reopen returns a new Store over the same storage (as a restarted
	// process, or one on another machine, sees it).
	reopen func(opts ...DirOption) Store
	// exists, read, write and remove act on a stored file by the path a
	// manifest names it with.
	exists func(path string) bool
	read   func(path string) []byte
	write  func(path string, data []byte)
	remove func(path string)
	// load loads a checkpoint explicitly by its Location.
	load func(loc string) (*Checkpoint, error)
}

// forEachStorage runs f against a Dir, an ObjectStorage on an in-memory
// store and an ObjectStorage on the in-process S3 server (over HTTP).
func forEachStorage(t *testing.T, f func(t *testing.T, h *storageHarness), opts ...DirOption) {
	t.Run("dir", func(t *testing.T) {
		root := t.TempDir()
		d, logs := quietDir(t, root, opts...)
		h := &storageHarness{s: d, logs: logs}
		h.reopen = func(more ...DirOption) Store {
			d, _ := quietDir(t, root, append(append([]DirOption{}, opts...), more...)...)
			return d
		}
		local := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
		h.exists = func(p string) bool { _, err := os.Stat(local(p)); return err == nil }
		h.read = func(p string) []byte { b, _ := os.ReadFile(local(p)); return b }
		h.write = func(p string, b []byte) { os.WriteFile(local(p), b, 0o644) }
		h.remove = func(p string) { os.Remove(local(p)) }
		h.load = func(loc string) (*Checkpoint, error) { return LoadDir(loc) }
		f(t, h)
	})
	object := func(t *testing.T, st objstore.Store, name string, cfg objstore.Config) {
		local := t.TempDir()
		var logs bytes.Buffer
		mk := func(more ...DirOption) Store {
			all := append([]DirOption{WithLocalDir(local), WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, opts...)
			return NewObjectStorage(st, name, append(all, more...)...)
		}
		ctx := context.Background()
		h := &storageHarness{s: mk(), logs: &logs, reopen: mk}
		h.exists = func(p string) bool { _, err := st.Stat(ctx, p); return err == nil }
		h.read = func(p string) []byte { b, _ := objstore.ReadAll(ctx, st, p); return b }
		h.write = func(p string, b []byte) {
			if err := st.Put(ctx, p, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatal(err)
			}
		}
		h.remove = func(p string) { st.Delete(ctx, p) }
		h.load = func(loc string) (*Checkpoint, error) {
			if cfg.URL == "" {
				id, _ := parseChk(loc[strings.LastIndex(loc, "/")+1:])
				return h.s.(*ObjectStorage).load(ctx, id, nil)
			}
			return Load(ctx, loc, cfg, WithLocalDir(local))
		}
		f(t, h)
		// Every restored copy was released by the test or is in local;
		// nothing else is left there but restore directories.
		ents, _ := os.ReadDir(local)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "upload-") {
				t.Errorf("upload buffer %s left behind", e.Name())
			}
		}
	}
	t.Run("mem", func(t *testing.T) { object(t, objstore.NewMem(), "mem://chk", objstore.Config{}) })
	t.Run("s3", func(t *testing.T) {
		cfg := objstoretest.StartServer(t).Bucket(t, "chk", "jobs/a")
		st, err := objstore.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(context.Background(), cfg.URL, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*ObjectStorage); !ok {
			t.Fatalf("OpenStore(%s) = %T", cfg.URL, s)
		}
		object(t, st, cfg.URL, cfg)
	})
}
