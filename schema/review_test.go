package schema

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestLatestReferenceIsPinned registers a schema whose reference names
// the latest version (-1): the reference is stored as the version it
// resolved to, so a new version of the referenced subject does not change
// what the registered id means, nor free the version it was compiled
// against for deletion, and a restart compiles it the same way.
func TestLatestReferenceIsPinned(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	addr := `{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}`
	addr2 := `{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string","default":""}]}`
	order := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"to","type":"shop.Address"}]}`
	must[int](t)(tr.cl.RegisterSchema(ctx, "address", sr.Schema{Schema: addr}, -1, -1))
	latest := []sr.SchemaReference{{Name: "shop.Address", Subject: "address", Version: -1}}
	oid := must[int](t)(tr.cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order, References: latest}, -1, -1))
	if id := must[int](t)(tr.cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order, References: latest}, -1, -1)); id != oid {
		t.Fatalf("the same registration again: id %d, want %d", id, oid)
	}
	pinned := []sr.SchemaReference{{Name: "shop.Address", Subject: "address", Version: 1}}
	if ss := must[sr.SubjectSchema](t)(tr.cl.LookupSchema(ctx, "order", sr.Schema{Schema: order, References: pinned})); ss.ID != oid || ss.Version != 1 {
		t.Fatalf("lookup with the resolved version: %+v", ss)
	}
	must[int](t)(tr.cl.RegisterSchema(ctx, "address", sr.Schema{Schema: addr2}, -1, -1))
	check := func(when string) {
		t.Helper()
		s := must[sr.Schema](t)(tr.cl.SchemaByID(ctx, oid))
		if len(s.References) != 1 || s.References[0].Version != 1 {
			t.Fatalf("%s: references of id %d: %+v, want version 1", when, oid, s.References)
		}
		users := must[[]sr.SubjectSchema](t)(tr.cl.SchemaReferences(ctx, "address", 1))
		if len(users) != 1 || users[0].ID != oid {
			t.Fatalf("%s: address version 1 referenced by %+v, want id %d", when, users, oid)
		}
		wantCode(t, tr.cl.DeleteSchema(ctx, "address", 1, sr.SoftDelete), CodeReferenceExists)
		if ss := must[sr.SubjectSchema](t)(tr.cl.LookupSchema(ctx, "order", sr.Schema{Schema: order, References: pinned})); ss.ID != oid {
			t.Fatalf("%s: lookup with version 1: id %d, want %d", when, ss.ID, oid)
		}
	}
	check("before restart")
	tr.restart()
	check("after restart")
}

// postJSON posts body to the registry at path and returns the status and
// the response body.
func postJSON(t *testing.T, tr *testRegistry, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(tr.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestEmptyReferencesAreNoReferences registers one schema with the
// references left out and with an empty list ("references": [], which
// clients send): it is one schema, one id and one version, before and
// after a restart (the stored record drops the empty list).
func TestEmptyReferencesAreNoReferences(t *testing.T) {
	tr := newTestRegistry(t)
	schema := `"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"`
	without, empty := "{"+schema+"}", "{"+schema+`,"references":[]}`
	want := func(path, body, reply string) {
		t.Helper()
		if status, got := postJSON(t, tr, path, body); status != http.StatusOK || !strings.Contains(got, reply) {
			t.Fatalf("POST %s %s: %d %s, want %s", path, body, status, got, reply)
		}
	}
	want("/subjects/x/versions", without, `{"id":1}`)
	want("/subjects/x", empty, `"version":1,"id":1`)
	want("/subjects/x/versions", empty, `{"id":1}`)
	want("/subjects/y/versions", empty, `{"id":1}`)
	tr.restart()
	want("/subjects/x", empty, `"version":1,"id":1`)
	want("/subjects/x/versions", empty, `{"id":1}`)
	want("/subjects/z/versions", empty, `{"id":1}`)
	want("/subjects/w/versions", without, `{"id":1}`)
}

// TestHardDeletingTheLastVersionDropsTheSubjectSettings permanently
// deletes a subject's versions one by one: its own config and mode stay
// while a version is left and go with the last one, as they go with a
// permanent delete of the subject (and as Confluent's registry does), so
// a subject registered again under the name starts from the global
// settings, after a restart too.
func TestHardDeletingTheLastVersionDropsTheSubjectSettings(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`
	v2 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}`
	must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: v1}, -1, -1))
	must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: v2}, -1, -1))
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "s"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if r := cl.SetMode(ctx, sr.ModeReadWrite, "s"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	for _, v := range []int{1, 2} {
		if err := cl.DeleteSchema(ctx, "s", v, sr.SoftDelete); err != nil {
			t.Fatal(err)
		}
		if err := cl.DeleteSchema(ctx, "s", v, sr.HardDelete); err != nil {
			t.Fatal(err)
		}
		if v == 1 {
			if r := cl.Compatibility(ctx, "s"); r[0].Err != nil || r[0].Level != sr.CompatNone {
				t.Fatalf("config with a version left: %+v", r[0])
			}
		}
	}
	check := func() {
		t.Helper()
		wantCode(t, tr.cl.Compatibility(ctx, "s")[0].Err, CodeSubjectCompatNotConfigured)
		wantCode(t, tr.cl.Mode(ctx, "s")[0].Err, CodeSubjectModeNotConfigured)
	}
	check()
	tr.restart()
	check()
	// Back under the global BACKWARD (not the dropped NONE): a field
	// without a default that v2 does not write is refused.
	must[int](t)(tr.cl.RegisterSchema(ctx, "s", sr.Schema{Schema: v2}, -1, -1))
	_, err := tr.cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"c","type":"int"}]}`}, -1, -1)
	wantCode(t, err, CodeIncompatibleSchema)
}

// TestGlobalReadOnlyOverrideWinsOverSubjectModes: a global
// READONLY_OVERRIDE makes every subject read-only, those with a
// READWRITE mode of their own too (what it overrides, as in Confluent's
// registry), and is the mode a subject reports; back to READWRITE, the
// subject's own mode applies again.
func TestGlobalReadOnlyOverrideWinsOverSubjectModes(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	cl := tr.cl
	must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `"long"`}, -1, -1))
	if r := cl.SetMode(ctx, sr.ModeReadWrite, "s"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if err := tr.reg.SetMode(ctx, "", ReadOnlyOverride, false); err != nil { // franz-go has no READONLY_OVERRIDE
		t.Fatal(err)
	}
	_, err := cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `["null","long"]`}, -1, -1) // compatible: refused for the mode only
	wantCode(t, err, CodeOperationNotPermitted)
	wantCode(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete), CodeOperationNotPermitted)
	if status, body := getJSON(t, tr, "/mode/s"); status != http.StatusOK || body != `{"mode":"READONLY_OVERRIDE"}` {
		t.Fatalf("mode of s under a global READONLY_OVERRIDE: %d %s", status, body)
	}
	if r := cl.SetMode(ctx, sr.ModeReadOnly); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	must[int](t)(cl.RegisterSchema(ctx, "s", sr.Schema{Schema: `"long"`}, -1, -1)) // s's own READWRITE applies
	if r := cl.Mode(ctx, "s"); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
		t.Fatalf("mode of s under a global READONLY: %+v", r[0])
	}
}

// getJSON gets path from the registry and returns the status and the
// response body.
func getJSON(t *testing.T, tr *testRegistry, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(tr.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestDiamondReferences: references form a graph, not a tree: a schema
// that two of its references both refer to (as two .proto files import a
// third, Confluent's "Schema References") is resolved once. Sixty levels,
// each referring twice to the level below, would be 2^60 visits if the
// graph were walked as a tree; registering the levels, compiling them
// again after a restart and looking the top one up must be immediate.
func TestDiamondReferences(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	const levels = 60
	reg := func() {
		for k := range levels {
			s := Schema{Type: JSON, Text: `{"type":"object"}`}
			if k > 0 {
				a, b := fmt.Sprintf("l%da.json", k-1), fmt.Sprintf("l%db.json", k-1)
				s.Text = fmt.Sprintf(`{"type":"object","properties":{"a":{"$ref":%q},"b":{"$ref":%q}}}`, a, b)
				below := fmt.Sprintf("level%d", k-1)
				s.References = []Reference{{Name: a, Subject: below, Version: 1}, {Name: b, Subject: below, Version: 1}}
			}
			if _, err := tr.reg.Register(ctx, fmt.Sprintf("level%d", k), s, RegisterOptions{}); err != nil {
				t.Fatalf("level %d: %v", k, err)
			}
		}
	}
	reg()
	tr.restart() // compiles every stored schema again
	top, err := tr.reg.Version(fmt.Sprintf("level%d", levels-1), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tr.reg.Lookup(top.Subject, top.Schema, false); err != nil || got.ID != top.ID {
		t.Fatalf("lookup: %+v, %v; want id %d", got, err, top.ID)
	}
}

// diamond returns a schema of the given language in which each of levels
// named types (records, messages, $defs) has two fields of the type
// below; leaf is the type of the bottom one's field, top an extra field
// of the top one.
func diamond(typ Type, levels int, leaf string, top bool) string {
	var b strings.Builder
	switch typ {
	case Avro:
		t := `{"type":"record","name":"T0","fields":[{"name":"x","type":"` + leaf + `"}]}`
		for k := 1; k < levels; k++ {
			t = fmt.Sprintf(`{"type":"record","name":"T%d","fields":[{"name":"a","type":%s},{"name":"b","type":"T%d"}]}`, k, t, k-1)
		}
		if top {
			t = t[:len(t)-2] + `,{"name":"note","type":"string","default":""}]}`
		}
		return t
	case Protobuf:
		b.WriteString("syntax = \"proto3\";\npackage d;\nmessage T0 { " + leaf + " x = 1; }\n")
		for k := 1; k < levels; k++ {
			fmt.Fprintf(&b, "message T%d { T%d a = 1; T%d b = 2; }\n", k, k-1, k-1)
		}
		if top {
			fmt.Fprintf(&b, "message Top { T%d t = 1; string note = 2; }\n", levels-1)
		} else {
			fmt.Fprintf(&b, "message Top { T%d t = 1; }\n", levels-1)
		}
		return b.String()
	}
	b.WriteString(`{"$defs":{"t0":{"type":"object","properties":{"x":{"type":"` + leaf + `"}}}`)
	for k := 1; k < levels; k++ {
		fmt.Fprintf(&b, `,"t%d":{"type":"object","properties":{"a":{"$ref":"#/$defs/t%d"},"b":{"$ref":"#/$defs/t%d"}}}`, k, k-1, k-1)
	}
	fmt.Fprintf(&b, `},"$ref":"#/$defs/t%d"`, levels-1)
	if top {
		b.WriteString(`,"description":"v2"`)
	}
	b.WriteString("}")
	return b.String()
}

// TestCompatibilityDiamonds: a type reached along many paths (a record
// with two fields of one record type, level after level) is compared once
// per pair of types, not once per path: sixty levels are 2^60 paths. A
// compatible change is found compatible, an incompatible one at the
// bottom is reported, in a few lines, not once per path.
func TestCompatibilityDiamonds(t *testing.T) {
	const levels = 60
	for _, tc := range []struct {
		typ       Type
		leaf, bad string
	}{{Avro, "int", "boolean"}, {Protobuf, "int32", "string"}, {JSON, "integer", "string"}} {
		tr := newTestRegistry(t)
		ctx := context.Background()
		reg := func(subject, leaf string, top bool) error {
			_, err := tr.reg.Register(ctx, subject, Schema{Type: tc.typ, Text: diamond(tc.typ, levels, leaf, top)}, RegisterOptions{})
			return err
		}
		if err := reg("s", tc.leaf, false); err != nil {
			t.Fatalf("%s: v1: %v", tc.typ, err)
		}
		if err := reg("s", tc.leaf, true); err != nil {
			t.Errorf("%s: a compatible v2: %v", tc.typ, err)
		}
		msgs, err := tr.reg.CheckCompatibility("s", -1, Schema{Type: tc.typ, Text: diamond(tc.typ, levels, tc.bad, true)})
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		if len(msgs) == 0 || len(msgs) > 4*levels {
			t.Errorf("%s: the leaf changed from %s to %s: %d messages, want some and not one per path: %.300q", tc.typ, tc.leaf, tc.bad, len(msgs), msgs)
		}
	}
}
