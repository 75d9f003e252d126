package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

// ACLsTopic is the internal topic holding the ACLs.
const ACLsTopic = "__sluice_acls"

// ACLStore holds the ACLs, durable in the compacted internal topic
// __sluice_acls of a log: one record per ACL, keyed (and valued) by its
// canonical JSON encoding, a tombstone when it is deleted. Reads work on
// an immutable snapshot and take no lock; writes are serialised. It is
// safe for concurrent use.
type ACLStore struct {
	kv *kvtopic.Topic

	wmu  sync.Mutex // serialises Add and Delete
	snap atomic.Pointer[aclSet]
	gen  atomic.Uint64 // counts changes (Add, Delete)
}

// resKey names one literal resource pattern.
type resKey struct {
	typ  ResourceType
	name string
}

// aclSet is an immutable snapshot of the ACLs, indexed for authorisation.
type aclSet struct {
	all      []ACL // sorted (see compareACL)
	literal  map[resKey][]ACL
	prefixed map[ResourceType][]ACL
	byType   map[ResourceType][]ACL
}

func newACLSet(acls []ACL) *aclSet {
	s := &aclSet{all: slices.Clone(acls), literal: map[resKey][]ACL{}, prefixed: map[ResourceType][]ACL{}, byType: map[ResourceType][]ACL{}}
	slices.SortFunc(s.all, compareACL)
	s.all = slices.Compact(s.all)
	for _, a := range s.all {
		s.byType[a.ResourceType] = append(s.byType[a.ResourceType], a)
		if a.PatternType == PatternPrefixed {
			s.prefixed[a.ResourceType] = append(s.prefixed[a.ResourceType], a)
		} else {
			k := resKey{a.ResourceType, a.ResourceName}
			s.literal[k] = append(s.literal[k], a)
		}
	}
	return s
}

func compareACL(a, b ACL) int {
	if c := int(a.ResourceType) - int(b.ResourceType); c != 0 {
		return c
	}
	if c := strings.Compare(a.ResourceName, b.ResourceName); c != 0 {
		return c
	}
	if c := int(a.PatternType) - int(b.PatternType); c != 0 {
		return c
	}
	if c := strings.Compare(a.Principal, b.Principal); c != 0 {
		return c
	}
	if c := strings.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	if c := int(a.Operation) - int(b.Operation); c != 0 {
		return c
	}
	return int(a.Permission) - int(b.Permission)
}

// OpenACLStore opens the ACL store of l, creating its internal topic
// (compacted, fsync always) on first use, and reads it into memory. Open
// it once per log.
func OpenACLStore(ctx context.Context, l *logstore.Log) (*ACLStore, error) {
	kv, err := kvtopic.Open(l, ACLsTopic)
	if err != nil {
		return nil, fmt.Errorf("acls: %w", err)
	}
	live := map[ACL]struct{}{}
	err = kv.Replay(ctx, func(k, v []byte) {
		a, deleted, err := decodeACLRecord(k, v)
		if err != nil {
			return // not ours or damaged: skipped
		}
		if deleted {
			delete(live, a)
		} else {
			live[a] = struct{}{}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("acls: %w", err)
	}
	acls := make([]ACL, 0, len(live))
	for a := range live {
		acls = append(acls, a)
	}
	s := &ACLStore{kv: kv}
	s.snap.Store(newACLSet(acls))
	return s, nil
}

// encodeACL is an ACL's canonical encoding: its record key, and its value
// while it exists.
func encodeACL(a ACL) []byte {
	b, err := json.Marshal(a)
	if err != nil {
		panic(fmt.Sprintf("acls: encoding %v: %v", a, err)) // fixed struct of strings and enums
	}
	return b
}

// decodeACLRecord reads a record of the ACL topic: deleted for a
// tombstone (nil value). The key must be the canonical encoding of a
// valid ACL and a value, when present, equal to it.
func decodeACLRecord(key, value []byte) (a ACL, deleted bool, err error) {
	d := json.NewDecoder(bytes.NewReader(key))
	d.DisallowUnknownFields()
	if err := d.Decode(&a); err != nil {
		return ACL{}, false, fmt.Errorf("acls: record key: %w", err)
	}
	if err := a.Validate(); err != nil {
		return ACL{}, false, fmt.Errorf("acls: record key: %w", err)
	}
	if !bytes.Equal(encodeACL(a), key) {
		return ACL{}, false, errors.New("acls: record key is not canonical")
	}
	if value == nil {
		return a, true, nil
	}
	if !bytes.Equal(value, key) {
		return ACL{}, false, errors.New("acls: record value differs from its key")
	}
	return a, false, nil
}

func (s *ACLStore) set() *aclSet { return s.snap.Load() }

// ACLs returns the ACLs f matches, sorted.
func (s *ACLStore) ACLs(f Filter) []ACL {
	var out []ACL
	for _, a := range s.set().all {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// Add stores the ACLs, durably (adding one that exists is a no-op, as in
// Kafka). Every ACL is validated first: on an invalid one nothing is
// stored.
func (s *ACLStore) Add(ctx context.Context, acls ...ACL) error {
	for _, a := range acls {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cur := s.set()
	have := map[ACL]bool{}
	for _, a := range cur.all {
		have[a] = true
	}
	var recs []kvtopic.Entry
	var added []ACL
	for _, a := range acls {
		if have[a] {
			continue
		}
		have[a] = true
		k := encodeACL(a)
		recs = append(recs, kvtopic.Entry{Key: k, Value: k})
		added = append(added, a)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := s.kv.PutAll(ctx, recs); err != nil {
		return fmt.Errorf("acls: store %d ACLs: %w", len(recs), err)
	}
	s.snap.Store(newACLSet(append(slices.Clone(cur.all), added...)))
	s.gen.Add(1)
	return nil
}

// Delete removes, durably, the ACLs each filter matches, the filters
// taken in order (an ACL an earlier filter removed is not reported again),
// and returns them per filter. The filters must be valid (Filter.Validate).
func (s *ACLStore) Delete(ctx context.Context, filters ...Filter) ([][]ACL, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cur := s.set()
	gone := map[ACL]bool{}
	out := make([][]ACL, len(filters))
	var recs []kvtopic.Entry
	for i, f := range filters {
		for _, a := range cur.all {
			if gone[a] || !f.Matches(a) {
				continue
			}
			gone[a] = true
			out[i] = append(out[i], a)
			recs = append(recs, kvtopic.Entry{Key: encodeACL(a)})
		}
	}
	if len(recs) == 0 {
		return out, nil
	}
	if err := s.kv.PutAll(ctx, recs); err != nil {
		return nil, fmt.Errorf("acls: delete %d ACLs: %w", len(recs), err)
	}
	rest := make([]ACL, 0, len(cur.all)-len(gone))
	for _, a := range cur.all {
		if !gone[a] {
			rest = append(rest, a)
		}
	}
	s.snap.Store(newACLSet(rest))
	s.gen.Add(1)
	return out, nil
}

// Authorizer decides requests against an ACLStore as Kafka's standard
// authorizer does: super users may do anything; otherwise a matching
// DENY wins, then a matching ALLOW (of the operation, an operation
// implying it, or ALL) grants; a resource no ACL applies to at all is
// allowed only with AllowIfNoACL (allow.everyone.if.no.acl.found).
type Authorizer struct {
	store        *ACLStore
	superUsers   map[string]bool
	allowIfNoACL bool
	tenants      *Tenants // nil: no tenant rule
}

// WithTenants adds the tenant rule: a member of a tenant may do anything
// with the topics, groups and transactional ids named with the tenant's
// prefix ("TENANT."), as an implicit prefixed ALLOW ACL; DENY ACLs still
// win.
func (z *Authorizer) WithTenants(t *Tenants) *Authorizer {
	z.tenants = t
	return z
}

// NewAuthorizer returns an authorizer over store. superUsers are
// principals ("User:admin") that bypass the ACLs.
func NewAuthorizer(store *ACLStore, superUsers []string, allowIfNoACL bool) *Authorizer {
	z := &Authorizer{store: store, superUsers: map[string]bool{}, allowIfNoACL: allowIfNoACL}
	for _, u := range superUsers {
		z.superUsers[u] = true
	}
	return z
}

// Store returns the ACL store the authorizer reads.
func (z *Authorizer) Store() *ACLStore { return z.store }

// Version changes whenever the ACLs or the tenants' members change, so
// that what was derived from Authorize (a consumer group's regex
// subscription) can be derived again.
func (z *Authorizer) Version() uint64 {
	v := z.store.gen.Load()
	if z.tenants != nil {
		v += z.tenants.gen.Load()
	}
	return v
}

// SuperUser reports whether principal bypasses the ACLs.
func (z *Authorizer) SuperUser(principal string) bool { return z.superUsers[principal] }

// Authorize reports whether principal, connecting from host (an IP
// address), may perform op on the resource.
func (z *Authorizer) Authorize(principal, host string, op Operation, rt ResourceType, resource string) bool {
	if z.superUsers[principal] {
		return true
	}
	if z.tenants != nil && (rt == ResourceTopic || rt == ResourceGroup || rt == ResourceTransactionalID) && z.tenants.IsMember(principal, resource) {
		return !z.denied(principal, host, op, rt, resource)
	}
	set := z.store.set()
	var acls []ACL
	acls = append(acls, set.literal[resKey{rt, resource}]...)
	if resource != WildcardResource {
		acls = append(acls, set.literal[resKey{rt, WildcardResource}]...)
	}
	for _, a := range set.prefixed[rt] {
		if strings.HasPrefix(resource, a.ResourceName) {
			acls = append(acls, a)
		}
	}
	if len(acls) == 0 {
		// A tenant's resources have an ACL, its members' implicit
		// prefixed ALLOW: the no-ACL default does not open them to others.
		return z.allowIfNoACL && !z.tenantResource(rt, resource)
	}
	for _, a := range acls {
		if a.Permission == PermDeny && a.matchesEntry(principal, host) && (a.Operation == op || a.Operation == OpAll) {
			return false
		}
	}
	ops := implied(op)
	for _, a := range acls {
		if a.Permission == PermAllow && a.matchesEntry(principal, host) && (a.Operation == OpAll || slices.Contains(ops, a.Operation)) {
			return true
		}
	}
	return false
}

// tenantResource reports whether the resource is named with an existing
// tenant's prefix (the tenant rule covers it).
func (z *Authorizer) tenantResource(rt ResourceType, resource string) bool {
	return z.tenants != nil && (rt == ResourceTopic || rt == ResourceGroup || rt == ResourceTransactionalID) && z.tenants.Owns(resource)
}

// denied reports whether a DENY ACL matches the request.
func (z *Authorizer) denied(principal, host string, op Operation, rt ResourceType, resource string) bool {
	set := z.store.set()
	acls := append([]ACL(nil), set.literal[resKey{rt, resource}]...)
	acls = append(acls, set.literal[resKey{rt, WildcardResource}]...)
	for _, a := range set.prefixed[rt] {
		if strings.HasPrefix(resource, a.ResourceName) {
			acls = append(acls, a)
		}
	}
	for _, a := range acls {
		if a.Permission == PermDeny && a.matchesEntry(principal, host) && (a.Operation == op || a.Operation == OpAll) {
			return true
		}
	}
	return false
}

// AuthorizeAny reports whether principal may perform op on at least one
// resource of type rt (Kafka's authorizeByResourceType, used for
// idempotent producers): some ALLOW pattern of that type that no DENY
// pattern covers. The tenant rule counts as a prefixed ALLOW of each of
// principal's tenants' prefixes, which DENY ACLs cover as any other.
func (z *Authorizer) AuthorizeAny(principal, host string, op Operation, rt ResourceType) bool {
	var allowLiteral, allowPrefixed, denyLiteral, denyPrefixed []string
	if z.tenants != nil && (rt == ResourceTopic || rt == ResourceGroup || rt == ResourceTransactionalID) {
		allowPrefixed = z.tenants.MemberPrefixes(principal)
	}
	// A name no ACL can name exactly: allowed only by super users,
	// wildcards, empty prefixes or the no-ACL default.
	if z.Authorize(principal, host, op, rt, "\x00") {
		return true
	}
	// An ALLOW of every name ("*") decides only once every ACL has been
	// seen: a DENY of every name wins over it in whatever order they are
	// stored (by operation ALL before WRITE, host "*" before an address).
	allowAll := false
	for _, a := range z.store.set().byType[rt] {
		if !a.matchesEntry(principal, host) || (a.Operation != op && a.Operation != OpAll) {
			continue
		}
		switch {
		case a.Permission == PermDeny && a.PatternType == PatternLiteral && a.ResourceName == WildcardResource:
			return false
		case a.Permission == PermDeny && a.PatternType == PatternLiteral:
			denyLiteral = append(denyLiteral, a.ResourceName)
		case a.Permission == PermDeny:
			denyPrefixed = append(denyPrefixed, a.ResourceName)
		case a.PatternType == PatternLiteral && a.ResourceName == WildcardResource:
			allowAll = true
		case a.PatternType == PatternLiteral:
			allowLiteral = append(allowLiteral, a.ResourceName)
		default:
			allowPrefixed = append(allowPrefixed, a.ResourceName)
		}
	}
	if allowAll {
		return true
	}
	deniedPrefix := func(name string) bool {
		return slices.ContainsFunc(denyPrefixed, func(p string) bool { return strings.HasPrefix(name, p) })
	}
	for _, name := range allowLiteral {
		if !slices.Contains(denyLiteral, name) && !deniedPrefix(name) {
			return true
		}
	}
	for _, name := range allowPrefixed {
		if !deniedPrefix(name) {
			return true
		}
	}
	return false
}
