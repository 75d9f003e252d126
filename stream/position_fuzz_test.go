package stream_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// FuzzSeek feeds arbitrary bytes to the built-in splits' Seek (positions
// come back from checkpoint files): they must either restore a position
// that Position reproduces or fail with ErrBadPosition, never panic.
func FuzzSeek(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint64(nil, 3))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, pos []byte) {
		srcs := []stream.Source[int]{
			stream.FromSlice([]int{1, 2, 3, 4, 5}, 2),
			stream.Generate(10, 2, func(i int64) int { return int(i) }),
		}
		for _, src := range srcs {
			splits, err := src.Splits(context.Background(), 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range splits {
				err := sp.Seek(pos)
				if err != nil {
					if !errors.Is(err, stream.ErrBadPosition) {
						t.Fatalf("Seek error %v is not ErrBadPosition", err)
					}
					continue
				}
				if got := sp.Position(); string(got) != string(pos) {
					t.Fatalf("Position after Seek(%x) = %x", pos, got)
				}
				buf := make([]int, 4)
				for range 10 {
					if _, err := sp.Read(context.Background(), buf); err != nil {
						break
					}
				}
			}
		}
	})
}
