package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/connector"
)

// TestProtobufSinkReferences: a protobuf sink whose .proto imports
// another file (which imports a third) registers the imported files
// under their import paths and its own schema with references to them.
// franz-go's client reads the schema of each output record's id with its
// references back, the texts compile, and the records decode with the
// official library; a Sluice source without a file reads the topic
// through the references too. Against franz-go's fake registry and
// Sluice's own (as `sluice serve` serves it).
func TestProtobufSinkReferences(t *testing.T) {
	l, dir := openProtoTestLog(t)
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(50, false)
	var msgs []connector.Message
	want := map[string]int64{}
	for _, o := range orders {
		msgs = append(msgs, connector.Message{Value: encodeOrder(t, v2, o)})
		want[o.user] += o.cents
	}
	appendLog(t, l, "ref-orders", msgs)
	paid := protoTestdata(t, filepath.Join("refs", "paid.proto"))
	for regName, url := range testRegistries(t, l) {
		t.Run(regName, func(t *testing.T) {
			out := "paid-" + regName
			j := startSpec(t, fmt.Sprintf(`
source:
  log: {topic: ref-orders, bounded: true}
  format: protobuf
  schema: {file: %s, message: shop.Order}
steps:
  - map: {user: user, cents: amount_cents, created: created}
sink:
  log: {topic: %s, partitions: 1}
  format: protobuf
  registry: {url: %s}
  schema: {file: %s, message: shop.Paid}
`, protoTestdata(t, "order_v2.proto"), out, url, paid), &Host{DataDir: dir, Log: l})
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			cl, err := sr.NewClient(sr.URLs(url))
			if err != nil {
				t.Fatal(err)
			}
			// The imports are subjects of their own, the money one
			// referencing the currency one.
			money, err := cl.SchemaByVersion(ctx, "common/money.proto", -1)
			if err != nil {
				t.Fatalf("common/money.proto was not registered: %v", err)
			}
			if len(money.References) != 1 || money.References[0].Name != "common/currency.proto" || money.References[0].Subject != "common/currency.proto" {
				t.Errorf("common/money.proto references %+v", money.References)
			}
			main, err := cl.SchemaByVersion(ctx, out+"-value", -1)
			if err != nil {
				t.Fatal(err)
			}
			if len(main.References) != 1 || main.References[0] != (sr.SchemaReference{Name: "common/money.proto", Subject: "common/money.proto", Version: money.Version}) {
				t.Errorf("the output schema references %+v", main.References)
			}
			// Read every record with the schema its id names, resolved
			// through franz-go's client.
			got := map[string]int64{}
			var h sr.ConfluentHeader
			var md protoreflect.MessageDescriptor
			for _, m := range committedLog(t, l, out) {
				id, rest, err := h.DecodeID(m.Value)
				if err != nil || id != main.ID {
					t.Fatalf("record id %d, %v; want %d", id, err, main.ID)
				}
				idx, rest, err := h.DecodeIndex(rest, 8)
				if err != nil || len(idx) != 1 || idx[0] != 0 {
					t.Fatalf("indexes %v, %v", idx, err)
				}
				if md == nil {
					md = compileFromRegistry(t, cl, id, "shop.Paid")
				}
				msg := dynamicpb.NewMessage(md)
				if err := proto.Unmarshal(rest, msg); err != nil {
					t.Fatal(err)
				}
				got[msg.Get(md.Fields().ByName("user")).String()] += msg.Get(md.Fields().ByName("cents")).Int()
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", got, want)
			}
			// And Sluice reads it back by writer schema, references
			// fetched from the registry.
			back := out + "-back"
			j = startSpec(t, fmt.Sprintf(`
registry: {url: %s}
source:
  log: {topic: %s, bounded: true}
  format: protobuf
steps:
  - map: {user: user, cents: cents, total_given: total != null}
sink: {log: {topic: %s, partitions: 1}}
`, url, out, back), &Host{DataDir: dir, Log: l})
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			again := map[string]int64{}
			for _, m := range committedLog(t, l, back) {
				var r struct {
					User       string `json:"user"`
					Cents      int64  `json:"cents"`
					TotalGiven bool   `json:"total_given"`
				}
				if err := json.Unmarshal(m.Value, &r); err != nil || r.TotalGiven {
					t.Fatalf("%s: %v", m.Value, err)
				}
				again[r.User] += r.Cents
			}
			if fmt.Sprint(again) != fmt.Sprint(want) {
				t.Errorf("read back by writer schema: %v, want %v", again, want)
			}
		})
	}
}

// compileFromRegistry fetches schema id and its references (transitively)
// with franz-go's client and compiles them, independently of Sluice's
// fetching code.
func compileFromRegistry(t *testing.T, cl *sr.Client, id int, msg string) protoreflect.MessageDescriptor {
	t.Helper()
	ctx := context.Background()
	s, err := cl.SchemaByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[string]string{"main.proto": s.Schema}
	var add func(refs []sr.SchemaReference)
	add = func(refs []sr.SchemaReference) {
		for _, r := range refs {
			ss, err := cl.SchemaByVersion(ctx, r.Subject, r.Version)
			if err != nil {
				t.Fatalf("reference %+v: %v", r, err)
			}
			srcs[r.Name] = ss.Schema.Schema
			add(ss.References)
		}
	}
	add(s.References)
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(srcs)})}
	files, err := c.Compile(ctx, "main.proto")
	if err != nil {
		t.Fatalf("the registry's texts do not compile: %v", err)
	}
	md, ok := files[0].FindDescriptorByName(protoreflect.FullName(msg)).(protoreflect.MessageDescriptor)
	if !ok {
		t.Fatalf("no message %s", msg)
	}
	return md
}

// TestProtobufSerializedWriterSchema: records whose writer schema was
// registered as a base64 FileDescriptorProto (as Confluent's Python
// serializer registers) are read by writer schema like any other.
func TestProtobufSerializedWriterSchema(t *testing.T) {
	l, dir := openProtoTestLog(t)
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	b, err := proto.Marshal(protodesc.ToFileDescriptorProto(v2.ParentFile()))
	if err != nil {
		t.Fatal(err)
	}
	url := testRegistries(t, l)["sluice"]
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	id := registerTest(t, cl, "ser-orders-value", base64.StdEncoding.EncodeToString(b))
	var h sr.ConfluentHeader
	hdr, _ := h.AppendEncode(nil, id, []int{0})
	orders := makeOrders(40, false)
	var msgs []connector.Message
	want := int64(0)
	for _, o := range orders {
		msgs = append(msgs, connector.Message{Value: append(bytes.Clone(hdr), encodeOrder(t, v2, o)...)})
		want += o.cents
	}
	appendLog(t, l, "ser-orders", msgs)
	j := startSpec(t, fmt.Sprintf(`
registry: {url: %s}
source: {log: {topic: ser-orders, bounded: true}, format: protobuf}
steps: [{map: {cents: amount_cents}}]
sink: {log: {topic: ser-out, partitions: 1}}
`, url), &Host{DataDir: dir, Log: l})
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	got := int64(0)
	out := committedLog(t, l, "ser-out")
	for _, m := range out {
		var r struct{ Cents int64 }
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		got += r.Cents
	}
	if len(out) != len(orders) || got != want {
		t.Errorf("%d records, %d cents; want %d, %d", len(out), got, len(orders), want)
	}
}
