package avro

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/hamba/avro/v2/ocf"

	"github.com/sluicehq/sluice/row"
)

const ocfSchema = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"s","type":"string"}]}`

type ocfRec struct {
	A int64  `avro:"a"`
	S string `avro:"s"`
}

// hambaOCF writes records with hamba's ocf encoder, n per block.
func hambaOCF(t *testing.T, codec ocf.CodecName, recs []ocfRec, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ocf.NewEncoder(ocfSchema, &buf, ocf.WithCodec(codec), ocf.WithBlockLength(n))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAllOCF reads a container with ContainerReader, framing records
// with RecordLen and decoding them.
func readAllOCF(t *testing.T, b []byte) ([]string, error) {
	t.Helper()
	cr, err := NewContainerReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	target := row.MustSchema(row.Field{Name: "a"}, row.Field{Name: "s"})
	p, err := Compile(cr.Schema(), nil, target, Options{})
	if err != nil {
		return nil, err
	}
	skip, err := Compile(cr.Schema(), nil, row.MustSchema(), Options{})
	if err != nil {
		return nil, err
	}
	var d Decoder
	var out []string
	for {
		count, data, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		for range count {
			n, err := d.RecordLen(skip, data)
			if err != nil {
				return out, err
			}
			r, err := d.Decode(p, data[:n])
			if err != nil {
				return out, err
			}
			out = append(out, r.Vals[0].String()+"/"+r.Vals[1].String())
			data = data[n:]
		}
		if len(data) != 0 {
			return out, fmt.Errorf("%w: %d bytes left in a block", ErrData, len(data))
		}
	}
}

func TestContainerReaderCodecs(t *testing.T) {
	recs := []ocfRec{{1, "x"}, {2, "yy"}, {3, ""}, {4, "zzzz"}, {5, "w"}}
	for _, codec := range []ocf.CodecName{ocf.Null, ocf.Deflate, ocf.Snappy, ocf.ZStandard} {
		got, err := readAllOCF(t, hambaOCF(t, codec, recs, 2))
		if err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		if want := []string{"1/x", "2/yy", "3/", "4/zzzz", "5/w"}; len(got) != len(want) || got[0] != want[0] || got[3] != want[3] {
			t.Errorf("%s: %v, want %v", codec, got, want)
		}
	}
}

// ContainerWriter's files are read by hamba's ocf decoder.
func TestContainerWriterHamba(t *testing.T) {
	s := MustParse(ocfSchema)
	enc, err := NewEncoder(s, row.MustSchema(row.Field{Name: "a"}, row.Field{Name: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	w := NewContainerWriter(s)
	b, sync, err := w.AppendHeader(nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []byte
	for i := range 3 {
		recs, err = enc.Append(recs, row.Row{Vals: []row.Value{row.Int(int64(i)), row.String("v")}})
		if err != nil {
			t.Fatal(err)
		}
	}
	b = w.AppendBlock(b, sync, 3, recs)
	b = w.AppendBlock(b, sync, 1, recs[:3]) // record 0 again
	d, err := ocf.NewDecoder(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var got []ocfRec
	for d.HasNext() {
		var r ocfRec
		if err := d.Decode(&r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if d.Error() != nil || len(got) != 4 || got[2] != (ocfRec{2, "v"}) || got[3] != (ocfRec{0, "v"}) {
		t.Errorf("%v, %v", got, d.Error())
	}
}

func TestContainerReaderCorrupt(t *testing.T) {
	good := hambaOCF(t, ocf.Null, []ocfRec{{1, "x"}, {2, "y"}}, 1)
	hdr := len(hambaOCF(t, ocf.Null, nil, 1))
	huge := bytes.Clone(good[:hdr])
	huge = append(huge, 2)                                        // count 1
	huge = append(huge, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f) // an enormous size
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":     {nil, "no Avro magic"},
		"text":      {[]byte("a,b\n1,2\n"), "no Avro magic"},
		"header":    {good[:hdr-5], "header"},
		"truncated": {good[:len(good)-3], "block 2: truncated"},
		"sync":      {append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1), "block 2: does not end with the file's sync marker"},
		"size":      {huge, "block 1: count 1, size"},
	} {
		_, err := readAllOCF(t, tc.b)
		if !errors.Is(err, ErrContainer) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// FuzzContainer: any bytes read as a container file give records or an
// error, never a panic or an unbounded allocation.
func FuzzContainer(f *testing.F) {
	good := hambaOCF(&testing.T{}, ocf.Deflate, []ocfRec{{1, "x"}, {2, "y"}, {3, "z"}}, 2)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(hambaOCF(&testing.T{}, ocf.Null, []ocfRec{{1, "x"}}, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = readAllOCF(t, b)
	})
}

// allocatedBy returns the bytes the Go heap allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestContainerReaderAllocatesWhatItReads: a container file of a few
// bytes that claims a big block (Avro 1.12 spec, "Object Container
// Files": a block's size in bytes precedes it) or a snappy block that
// claims a big decoded length (the snappy codec: "compressed using the
// Snappy compression library", whose block starts with its decoded
// length) is refused without allocating what it claims.
func TestContainerReaderAllocatesWhatItReads(t *testing.T) {
	withCodec := func(codec string) []byte {
		var b bytes.Buffer
		w, err := ocf.NewEncoder(ocfSchema, &b, ocf.WithCodec(ocf.CodecName(codec)))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	sized := append(withCodec(CodecNull), 2) // count 1
	sized = appendLong(sized, MaxBlockBytes) // a size no bytes follow
	sn := withCodec(CodecSnappy)
	sync := sn[len(sn)-16:]
	// A snappy block that says it decodes to 4 GiB - 1, then a CRC.
	body := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0}
	snappyBomb := appendLong(append(bytes.Clone(sn), 2), int64(len(body)))
	snappyBomb = append(append(snappyBomb, body...), sync...)
	for name, b := range map[string][]byte{"size": sized, "snappy": snappyBomb} {
		var err error
		n := allocatedBy(func() { _, err = readAllOCF(t, b) })
		if !errors.Is(err, ErrContainer) {
			t.Errorf("%s: %v, want ErrContainer", name, err)
		}
		if n > 16<<20 {
			t.Errorf("%s: %d bytes of input allocated %d MiB", name, len(b), n>>20)
		}
	}
}

// TestDecompressedBlockBounded: a deflate block that inflates past the
// bound is refused once it has produced that much, not read to its end.
func TestDecompressedBlockBounded(t *testing.T) {
	var zb bytes.Buffer
	zw, _ := flate.NewWriter(&zb, flate.BestSpeed)
	_, _ = zw.Write(make([]byte, 4<<20))
	_ = zw.Close()
	for _, c := range []ocf.Codec{deflateCodec{max: 1 << 20}, deflateCodec{max: 8 << 20}} {
		max := c.(deflateCodec).max
		out, err := c.Decode(zb.Bytes())
		if max < 4<<20 && (err == nil || !strings.Contains(err.Error(), "more than")) {
			t.Errorf("max %d: %d bytes, %v; want an error", max, len(out), err)
		}
		if max > 4<<20 && (err != nil || len(out) != 4<<20) {
			t.Errorf("max %d: %d bytes, %v; want 4 MiB", max, len(out), err)
		}
	}
}
