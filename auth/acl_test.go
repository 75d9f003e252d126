package auth

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/logstore"
)

func openLog(t *testing.T, dir string) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func allow(principal string, rt ResourceType, name string, pt PatternType, op Operation) ACL {
	return ACL{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: "*", Operation: op, Permission: PermAllow}
}

func TestAuthorizerSemantics(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	defer l.Close()
	st, err := OpenACLStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	deny := allow("User:alice", ResourceTopic, "logs-secret", PatternLiteral, OpWrite)
	deny.Permission = PermDeny
	onlyHost := allow("User:carol", ResourceTopic, "orders", PatternLiteral, OpRead)
	onlyHost.Host = "10.0.0.1"
	if err := st.Add(ctx,
		allow("User:alice", ResourceTopic, "orders", PatternLiteral, OpRead),
		allow("User:alice", ResourceTopic, "logs-", PatternPrefixed, OpWrite),
		deny,
		allow("User:*", ResourceTopic, "public", PatternLiteral, OpDescribe),
		allow("User:bob", ResourceTopic, "*", PatternLiteral, OpAlterConfigs),
		allow("User:dave", ResourceGroup, "g", PatternLiteral, OpAll),
		onlyHost,
	); err != nil {
		t.Fatal(err)
	}
	z := NewAuthorizer(st, []string{"User:admin"}, false)
	for _, c := range []struct {
		principal, host string
		op              Operation
		rt              ResourceType
		name            string
		want            bool
	}{
		{"User:alice", "1.2.3.4", OpRead, ResourceTopic, "orders", true},
		{"User:alice", "1.2.3.4", OpDescribe, ResourceTopic, "orders", true}, // READ implies DESCRIBE
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "orders", false},
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "logs-a", true}, // prefixed
		{"User:alice", "1.2.3.4", OpDescribe, ResourceTopic, "logs-a", true},
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "logs-secret", false},   // deny wins
		{"User:alice", "1.2.3.4", OpDescribe, ResourceTopic, "logs-secret", true}, // a deny of WRITE does not deny DESCRIBE
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "log", false},
		{"User:bob", "1.2.3.4", OpDescribe, ResourceTopic, "public", true},   // User:*
		{"User:bob", "1.2.3.4", OpRead, ResourceTopic, "public", false},      // DESCRIBE does not imply READ
		{"User:bob", "1.2.3.4", OpDescribeConfigs, ResourceTopic, "x", true}, // ALTER_CONFIGS implies DESCRIBE_CONFIGS, * name
		{"User:dave", "1.2.3.4", OpDelete, ResourceGroup, "g", true},         // ALL
		{"User:dave", "1.2.3.4", OpRead, ResourceTopic, "orders", false},
		{"User:carol", "10.0.0.1", OpRead, ResourceTopic, "orders", true},
		{"User:carol", "10.0.0.2", OpRead, ResourceTopic, "orders", false},
		{"User:admin", "1.2.3.4", OpAlter, ResourceCluster, ClusterName, true}, // super user
		{"User:alice", "1.2.3.4", OpRead, ResourceTopic, "no-acls", false},     // no ACL: deny
	} {
		if got := z.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s@%s %s %s:%s = %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	open := NewAuthorizer(st, nil, true)
	if !open.Authorize("User:x", "h", OpRead, ResourceGroup, "no-acls") {
		t.Error("allow.everyone.if.no.acl.found: a resource without ACLs is refused")
	}
	if open.Authorize("User:x", "h", OpRead, ResourceTopic, "orders") {
		t.Error("allow.everyone.if.no.acl.found: a resource with ACLs for others is allowed")
	}
	// By resource type (idempotent producers: WRITE on any topic).
	if !z.AuthorizeAny("User:alice", "h", OpWrite, ResourceTopic) {
		t.Error("alice may write some topic")
	}
	if z.AuthorizeAny("User:bob", "h", OpWrite, ResourceTopic) {
		t.Error("bob may write no topic")
	}
	denyAll := allow("User:erin", ResourceTopic, "a-", PatternPrefixed, OpWrite)
	denyAll.Permission = PermDeny
	if err := st.Add(ctx, allow("User:erin", ResourceTopic, "a-b", PatternLiteral, OpWrite), denyAll); err != nil {
		t.Fatal(err)
	}
	if z.AuthorizeAny("User:erin", "h", OpWrite, ResourceTopic) {
		t.Error("erin's only WRITE is covered by a prefixed DENY")
	}
}

func TestACLStoreDurableAndFilters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir)
	st, err := OpenACLStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	a1 := allow("User:alice", ResourceTopic, "orders", PatternLiteral, OpRead)
	a2 := allow("User:alice", ResourceTopic, "ord", PatternPrefixed, OpWrite)
	a3 := allow("User:bob", ResourceGroup, "g", PatternLiteral, OpRead)
	if err := st.Add(ctx, a1, a2, a3, a1); err != nil {
		t.Fatal(err)
	}
	bad := a1
	bad.PatternType = PatternMatch
	if err := st.Add(ctx, bad); err == nil {
		t.Fatal("a MATCH pattern was stored")
	}
	name := func(s string) *string { return &s }
	f := AnyFilter()
	f.PatternType, f.ResourceName = PatternMatch, name("orders")
	if got := st.ACLs(f); len(got) != 2 {
		t.Fatalf("MATCH orders: %v", got)
	}
	f.PatternType = PatternLiteral
	if got := st.ACLs(f); len(got) != 1 || got[0] != a1 {
		t.Fatalf("LITERAL orders: %v", got)
	}
	f.PatternType = PatternAny
	if got := st.ACLs(f); len(got) != 1 {
		t.Fatalf("ANY orders: %v", got)
	}
	del, err := st.Delete(ctx, Filter{ResourceType: ResourceTopic, PatternType: PatternPrefixed, Operation: OpAny, Permission: PermAny}, AnyFilter())
	if err != nil {
		t.Fatal(err)
	}
	if len(del[0]) != 1 || del[0][0] != a2 || len(del[1]) != 2 {
		t.Fatalf("deleted %v", del)
	}
	if err := st.Add(ctx, a3); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openLog(t, dir)
	defer l.Close()
	st, err = OpenACLStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.ACLs(AnyFilter()); len(got) != 1 || got[0] != a3 {
		t.Fatalf("after reopening: %v", got)
	}
}

func TestParseNames(t *testing.T) {
	if rt, err := ParseResourceType("transactional-id"); err != nil || rt != ResourceTransactionalID {
		t.Fatal(rt, err)
	}
	if op, err := ParseOperation("describe_configs"); err != nil || op != OpDescribeConfigs {
		t.Fatal(op, err)
	}
	if _, err := ParseOperation("unknown"); err == nil {
		t.Fatal("UNKNOWN parsed")
	}
	if err := ValidPrincipal("alice"); err == nil {
		t.Fatal("principal without a type accepted")
	}
}

// FuzzACLRecord feeds arbitrary records of __sluice_acls (outside bytes:
// the disk) to the decoder: it must never panic, and what it accepts must
// be a valid ACL that encodes back to its key.
func FuzzACLRecord(f *testing.F) {
	k := encodeACL(allow("User:alice", ResourceTopic, "orders", PatternPrefixed, OpRead))
	f.Add(k, k, false)
	f.Add(k, []byte(nil), true)
	f.Add([]byte(`{"resource_type":"TOPIC"}`), []byte("x"), false)
	f.Add([]byte("{}"), []byte{}, false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		a, deleted, err := decodeACLRecord(key, value)
		if err != nil {
			return
		}
		if deleted != (value == nil) {
			t.Fatalf("deleted %v for value %q", deleted, value)
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("accepted an invalid ACL: %v", err)
		}
		if string(encodeACL(a)) != string(key) {
			t.Fatal("accepted a non-canonical key")
		}
	})
}
