package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// writeDelimited writes orders as a length-delimited stream with the
// official library (protodelim), each message after prefix (a Confluent
// header, or nil).
func writeDelimited(t *testing.T, path string, md protoreflect.MessageDescriptor, orders []testOrder, prefix []byte) {
	t.Helper()
	var b bytes.Buffer
	for _, o := range orders {
		if prefix == nil {
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(encodeOrder(t, md, o), m); err != nil {
				t.Fatal(err)
			}
			if _, err := protodelim.MarshalTo(&b, m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		rec := append(bytes.Clone(prefix), encodeOrder(t, md, o)...)
		b.Write(protowire.AppendVarint(nil, uint64(len(rec))))
		b.Write(rec)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readDelimitedTotals reads a protobuf file sink's parts with the official
// library (protodelim); with id >= 0 each record must carry the Confluent
// header of that id.
func readDelimitedTotals(t *testing.T, dir string, id int) map[totalsKey]totals {
	t.Helper()
	md, _ := protoMessage(t, "totals.proto", "shop.UserTotals")
	got := map[totalsKey]totals{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !strings.HasSuffix(e.Name(), ".binpb") {
			t.Errorf("part %s: want the .binpb suffix", e.Name())
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			msg := dynamicpb.NewMessage(md)
			if id >= 0 {
				// The library reads bare messages only: take the record,
				// check and strip its header.
				n, err := protodelimLen(r)
				if errors.Is(err, io.EOF) {
					break
				}
				rec := make([]byte, n)
				if _, err := io.ReadFull(r, rec); err != nil {
					t.Fatal(err)
				}
				var h sr.ConfluentHeader
				gotID, rest, err := h.DecodeID(rec)
				if err != nil || gotID != id {
					t.Fatalf("record header: id %d, %v; want %d", gotID, err, id)
				}
				if _, rest, err = h.DecodeIndex(rest, 8); err != nil {
					t.Fatal(err)
				}
				if err := proto.Unmarshal(rest, msg); err != nil {
					t.Fatal(err)
				}
			} else {
				err := protodelim.UnmarshalFrom(r, msg)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s: the library cannot read the stream: %v", e.Name(), err)
				}
			}
			f := md.Fields().ByName
			ts := msg.Get(f("window_start")).Message()
			k := totalsKey{msg.Get(f("user")).String(), ts.Get(ts.Descriptor().Fields().ByName("seconds")).Int() * 1000}
			if _, dup := got[k]; dup {
				t.Fatalf("window %v written twice", k)
			}
			got[k] = totals{msg.Get(f("orders")).Int(), msg.Get(f("cents")).Int(), msg.Get(f("items")).Int()}
		}
	}
	return got
}

func protodelimLen(r *bufio.Reader) (uint64, error) {
	n, _, err := readUvarint(r, nil)
	return n, err
}

// TestProtobufFiles reads length-delimited files written by the official
// library (bare in one directory; in the Confluent wire format, v1 and v2
// mixed, in another), aggregates, and writes length-delimited parts that
// the library reads back; the totals are exact both ways.
func TestProtobufFiles(t *testing.T) {
	l, dir := openProtoTestLog(t)
	v1, v1text := protoMessage(t, "order_v1.proto", "shop.Order")
	v2, v2text := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(2000, false)
	for i := range orders {
		orders[i].qty = int32(i%3 + 1)
	}
	writeDelimited(t, filepath.Join(dir, "bare", "a.binpb"), v2, orders[:700], nil)
	writeDelimited(t, filepath.Join(dir, "bare", "b.binpb"), v2, orders[700:], nil)
	j := startSpec(t, fmt.Sprintf(`
source:
  file: {path: %[1]s/bare}
  format: protobuf
  schema: {file: %[2]s, message: shop.Order}
  event_time: {field: created}
steps:
  - filter: status == "PAID"
  - window: {key: [user], tumbling: 1m, aggregate: {orders: count(), cents: sum(amount_cents), items: sum(qty)}}
sink:
  file: {path: %[1]s/out}
  format: protobuf
  schema: {file: %[3]s, message: shop.UserTotals}
`, dir, protoTestdata(t, "order_v2.proto"), protoTestdata(t, "totals.proto")), &Host{DataDir: dir, Log: l})
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	compareTotals(t, readDelimitedTotals(t, filepath.Join(dir, "out"), -1), expectTotals(orders))

	// The Confluent wire format per record, with the embedded registry.
	urls := testRegistries(t, l)
	cl, err := sr.NewClient(sr.URLs(urls["sluice"]))
	if err != nil {
		t.Fatal(err)
	}
	id1 := registerTest(t, cl, "orders-value", v1text)
	id2 := registerTest(t, cl, "orders-value", v2text)
	mixed := makeOrders(1000, true)
	var h sr.ConfluentHeader
	p1, _ := h.AppendEncode(nil, id1, []int{0})
	p2, _ := h.AppendEncode(nil, id2, []int{0})
	var o1, o2 []testOrder
	for _, o := range mixed {
		if o.v2 {
			o2 = append(o2, o)
		} else {
			o1 = append(o1, o)
		}
	}
	writeDelimited(t, filepath.Join(dir, "framed", "a.binpb"), v1, o1, p1)
	writeDelimited(t, filepath.Join(dir, "framed", "b.binpb"), v2, o2, p2)
	j = startSpec(t, fmt.Sprintf(`
registry: {url: %[2]s}
source:
  file: {path: %[1]s/framed}
  format: protobuf
  protobuf: {framing: confluent}
  event_time: {field: created}
steps:
  - filter: status == "PAID"
  - window: {key: [user], tumbling: 1m, aggregate: {orders: count(), cents: sum(amount_cents), items: sum(qty)}}
sink:
  file: {path: %[1]s/out2}
  format: protobuf
  schema: {file: %[3]s, message: shop.UserTotals}
  protobuf: {framing: confluent, subject: totals-file}
`, dir, urls["sluice"], protoTestdata(t, "totals.proto")), &Host{DataDir: dir, Log: l})
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	ss, err := cl.SchemaByVersion(context.Background(), "totals-file", -1)
	if err != nil {
		t.Fatal(err)
	}
	compareTotals(t, readDelimitedTotals(t, filepath.Join(dir, "out2"), ss.ID), expectTotals(mixed))
}

// TestProtobufFilesBad: a record that does not decode is dead-lettered
// and the file goes on; a length prefix that overflows, or a record cut
// short at the end of a file, is one dead letter with the reason and the
// rest of that file is not read. Under tolerance none the job fails.
func TestProtobufFilesBad(t *testing.T) {
	dir := t.TempDir()
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(10, false)
	in := filepath.Join(dir, "in")
	writeDelimited(t, filepath.Join(in, "a.binpb"), v2, orders, nil)
	good, err := os.ReadFile(filepath.Join(in, "a.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	first := encodeOrder(t, v2, orders[0])
	// b: a good record, one whose bytes are not protobuf (a field
	// number 0), a good one.
	var b []byte
	b = protowire.AppendBytes(b, first)
	b = protowire.AppendBytes(b, []byte{0x00, 0x01})
	b = protowire.AppendBytes(b, first)
	os.WriteFile(filepath.Join(in, "b.binpb"), b, 0o644)
	// c: a good record, then a prefix of eleven 0xff bytes.
	c := append(protowire.AppendBytes(nil, first), bytes.Repeat([]byte{0xff}, 11)...)
	os.WriteFile(filepath.Join(in, "c.binpb"), c, 0o644)
	// d: the good file cut in the middle of its last record.
	os.WriteFile(filepath.Join(in, "d.binpb"), good[:len(good)-3], 0o644)
	run := func(tolerance string) (string, string, error) {
		out := t.TempDir()
		dl := ""
		if tolerance == "all" {
			dl = fmt.Sprintf(", dead_letter: {file: {path: %s/dl}}", out)
		}
		s, err := Parse("bad.yaml", []byte(fmt.Sprintf(`
name: bad
source: {file: {path: %s}, format: protobuf, schema: {file: %s, message: shop.Order}}
steps: [{map: {user: user}}]
sinks: [{file: {path: %s/json}}]
errors: {tolerance: %s%s}
`, in, protoTestdata(t, "order_v2.proto"), out, tolerance, dl)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := Run(context.Background(), p, &Host{DataDir: out}); err != nil {
			return "", "", err
		}
		return readDir(t, filepath.Join(out, "json")), readDir(t, filepath.Join(out, "dl")), nil
	}
	rows, dl, err := run("all")
	if err != nil {
		t.Fatal(err)
	}
	// a: 10, b: 2, c: 1, d: 9.
	if n := strings.Count(rows, "\n"); n != 22 {
		t.Errorf("%d rows, want 22:\n%s", n, rows)
	}
	for _, want := range []string{"b.binpb", "c.binpb", "varint overflows", "d.binpb", "truncated: the length prefix says"} {
		if !strings.Contains(dl, want) {
			t.Errorf("dead letters lack %q:\n%s", want, dl)
		}
	}
	if n := strings.Count(dl, "\n"); n != 3 {
		t.Errorf("%d dead letters, want 3:\n%s", n, dl)
	}
	if _, _, err := run("none"); err == nil {
		t.Error("tolerance none: the job did not fail")
	}
}

// TestProtobufHTTP: an http source takes one message per request body,
// or with protobuf: {body: delimited} a length-delimited batch; a batch
// that cannot be framed is refused with a 400, a message that does not
// decode is dead-lettered.
func TestProtobufHTTP(t *testing.T) {
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(20, false)
	for _, mode := range []string{"message", "delimited"} {
		t.Run(mode, func(t *testing.T) {
			out := t.TempDir()
			s, err := Parse("http.yaml", []byte(fmt.Sprintf(`
name: http-pb
source:
  http: {addr: "127.0.0.1:0"}
  format: protobuf
  schema: {file: %s, message: shop.Order}
  protobuf: {body: %s}
steps:
  - map: {user: user, cents: amount_cents}
sink: {file: {path: %s/json}}
errors: {tolerance: all, dead_letter: {file: {path: %s/dl}}}
parallelism: 1
`, protoTestdata(t, "order_v2.proto"), mode, out, out)))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			var src *nethttp.Source
			host := &Host{Stdout: io.Discard, DataDir: out, OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
			j, err := p.Start(context.Background(), host)
			if err != nil {
				t.Fatal(err)
			}
			if err := src.Listen(); err != nil {
				t.Fatal(err)
			}
			post := func(body []byte) (int, string) {
				resp, err := http.Post("http://"+src.Addr()+"/ingest", "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			want := int64(0)
			if mode == "message" {
				for _, o := range orders {
					if code, msg := post(encodeOrder(t, v2, o)); code != http.StatusOK {
						t.Fatalf("%d %s", code, msg)
					}
					want += o.cents
				}
			} else {
				var batch []byte
				for _, o := range orders {
					batch = protowire.AppendBytes(batch, encodeOrder(t, v2, o))
					want += o.cents
				}
				if code, msg := post(batch); code != http.StatusOK {
					t.Fatalf("%d %s", code, msg)
				}
				if code, msg := post(batch[:len(batch)-2]); code != http.StatusBadRequest || !strings.Contains(msg, "truncated") {
					t.Errorf("a cut batch: %d %s", code, msg)
				}
			}
			bad := []byte{0x00, 0x01} // field number 0
			if mode == "delimited" {
				bad = protowire.AppendBytes(nil, bad)
			}
			if code, msg := post(bad); code != http.StatusOK {
				t.Errorf("a bad message is dead-lettered, not refused: %d %s", code, msg)
			}
			src.Stop()
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			got := int64(0)
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(readDir(t, filepath.Join(out, "json"))), "\n") {
				var r struct {
					User  string `json:"user"`
					Cents int64  `json:"cents"`
				}
				if err := json.Unmarshal([]byte(line), &r); err != nil || r.User == "" {
					t.Fatalf("line %q: %v", line, err)
				}
				got += r.Cents
				n++
			}
			if n != len(orders) || got != want {
				t.Errorf("%d rows with %d cents, want %d with %d", n, got, len(orders), want)
			}
			if dl := readDir(t, filepath.Join(out, "dl")); strings.Count(dl, "\n") != 1 {
				t.Errorf("dead letters:\n%s", dl)
			}
		})
	}
}

// FuzzDelimited checks the two length-delimited readers (the file
// framing and the in-memory split of HTTP bodies) against each other and
// against protowire (the official wire primitives): on any bytes they
// never panic, return the same records, and the records they accept
// written back with minimal prefixes read the same.
func FuzzDelimited(f *testing.F) {
	f.Add(protowire.AppendBytes(protowire.AppendBytes(nil, []byte("ab")), nil))
	f.Add([]byte{0x80})
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	f.Add([]byte{5, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Oracle: protowire.ConsumeBytes record by record.
		var want [][]byte
		wantOK := true
		for b := data; len(b) > 0; {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				wantOK = false
				break
			}
			want = append(want, v)
			b = b[n:]
		}
		split, err := splitDelimited(nil, data)
		if (err == nil) != wantOK || len(split) != len(want) {
			t.Fatalf("%x: split %d records, %v; protowire %d, ok %v", data, len(split), err, len(want), wantOK)
		}
		rr, _ := pbDelimFraming{}.Open("f", bytes.NewReader(data))
		var back []byte
		var recs int
		bad := false
		for {
			v, hs, err := rr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) > 0 {
				bad = true
				continue
			}
			if recs >= len(want) || !bytes.Equal(v, want[recs]) {
				t.Fatalf("%x: record %d differs", data, recs)
			}
			recs++
			back = protowire.AppendBytes(back, v)
		}
		if bad == wantOK || recs != len(want) {
			t.Fatalf("%x: file framing: %d records, bad %v; protowire %d, ok %v", data, recs, bad, len(want), wantOK)
		}
		// Written back (minimal prefixes: the input's may be longer),
		// the records read the same.
		again, err := splitDelimited(nil, back)
		if err != nil || len(again) != recs {
			t.Fatalf("%x: written back as %x, which reads as %d records, %v", data, back, len(again), err)
		}
		for i := range again {
			if !bytes.Equal(again[i], want[i]) {
				t.Fatalf("%x: written back, record %d differs", data, i)
			}
		}
	})
}

// TestProtobufConnectorSpecErrors: where format protobuf and its
// settings do not fit the connector, the spec is refused with a message
// that says what to do.
func TestProtobufConnectorSpecErrors(t *testing.T) {
	proto := protoTestdata(t, "order_v2.proto")
	for _, c := range []struct{ spec, want string }{
		{`source: {file: {path: /tmp}, format: protobuf}
sink: {stdout: {}}`, "needs schema: {file: order.proto"},
		{`source: {http: {addr: ":0"}, format: protobuf}
sink: {stdout: {}}`, "needs schema: {file: order.proto"},
		{`source: {generate: {count: 1}}
sink: {stdout: {}, format: protobuf, schema: {file: ` + proto + `, message: shop.Order}}`, "format protobuf is for kafka, log and file connectors and http sources"},
		{`source: {generate: {count: 1}}
steps: [{map: {user: '"x"'}}]
sink: {file: {path: /tmp/x}, format: protobuf, schema: {file: ` + proto + `, message: shop.Order}, protobuf: {framing: confluent}}`, "set protobuf: {subject: NAME}"},
		{`source: {log: {topic: t}, format: protobuf, schema: {file: ` + proto + `, message: shop.Order}, protobuf: {body: delimited}}
sink: {stdout: {}}`, "protobuf.body is for http sources"},
	} {
		s, err := Parse("spec.yaml", []byte("name: x\n"+c.spec))
		if err == nil {
			_, err = Compile(s)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.spec, err, c.want)
		}
	}
}

// TestProtobufFileResume: a split's position inside a length-delimited
// file resumes at the next record.
func TestProtobufFileResume(t *testing.T) {
	dir := t.TempDir()
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(12, false)
	writeDelimited(t, filepath.Join(dir, "a.binpb"), v2, orders[:7], nil)
	writeDelimited(t, filepath.Join(dir, "b.binpb"), v2, orders[7:], nil)
	src, err := file.NewSource(file.SourceConfig{Path: dir, Records: pbDelimFraming{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func(sp interface {
		Read(context.Context, []connector.Message) (int, error)
	}, max int) []string {
		var got []string
		buf := make([]connector.Message, 2)
		for max < 0 || len(got) < max {
			want := len(buf)
			if max >= 0 {
				want = min(want, max-len(got))
			}
			n, err := sp.Read(ctx, buf[:want])
			for _, m := range buf[:n] {
				got = append(got, fmt.Sprintf("%s:%d:%x", filepath.Base(m.Origin), m.Offset, m.Value))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	splits, err := src.Splits(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	all := read(splits[0], -1)
	if len(all) != 12 {
		t.Fatalf("%d records, want 12", len(all))
	}
	for _, cut := range []int{0, 1, 6, 7, 9, 12} {
		splits, _ := src.Splits(ctx, 1)
		first := read(splits[0], cut)
		again, _ := src.Splits(ctx, 1)
		if err := again[0].Seek(splits[0].Position()); err != nil {
			t.Fatal(err)
		}
		if got := append(first, read(again[0], -1)...); strings.Join(got, " ") != strings.Join(all, " ") {
			t.Errorf("cut at %d: %d records, want the same 12 in order", cut, len(got))
		}
	}
}

// TestDelimitedAllocatesWhatItReads: a length-delimited file whose length
// prefix claims a big record it does not hold (the stream format of
// protodelim and Java's writeDelimitedTo: a varint byte count, then the
// record) is reported as cut short without allocating what it claims.
func TestDelimitedAllocatesWhatItReads(t *testing.T) {
	data := binary.AppendUvarint(nil, maxDelimitedRecord)
	data = append(data, "only a few bytes"...)
	rr, err := pbDelimFraming{}.Open("claim.pb", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	v, hs, err := rr.Next()
	runtime.ReadMemStats(&after)
	if err != nil || len(hs) == 0 || !strings.Contains(string(hs[0].Value), "truncated") || string(v) != "only a few bytes" {
		t.Fatalf("record %q, headers %v, %v; want the bytes there are, marked truncated", v, hs, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("%d bytes claiming %d allocated %d MiB", len(data), maxDelimitedRecord, n>>20)
	}
}
