package pipeline

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	"github.com/sluicehq/sluice/row"
)

// Protobuf on file and HTTP connectors (docs/pipeline-spec.md,
// "Protobuf in files and HTTP bodies"). Files hold Protobuf's standard
// length-delimited stream: each record is a varint byte count followed by
// that many bytes (google.golang.org/protobuf/encoding/protodelim, Java's
// writeDelimitedTo), the bytes being a bare message or, with framing
// confluent, the Confluent wire format of one. An HTTP request body is
// one such record, or with protobuf: {body: delimited} a stream of them.
// A file that cannot be framed past some point (a bad length prefix, a
// record cut short) yields one bad message with the reason and the rest
// of that file is not read: a length-delimited stream has no marker to
// find the next record by.

// pbErrorHeader marks a message that holds no record but bytes of a
// length-delimited stream that could not be framed, and says why.
const pbErrorHeader = "protobuf.error"

// maxDelimitedRecord bounds the length prefix of one record, so that a
// corrupt prefix is reported rather than allocated.
const maxDelimitedRecord = 64 << 20

// delimSlab is the size of the slabs small records are carved from;
// bigger records are read into buffers of their own.
const delimSlab = 64 << 10

// Protobuf body framings of an http source.
const (
	pbBodyMessage   = "message"   // the body is one record
	pbBodyDelimited = "delimited" // the body is a length-delimited stream
)

// errDelimited wraps the reasons a length-delimited stream cannot be
// framed.
var errDelimited = errors.New("length-delimited protobuf stream")

// pbDelimFraming reads files as length-delimited protobuf streams.
type pbDelimFraming struct{}

// Open implements file.Framing.
func (pbDelimFraming) Open(_ string, r io.Reader) (file.RecordReader, error) {
	return &pbDelimRecords{r: bufio.NewReaderSize(r, 64<<10)}, nil
}

// pbDelimRecords returns the records of one length-delimited file.
type pbDelimRecords struct {
	r    *bufio.Reader
	slab []byte   // records are carved from it, so each stays valid
	pre  [10]byte // the length prefix being read
	n    int64    // records read, for messages
	done bool
}

// Next implements file.RecordReader.
func (d *pbDelimRecords) Next() ([]byte, []connector.Header, error) {
	if d.done {
		return nil, nil, io.EOF
	}
	n, prefix, err := readUvarint(d.r, d.pre[:0])
	if err == io.EOF && len(prefix) == 0 {
		d.done = true
		return nil, nil, io.EOF
	}
	d.n++
	if err != nil {
		d.done = true
		if !errors.Is(err, errDelimited) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, err // the file could not be read: the source's error
		}
		return bytes.Clone(prefix), pbBad(fmt.Errorf("%w: record %d: bad length prefix: %w", errDelimited, d.n, err)), nil
	}
	if n > maxDelimitedRecord {
		d.done = true
		return bytes.Clone(prefix), pbBad(fmt.Errorf("%w: record %d: length prefix %d is above the limit of %d bytes", errDelimited, d.n, n, maxDelimitedRecord)), nil
	}
	size := int(n)
	var v []byte
	var got int
	if size > delimSlab {
		// A big record: allocated as its bytes arrive, not as its
		// prefix claims.
		var buf bytes.Buffer
		m, cerr := io.CopyN(&buf, d.r, int64(size))
		v, got, err = buf.Bytes(), int(m), cerr
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		if len(d.slab) < size {
			d.slab = make([]byte, delimSlab)
		}
		v = d.slab[:size:size]
		d.slab = d.slab[size:]
		got, err = io.ReadFull(d.r, v)
	}
	if err != nil {
		d.done = true
		if err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, nil, err
		}
		return v[:got], pbBad(fmt.Errorf("%w: record %d: truncated: the length prefix says %d bytes, %d are left", errDelimited, d.n, size, got)), nil
	}
	return v, nil, nil
}

func pbBad(err error) []connector.Header {
	return []connector.Header{{Key: pbErrorHeader, Value: []byte(err.Error())}}
}

// readUvarint reads a varint as protobuf writes it (at most 10 bytes,
// the tenth at most 1) and returns the bytes it read, appended to got.
// An EOF before the first byte is io.EOF, within the varint
// io.ErrUnexpectedEOF.
func readUvarint(r io.ByteReader, got []byte) (uint64, []byte, error) {
	var x uint64
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, got, err
		}
		got = append(got, b)
		if i == 9 && b > 1 {
			return 0, got, fmt.Errorf("%w: varint overflows 64 bits", errDelimited)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, got, nil
		}
	}
}

// splitDelimited splits a length-delimited stream held in memory into
// its records (subslices of b), appended to dst. An error says where the
// stream cannot be framed.
func splitDelimited(dst [][]byte, b []byte) ([][]byte, error) {
	for off := 0; off < len(b); {
		n, k := binary.Uvarint(b[off:])
		switch {
		case k == 0:
			return dst, fmt.Errorf("%w: record %d: bad length prefix: %v", errDelimited, len(dst)+1, io.ErrUnexpectedEOF)
		case k < 0:
			return dst, fmt.Errorf("%w: record %d: bad length prefix: varint overflows 64 bits", errDelimited, len(dst)+1)
		}
		off += k
		if n > uint64(len(b)-off) {
			return dst, fmt.Errorf("%w: record %d: truncated: the length prefix says %d bytes, %d are left", errDelimited, len(dst)+1, n, len(b)-off)
		}
		dst = append(dst, b[off:off+int(n):off+int(n)])
		off += int(n)
	}
	return dst, nil
}

// pbBodyFunc returns how an http source with format protobuf splits
// request bodies: each body one record, or a length-delimited stream of
// them. A body that cannot be framed is refused whole with a 400.
func pbBodyFunc(mode string) func(dst [][]byte, body []byte) ([][]byte, []connector.Header, error) {
	if mode == pbBodyDelimited {
		return func(dst [][]byte, body []byte) ([][]byte, []connector.Header, error) {
			out, err := splitDelimited(dst, body)
			if err != nil {
				return dst, nil, fmt.Errorf("body: %w", err)
			}
			return out, nil, nil
		}
	}
	return func(dst [][]byte, body []byte) ([][]byte, []connector.Header, error) {
		return append(dst, body), nil, nil
	}
}

// pbFrameError returns the reason a message read from a
// length-delimited file holds no record, or nil.
func pbFrameError(m *connector.Message) error {
	for _, h := range m.Headers {
		if h.Key == pbErrorHeader {
			return errors.New(string(h.Value))
		}
	}
	return nil
}

// delimRows prefixes each record an encoder writes with its varint
// length: the records of a protobuf file sink.
type delimRows struct{ inner rowEncoder }

func (d delimRows) Append(dst []byte, r row.Row) ([]byte, error) {
	start := len(dst)
	out, err := d.inner.Append(dst, r)
	if err != nil {
		return dst[:start], err
	}
	n := len(out) - start
	k := sizeVarint(uint64(n))
	for i := 0; i < k; i++ {
		out = append(out, 0)
	}
	copy(out[start+k:], out[start:start+n])
	binary.PutUvarint(out[start:], uint64(n))
	return out, nil
}

func sizeVarint(v uint64) int {
	k := 1
	for v >= 0x80 {
		v >>= 7
		k++
	}
	return k
}
