package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/objstore"
)

// Conformance checks the guarantees of objstore.Store against s, which
// must be empty: whole and ranged reads, replacement, listing by prefix
// in key order, absent objects, idempotent deletes, concurrent use, and a
// random sequence of operations against a map as the oracle.
func Conformance(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	put := func(t *testing.T, k string, v []byte) {
		t.Helper()
		if err := s.Put(ctx, k, bytes.NewReader(v), int64(len(v))); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	get := func(k string, off, n int64) ([]byte, error) {
		rc, err := s.Get(ctx, k, off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}

	t.Run("absent", func(t *testing.T) {
		if _, err := get("none/x", 0, -1); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("get of an absent object: %v, want ErrNotExist", err)
		}
		if _, err := s.Stat(ctx, "none/x"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("stat of an absent object: %v, want ErrNotExist", err)
		}
		if err := s.Delete(ctx, "none/x"); err != nil {
			t.Fatalf("delete of an absent object: %v", err)
		}
		if l, err := s.List(ctx, "none/"); err != nil || len(l) != 0 {
			t.Fatalf("list of an empty prefix: %v %v", l, err)
		}
	})

	t.Run("ranges", func(t *testing.T) {
		data := make([]byte, 100_000)
		for i := range data {
			data[i] = byte(i * 7)
		}
		put(t, "r/obj", data)
		cases := []struct{ off, n int64 }{{0, -1}, {0, 1}, {5, 10}, {99_990, -1}, {99_990, 100}, {0, 100_000}, {100_000, -1}, {100_000, 5}, {200_000, 1}, {3, 0}}
		for _, c := range cases {
			got, err := get("r/obj", c.off, c.n)
			if err != nil {
				t.Fatalf("get(%d, %d): %v", c.off, c.n, err)
			}
			want := data[min(c.off, int64(len(data))):]
			if c.n >= 0 && c.n < int64(len(want)) {
				want = want[:c.n]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("get(%d, %d): %d bytes, want %d", c.off, c.n, len(got), len(want))
			}
		}
		info, err := s.Stat(ctx, "r/obj")
		if err != nil || info.Size != int64(len(data)) || info.Key != "r/obj" {
			t.Fatalf("stat: %+v %v", info, err)
		}
		put(t, "r/obj", []byte("short"))
		if got, err := get("r/obj", 0, -1); err != nil || string(got) != "short" {
			t.Fatalf("after replacement: %q %v", got, err)
		}
		put(t, "r/empty", nil)
		if got, err := get("r/empty", 0, -1); err != nil || len(got) != 0 {
			t.Fatalf("empty object: %q %v", got, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		for _, k := range []string{"l/b/2", "l/a", "l/b/1", "lz", "l/c/d/e"} {
			put(t, k, []byte(k))
		}
		l, err := s.List(ctx, "l/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, i := range l {
			keys = append(keys, i.Key)
			if i.Size != int64(len(i.Key)) {
				t.Fatalf("%s: size %d", i.Key, i.Size)
			}
		}
		if fmt.Sprint(keys) != "[l/a l/b/1 l/b/2 l/c/d/e]" {
			t.Fatalf("list l/: %v", keys)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					k := fmt.Sprintf("c/%d/%d", w, i)
					v := []byte(k)
					if err := s.Put(ctx, k, bytes.NewReader(v), int64(len(v))); err != nil {
						errs <- err
						return
					}
					got, err := get(k, 0, -1)
					if err != nil || !bytes.Equal(got, v) {
						errs <- fmt.Errorf("read back %s: %q %v", k, got, err)
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
		if l, err := s.List(ctx, "c/"); err != nil || len(l) != 80 {
			t.Fatalf("list c/: %d objects, %v", len(l), err)
		}
	})

	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		oracle := map[string][]byte{}
		for range 300 {
			k := fmt.Sprintf("x/%d", rng.IntN(20))
			switch rng.IntN(4) {
			case 0, 1:
				v := make([]byte, rng.IntN(300))
				for i := range v {
					v[i] = byte(rng.Uint32())
				}
				put(t, k, v)
				oracle[k] = v
			case 2:
				if err := s.Delete(ctx, k); err != nil {
					t.Fatal(err)
				}
				delete(oracle, k)
			case 3:
				got, err := get(k, 0, -1)
				want, ok := oracle[k]
				if !ok {
					if !errors.Is(err, objstore.ErrNotExist) {
						t.Fatalf("get %s: %v, want ErrNotExist", k, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("get %s: %d bytes %v, want %d", k, len(got), err, len(want))
				}
			}
		}
		l, err := s.List(ctx, "x/")
		if err != nil || len(l) != len(oracle) {
			t.Fatalf("list x/: %d objects %v, oracle %d", len(l), err, len(oracle))
		}
	})
}
