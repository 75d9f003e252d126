package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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

// maxDecompressed bounds how far one batch may inflate, so that a malicious
// batch cannot exhaust memory.
const maxDecompressed = 1 << 30

// xerialMagic starts snappy data framed the way the Java client writes it.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecompressed))
	})
	return zstdEnc, zstdDec, zstdErr
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
		enc, _, err := zstdCodecs()
		if err != nil {
			return dst, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("unknown compression codec %d", c)
}

// decompress returns src decompressed with c.
func decompress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case None:
		return src, nil
	case Gzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readLimited(r)
	case Snappy:
		if !bytes.HasPrefix(src, xerialMagic) {
			return snappyBlock(src)
		}
		if len(src) < 16 {
			return nil, fmt.Errorf("snappy: truncated xerial header")
		}
		var out []byte
		for p := src[16:]; len(p) > 0; {
			if len(p) < 4 {
				return nil, fmt.Errorf("snappy: truncated chunk length")
			}
			n := int(binary.BigEndian.Uint32(p))
			p = p[4:]
			if n > len(p) {
				return nil, fmt.Errorf("snappy: chunk of %d bytes, %d left", n, len(p))
			}
			block, err := snappyBlock(p[:n])
			if err != nil {
				return nil, err
			}
			out = append(out, block...)
			if len(out) > maxDecompressed {
				return nil, fmt.Errorf("snappy: decompresses beyond %d bytes", maxDecompressed)
			}
			p = p[n:]
		}
		return out, nil
	case LZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(src)))
	case Zstd:
		_, dec, err := zstdCodecs()
		if err != nil {
			return nil, err
		}
		return dec.DecodeAll(src, nil)
	}
	return nil, fmt.Errorf("unknown compression codec %d", c)
}

func snappyBlock(src []byte) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if n > maxDecompressed {
		return nil, fmt.Errorf("snappy: block decompresses to %d bytes", n)
	}
	return s2.Decode(nil, src)
}

func readLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxDecompressed {
		return nil, fmt.Errorf("decompresses beyond %d bytes", maxDecompressed)
	}
	return out, nil
}
