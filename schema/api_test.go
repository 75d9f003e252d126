package schema

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"}]}`
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}`
	// orderBad adds a field without a default: not BACKWARD compatible.
	orderBad = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"qty","type":"int"}]}`
)

func TestRegisterLookupAndVersions(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl

	id1 := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: orderV1}, -1, -1))
	// The same schema again, with other white space: the same id, no new version.
	again := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: strings.ReplaceAll(orderV1, ",", " , ")}, -1, -1))
	if again != id1 {
		t.Fatalf("re-registering gave id %d, want %d", again, id1)
	}
	id2 := must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: orderV2}, -1, -1))
	if id2 <= id1 {
		t.Fatalf("ids not increasing: %d then %d", id1, id2)
	}
	if vs := must[[]int](t)(cl.SubjectVersions(ctx, "orders-value")); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions %v", vs)
	}
	latest := must[sr.SubjectSchema](t)(cl.SchemaByVersion(ctx, "orders-value", -1))
	if latest.Version != 2 || latest.ID != id2 || latest.Schema.Schema != orderV2 || latest.Type != sr.TypeAvro {
		t.Fatalf("latest %+v", latest)
	}
	v1 := must[sr.SubjectSchema](t)(cl.SchemaByVersion(ctx, "orders-value", 1))
	if v1.ID != id1 || v1.Subject != "orders-value" {
		t.Fatalf("version 1 %+v", v1)
	}
	if text := must[string](t)(cl.SchemaTextByVersion(ctx, "orders-value", 2)); text != orderV2 {
		t.Fatalf("schema text %q", text)
	}
	if s := must[sr.Schema](t)(cl.SchemaByID(ctx, id1)); s.Schema != orderV1 {
		t.Fatalf("schema by id %+v", s)
	}
	if text := must[string](t)(cl.SchemaTextByID(ctx, id2)); text != orderV2 {
		t.Fatalf("schema text by id %q", text)
	}
	got := must[sr.SubjectSchema](t)(cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: orderV1}))
	if got.ID != id1 || got.Version != 1 {
		t.Fatalf("lookup %+v", got)
	}
	_, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: `"string"`})
	wantCode(t, err, CodeSchemaNotFound)
	_, err = cl.LookupSchema(ctx, "nope", sr.Schema{Schema: orderV1})
	wantCode(t, err, CodeSubjectNotFound)

	// The same schema under another subject keeps its global id.
	other := must[sr.SubjectSchema](t)(cl.CreateSchema(ctx, "archive-value", sr.Schema{Schema: orderV1}))
	if other.ID != id1 || other.Version != 1 {
		t.Fatalf("same schema in another subject: %+v", other)
	}
	if subs := must[[]string](t)(cl.Subjects(ctx)); !slices.Equal(subs, []string{"archive-value", "orders-value"}) {
		t.Fatalf("subjects %v", subs)
	}
	if subs := must[[]string](t)(cl.Subjects(sr.WithParams(ctx, sr.SubjectPrefix("ord")))); !slices.Equal(subs, []string{"orders-value"}) {
		t.Fatalf("subjects by prefix %v", subs)
	}
	uses := must[[]sr.SubjectVersion](t)(cl.SchemaVersionsByID(ctx, id1))
	if !slices.Equal(uses, []sr.SubjectVersion{{Subject: "archive-value", Version: 1}, {Subject: "orders-value", Version: 1}}) {
		t.Fatalf("versions of id %d: %v", id1, uses)
	}
	if subs := must[[]string](t)(cl.SubjectsByID(ctx, id1)); !slices.Equal(subs, []string{"archive-value", "orders-value"}) {
		t.Fatalf("subjects of id %d: %v", id1, subs)
	}
	all := must[[]sr.SubjectSchema](t)(cl.AllSchemas(sr.WithParams(ctx, sr.LatestOnly)))
	if len(all) != 2 || all[1].Version != 2 {
		t.Fatalf("all schemas, latest only: %+v", all)
	}
	types := must[[]sr.SchemaType](t)(cl.SupportedTypes(ctx))
	if !slices.Equal(types, []sr.SchemaType{sr.TypeAvro, sr.TypeProtobuf, sr.TypeJSON}) {
		t.Fatalf("types %v", types)
	}
	_, err = cl.SchemaByVersion(ctx, "orders-value", 3)
	wantCode(t, err, CodeVersionNotFound)
	_, err = cl.SchemaByID(ctx, 999)
	wantCode(t, err, CodeSchemaNotFound)
}

func TestIncompatibleRegistrationRefused(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: orderV1}, -1, -1))

	_, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: orderBad}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
	var re *sr.ResponseError
	_ = errorsAs(err, &re)
	if re.StatusCode != 409 || !strings.Contains(re.Message, "qty") {
		t.Fatalf("status %d message %q", re.StatusCode, re.Message)
	}
	if vs := must[[]int](t)(cl.SubjectVersions(ctx, "orders-value")); !slices.Equal(vs, []int{1}) {
		t.Fatalf("a refused schema made a version: %v", vs)
	}

	res := must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "orders-value", -1, sr.Schema{Schema: orderBad}))
	if res.Is || len(res.Messages) == 0 {
		t.Fatalf("check of an incompatible schema: %+v", res)
	}
	res = must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(ctx, "orders-value", 1, sr.Schema{Schema: orderV2}))
	if !res.Is {
		t.Fatalf("check of a compatible schema: %+v", res)
	}
	res = must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(ctx, "orders-value", -2, sr.Schema{Schema: orderV2}))
	if !res.Is {
		t.Fatalf("check against all versions: %+v", res)
	}
	_, err = cl.CheckCompatibility(ctx, "nope", -1, sr.Schema{Schema: orderV2})
	wantCode(t, err, CodeSubjectNotFound)
	_, err = cl.CheckCompatibility(ctx, "orders-value", 7, sr.Schema{Schema: orderV2})
	wantCode(t, err, CodeVersionNotFound)

	// FORWARD accepts it (the old schema reads the new data); a subject
	// level overrides the global one.
	r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "orders-value")
	if r[0].Err != nil || r[0].Level != sr.CompatForward {
		t.Fatalf("set compatibility: %+v", r[0])
	}
	must[int](t)(cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: orderBad}, -1, -1))
}

func TestDeleteSoftAndHard(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	id1 := must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderV1}, -1, -1))
	id2 := must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderV2}, -1, -1))

	wantCode(t, cl.DeleteSchema(ctx, "s", 1, sr.HardDelete), CodeVersionNotSoftDeleted)
	if err := cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	wantCode(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete), CodeVersionSoftDeleted)
	if vs := must[[]int](t)(cl.SubjectVersions(ctx, "s")); !slices.Equal(vs, []int{2}) {
		t.Fatalf("versions after a soft delete: %v", vs)
	}
	if vs := must[[]int](t)(cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "s")); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions with deleted: %v", vs)
	}
	_, err := cl.SchemaByVersion(ctx, "s", 1)
	wantCode(t, err, CodeVersionNotFound)
	if ss := must[sr.SubjectSchema](t)(cl.SchemaByVersion(sr.WithParams(ctx, sr.ShowDeleted), "s", 1)); ss.ID != id1 {
		t.Fatalf("soft-deleted version with deleted=true: %+v", ss)
	}
	// A soft-deleted schema is still readable by id: consumers of old data
	// need it.
	must[sr.Schema](t)(cl.SchemaByID(ctx, id1))

	_, err = cl.DeleteSubject(ctx, "s", sr.HardDelete)
	wantCode(t, err, CodeSubjectNotSoftDeleted)
	if vs := must[[]int](t)(cl.DeleteSubject(ctx, "s", sr.SoftDelete)); !slices.Equal(vs, []int{2}) {
		t.Fatalf("soft delete of the subject returned %v", vs)
	}
	_, err = cl.DeleteSubject(ctx, "s", sr.SoftDelete)
	wantCode(t, err, CodeSubjectSoftDeleted)
	if subs := must[[]string](t)(cl.Subjects(ctx)); len(subs) != 0 {
		t.Fatalf("subjects after a soft delete: %v", subs)
	}
	if subs := must[[]string](t)(cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted))); !slices.Equal(subs, []string{"s"}) {
		t.Fatalf("subjects with deleted: %v", subs)
	}
	if subs := must[[]string](t)(cl.Subjects(sr.WithParams(ctx, sr.DeletedOnly))); !slices.Equal(subs, []string{"s"}) {
		t.Fatalf("subjects deleted only: %v", subs)
	}
	_, err = cl.SubjectVersions(ctx, "s")
	wantCode(t, err, CodeSubjectNotFound)

	if vs := must[[]int](t)(cl.DeleteSubject(ctx, "s", sr.HardDelete)); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("hard delete returned %v", vs)
	}
	if subs := must[[]string](t)(cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted))); len(subs) != 0 {
		t.Fatalf("subjects after a hard delete: %v", subs)
	}
	_, err = cl.SchemaByID(ctx, id2)
	wantCode(t, err, CodeSchemaNotFound)
	_, err = cl.DeleteSubject(ctx, "s", sr.SoftDelete)
	wantCode(t, err, CodeSubjectNotFound)

	// Ids are never given twice, even for the same schema after it was
	// removed for good, and even across a restart.
	tr.restart()
	id3 := must[int](t)(tr.cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderV1}, -1, -1))
	if id3 <= id2 {
		t.Fatalf("id %d after the hard delete of ids %d and %d", id3, id1, id2)
	}
	if ss := must[sr.SubjectSchema](t)(tr.cl.SchemaByVersion(ctx, "s", -1)); ss.Version != 1 {
		t.Fatalf("a subject registered again after a hard delete starts at version %d", ss.Version)
	}
}

func TestConfigAndMode(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	if r := cl.Compatibility(ctx); r[0].Err != nil || r[0].Level != sr.CompatBackward {
		t.Fatalf("default global compatibility %+v", r[0])
	}
	if r := cl.Compatibility(ctx, "s"); r[0].Err == nil {
		t.Fatalf("a subject without a config: %+v", r[0])
	} else {
		wantCode(t, r[0].Err, CodeSubjectCompatNotConfigured)
	}
	if r := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "s"); r[0].Err != nil || r[0].Level != sr.CompatBackward {
		t.Fatalf("defaultToGlobal %+v", r[0])
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}); r[0].Err != nil || r[0].Level != sr.CompatFullTransitive {
		t.Fatalf("set global %+v", r[0])
	}
	if r := cl.Compatibility(ctx); r[0].Level != sr.CompatFullTransitive {
		t.Fatalf("global after set %+v", r[0])
	}
	var out map[string]any
	err := cl.Do(ctx, "PUT", "/config", map[string]string{"compatibility": "SIDEWAYS"}, &out)
	wantCode(t, err, CodeInvalidCompatibilityLevel)
	must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderV1}, -1, -1))
	// FULL_TRANSITIVE refuses a field without a default.
	_, err = cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderBad}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "s")
	must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderBad}, -1, -1))
	if r := cl.ResetCompatibility(ctx, "s"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if r := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "s"); r[0].Level != sr.CompatFullTransitive {
		t.Fatalf("after reset the subject follows the global level: %+v", r[0])
	}

	// Modes: READONLY refuses writes, IMPORT needs an empty subject unless
	// forced and keeps the ids it is given.
	if r := cl.Mode(ctx); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
		t.Fatalf("default mode %+v", r[0])
	}
	if r := cl.SetMode(ctx, sr.ModeReadOnly, "s"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	_, err = cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderV2}, -1, -1)
	wantCode(t, err, CodeOperationNotPermitted)
	_, err = cl.DeleteSubject(ctx, "s", sr.SoftDelete)
	wantCode(t, err, CodeOperationNotPermitted)
	must[int](t)(cl.RegisterSchema(ctx, "other", sr.Schema{Schema: orderV2}, -1, -1)) // only "s" is read-only
	cl.ResetMode(ctx, "s")

	if r := cl.SetMode(ctx, sr.ModeImport, "s"); r[0].Err == nil {
		t.Fatal("IMPORT mode accepted on a subject with versions")
	} else {
		wantCode(t, r[0].Err, CodeOperationNotPermitted)
	}
	if r := cl.SetMode(ctx, sr.ModeImport, "imported"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	_, err = cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `"string"`}, 500, 1)
	wantCode(t, err, CodeOperationNotPermitted) // an id outside IMPORT mode
	id := must[int](t)(cl.RegisterSchema(ctx, "imported", sr.Schema{Schema: `"string"`}, 500, 7))
	if id != 500 {
		t.Fatalf("import gave id %d", id)
	}
	if ss := must[sr.SubjectSchema](t)(cl.SchemaByVersion(ctx, "imported", 7)); ss.ID != 500 {
		t.Fatalf("imported version %+v", ss)
	}
	_, err = cl.RegisterSchema(ctx, "imported", sr.Schema{Schema: `"int"`}, 500, 8)
	wantCode(t, err, CodeIDDoesNotMatch)
	// Ids given after an import are above it.
	cl.ResetMode(ctx, "imported")
	if id := must[int](t)(cl.RegisterSchema(ctx, "after", sr.Schema{Schema: `"bytes"`}, -1, -1)); id <= 500 {
		t.Fatalf("id %d after importing id 500", id)
	}
	err = cl.Do(ctx, "PUT", "/mode", map[string]string{"mode": "SOMETIMES"}, &out)
	wantCode(t, err, CodeInvalidMode)
}

func TestReferences(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl

	// Avro: a named type registered on its own subject.
	addr := `{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}`
	order := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"to","type":"shop.Address"}]}`
	must[int](t)(cl.RegisterSchema(ctx, "address", sr.Schema{Schema: addr}, -1, -1))
	_, err := cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order}, -1, -1)
	wantCode(t, err, CodeInvalidSchema) // shop.Address is unknown without the reference
	refs := []sr.SchemaReference{{Name: "shop.Address", Subject: "address", Version: 1}}
	oid := must[int](t)(cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order, References: refs}, -1, -1))
	ss := must[sr.SubjectSchema](t)(cl.SchemaByVersion(ctx, "order", 1))
	if !slices.Equal(ss.References, refs) {
		t.Fatalf("references %+v", ss.References)
	}
	if s := must[sr.Schema](t)(cl.SchemaByID(ctx, oid)); !slices.Equal(s.References, refs) {
		t.Fatalf("references by id %+v", s.References)
	}
	users := must[[]sr.SubjectSchema](t)(cl.SchemaReferences(ctx, "address", 1))
	if len(users) != 1 || users[0].ID != oid {
		t.Fatalf("referenced by %+v", users)
	}
	wantCode(t, cl.DeleteSchema(ctx, "address", 1, sr.SoftDelete), CodeReferenceExists)
	_, err = cl.DeleteSubject(ctx, "address", sr.SoftDelete)
	wantCode(t, err, CodeReferenceExists)
	// Evolving the referencing schema is checked with its references.
	order2 := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"to","type":"shop.Address"},{"name":"n","type":"int","default":0}]}`
	must[int](t)(cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order2, References: refs}, -1, -1))
	_, err = cl.RegisterSchema(ctx, "order", sr.Schema{Schema: `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"to","type":"shop.Address"},{"name":"m","type":"int"}]}`, References: refs}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
	_, err = cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order, References: []sr.SchemaReference{{Name: "shop.Address", Subject: "address", Version: 9}}}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)

	// Protobuf: an import by the reference's name.
	must[int](t)(cl.RegisterSchema(ctx, "money", sr.Schema{Type: sr.TypeProtobuf, Schema: "syntax = \"proto3\";\npackage shop;\nmessage Money { int64 cents = 1; string currency = 2; }\n"}, -1, -1))
	pid := must[int](t)(cl.RegisterSchema(ctx, "payment", sr.Schema{Type: sr.TypeProtobuf,
		Schema:     "syntax = \"proto3\";\npackage shop;\nimport \"money.proto\";\nmessage Payment { Money amount = 1; }\n",
		References: []sr.SchemaReference{{Name: "money.proto", Subject: "money", Version: -1}}}, -1, -1))
	if s := must[sr.Schema](t)(cl.SchemaByID(ctx, pid)); s.Type != sr.TypeProtobuf {
		t.Fatalf("protobuf schema type %v", s.Type)
	}

	// JSON Schema: a $ref to another registered document.
	must[int](t)(cl.RegisterSchema(ctx, "amount", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"integer","minimum":0}`}, -1, -1))
	jid := must[int](t)(cl.RegisterSchema(ctx, "invoice", sr.Schema{Type: sr.TypeJSON,
		Schema:     `{"type":"object","properties":{"total":{"$ref":"amount.json"}}}`,
		References: []sr.SchemaReference{{Name: "amount.json", Subject: "amount", Version: 1}}}, -1, -1))
	if s := must[sr.Schema](t)(cl.SchemaByID(ctx, jid)); s.Type != sr.TypeJSON || len(s.References) != 1 {
		t.Fatalf("json schema %+v", s)
	}
	_, err = cl.RegisterSchema(ctx, "invoice2", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object","properties":{"total":{"$ref":"amount.json"}}}`}, -1, -1)
	wantCode(t, err, CodeInvalidSchema) // the reference is not given
}

func TestPersistenceAcrossRestart(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	id1 := must[int](t)(cl.RegisterSchema(ctx, "a", sr.Schema{Schema: orderV1}, -1, -1))
	id2 := must[int](t)(cl.RegisterSchema(ctx, "a", sr.Schema{Schema: orderV2}, -1, -1))
	pid := must[int](t)(cl.RegisterSchema(ctx, "p", sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3"; message M { int32 a = 1; }`}, -1, -1))
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "a")
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForwardTransitive})
	cl.SetMode(ctx, sr.ModeReadOnly, "p")
	if err := cl.DeleteSchema(ctx, "a", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	before := tr.reg.AllSchemas("", true, false)

	tr.restart()
	cl = tr.cl
	after := tr.reg.AllSchemas("", true, false)
	if len(before) != len(after) {
		t.Fatalf("before restart %d versions, after %d", len(before), len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.Subject != a.Subject || b.Version != a.Version || b.ID != a.ID || b.Deleted != a.Deleted || b.Text != a.Text || b.Type != a.Type {
			t.Fatalf("version %d differs after restart: %+v, was %+v", i, a, b)
		}
	}
	if vs := must[[]int](t)(cl.SubjectVersions(ctx, "a")); !slices.Equal(vs, []int{2}) {
		t.Fatalf("versions after restart %v", vs)
	}
	if r := cl.Compatibility(ctx, "a"); r[0].Level != sr.CompatFull {
		t.Fatalf("subject config after restart %+v", r[0])
	}
	if r := cl.Compatibility(ctx); r[0].Level != sr.CompatForwardTransitive {
		t.Fatalf("global config after restart %+v", r[0])
	}
	if r := cl.Mode(ctx, "p"); r[0].Mode != sr.ModeReadOnly {
		t.Fatalf("mode after restart %+v", r[0])
	}
	// Identity survives too: re-registering an existing schema gives its id.
	if id := must[int](t)(cl.RegisterSchema(ctx, "b", sr.Schema{Schema: orderV2}, -1, -1)); id != id2 {
		t.Fatalf("re-registering after restart gave id %d, want %d", id, id2)
	}
	if id := must[int](t)(cl.RegisterSchema(ctx, "c", sr.Schema{Schema: `"long"`}, -1, -1)); id <= max(id1, id2, pid) {
		t.Fatalf("new id %d after restart not above %d", id, max(id1, id2, pid))
	}
}

func TestProtobufAndJSONSchemas(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	p1 := "syntax = \"proto3\";\npackage shop;\nmessage Order { int64 id = 1; }\n"
	id := must[int](t)(cl.RegisterSchema(ctx, "orders-proto", sr.Schema{Type: sr.TypeProtobuf, Schema: p1}, -1, -1))
	// Comments and white space do not make another schema.
	same := "// orders\nsyntax = \"proto3\";\n\npackage shop;\nmessage Order {\n  int64 id = 1; // the key\n}\n"
	if again := must[int](t)(cl.RegisterSchema(ctx, "orders-proto", sr.Schema{Type: sr.TypeProtobuf, Schema: same}, -1, -1)); again != id {
		t.Fatalf("same descriptor gave id %d, want %d", again, id)
	}
	_, err := cl.RegisterSchema(ctx, "orders-proto", sr.Schema{Type: sr.TypeProtobuf, Schema: "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; }\n"}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
	_, err = cl.RegisterSchema(ctx, "orders-proto", sr.Schema{Type: sr.TypeProtobuf, Schema: "message {"}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
	// A schema of another type than the subject's versions is incompatible.
	_, err = cl.RegisterSchema(ctx, "orders-proto", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object"}`}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)

	j1 := `{"type":"object","properties":{"id":{"type":"integer"}},"additionalProperties":false}`
	must[int](t)(cl.RegisterSchema(ctx, "orders-json", sr.Schema{Type: sr.TypeJSON, Schema: j1}, -1, -1))
	j2 := `{"type":"object","properties":{"id":{"type":"integer"},"note":{"type":"string"}},"additionalProperties":false}`
	must[int](t)(cl.RegisterSchema(ctx, "orders-json", sr.Schema{Type: sr.TypeJSON, Schema: j2}, -1, -1))
	_, err = cl.RegisterSchema(ctx, "orders-json", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object","properties":{"id":{"type":"string"}}}`}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
	_, err = cl.RegisterSchema(ctx, "orders-json", sr.Schema{Type: sr.TypeJSON, Schema: `{"type": 12}`}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
	// A $ref the registry would have to load from the file system or the
	// network is refused.
	_, err = cl.RegisterSchema(ctx, "evil", sr.Schema{Type: sr.TypeJSON, Schema: `{"$ref":"file:///etc/passwd"}`}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
	_, err = cl.RegisterSchema(ctx, "evil", sr.Schema{Type: sr.TypeJSON, Schema: `{"$ref":"http://127.0.0.1:1/x.json"}`}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
	// A Protobuf import of a file that is not a reference is refused too.
	_, err = cl.RegisterSchema(ctx, "evil", sr.Schema{Type: sr.TypeProtobuf, Schema: "syntax = \"proto3\";\nimport \"/etc/passwd\";\nmessage M {}\n"}, -1, -1)
	wantCode(t, err, CodeInvalidSchema)
}

func TestAvroIdentityIsTheParsedSchema(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	id := must[int](t)(tr.cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `"string"`}, -1, -1))
	if again := must[int](t)(tr.cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `{"type": "string"}`}, -1, -1)); again != id {
		t.Fatalf(`{"type":"string"} got id %d, "string" had %d`, again, id)
	}
	a := `{"type":"record","name":"R","namespace":"n","fields":[{"name":"x","type":"long","default":0}]}`
	b := `{"fields":[{"default":0,"type":"long","name":"x"}],"name":"n.R","type":"record"}`
	ida := must[int](t)(tr.cl.RegisterSchema(ctx, "r", sr.Schema{Schema: a}, -1, -1))
	if idb := must[int](t)(tr.cl.RegisterSchema(ctx, "r", sr.Schema{Schema: b}, -1, -1)); idb != ida {
		t.Fatalf("the same record written differently got id %d, want %d", idb, ida)
	}
	// A changed default is another schema.
	c := `{"type":"record","name":"R","namespace":"n","fields":[{"name":"x","type":"long","default":1}]}`
	if idc := must[int](t)(tr.cl.RegisterSchema(ctx, "r", sr.Schema{Schema: c}, -1, -1)); idc == ida {
		t.Fatal("a changed default kept the id")
	}
}
