package checkpoint

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
)

// The checkpoint benchmarks (figures in docs/benchmarks-checkpoint.md):
// a checkpoint of benchFiles files of benchFileSize bytes, half written
// by subtasks through Create and half put as new shared files (Pebble's
// sstables), to a local Dir and to the in-process S3 server over HTTP;
// then the restore (Latest: list, download and verify every file) of
// such a checkpoint.
const (
	benchFiles    = 8
	benchFileSize = 8 << 20
)

func benchStores(b *testing.B) []struct {
	name string
	open func(b *testing.B) Store
} {
	quiet := WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	return []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"dir", func(b *testing.B) Store {
			d, err := NewDir(b.TempDir(), quiet)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}},
		{"s3", func(b *testing.B) Store {
			cfg := objstoretest.StartServer(b).Bucket(b, "bench", "chk")
			st, err := objstore.Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			return NewObjectStorage(st, cfg.URL, WithLocalDir(b.TempDir()), quiet)
		}},
	}
}

// benchCheckpoint writes checkpoint id of benchFiles new files.
func benchCheckpoint(b *testing.B, s Store, id ID, data []byte, local []string) {
	p, err := s.Begin(id)
	if err != nil {
		b.Fatal(err)
	}
	m := &Manifest{ID: id, Pipeline: testPipeline}
	var files []string
	for i := range benchFiles / 2 {
		w, err := p.Create(fmt.Sprintf("state-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 256 << 10 {
			w.Write(data[off:min(off+256<<10, len(data))])
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		files = append(files, w.Path())
	}
	for i, l := range local {
		fi, err := p.PutShared(fmt.Sprintf("%d-%d.sst", id, i), l)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, fi.Path)
	}
	m.Tasks = []TaskState{{Task: TaskID{"1", 0}, Files: files}}
	if err := p.Commit(m); err != nil {
		b.Fatal(err)
	}
}

func benchData(b *testing.B) ([]byte, []string) {
	data := make([]byte, benchFileSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	dir := b.TempDir()
	var local []string
	for i := range benchFiles / 2 {
		p := filepath.Join(dir, fmt.Sprintf("%d.sst", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		local = append(local, p)
	}
	return data, local
}

func BenchmarkCheckpointUpload(b *testing.B) {
	data, local := benchData(b)
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			b.SetBytes(benchFiles * benchFileSize)
			b.ResetTimer()
			for i := range b.N {
				benchCheckpoint(b, s, ID(i+1), data, local)
			}
		})
	}
}

func BenchmarkCheckpointRestore(b *testing.B) {
	data, local := benchData(b)
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			benchCheckpoint(b, s, 1, data, local)
			b.SetBytes(benchFiles * benchFileSize)
			b.ResetTimer()
			for range b.N {
				c, err := s.Latest(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				// What a restore does with each file: Pebble fetches its
				// sstables, the other state is read.
				for _, f := range c.Manifest.Files {
					if filepath.Ext(f.Path) == ".sst" {
						if err := c.Fetch(f.Path, filepath.Join(b.TempDir(), "x.sst")); err != nil {
							b.Fatal(err)
						}
						continue
					}
					r, err := c.Open(f.Path)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, r)
					r.Close()
				}
				c.Close()
			}
		})
	}
}
