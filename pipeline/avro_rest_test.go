package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluicehq/sluice/row/avro"
)

// TestAvroPassThrough: an avro → avro filter pipeline whose sink writes
// the input's schema copies the fields no step names as bytes. Records
// written with the reader schema come out byte for byte as they went in;
// records of an older writer schema (v1: a field v2 dropped, an int that
// v2 widens, a field v2 adds with a default) are resolved to the reader
// schema first, and come out as goavro writes them resolved; a json sink
// beside it gets every field as JSON.
func TestAvroPassThrough(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s1, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV1, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV2, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := goavro.NewCodec(orderV1)
	c2, _ := goavro.NewCodec(orderV2)
	var values, want [][]byte // want: the payloads of the kept records, in v2
	for i := range 12 {
		status := []string{"PAID", "NEW", "CANCELLED"}[i%3]
		native := map[string]any{"order_id": int64(i), "user": fmt.Sprintf("u%d", i), "status": status,
			"price": big.NewRat(int64(100+i), 4), "ts": time.UnixMilli(int64(1000 * i)).UTC()}
		var b []byte
		var hdr []byte
		if i%2 == 0 {
			native["qty"], native["legacy"] = int32(i), "x"
			b, err = c1.BinaryFromNative(nil, native)
			hdr = avro.AppendHeader(nil, uint32(s1.ID))
		} else {
			native["qty"], native["channel"] = int64(i), "app"
			b, err = c2.BinaryFromNative(nil, native)
			hdr = avro.AppendHeader(nil, uint32(s2.ID))
		}
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, append(hdr, b...))
		if status != "PAID" {
			continue
		}
		if i%2 == 0 {
			delete(native, "legacy")
			native["qty"], native["channel"] = int64(i), "web"
			if b, err = c2.BinaryFromNative(nil, native); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, b)
	}
	l := openTestLog(t)
	appendTopic(t, l, "orders", 1, values)
	dir := t.TempDir()
	inline := strings.ReplaceAll(orderV2, "\n", " ")
	spec := fmt.Sprintf(`
name: passthrough
registry: {url: %s}
source:
  log: {topic: orders, bounded: true}
  format: avro
  schema: {inline: '%s'}
steps:
  - filter: status == "PAID"
sinks:
  - log: {topic: paid}
    format: avro
    schema: {inline: '%s'}
  - file: {path: %s/json}
`, reg.URL(), inline, inline, dir)
	s, err := Parse(filepath.Join(dir, "p.yaml"), []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if !p.input.avroRaw {
		t.Fatal("the pipeline does not pass the unnamed fields through")
	}
	if got := p.InputSchema().Names(); len(got) != 1 || got[0] != "status" {
		t.Errorf("decoded fields %v, want only status", got)
	}
	if err := Run(ctx, p, &Host{Log: l, DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	msgs := committedLog(t, l, "paid")
	if len(msgs) != len(want) {
		t.Fatalf("%d records, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		_, payload, err := avro.SplitHeader(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(payload, want[i]) {
			t.Errorf("record %d: %x, want %x", i, payload, want[i])
		}
		if i%2 == 1 && !bytes.Equal(payload, values[3*i][5:]) {
			t.Errorf("record %d: not the input's bytes", i)
		}
	}
	lines := strings.Split(strings.TrimSpace(readDir(t, filepath.Join(dir, "json"))), "\n")
	sort.Strings(lines)
	if len(lines) != 4 || lines[0] != `{"status":"PAID","order_id":0,"user":"u0","qty":0,"price":25.0,"ts":"1970-01-01T00:00:00.000Z","channel":"web"}` ||
		lines[1] != `{"status":"PAID","order_id":3,"user":"u3","qty":3,"price":25.75,"ts":"1970-01-01T00:00:03.000Z","channel":"app"}` {
		t.Errorf("json lines:\n%s", strings.Join(lines, "\n"))
	}
}

// TestAvroPassThroughPlan: fields pass through as bytes only where every
// sink can take them; otherwise every field is decoded as before.
func TestAvroPassThroughPlan(t *testing.T) {
	inline := strings.ReplaceAll(orderV2, "\n", " ")
	other := strings.ReplaceAll(strings.ReplaceAll(orderV2, `"channel","type":"string","default":"web"`, `"channel","type":"string","default":"app"`), "\n", " ")
	other = strings.Replace(other, `{"name":"user","type":"string"},`, ``, 1)
	for _, c := range []struct {
		name, sinks, steps, extra string
		raw                       bool
	}{
		{"same schema", `[{log: {topic: o}, format: avro, schema: {inline: '` + inline + `'}}]`, `[{filter: qty > 1}]`, "", true},
		{"derived", `[{log: {topic: o}, format: avro}, {stdout: {}}]`, `[{filter: qty > 1}]`, "", true},
		{"other schema", `[{log: {topic: o}, format: avro, schema: {inline: '` + other + `'}}]`, `[{filter: qty > 1}]`, "", false},
		{"dead letters", `[{log: {topic: o}, format: avro}]`, `[{filter: qty > 1}]`, "errors: {tolerance: all, dead_letter: {stdout: {}}}\n", false},
		{"mapped", `[{log: {topic: o}, format: avro}]`, `[{map: {q: qty}}]`, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := fmt.Sprintf("source: {log: {topic: in}, format: avro, schema: {inline: '%s'}}\nsteps: %s\nsinks: %s\n%s", inline, c.steps, c.sinks, c.extra)
			s, err := Parse("p.yaml", []byte(spec))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			if p.input.avroRaw != c.raw {
				t.Errorf("pass-through %v, want %v", p.input.avroRaw, c.raw)
			}
		})
	}
}
