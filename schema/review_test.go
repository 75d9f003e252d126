package schema

import (
	"context"
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
