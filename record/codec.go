package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a record batch compression codec, numbered as in Kafka.
type Codec int8

// The codecs of Kafka's record batch attributes.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec parses a codec name as Kafka clients spell it.
func ParseCodec(s string) (Codec, error) {
	for c := None; c <= Zstd; c++ {
		if c.String() == s {
			return c, nil
		}
	}
	return None, fmt.Errorf("unknown compression codec %q (want none, gzip, snappy, lz4 or zstd)", s)
}

// MaxDecompressed bounds the bytes one batch's records may take once
// decompressed: 64 MiB, 64 times Kafka's default max.message.bytes and far
// above what Kafka producers build by default (1 MiB batches at most), so
// that a small "decompression bomb" (a few KiB of zstd, gzip, lz4 or snappy
// that inflate to gigabytes) costs the reader at most this much memory.
// Decompression streams into a buffer grown as output arrives and stops at
// the bound; a size the batch announces sizes at most the first 1 MiB.
const MaxDecompressed = 64 << 20

// ErrTooLarge reports a compressed batch whose records decompress beyond
// MaxDecompressed (Kafka: MESSAGE_TOO_LARGE).
var ErrTooLarge = errors.New("record batch decompresses beyond the limit")

// xerialMagic starts snappy data framed the way the Java client writes it.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdErr  error
	// zstdDecs holds streaming decoders (one goroutine each, no
	// background work), reset per batch: a stream can be stopped at the
	// bound, where DecodeAll grows its output to the whole frame first.
	zstdDecs sync.Pool
)

func zstdEncoder() (*zstd.Encoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	})
	return zstdEnc, zstdErr
}

// zstdDecompress decompresses the zstd frames src up to limit bytes, into
// buf's space when it is large enough (see decompressInto).
func zstdDecompress(buf, src []byte, limit int) ([]byte, error) {
	d, _ := zstdDecs.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressed))
		if err != nil {
			return nil, err
		}
	}
	if err := d.Reset(bytes.NewReader(src)); err != nil {
		zstdDecs.Put(d)
		return nil, err
	}
	// The size a frame announces sizes the buffer up to 1 MiB (a
	// producer's batch), beyond which it grows as output arrives.
	hint := 4 * len(src)
	var fh zstd.Header
	if fh.Decode(src) == nil && fh.HasFCS {
		hint = int(min(fh.FrameContentSize, 1<<20))
	}
	out, err := readLimited(buf, d, hint, limit)
	if err != nil {
		// A decoder stopped mid-stream is not reused.
		d.Close()
		return nil, err
	}
	_ = d.Reset(nil) // drop src
	zstdDecs.Put(d)
	return out, nil
}

// compress appends src compressed with c to dst.
func compress(dst []byte, c Codec, src []byte) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		buf := bytes.NewBuffer(dst)
		w := gzip.NewWriter(buf)
		if _, err := w.Write(src); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return buf.Bytes(), nil
	case Snappy:
		// Xerial framing (what the Java client writes and every client
		// reads): magic, version 1, compatible version 1, then chunks.
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1)
		dst = binary.BigEndian.AppendUint32(dst, 1)
		for len(src) > 0 {
			n := min(len(src), 32<<10)
			block := s2.EncodeSnappy(nil, src[:n])
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(block)))
			dst = append(dst, block...)
			src = src[n:]
		}
		return dst, nil
	case LZ4:
		buf := bytes.NewBuffer(dst)
		w := lz4.NewWriter(buf)
		if _, err := w.Write(src); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
		return buf.Bytes(), nil
	case Zstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("unknown compression codec %d", c)
}

// decompress returns src decompressed with c, refusing (ErrTooLarge) to
// produce more than MaxDecompressed bytes.
func decompress(c Codec, src []byte) ([]byte, error) {
	return decompressLimit(c, src, MaxDecompressed)
}

// decompressLimit returns src decompressed with c, refusing (ErrTooLarge)
// to produce more than limit bytes; it allocates about twice the output at
// most.
func decompressLimit(c Codec, src []byte, limit int) ([]byte, error) {
	return decompressInto(nil, c, src, limit)
}

// decompressInto is decompressLimit writing into buf's space (from
// buf[:0]) when the output fits it, so that a caller done with the output
// before its next call can reuse one buffer.
func decompressInto(buf []byte, c Codec, src []byte, limit int) ([]byte, error) {
	switch c {
	case None:
		return src, nil
	case Gzip:
		return gzipDecompress(buf, src, limit)
	case Snappy:
		if !bytes.HasPrefix(src, xerialMagic) {
			return snappyBlock(buf[:0], src, limit)
		}
		if len(src) < 16 {
			return nil, fmt.Errorf("snappy: truncated xerial header")
		}
		out := buf[:0]
		for p := src[16:]; len(p) > 0; {
			if len(p) < 4 {
				return nil, fmt.Errorf("snappy: truncated chunk length")
			}
			n := int(binary.BigEndian.Uint32(p))
			p = p[4:]
			if n > len(p) {
				return nil, fmt.Errorf("snappy: chunk of %d bytes, %d left", n, len(p))
			}
			var err error
			if out, err = snappyBlock(out, p[:n], limit); err != nil {
				return nil, err
			}
			p = p[n:]
		}
		return out, nil
	case LZ4:
		return lz4Decompress(buf, src, limit)
	case Zstd:
		return zstdDecompress(buf, src, limit)
	}
	return nil, fmt.Errorf("unknown compression codec %d", c)
}

// gzipReader and lz4Reader are pooled readers with the bytes.Reader they
// read from: a new gzip reader allocates its inflater's tables (tens of
// KiB), a new lz4 reader its frame state, on every batch otherwise. The
// source is dropped (src.Reset(nil)) before a reader returns to its pool.
type gzipReader struct {
	src bytes.Reader
	zr  *gzip.Reader
}

type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

var gzipReaders, lz4Readers sync.Pool

// gzipDecompress decompresses the gzip members src up to limit bytes,
// into buf's space when it is large enough (see decompressInto).
func gzipDecompress(buf, src []byte, limit int) ([]byte, error) {
	r, _ := gzipReaders.Get().(*gzipReader)
	if r == nil {
		r = &gzipReader{}
	}
	r.src.Reset(src)
	var err error
	if r.zr == nil {
		r.zr, err = gzip.NewReader(&r.src)
	} else {
		err = r.zr.Reset(&r.src)
	}
	if err != nil {
		// A reader whose Reset failed is set up again by the next one.
		r.src.Reset(nil)
		gzipReaders.Put(r)
		return nil, err
	}
	out, err := readLimited(buf, r.zr, 4*len(src), limit)
	r.src.Reset(nil)
	if err != nil {
		// A reader stopped mid-stream is not reused.
		return nil, err
	}
	gzipReaders.Put(r)
	return out, nil
}

// lz4Decompress decompresses the lz4 frames src up to limit bytes, into
// buf's space when it is large enough (see decompressInto).
func lz4Decompress(buf, src []byte, limit int) ([]byte, error) {
	r, _ := lz4Readers.Get().(*lz4Reader)
	if r == nil {
		r = &lz4Reader{}
		r.zr = lz4.NewReader(&r.src)
	}
	r.src.Reset(src)
	r.zr.Reset(&r.src)
	out, err := readLimited(buf, r.zr, 4*len(src), limit)
	r.src.Reset(nil)
	if err != nil {
		// A reader stopped mid-stream is not reused.
		return nil, err
	}
	lz4Readers.Put(r)
	return out, nil
}

// snappyBlock appends the snappy block src decoded to dst, refusing to let
// dst grow beyond limit bytes.
func snappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	// A snappy element decodes to 64 bytes at most from 3 (a two-byte
	// offset copy), so a block announcing more than 22 bytes per byte
	// lies: refused before anything is allocated for it.
	if n > 22*len(src) {
		return nil, fmt.Errorf("snappy: block of %d bytes announces %d", len(src), n)
	}
	if n > limit-len(dst) {
		return nil, fmt.Errorf("snappy: %w: block of %d bytes after %d, limit %d", ErrTooLarge, n, len(dst), limit)
	}
	dst = slices.Grow(dst, n)
	if _, err := s2.Decode(dst[len(dst):len(dst)+n], src); err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return dst[:len(dst)+n], nil
}

// readLimited reads r to its end, refusing (ErrTooLarge) more than limit
// bytes. The buffer starts at hint (at least a few times the compressed
// size) and doubles as output arrives, up to limit, so what it allocates
// follows what r produces: twice the output at most. A buf of that size or
// more is used instead of a new buffer.
func readLimited(buf []byte, r io.Reader, hint, limit int) ([]byte, error) {
	out := buf[:0:min(cap(buf), limit)]
	if n := min(max(hint, 4<<10), limit); cap(out) < n {
		out = make([]byte, 0, n)
	}
	for {
		if len(out) == cap(out) {
			// Full: grow only if r has more.
			var probe [1]byte
			n, err := io.ReadFull(r, probe[:])
			if err == io.EOF {
				return out, nil
			}
			if n == 0 {
				return nil, err
			}
			if len(out) == limit {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
			}
			grown := make([]byte, len(out), min(2*cap(out), limit))
			out = append(grown[:copy(grown, out)], probe[0])
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// decompressError describes a failure to decompress the batch of h: it
// matches ErrTooLarge when the batch inflates beyond the bound, ErrCorrupt
// otherwise.
func decompressError(h Header, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("batch at offset %d: %s: %w", h.BaseOffset, h.Codec(), err)
	}
	return fmt.Errorf("%w: batch at offset %d: %s: %v", ErrCorrupt, h.BaseOffset, h.Codec(), err)
}
