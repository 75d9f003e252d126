package pebble

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/state"
)

// BenchmarkWrites compares one NoSync Set per write (what the KVStore
// adapter does) with the same writes grouped in batches of 512, the size
// of a record batch: it measures what a write batch per record batch would
// save.
//
//	go test -run '^$' -bench Writes ./state/pebble/
func BenchmarkWrites(b *testing.B) {
	val := make([]byte, 24)
	key := func(i int) []byte {
		k := state.KVPrefix(nil, i%128, "bench")
		return binary.BigEndian.AppendUint64(k, uint64(i)*0x9e3779b97f4a7c15)
	}
	b.Run("set-nosync", func(b *testing.B) {
		be, err := Open(Options{Dir: filepath.Join(b.TempDir(), "s")}, 128, state.KeyGroupRange{End: 128})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		b.ResetTimer()
		for i := range b.N {
			if err := be.db.Set(key(i), val, pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch-512", func(b *testing.B) {
		be, err := Open(Options{Dir: filepath.Join(b.TempDir(), "s")}, 128, state.KeyGroupRange{End: 128})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		b.ResetTimer()
		batch := be.db.NewBatch()
		for i := range b.N {
			if err := batch.Set(key(i), val, nil); err != nil {
				b.Fatal(err)
			}
			if i%512 == 511 {
				if err := batch.Commit(pebble.NoSync); err != nil {
					b.Fatal(err)
				}
				batch = be.db.NewBatch()
			}
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("get-absent", func(b *testing.B) {
		be, err := Open(Options{Dir: filepath.Join(b.TempDir(), "s")}, 128, state.KeyGroupRange{End: 128})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		for i := range 200000 {
			if err := be.db.Set(key(i), val, pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		s := kvStore{be}
		b.ResetTimer()
		var dst []byte
		for i := range b.N {
			if _, _, err := s.Get(key(-1-i), dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
