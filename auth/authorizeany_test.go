package auth

import (
	"math/rand/v2"
	"testing"
)

// TestAuthorizeAnyWildcardDenyWins: a DENY on every topic ("*") wins over
// an ALLOW on every topic whatever the order the ACLs are stored in, as in
// Kafka's authorizeByResourceType (the ALLOW of ALL sorts before the DENY
// of WRITE, and the host "*" before an address).
func TestAuthorizeAnyWildcardDenyWins(t *testing.T) {
	for _, c := range []struct {
		name        string
		allow, deny ACL
	}{
		{"ALLOW ALL, DENY WRITE", allow("User:alice", ResourceTopic, "*", PatternLiteral, OpAll), allow("User:alice", ResourceTopic, "*", PatternLiteral, OpWrite)},
		{"ALLOW from *, DENY from h", allow("User:alice", ResourceTopic, "*", PatternLiteral, OpWrite), ACL{ResourceType: ResourceTopic, ResourceName: "*", PatternType: PatternLiteral, Principal: "User:alice", Host: "h", Operation: OpWrite}},
	} {
		c.deny.Permission = PermDeny
		z := NewAuthorizer(aclStoreOf(c.allow, c.deny), nil, false)
		if z.Authorize("User:alice", "h", OpWrite, ResourceTopic, "orders") {
			t.Fatalf("%s: alice may write orders", c.name)
		}
		if z.AuthorizeAny("User:alice", "h", OpWrite, ResourceTopic) {
			t.Errorf("%s: AuthorizeAny allows alice WRITE on some topic, though every topic is denied", c.name)
		}
	}
}

// aclStoreOf is an ACLStore holding acls, without a log behind it.
func aclStoreOf(acls ...ACL) *ACLStore {
	s := &ACLStore{}
	s.snap.Store(newACLSet(acls))
	return s
}

// TestAuthorizeAnyProperty checks AuthorizeAny against a simple oracle on
// random ACL sets: WRITE (which nothing else implies) is allowed on some
// topic exactly when Authorize allows it on one of a set of names that
// covers every way an ACL can apply (each ACL's name, names it prefixes,
// and a name no ACL names).
func TestAuthorizeAnyProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"*", "a", "ab", "b"}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	for i := range 20000 {
		var acls []ACL
		for range 1 + rng.IntN(4) {
			a := ACL{
				ResourceType: ResourceTopic, ResourceName: pick(names...), PatternType: PatternLiteral,
				Principal: pick("User:alice", "User:*", "User:bob"), Host: pick("*", "h", "other"),
				Operation: []Operation{OpWrite, OpAll, OpRead}[rng.IntN(3)], Permission: PermAllow,
			}
			if rng.IntN(2) == 0 {
				a.PatternType = PatternPrefixed
			}
			if rng.IntN(2) == 0 {
				a.Permission = PermDeny
			}
			acls = append(acls, a)
		}
		z := NewAuthorizer(aclStoreOf(acls...), nil, rng.IntN(2) == 0)
		want := false
		for _, n := range []string{"\x00", "zz", "*", "a", "ab", "b", "ax", "abx", "bx", "a\x00", "ab\x00", "b\x00"} {
			want = want || z.Authorize("User:alice", "h", OpWrite, ResourceTopic, n)
		}
		if got := z.AuthorizeAny("User:alice", "h", OpWrite, ResourceTopic); got != want {
			t.Fatalf("case %d: AuthorizeAny = %v, some topic allowed = %v, ACLs %v", i, got, want, acls)
		}
	}
}
