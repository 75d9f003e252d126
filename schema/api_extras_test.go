package schema

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestPagination: offset and limit page the lists as Confluent's
// registry does (franz-go's client sends them).
func TestPagination(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	for i := range 5 {
		must[int](t)(cl.RegisterSchema(ctx, fmt.Sprintf("s%d", i), sr.Schema{Schema: `"string"`}, -1, -1))
	}
	for i := range 4 {
		must[int](t)(cl.RegisterSchema(ctx, "v", sr.Schema{Schema: fmt.Sprintf(`{"type":"enum","name":"E","symbols":["A"],"doc":"%d"}`, i)}, -1, -1))
	}
	for _, c := range []struct {
		off, lim int
		want     []string
	}{
		{0, -1, []string{"s0", "s1", "s2", "s3", "s4", "v"}},
		{1, 2, []string{"s1", "s2"}},
		{4, 10, []string{"s4", "v"}},
		{9, -1, []string{}},
	} {
		pctx := sr.WithParams(ctx, sr.Offset(c.off), sr.Limit(c.lim))
		got := must[[]string](t)(cl.Subjects(pctx))
		if !slices.Equal(got, c.want) {
			t.Errorf("subjects offset %d limit %d: %v, want %v", c.off, c.lim, got, c.want)
		}
	}
	if vs := must[[]int](t)(cl.SubjectVersions(sr.WithParams(ctx, sr.Offset(1), sr.Limit(2)), "v")); !slices.Equal(vs, []int{2, 3}) {
		t.Errorf("versions page: %v", vs)
	}
	if all := must[[]sr.SubjectSchema](t)(cl.AllSchemas(sr.WithParams(ctx, sr.Offset(5), sr.Limit(3)))); len(all) != 3 || all[0].Subject != "v" || all[0].Version != 1 {
		t.Errorf("schemas page: %+v", all)
	}
	code, _, m := call(t, NewHandler(tr.reg, nil), "GET", "/subjects?limit=x", "", "")
	if code != 400 || m["error_code"] != float64(400) {
		t.Errorf("limit=x: %d %v", code, m)
	}
}

// TestFetchMaxIDAndSerialized: fetchMaxId adds the highest id to a
// schema by id, and format=serialized gives a Protobuf schema as its
// base64 FileDescriptorProto (by id and by subject version), which
// google.golang.org/protobuf builds into the same messages; other types
// ignore the format.
func TestFetchMaxIDAndSerialized(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	money := "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; }\n"
	must[int](t)(cl.RegisterSchema(ctx, "money.proto", sr.Schema{Type: sr.TypeProtobuf, Schema: money}, -1, -1))
	order := "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { common.Money total = 1; google.protobuf.Timestamp at = 2; }\n"
	id := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeProtobuf, Schema: order, References: []sr.SchemaReference{{Name: "money.proto", Subject: "money.proto", Version: 1}}}, -1, -1))
	avroID := must[int](t)(cl.RegisterSchema(ctx, "a", sr.Schema{Schema: `"long"`}, -1, -1))

	h := NewHandler(tr.reg, nil)
	code, _, m := call(t, h, "GET", fmt.Sprintf("/schemas/ids/%d?fetchMaxId=true", id), "", "")
	if code != 200 || m["maxId"] != float64(avroID) || m["schema"] != order {
		t.Errorf("fetchMaxId: %d %v", code, m)
	}
	if _, _, m := call(t, h, "GET", fmt.Sprintf("/schemas/ids/%d", id), "", ""); m["maxId"] != nil {
		t.Errorf("maxId without fetchMaxId: %v", m)
	}
	for _, path := range []string{fmt.Sprintf("/schemas/ids/%d?format=serialized", id), "/subjects/orders-value/versions/1?format=serialized"} {
		code, _, m := call(t, h, "GET", path, "", "")
		text, _ := m["schema"].(string)
		raw, err := base64.StdEncoding.DecodeString(text)
		if code != 200 || err != nil {
			t.Fatalf("%s: %d %v (%v)", path, code, m, err)
		}
		var fdp descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fdp); err != nil {
			t.Fatalf("%s: not a FileDescriptorProto: %v", path, err)
		}
		// Build it with the official library, the reference resolved
		// from its own serialized form.
		_, _, mm := call(t, h, "GET", "/subjects/money.proto/versions/1?format=serialized", "", "")
		mraw, _ := base64.StdEncoding.DecodeString(mm["schema"].(string))
		var mfdp descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(mraw, &mfdp); err != nil {
			t.Fatal(err)
		}
		mfdp.Name = proto.String("money.proto")
		files := new(protoregistry.Files)
		mfd, err := protodesc.NewFile(&mfdp, files)
		if err != nil {
			t.Fatal(err)
		}
		if err := files.RegisterFile(mfd); err != nil {
			t.Fatal(err)
		}
		ts, _ := protoregistry.GlobalFiles.FindFileByPath("google/protobuf/timestamp.proto")
		if err := files.RegisterFile(ts); err != nil {
			t.Fatal(err)
		}
		fd, err := protodesc.NewFile(&fdp, files)
		if err != nil {
			t.Fatalf("%s: the library cannot build it: %v", path, err)
		}
		if md := fd.Messages().ByName("Order"); md == nil || md.Fields().ByName("total").Message().FullName() != "common.Money" {
			t.Errorf("%s: descriptor %v", path, fd)
		}
	}
	if _, _, m := call(t, h, "GET", fmt.Sprintf("/schemas/ids/%d?format=serialized", avroID), "", ""); m["schema"] != `"long"` {
		t.Errorf("format=serialized on avro: %v", m)
	}
}

// serialize returns a .proto text compiled and serialized as Confluent's
// Python serializer registers schemas: base64 of the FileDescriptorProto.
func serialize(t *testing.T, name string, srcs map[string]string) string {
	t.Helper()
	fd, err := CompileProtobuf(srcs, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestSerializedProtobufRegistration: a Protobuf schema registered as a
// base64 FileDescriptorProto (what Confluent's Python serializer sends)
// is accepted, with references to schemas registered as text, is checked
// for compatibility against text versions like any other, and is the
// same schema as its text when compiled alike.
func TestSerializedProtobufRegistration(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	money := "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; }\n"
	must[int](t)(cl.RegisterSchema(ctx, "money.proto", sr.Schema{Type: sr.TypeProtobuf, Schema: money}, -1, -1))
	ref := []sr.SchemaReference{{Name: "money.proto", Subject: "money.proto", Version: 1}}
	v1 := "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nmessage Order { int64 id = 1; common.Money total = 2; }\n"
	id1 := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeProtobuf, Schema: v1, References: ref}, -1, -1))
	v2 := "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nmessage Order { int64 id = 1; common.Money total = 2; string note = 3; }\n"
	v2b64 := serialize(t, "order.proto", map[string]string{"order.proto": v2, "money.proto": money})
	id2 := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeProtobuf, Schema: v2b64, References: ref}, -1, -1))
	if id2 == id1 {
		t.Fatal("v2 got v1's id")
	}
	// The same descriptor again is the same schema.
	if again := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeProtobuf, Schema: v2b64, References: ref}, -1, -1)); again != id2 {
		t.Errorf("re-registering the descriptor gave id %d, want %d", again, id2)
	}
	// An incompatible change (id's type group) is refused.
	bad := serialize(t, "order.proto", map[string]string{"order.proto": strings.Replace(v2, "int64 id", "string id", 1), "money.proto": money})
	_, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeProtobuf, Schema: bad, References: ref}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
	// Without its reference it does not compile.
	_, err = cl.RegisterSchema(ctx, "other", sr.Schema{Type: sr.TypeProtobuf, Schema: v2b64}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
	// Garbage that is base64 of no descriptor is an invalid schema.
	_, err = cl.RegisterSchema(ctx, "other", sr.Schema{Type: sr.TypeProtobuf, Schema: base64.StdEncoding.EncodeToString([]byte{0, 0, 0})}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
}
