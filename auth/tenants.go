package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

// TenantsTopic is the internal topic holding tenants and namespaces.
const TenantsTopic = "__sluice_tenants"

// Tenants, in Pulsar's model on the Kafka protocol: a tenant owns
// namespaces, and a topic named TENANT.NAMESPACE.NAME belongs to that
// namespace. A namespace carries limits that apply to all its topics
// together: a default retention for topics created in it, a storage quota,
// and produce and fetch byte rates. A tenant lists its member principals;
// the Kafka listener gives them access to the tenant's topics, groups and
// transactional ids (all named with the "TENANT." prefix) through prefixed
// ACLs.

// Tenant is a tenant and its members (principals, "User:alice").
type Tenant struct {
	Name    string   `json:"name"`
	Members []string `json:"members,omitempty"`
}

// Namespace is a tenant's namespace and its limits (0 = none).
type Namespace struct {
	Tenant      string        `json:"tenant"`
	Name        string        `json:"name"`
	Retention   time.Duration `json:"retention,omitempty"`    // default retention of topics created in it
	MaxStorage  int64         `json:"max_storage,omitempty"`  // bytes of all its topics' partitions
	ProduceRate float64       `json:"produce_rate,omitempty"` // bytes/s produced to all its topics
	FetchRate   float64       `json:"fetch_rate,omitempty"`   // bytes/s fetched from all its topics
	// OnFull is what a produce to the namespace meets over MaxStorage:
	// OnFullRefuse (the default, "") or OnFullEvict.
	OnFull string `json:"on_full,omitempty"`
}

// What a namespace over its storage quota does (Namespace.OnFull).
const (
	// OnFullRefuse refuses produce requests until retention or
	// DeleteRecords frees space (Pulsar's producer_exception).
	OnFullRefuse = "refuse"
	// OnFullEvict deletes the namespace's oldest sealed segments, by
	// their newest timestamp as time retention goes, until it is under
	// the quota, and accepts the produce (Pulsar's
	// consumer_backlog_eviction).
	OnFullEvict = "evict"
)

// Prefix is the topic-name prefix of the namespace's topics.
func (n Namespace) Prefix() string { return n.Tenant + "." + n.Name + "." }

// ErrTenant: an unknown or duplicate tenant or namespace, or a bad name.
var ErrTenant = errors.New("tenant error")

// notFound marks an error about a tenant, namespace or token that does
// not exist (IsNotFound), so that the HTTP API answers 404 for it.
type notFound struct{ error }

func (e notFound) Unwrap() error { return e.error }

// IsNotFound reports whether err says a tenant, namespace or token does
// not exist.
func IsNotFound(err error) bool {
	var nf notFound
	return errors.As(err, &nf)
}

// ValidTenantName checks a tenant or namespace name: 1 to 64 characters of
// [a-zA-Z0-9_-] (no dot: dots separate tenant, namespace and topic).
func ValidTenantName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%w: name %q must have 1 to 64 characters", ErrTenant, s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q has %q; allowed are a-z A-Z 0-9 _ -", ErrTenant, s, c)
		}
	}
	return nil
}

// Tenants holds the tenants and namespaces, durable in __sluice_tenants.
// It is safe for concurrent use: readers (the Kafka listener, on every
// request) take mu for reading; writers (the CLI on a stopped server's
// directory, or the HTTP admin API of a running one) are serialized by
// wmu, so that a check and the write it allows (a tenant without
// namespaces deleted, a namespace added to an existing tenant) are one
// step, and the map always holds what the topic's last record says.
type Tenants struct {
	kv *kvtopic.Topic
	// topics lists the log's topics, for DeleteTenant.
	topics func() []string

	wmu sync.Mutex

	mu         sync.RWMutex
	tenants    map[string]Tenant
	namespaces map[string]Namespace // by "tenant/namespace"

	gen atomic.Uint64 // counts changes of tenants (their members)
}

// OpenTenants opens the tenant registry of l.
func OpenTenants(ctx context.Context, l *logstore.Log) (*Tenants, error) {
	kv, err := kvtopic.Open(l, TenantsTopic)
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	t := &Tenants{kv: kv, topics: l.Topics, tenants: map[string]Tenant{}, namespaces: map[string]Namespace{}}
	err = kv.Replay(ctx, func(k, v []byte) {
		kind, name, ok := strings.Cut(string(k), ":")
		if !ok {
			return
		}
		switch kind {
		case "t":
			if v == nil {
				delete(t.tenants, name)
				return
			}
			var x Tenant
			if json.Unmarshal(v, &x) == nil {
				t.tenants[name] = x
			}
		case "n":
			if v == nil {
				delete(t.namespaces, name)
				return
			}
			var x Namespace
			if json.Unmarshal(v, &x) == nil {
				t.namespaces[name] = x
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	return t, nil
}

// PutTenant creates or replaces a tenant (its member list).
func (t *Tenants) PutTenant(ctx context.Context, x Tenant) error {
	if err := ValidTenantName(x.Name); err != nil {
		return err
	}
	for _, m := range x.Members {
		if !strings.HasPrefix(m, "User:") || len(m) == len("User:") {
			return fmt.Errorf("%w: member %q is not a principal (User:NAME)", ErrTenant, m)
		}
	}
	x.Members = slices.Compact(slices.Sorted(slices.Values(x.Members))) // a copy: the caller keeps its slice
	v, _ := json.Marshal(x)
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if err := t.kv.Put(ctx, []byte("t:"+x.Name), v); err != nil {
		return err
	}
	t.mu.Lock()
	t.tenants[x.Name] = x
	t.mu.Unlock()
	t.gen.Add(1)
	return nil
}

// maxNamedTopics bounds the topics an error names.
const maxNamedTopics = 10

// DeleteTenant removes a tenant without namespaces and without topics
// named with its prefix ("TENANT."). Those topics would outlive it as
// names of no tenant: its members' implicit ALLOW gone, they would fall
// under the cluster's ACLs, and with allow.everyone.if.no.acl.found open
// to every principal. So their deletion comes first (a namespace's
// deletion leaves its topics, which the tenant still fences).
func (t *Tenants) DeleteTenant(ctx context.Context, name string) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	_, ok := t.tenants[name]
	var nss []string
	for k, n := range t.namespaces {
		if n.Tenant == name {
			nss = append(nss, k)
		}
	}
	t.mu.RUnlock()
	if !ok {
		return notFound{fmt.Errorf("%w: no tenant %q", ErrTenant, name)}
	}
	if len(nss) > 0 {
		sort.Strings(nss)
		return fmt.Errorf("%w: tenant %s still has namespaces %s: delete them first", ErrTenant, name, strings.Join(nss, ", "))
	}
	// No topic of the tenant can appear meanwhile: one is created only in
	// an existing namespace, and wmu keeps namespaces from being added.
	var left []string
	for _, topic := range t.topics() {
		if strings.HasPrefix(topic, name+".") {
			left = append(left, topic)
		}
	}
	if len(left) > 0 {
		more := ""
		if len(left) > maxNamedTopics {
			more = fmt.Sprintf(" and %d more", len(left)-maxNamedTopics)
			left = left[:maxNamedTopics]
		}
		return fmt.Errorf("%w: tenant %s still has topics %s%s: delete them first (sluice topic delete, or DeleteTopics), or their ACLs would no longer fence them", ErrTenant, name, strings.Join(left, ", "), more)
	}
	if err := t.kv.Put(ctx, []byte("t:"+name), nil); err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.tenants, name)
	t.mu.Unlock()
	t.gen.Add(1)
	return nil
}

// PutNamespace creates or replaces a namespace of an existing tenant.
func (t *Tenants) PutNamespace(ctx context.Context, n Namespace) error {
	if err := ValidTenantName(n.Name); err != nil {
		return err
	}
	if n.Retention < 0 || n.MaxStorage < 0 || n.ProduceRate < 0 || n.FetchRate < 0 {
		return fmt.Errorf("%w: negative limit", ErrTenant)
	}
	switch n.OnFull {
	case "", OnFullRefuse, OnFullEvict:
	default:
		return fmt.Errorf("%w: on-full policy %q: use %s or %s", ErrTenant, n.OnFull, OnFullRefuse, OnFullEvict)
	}
	v, _ := json.Marshal(n)
	key := n.Tenant + "/" + n.Name
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if _, ok := t.Tenant(n.Tenant); !ok {
		return notFound{fmt.Errorf("%w: no tenant %q (sluice tenant create %s)", ErrTenant, n.Tenant, n.Tenant)}
	}
	if err := t.kv.Put(ctx, []byte("n:"+key), v); err != nil {
		return err
	}
	t.mu.Lock()
	t.namespaces[key] = n
	t.mu.Unlock()
	return nil
}

// DeleteNamespace removes a namespace (its topics stay; delete them too).
func (t *Tenants) DeleteNamespace(ctx context.Context, tenant, name string) error {
	key := tenant + "/" + name
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	_, ok := t.namespaces[key]
	t.mu.RUnlock()
	if !ok {
		return notFound{fmt.Errorf("%w: no namespace %s", ErrTenant, key)}
	}
	if err := t.kv.Put(ctx, []byte("n:"+key), nil); err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.namespaces, key)
	t.mu.Unlock()
	return nil
}

// Tenant returns the named tenant.
func (t *Tenants) Tenant(name string) (Tenant, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	x, ok := t.tenants[name]
	return x, ok
}

// List returns the tenants and namespaces, sorted.
func (t *Tenants) List() ([]Tenant, []Namespace) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ts := make([]Tenant, 0, len(t.tenants))
	for _, x := range t.tenants {
		ts = append(ts, x)
	}
	ns := make([]Namespace, 0, len(t.namespaces))
	for _, n := range t.namespaces {
		ns = append(ns, n)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	sort.Slice(ns, func(i, j int) bool { return ns[i].Tenant+"/"+ns[i].Name < ns[j].Tenant+"/"+ns[j].Name })
	return ts, ns
}

// NamespaceOf returns the namespace a topic belongs to: topics named
// TENANT.NAMESPACE.NAME of an existing tenant. tenanted is true when the
// topic's first dot-separated part names a tenant (its namespace may still
// be missing: then ok is false).
func (t *Tenants) NamespaceOf(topic string) (n Namespace, ok, tenanted bool) {
	tenant, rest, found := strings.Cut(topic, ".")
	if !found {
		return Namespace{}, false, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if _, isTenant := t.tenants[tenant]; !isTenant {
		return Namespace{}, false, false
	}
	ns, _, found := strings.Cut(rest, ".")
	if !found {
		return Namespace{}, false, true
	}
	n, ok = t.namespaces[tenant+"/"+ns]
	return n, ok, true
}

// IsMember reports whether principal is a member of the tenant whose
// prefix ("TENANT.") the resource name has.
func (t *Tenants) IsMember(principal, resource string) bool {
	tenant, _, found := strings.Cut(resource, ".")
	if !found {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	x, ok := t.tenants[tenant]
	return ok && slices.Contains(x.Members, principal)
}

// Owns reports whether the resource name has an existing tenant's prefix
// ("TENANT.").
func (t *Tenants) Owns(resource string) bool {
	tenant, _, found := strings.Cut(resource, ".")
	if !found {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.tenants[tenant]
	return ok
}

// MemberPrefixes returns the prefixes ("TENANT.") of the tenants
// principal is a member of.
func (t *Tenants) MemberPrefixes(principal string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for name, x := range t.tenants {
		if slices.Contains(x.Members, principal) {
			out = append(out, name+".")
		}
	}
	return out
}
