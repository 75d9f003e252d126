package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2/ocf"
	"github.com/linkedin/goavro/v2"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// writeOCF writes an object container file with goavro (an Avro
// implementation Sluice does not use), one block per `block` records.
func writeOCF(t *testing.T, path, schema, codec string, recs []map[string]any, block int) {
	t.Helper()
	var buf bytes.Buffer
	w, err := goavro.NewOCFWriter(goavro.OCFConfig{W: &buf, Schema: schema, CompressionName: codec})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += block {
		var batch []any
		for _, r := range recs[i:min(i+block, len(recs))] {
			batch = append(batch, r)
		}
		if err := w.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ocfOrders(from, to int, v1 bool) []map[string]any {
	var out []map[string]any
	for i := from; i < to; i++ {
		r := map[string]any{"order_id": int64(i), "user": fmt.Sprintf("u%d", i%3), "status": []string{"PAID", "NEW"}[i%2],
			"price": big.NewRat(int64(i*25), 100), "ts": time.UnixMilli(int64(1000 * i)).UTC()}
		if v1 {
			r["qty"], r["legacy"] = int32(i), "x"
		} else {
			r["qty"], r["channel"] = int64(i), "app"
		}
		out = append(out, r)
	}
	return out
}

// readOCFDir reads every committed part file of dir with hamba's ocf
// decoder and returns the records and the writer schemas' names.
func readOCFDir(t *testing.T, dir string) ([]map[string]any, []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !strings.HasSuffix(e.Name(), ".avro") {
			t.Errorf("part file %s: want the .avro suffix", e.Name())
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		d, err := ocf.NewDecoder(f)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		names = append(names, string(d.Metadata()["avro.schema"]))
		for d.HasNext() {
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			recs = append(recs, m)
		}
		if err := d.Error(); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		f.Close()
	}
	return recs, names
}

// TestAvroContainerFiles: container files written by goavro (two writer
// schemas, deflate and snappy, several blocks) are read with the spec's
// reader schema, filtered, and written as container files that hamba's
// ocf reader reads back.
func TestAvroContainerFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.avsc"), []byte(orderV2), 0o644); err != nil {
		t.Fatal(err)
	}
	writeOCF(t, filepath.Join(dir, "in", "a.avro"), orderV1, goavro.CompressionDeflateLabel, ocfOrders(0, 10, true), 3)
	writeOCF(t, filepath.Join(dir, "in", "b.avro"), orderV2, goavro.CompressionSnappyLabel, ocfOrders(10, 20, false), 4)
	spec := fmt.Sprintf(`
name: ocf
source:
  file: {path: %[1]s/in}
  format: avro
  schema: {file: order.avsc}
steps:
  - filter: status == "PAID"
sinks:
  - file: {path: %[1]s/out}
    format: avro
  - file: {path: %[1]s/json}
`, dir)
	s, err := Parse(filepath.Join(dir, "ocf.yaml"), []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), p, &Host{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	recs, schemas := readOCFDir(t, filepath.Join(dir, "out"))
	if len(recs) != 10 {
		t.Fatalf("%d records, want 10: %v", len(recs), recs)
	}
	for _, sc := range schemas {
		// Derived, with the input's field types (enum, decimal).
		if !strings.Contains(sc, `"symbols":["NEW","PAID","CANCELLED","REFUNDED"]`) || !strings.Contains(sc, `"logicalType":"decimal"`) {
			t.Errorf("output schema %s: want the input's field types", sc)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i]["order_id"].(int64) < recs[j]["order_id"].(int64) })
	for k, r := range recs {
		i := int64(2 * k)
		want := "app"
		if i < 10 {
			want = "web" // v1 lacks it: the reader schema's default
		}
		if r["order_id"] != i || r["status"] != "PAID" || r["qty"] != i || r["channel"] != want || r["user"] != fmt.Sprintf("u%d", i%3) {
			t.Errorf("record %d: %v", k, r)
		}
		if ts, ok := r["ts"].(time.Time); !ok || ts.UnixMilli() != 1000*i {
			t.Errorf("record %d: ts %v", k, r["ts"])
		}
	}
	lines := strings.Split(strings.TrimSpace(readDir(t, filepath.Join(dir, "json"))), "\n")
	if len(lines) != 10 {
		t.Errorf("json lines:\n%s", strings.Join(lines, "\n"))
	}
}

// TestAvroContainerBadFiles: a file that is not a container, a block
// whose sync marker is wrong and a block whose records are cut short are
// dead-lettered with their reasons; the good records all arrive.
func TestAvroContainerBadFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeOCF(t, filepath.Join(in, "a-good.avro"), orderV2, goavro.CompressionNullLabel, ocfOrders(0, 6, false), 2)
	good, err := os.ReadFile(filepath.Join(in, "a-good.avro"))
	if err != nil {
		t.Fatal(err)
	}
	// b: the last byte (of the last block's sync marker) is wrong: its
	// first two blocks are read, the third is dead-lettered.
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0xff
	os.WriteFile(filepath.Join(in, "b-badsync.avro"), bad, 0o644)
	os.WriteFile(filepath.Join(in, "c-text.avro"), []byte("order_id,user\n1,u\n"), 0o644)
	// d: one block of 3 records whose count says 4.
	var one bytes.Buffer
	w, _ := goavro.NewOCFWriter(goavro.OCFConfig{W: &one, Schema: orderV2})
	hdr := one.Len()
	var batch []any
	for _, r := range ocfOrders(100, 103, false) {
		batch = append(batch, r)
	}
	if err := w.Append(batch); err != nil {
		t.Fatal(err)
	}
	d := one.Bytes()
	if d[hdr] != 6 { // zigzag 3
		t.Fatalf("block count byte %d", d[hdr])
	}
	d[hdr] = 8 // zigzag 4
	os.WriteFile(filepath.Join(in, "d-count.avro"), d, 0o644)

	run := func(tolerance string) (string, string, error) {
		out := t.TempDir()
		dl := ""
		if tolerance == "all" {
			dl = fmt.Sprintf(", dead_letter: {file: {path: %s/dl}}", out)
		}
		spec := fmt.Sprintf(`
name: bad
source: {file: {path: %s}, format: avro}
sinks: [{file: {path: %s/json}}]
errors: {tolerance: %s%s}
`, in, out, tolerance, dl)
		s, err := Parse("bad.yaml", []byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		err = Run(context.Background(), p, &Host{DataDir: out})
		if err != nil {
			return "", "", err
		}
		return readDir(t, filepath.Join(out, "json")), readDir(t, filepath.Join(out, "dl")), nil
	}
	rows, dl, err := run("all")
	if err != nil {
		t.Fatal(err)
	}
	// a: 6, b: 4 (two good blocks), d: 3 records then the count's
	// missing fourth.
	if n := strings.Count(rows, "\n"); n != 13 {
		t.Errorf("%d rows, want 13:\n%s", n, rows)
	}
	for _, want := range []string{"b-badsync.avro", "sync marker", "c-text.avro", "no Avro magic", "d-count.avro", "truncated"} {
		if !strings.Contains(dl, want) {
			t.Errorf("dead letters lack %q:\n%s", want, dl)
		}
	}
	if n := strings.Count(dl, "\n"); n != 3 {
		t.Errorf("%d dead letters, want 3:\n%s", n, dl)
	}
	if _, _, err := run("none"); err == nil || !strings.Contains(err.Error(), "avro") {
		t.Errorf("tolerance none: %v", err)
	}
}

// TestAvroContainerResume: a split's position inside a container file
// (after some records of a block) resumes at the next record.
func TestAvroContainerResume(t *testing.T) {
	dir := t.TempDir()
	writeOCF(t, filepath.Join(dir, "a.avro"), orderV2, goavro.CompressionDeflateLabel, ocfOrders(0, 10, false), 4)
	writeOCF(t, filepath.Join(dir, "b.avro"), orderV2, goavro.CompressionNullLabel, ocfOrders(10, 15, false), 3)
	src, err := file.NewSource(file.SourceConfig{Path: dir, Records: ocfFraming{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	readAll := func(sp interface {
		Read(context.Context, []connector.Message) (int, error)
	}, max int) []string {
		var got []string
		buf := make([]connector.Message, 3)
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
	all := readAll(splits[0], -1)
	if len(all) != 15 {
		t.Fatalf("%d records, want 15", len(all))
	}
	for _, cut := range []int{0, 1, 5, 10, 12, 15} {
		splits, _ := src.Splits(ctx, 1)
		first := readAll(splits[0], cut)
		pos := splits[0].Position()
		again, _ := src.Splits(ctx, 1)
		if err := again[0].Seek(pos); err != nil {
			t.Fatal(err)
		}
		rest := readAll(again[0], -1)
		if got := append(first, rest...); strings.Join(got, " ") != strings.Join(all, " ") {
			t.Errorf("cut at %d: got %d records, want the same 15 in order", cut, len(got))
		}
	}
}

// TestAvroContainerHTTP: an http source takes object container files as
// request bodies (a corrupt one is refused with a 400 and the reason);
// under exactly_once the file sink's container parts are committed
// through the two-phase commit before the client's 200.
func TestAvroContainerHTTP(t *testing.T) {
	out := t.TempDir()
	yaml := fmt.Sprintf(`
name: http-ocf
source:
  http: {addr: "127.0.0.1:0"}
  format: avro
steps:
  - map: {order_id: order_id, user: user, qty: qty}
sink:
  file: {path: %q}
  format: avro
parallelism: 1
delivery: exactly_once
checkpoint: {interval: 20ms, dir: %q}
`, filepath.Join(out, "sink"), filepath.Join(out, "checkpoints"))
	spec, err := Parse("http-ocf.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var src *nethttp.Source
	host := &Host{Stdout: io.Discard, OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
	j, err := p.Start(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Listen(); err != nil {
		t.Fatal(err)
	}
	post := func(body []byte) (int, string) {
		resp, err := http.Post("http://"+src.Addr()+"/ingest", "avro/binary", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for req := range 3 {
		path := filepath.Join(t.TempDir(), "b.avro")
		writeOCF(t, path, orderV2, goavro.CompressionDeflateLabel, ocfOrders(10*req, 10*req+4, false), 3)
		body, _ := os.ReadFile(path)
		if code, msg := post(body); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", req, code, msg)
		}
		recs, _ := readOCFDir(t, filepath.Join(out, "sink"))
		if len(recs) != 4*(req+1) {
			t.Fatalf("request %d answered with %d records committed, want %d", req, len(recs), 4*(req+1))
		}
	}
	if code, msg := post([]byte("{\"order_id\":1}\n")); code != http.StatusBadRequest || !strings.Contains(msg, "no Avro magic") {
		t.Errorf("a JSON body: %d %s", code, msg)
	}
	src.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	recs, _ := readOCFDir(t, filepath.Join(out, "sink"))
	sum := int64(0)
	for _, r := range recs {
		sum += r["order_id"].(int64)
	}
	if len(recs) != 12 || sum != (0+1+2+3)+(10+11+12+13)+(20+21+22+23) {
		t.Errorf("%d records, order_id sum %d: %v", len(recs), sum, recs)
	}
}
