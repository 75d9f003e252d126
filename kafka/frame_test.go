package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestReadFrameSizes(t *testing.T) {
	for _, n := range []int{0, 1, 100, frameChunk - 1, frameChunk, frameChunk + 1, 3*frameChunk + 17} {
		body := bytes.Repeat([]byte{byte(n)}, n)
		body = append(body[:0:0], body...)
		for i := range body {
			body[i] = byte(i * 7)
		}
		in := append(binary.BigEndian.AppendUint32(nil, uint32(n)), body...)
		for i, buf := range [][]byte{nil, make([]byte, 0, n+10), make([]byte, min(5, max(n/2, 1)), max(n/2, 1)), make([]byte, 0, frameChunk+1), nil} {
			proven := 0
			if i == 4 {
				proven = 3 * frameChunk
			}
			got, err := readFrame(bytes.NewReader(in), 1<<30, buf, proven)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("n=%d: %v, %d bytes", n, err, len(got))
			}
			// A grown buffer holds the next frame of the same size
			// without growing again, and never more than the size
			// rounded up (or the caller's own capacity).
			if c := cap(got); c < n || c > max(roundUp(n, frameRound), cap(buf), frameChunk) {
				t.Fatalf("n=%d into a buffer of capacity %d: capacity %d", n, cap(buf), c)
			}
		}
		if n > 0 {
			_, err := readFrame(bytes.NewReader(in[:len(in)-1]), 1<<30, nil, 0)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("n=%d truncated: %v", n, err)
			}
		}
	}
	if _, err := readFrame(bytes.NewReader(binary.BigEndian.AppendUint32(nil, 101)), 100, nil, 0); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := readFrame(bytes.NewReader(nil), 100, nil, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("clean EOF: %v", err)
	}
}
