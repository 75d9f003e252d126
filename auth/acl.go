package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Kafka ACLs: who (principal, host) may or may not (permission) do what
// (operation) on which resources (type, name, pattern). The numeric values
// of the enums are Kafka's wire codes.

// ResourceType is the kind of resource an ACL is on.
type ResourceType int8

// Resource types, with Kafka's codes.
const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// PatternType is how an ACL's resource name is understood.
type PatternType int8

// Pattern types, with Kafka's codes. ANY and MATCH are for filters only.
const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1 // filter: any pattern type, the name as given
	PatternMatch    PatternType = 2 // filter: every pattern that applies to the name
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// Operation is what an ACL allows or denies.
type Operation int8

// Operations, with Kafka's codes. ANY is for filters only; ALL matches
// every operation.
const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
)

// Permission is whether an ACL allows or denies.
type Permission int8

// Permissions, with Kafka's codes. ANY is for filters only.
const (
	PermUnknown Permission = 0
	PermAny     Permission = 1
	PermDeny    Permission = 2
	PermAllow   Permission = 3
)

// ClusterName is the only name of the CLUSTER resource, as Kafka's.
const ClusterName = "kafka-cluster"

// Wildcards: the resource name that matches every name (LITERAL
// pattern), the principal that matches every user and the host that
// matches every address.
const (
	WildcardResource  = "*"
	WildcardPrincipal = "User:*"
	WildcardHost      = "*"
)

// ErrInvalidACL is wrapped by every error for an ACL or filter Kafka
// refuses with INVALID_REQUEST.
var ErrInvalidACL = errors.New("invalid ACL")

var resourceNames = map[ResourceType]string{
	ResourceUnknown: "UNKNOWN", ResourceAny: "ANY", ResourceTopic: "TOPIC", ResourceGroup: "GROUP",
	ResourceCluster: "CLUSTER", ResourceTransactionalID: "TRANSACTIONAL_ID",
	ResourceDelegationToken: "DELEGATION_TOKEN", ResourceUser: "USER",
}

var patternNames = map[PatternType]string{
	PatternUnknown: "UNKNOWN", PatternAny: "ANY", PatternMatch: "MATCH", PatternLiteral: "LITERAL", PatternPrefixed: "PREFIXED",
}

var operationNames = map[Operation]string{
	OpUnknown: "UNKNOWN", OpAny: "ANY", OpAll: "ALL", OpRead: "READ", OpWrite: "WRITE", OpCreate: "CREATE",
	OpDelete: "DELETE", OpAlter: "ALTER", OpDescribe: "DESCRIBE", OpClusterAction: "CLUSTER_ACTION",
	OpDescribeConfigs: "DESCRIBE_CONFIGS", OpAlterConfigs: "ALTER_CONFIGS", OpIdempotentWrite: "IDEMPOTENT_WRITE",
	OpCreateTokens: "CREATE_TOKENS", OpDescribeTokens: "DESCRIBE_TOKENS",
}

var permissionNames = map[Permission]string{
	PermUnknown: "UNKNOWN", PermAny: "ANY", PermDeny: "DENY", PermAllow: "ALLOW",
}

func name[T comparable](names map[T]string, v T, code int8) string {
	if s, ok := names[v]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%d)", code)
}

// parseName reads an enum name in any case, with '-' for '_' (the CLI's
// "transactional-id", "describe-configs").
func parseName[T comparable](names map[T]string, what, s string) (T, error) {
	want := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	for v, n := range names {
		if n == want && n != "UNKNOWN" {
			return v, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("%w: unknown %s %q", ErrInvalidACL, what, s)
}

func (r ResourceType) String() string { return name(resourceNames, r, int8(r)) }
func (p PatternType) String() string  { return name(patternNames, p, int8(p)) }
func (o Operation) String() string    { return name(operationNames, o, int8(o)) }
func (p Permission) String() string   { return name(permissionNames, p, int8(p)) }

// ParseResourceType reads a resource type name ("topic", "TRANSACTIONAL_ID").
func ParseResourceType(s string) (ResourceType, error) {
	return parseName(resourceNames, "resource type", s)
}

// ParsePatternType reads a pattern type name ("literal", "prefixed").
func ParsePatternType(s string) (PatternType, error) {
	return parseName(patternNames, "pattern type", s)
}

// ParseOperation reads an operation name ("read", "describe-configs").
func ParseOperation(s string) (Operation, error) { return parseName(operationNames, "operation", s) }

// ParsePermission reads a permission name ("allow", "deny").
func ParsePermission(s string) (Permission, error) {
	return parseName(permissionNames, "permission", s)
}

// MarshalText and UnmarshalText store the enums by name.
func (r ResourceType) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
func (p PatternType) MarshalText() ([]byte, error)  { return []byte(p.String()), nil }
func (o Operation) MarshalText() ([]byte, error)    { return []byte(o.String()), nil }
func (p Permission) MarshalText() ([]byte, error)   { return []byte(p.String()), nil }

// UnmarshalText reads a resource type by name.
func (r *ResourceType) UnmarshalText(b []byte) (err error) {
	*r, err = ParseResourceType(string(b))
	return err
}

// UnmarshalText reads a pattern type by name.
func (p *PatternType) UnmarshalText(b []byte) (err error) {
	*p, err = ParsePatternType(string(b))
	return err
}

// UnmarshalText reads an operation by name.
func (o *Operation) UnmarshalText(b []byte) (err error) {
	*o, err = ParseOperation(string(b))
	return err
}

// UnmarshalText reads a permission by name.
func (p *Permission) UnmarshalText(b []byte) (err error) {
	*p, err = ParsePermission(string(b))
	return err
}

// ACL is one access control entry on a resource pattern (Kafka's
// AclBinding).
type ACL struct {
	ResourceType ResourceType `json:"resource_type"`
	ResourceName string       `json:"resource_name"`
	PatternType  PatternType  `json:"pattern_type"`
	Principal    string       `json:"principal"`
	Host         string       `json:"host"`
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"`
}

// String renders the ACL for logs and the CLI.
func (a ACL) String() string {
	return fmt.Sprintf("%s %s on %s:%s:%s from %s: %s", a.Permission, a.Principal, a.ResourceType, a.PatternType, a.ResourceName, a.Host, a.Operation)
}

// Validate checks an ACL to be created as Kafka does: a concrete resource
// type, LITERAL or PREFIXED pattern, a concrete operation, ALLOW or DENY,
// a non-empty name (kafka-cluster for CLUSTER), a TYPE:NAME principal and
// a host.
func (a ACL) Validate() error {
	switch {
	case a.ResourceType == ResourceUnknown || a.ResourceType == ResourceAny || resourceNames[a.ResourceType] == "":
		return fmt.Errorf("%w: resource type %s", ErrInvalidACL, a.ResourceType)
	case a.PatternType != PatternLiteral && a.PatternType != PatternPrefixed:
		return fmt.Errorf("%w: pattern type %s (want LITERAL or PREFIXED)", ErrInvalidACL, a.PatternType)
	case a.Operation == OpUnknown || a.Operation == OpAny || operationNames[a.Operation] == "":
		return fmt.Errorf("%w: operation %s", ErrInvalidACL, a.Operation)
	case a.Permission != PermAllow && a.Permission != PermDeny:
		return fmt.Errorf("%w: permission %s (want ALLOW or DENY)", ErrInvalidACL, a.Permission)
	case a.ResourceName == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalidACL)
	case a.ResourceType == ResourceCluster && a.ResourceName != ClusterName:
		return fmt.Errorf("%w: the only valid name for the CLUSTER resource is %s", ErrInvalidACL, ClusterName)
	case a.Host == "":
		return fmt.Errorf("%w: empty host (use * for every host)", ErrInvalidACL)
	}
	return ValidPrincipal(a.Principal)
}

// ValidPrincipal checks a principal is TYPE:NAME with both parts present
// ("User:alice", "User:*").
func ValidPrincipal(p string) error {
	typ, name, ok := strings.Cut(p, ":")
	if !ok || typ == "" || name == "" {
		return fmt.Errorf("%w: could not parse principal %q (want TYPE:NAME, e.g. User:alice)", ErrInvalidACL, p)
	}
	return nil
}

// Filter selects ACLs (Kafka's AclBindingFilter), for describing and
// deleting them. Nil strings match anything; ANY matches any value.
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType // ANY, MATCH, LITERAL or PREFIXED
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// AnyFilter matches every ACL.
func AnyFilter() Filter {
	return Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermAny}
}

// Validate refuses a filter with UNKNOWN (or out of range) elements, as
// Kafka does.
func (f Filter) Validate() error {
	switch {
	case f.ResourceType == ResourceUnknown || resourceNames[f.ResourceType] == "":
		return fmt.Errorf("%w: filter resource type %s", ErrInvalidACL, f.ResourceType)
	case f.PatternType == PatternUnknown || patternNames[f.PatternType] == "":
		return fmt.Errorf("%w: filter pattern type %s", ErrInvalidACL, f.PatternType)
	case f.Operation == OpUnknown || operationNames[f.Operation] == "":
		return fmt.Errorf("%w: filter operation %s", ErrInvalidACL, f.Operation)
	case f.Permission == PermUnknown || permissionNames[f.Permission] == "":
		return fmt.Errorf("%w: filter permission %s", ErrInvalidACL, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects a.
func (f Filter) Matches(a ACL) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != a.ResourceType {
		return false
	}
	if !f.matchesPattern(a) {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != a.Operation {
		return false
	}
	return f.Permission == PermAny || f.Permission == a.Permission
}

func (f Filter) matchesPattern(a ACL) bool {
	switch f.PatternType {
	case PatternAny:
		return f.ResourceName == nil || *f.ResourceName == a.ResourceName
	case PatternMatch:
		if f.ResourceName == nil {
			return true
		}
		return a.applies(*f.ResourceName)
	default:
		return f.PatternType == a.PatternType && (f.ResourceName == nil || *f.ResourceName == a.ResourceName)
	}
}

// applies reports whether a's resource pattern covers the resource name.
func (a ACL) applies(resource string) bool {
	if a.PatternType == PatternPrefixed {
		return strings.HasPrefix(resource, a.ResourceName)
	}
	return a.ResourceName == resource || a.ResourceName == WildcardResource
}

// matchesEntry reports whether a applies to principal connecting from host.
func (a ACL) matchesEntry(principal, host string) bool {
	return (a.Principal == principal || a.Principal == WildcardPrincipal) && (a.Host == host || a.Host == WildcardHost)
}

// implied returns the operations whose ALLOW grants op: READ, WRITE,
// DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
// DESCRIBE_CONFIGS; ALL implies everything (checked separately).
func implied(op Operation) []Operation {
	switch op {
	case OpDescribe:
		return []Operation{OpDescribe, OpRead, OpWrite, OpDelete, OpAlter}
	case OpDescribeConfigs:
		return []Operation{OpDescribeConfigs, OpAlterConfigs}
	}
	return []Operation{op}
}
