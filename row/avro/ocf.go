package avro

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/golang/snappy"
	havro "github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
	"github.com/klauspost/compress/zstd"
)

// Avro object container files (OCF): a header (the magic "Obj\x01", a
// metadata map holding the writer schema and the codec, a 16-byte sync
// marker) and then blocks, each a record count, a byte length, that many
// bytes of records (compressed by the codec) and the sync marker again.
// The header and the codecs are hamba/avro's (ocf.HeaderSchema and its
// Codec types); the blocks are read here so that the records stay bytes
// for this package's Programs instead of becoming Go values.

// ErrContainer is wrapped by every error about the structure of an object
// container file: a bad header, an unknown codec, a block that does not
// decompress or does not end with the file's sync marker. Records inside
// a sound block that do not decode are ErrData instead.
var ErrContainer = errors.New("avro: bad object container file")

// MaxBlockBytes bounds the stored size of one container block.
const MaxBlockBytes = 256 << 20

// MaxDecodedBlockBytes bounds the size of one container block once
// decompressed, whatever its codec.
const MaxDecodedBlockBytes = 4 * MaxBlockBytes

// readChunk is how much of a block is allocated ahead of the bytes read
// into it: a block's stated size is not trusted until its bytes arrive.
const readChunk = 1 << 20

// Codec names of object container files.
const (
	CodecNull      = "null"
	CodecDeflate   = "deflate"
	CodecSnappy    = "snappy"
	CodecZStandard = "zstandard"
)

// ContainerReader reads the blocks of one object container file.
type ContainerReader struct {
	r      *havro.Reader
	schema *Schema
	codec  ocf.Codec
	sync   [16]byte
	block  int // blocks read
}

// NewContainerReader reads the header of an object container file from r
// and parses its writer schema (a record).
func NewContainerReader(r io.Reader) (*ContainerReader, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || magic != [4]byte{'O', 'b', 'j', 1} {
		return nil, fmt.Errorf("%w: no Avro magic (Obj\\x01) at the start", ErrContainer)
	}
	hr := havro.NewReader(io.MultiReader(bytes.NewReader(magic[:]), r), 64<<10)
	var h ocf.Header
	hr.ReadVal(ocf.HeaderSchema, &h)
	if hr.Error != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrContainer, hr.Error)
	}
	text, ok := h.Meta["avro.schema"]
	if !ok {
		return nil, fmt.Errorf("%w: the header has no avro.schema", ErrContainer)
	}
	s, err := Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("%w: the header's schema: %w", ErrContainer, err)
	}
	var codec ocf.Codec
	switch name := string(h.Meta["avro.codec"]); name {
	case "", CodecNull:
		codec = &ocf.NullCodec{}
	case CodecDeflate:
		codec = deflateCodec{max: MaxDecodedBlockBytes}
	case CodecSnappy:
		codec = snappyCodec{max: MaxDecodedBlockBytes}
	case CodecZStandard:
		codec = zstdCodec{}
	default:
		return nil, fmt.Errorf("%w: codec %q is not supported (null, deflate, snappy, zstandard)", ErrContainer, name)
	}
	return &ContainerReader{r: hr, schema: s, codec: codec, sync: h.Sync}, nil
}

// Schema returns the file's writer schema.
func (c *ContainerReader) Schema() *Schema { return c.schema }

// Next returns the next block: its record count and its records' bytes,
// decompressed (a new slice each time, which the caller may keep). It
// returns io.EOF after the last block.
func (c *ContainerReader) Next() (count int64, data []byte, err error) {
	for {
		_ = c.r.Peek()
		if errors.Is(c.r.Error, io.EOF) {
			return 0, nil, io.EOF
		}
		c.block++
		count = c.r.ReadLong()
		size := c.r.ReadLong()
		if c.r.Error != nil {
			return 0, nil, c.fail("%v", c.r.Error)
		}
		if count < 0 || size < 0 || size > MaxBlockBytes {
			return 0, nil, c.fail("count %d, size %d", count, size)
		}
		raw := make([]byte, 0, min(size, readChunk))
		for int64(len(raw)) < size && c.r.Error == nil {
			n := int(min(size-int64(len(raw)), readChunk))
			raw = slices.Grow(raw, n)[:len(raw)+n]
			c.r.Read(raw[len(raw)-n:])
		}
		var sync [16]byte
		c.r.Read(sync[:])
		if c.r.Error != nil {
			return 0, nil, c.fail("truncated: %v", c.r.Error)
		}
		if sync != c.sync {
			return 0, nil, c.fail("does not end with the file's sync marker")
		}
		if count == 0 {
			continue
		}
		data, err := c.codec.Decode(raw)
		if err != nil {
			return 0, nil, c.fail("decompressing: %v", err)
		}
		if count > int64(len(data))+maxEmptyItems {
			// Records of at least one byte cannot be more than the bytes;
			// empty records (no fields) are bounded as empty array items are.
			return 0, nil, c.fail("%d records in %d bytes", count, len(data))
		}
		return count, data, nil
	}
}

func (c *ContainerReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: block %d: %s", ErrContainer, c.block, fmt.Sprintf(format, args...))
}

// deflateCodec inflates blocks of the deflate codec (raw RFC 1951
// streams) up to max bytes: a block that inflates further is refused as
// soon as it passes max, not read to its end.
type deflateCodec struct{ max int }

func (c deflateCodec) Decode(b []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(r, int64(c.max)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(c.max) {
		return nil, fmt.Errorf("inflates to more than %d bytes", c.max)
	}
	return out.Bytes(), nil
}

func (deflateCodec) Encode(b []byte) []byte { return nil }

// snappyCodec decodes blocks of the snappy codec (a snappy block and the
// big-endian CRC-32 of the decoded bytes) whose stated decoded length is
// at most max and at most what the block's bytes can make (snappy's
// longest copy, 64 bytes in a 3-byte element, makes under 22 bytes a byte),
// before allocating it.
type snappyCodec struct{ max int }

func (c snappyCodec) Decode(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, errors.New("snappy block without its CRC")
	}
	body := b[:len(b)-4]
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if n > c.max || n > 22*len(body) {
		return nil, fmt.Errorf("snappy block of %d bytes says it decodes to %d", len(body), n)
	}
	out, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if crc32.ChecksumIEEE(out) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("snappy block's CRC does not match")
	}
	return out, nil
}

func (snappyCodec) Encode(b []byte) []byte { return nil }

type zstdCodec struct{}

// zstdDecoder is made on first use and shared: DecodeAll is safe for
// concurrent use.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecodedBlockBytes))
})

func (zstdCodec) Decode(b []byte) ([]byte, error) {
	d, err := zstdDecoder()
	if err != nil {
		return nil, err
	}
	return d.DecodeAll(b, nil)
}
func (zstdCodec) Encode(b []byte) []byte { return nil }

// RecordLen returns the length of the first record of data written with
// p's writer schema, walking it without decoding it.
func (d *Decoder) RecordLen(p *Program, data []byte) (int, error) {
	d.start(data)
	for i := range p.fields {
		d.skip(p.fields[i].n)
		if d.err != nil {
			break
		}
	}
	n, err := d.pos, d.err
	d.b = nil
	return n, err
}

// ContainerWriter writes object container files of one writer schema,
// uncompressed (codec null): AppendHeader starts a file, AppendBlock adds
// records to it. It holds no file (the caller writes the bytes) and is
// safe for concurrent use.
type ContainerWriter struct {
	schema *Schema
}

// NewContainerWriter returns a writer of files of schema s.
func NewContainerWriter(s *Schema) *ContainerWriter {
	return &ContainerWriter{schema: s}
}

// AppendHeader appends the header of a new file to dst. It returns the
// file's sync marker (random) for AppendBlock.
func (w *ContainerWriter) AppendHeader(dst []byte) ([]byte, [16]byte, error) {
	var sync [16]byte
	_, _ = rand.Read(sync[:])
	h := ocf.Header{
		Magic: [4]byte{'O', 'b', 'j', 1},
		Meta:  map[string][]byte{"avro.schema": []byte(w.schema.Text()), "avro.codec": []byte(CodecNull)},
		Sync:  sync,
	}
	var buf bytes.Buffer
	hw := havro.NewWriter(&buf, 1024)
	hw.WriteVal(ocf.HeaderSchema, h)
	if err := hw.Flush(); err != nil {
		return dst, sync, fmt.Errorf("avro: container header: %w", err)
	}
	return append(dst, buf.Bytes()...), sync, nil
}

// AppendBlock appends to dst a block of count records, whose bytes
// (concatenated) are records, ending with the file's sync marker.
func (w *ContainerWriter) AppendBlock(dst []byte, sync [16]byte, count int, records []byte) []byte {
	dst = appendLong(dst, int64(count))
	dst = appendLong(dst, int64(len(records)))
	dst = append(dst, records...)
	return append(dst, sync[:]...)
}
