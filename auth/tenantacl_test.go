package auth

import (
	"context"
	"testing"
)

// A tenant's implicit prefixed ALLOW for its members is an ACL on the
// tenant's resources: with allow-everyone-if-no-ACL on, those resources
// still have an ACL, so a principal that is not a member (another
// tenant's, or an anonymous client) gets nothing there unless an ACL of
// its own allows it, as a real prefixed ALLOW ACL would have it. Names of
// no tenant keep the no-ACL default.
func TestTenantResourcesNotOpenWithAllowIfNoACL(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	store, err := OpenACLStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := OpenTenants(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.PutTenant(ctx, Tenant{Name: "acme", Members: []string{"User:alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PutTenant(ctx, Tenant{Name: "globex", Members: []string{"User:bob"}}); err != nil {
		t.Fatal(err)
	}
	z := NewAuthorizer(store, nil, true).WithTenants(tn)
	for _, c := range []struct {
		principal string
		rt        ResourceType
		name      string
		want      bool
	}{
		{"User:alice", ResourceTopic, "acme.prod.orders", true},
		{"User:bob", ResourceTopic, "acme.prod.orders", false},
		{"User:ANONYMOUS", ResourceTopic, "acme.prod.orders", false},
		{"User:bob", ResourceGroup, "acme.g", false},
		{"User:bob", ResourceTransactionalID, "acme.tx", false},
		{"User:bob", ResourceTopic, "globex.prod.orders", true},
		{"User:bob", ResourceTopic, "plain-topic", true},    // no tenant: no ACL, allowed
		{"User:bob", ResourceTopic, "nosuchtenant.x", true}, // no such tenant: no ACL
	} {
		if got := z.Authorize(c.principal, "127.0.0.1", OpRead, c.rt, c.name); got != c.want {
			t.Errorf("%s READ %s %s: %v, want %v", c.principal, c.rt, c.name, got, c.want)
		}
	}
	// An explicit ACL still lets a non-member in.
	if err := store.Add(ctx, ACL{ResourceType: ResourceTopic, ResourceName: "acme.shared", PatternType: PatternLiteral, Principal: "User:bob", Host: "*", Operation: OpRead, Permission: PermAllow}); err != nil {
		t.Fatal(err)
	}
	if !z.Authorize("User:bob", "127.0.0.1", OpRead, ResourceTopic, "acme.shared") {
		t.Error("an ALLOW ACL for a non-member on a tenant topic is not honoured")
	}
}
