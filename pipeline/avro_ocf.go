package pipeline

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/row/avro"
)

// Avro object container files on byte connectors: a file source with
// format avro reads each file as a container (the file connector's
// Framing, with records framed here), and a file sink writes its part
// files as containers (the file connector's Container). Each record
// travels as its own message, the bare Avro bytes, with the file's writer
// schema in a header that the decoder compiles a program for once per
// schema. A record that cannot be framed, or a container that is
// corrupt, becomes one bad message (dead-lettered with the reason) and
// the rest of its block, or of its file, is not read.

// Message headers of container records.
const (
	// ocfSchemaHeader holds the writer schema (JSON) of the container a
	// record comes from; every record of a file shares one value.
	ocfSchemaHeader = "avro.schema"
	// ocfErrorHeader marks a message that holds no record but the bytes
	// of a container that could not be read, and says why.
	ocfErrorHeader = "avro.error"
)

// ocfFraming reads files as Avro object container files.
type ocfFraming struct{}

// emptyRowSchema is the target of the programs that only frame records.
var emptyRowSchema = row.MustSchema()

// Open implements file.Framing. A file that is not a container is not
// an error of the source: it yields one bad message.
func (ocfFraming) Open(name string, r io.Reader) (file.RecordReader, error) {
	cr, err := avro.NewContainerReader(r)
	if err != nil {
		return &ocfRecords{err: err}, nil
	}
	skip, err := avro.Compile(cr.Schema(), nil, emptyRowSchema, avro.Options{})
	if err != nil {
		return &ocfRecords{err: fmt.Errorf("%w: the header's schema: %w", avro.ErrContainer, err)}, nil
	}
	return &ocfRecords{cr: cr, skip: skip, hdr: []connector.Header{{Key: ocfSchemaHeader, Value: []byte(cr.Schema().Text())}}}, nil
}

// ocfRecords returns the records of one container, block by block.
type ocfRecords struct {
	cr    *avro.ContainerReader
	skip  *avro.Program
	d     avro.Decoder
	hdr   []connector.Header
	count int64  // records left in the block
	data  []byte // their bytes
	err   error  // to report as a bad message, then end the file
	done  bool
}

// Next implements file.RecordReader.
func (o *ocfRecords) Next() ([]byte, []connector.Header, error) {
	if o.done {
		return nil, nil, io.EOF
	}
	if o.err != nil {
		o.done = true
		return nil, []connector.Header{{Key: ocfErrorHeader, Value: []byte(o.err.Error())}}, nil
	}
	for o.count == 0 {
		if len(o.data) > 0 {
			v := o.data
			o.data = nil
			return v, o.bad(fmt.Errorf("%w: %d bytes left after the block's records", avro.ErrData, len(v))), nil
		}
		count, data, err := o.cr.Next()
		if errors.Is(err, io.EOF) {
			o.done = true
			return nil, nil, io.EOF
		}
		if err != nil {
			o.done = true
			return nil, o.bad(err), nil
		}
		o.count, o.data = count, data
	}
	n, err := o.d.RecordLen(o.skip, o.data)
	if err != nil {
		// The block cannot be framed past here: the rest of it is one bad
		// message; the next block starts at its sync marker.
		v := o.data
		o.count, o.data = 0, nil
		return v, o.bad(err), nil
	}
	v := o.data[:n:n]
	o.data = o.data[n:]
	o.count--
	return v, o.hdr, nil
}

func (o *ocfRecords) bad(err error) []connector.Header {
	return append(o.hdr[:len(o.hdr):len(o.hdr)], connector.Header{Key: ocfErrorHeader, Value: []byte(err.Error())})
}

// decodeContainer decodes a record of a container file read by a file
// source.
func (a *avroDecoder) decodeContainer(m *connector.Message) (row.Row, error) {
	var schema []byte
	for _, h := range m.Headers {
		switch h.Key {
		case ocfErrorHeader:
			return row.Row{}, errors.New(string(h.Value))
		case ocfSchemaHeader:
			schema = h.Value
		}
	}
	if len(schema) == 0 {
		return row.Row{}, fmt.Errorf("%w: the message does not come from an object container file", avro.ErrData)
	}
	p := a.last
	if p == nil || len(a.lastSchema) != len(schema) || &a.lastSchema[0] != &schema[0] {
		var err error
		if p, err = a.in.containerProgram(schema); err != nil {
			return row.Row{}, err
		}
		a.last, a.lastSchema = p, schema
	}
	return a.d.Decode(p, m.Value)
}

// containerProgram returns the program for records written with the
// writer schema text of a container file, compiling it the first time.
func (ai *avroInput) containerProgram(text []byte) (*avro.Program, error) {
	key := sha256.Sum256(text)
	ai.mu.Lock()
	e, ok := ai.byText[key]
	ai.mu.Unlock()
	if ok {
		return e.p, e.bad
	}
	e = &avroProg{}
	w, err := avro.Parse(string(text))
	switch {
	case err != nil:
		e.bad = fmt.Errorf("the container's schema: %w", err)
	default:
		p, cerr := avro.Compile(w, ai.reader, ai.target, ai.opts)
		if cerr != nil {
			e.bad = fmt.Errorf("the container's schema %s cannot be read with the reader schema: %w", w.Name(), cerr)
			break
		}
		e.p = p
	}
	ai.mu.Lock()
	makeRoom(ai.byText, func(*avroProg) bool { return false })
	ai.byText[key] = e
	ai.mu.Unlock()
	return e.p, e.bad
}

// ocfContainer writes a file sink's part files as object container files
// of the sink's writer schema.
type ocfContainer struct{ w *avro.ContainerWriter }

// NewPart implements file.Container.
func (c ocfContainer) NewPart(dst []byte) ([]byte, func(dst []byte, count int, records []byte) []byte, error) {
	dst, sync, err := c.w.AppendHeader(dst)
	if err != nil {
		return dst, nil, err
	}
	return dst, func(dst []byte, count int, records []byte) []byte {
		return c.w.AppendBlock(dst, sync, count, records)
	}, nil
}

// ocfBody splits an HTTP request body that is one object container file
// into its records, for an http source with format avro. A body that is
// not a sound container is refused whole (the client gets a 400 with the
// reason) rather than dead-lettered: the sender is still there to hear it.
func ocfBody(dst [][]byte, body []byte) ([][]byte, []connector.Header, error) {
	rr, _ := ocfFraming{}.Open("body", bytes.NewReader(body))
	o := rr.(*ocfRecords)
	for {
		v, hs, err := o.Next()
		if errors.Is(err, io.EOF) {
			return dst, o.hdr, nil
		}
		if err != nil {
			return dst, nil, err
		}
		for _, h := range hs {
			if h.Key == ocfErrorHeader {
				return dst, nil, fmt.Errorf("body: record %d: %s", len(dst)+1, h.Value)
			}
		}
		dst = append(dst, v)
	}
}
