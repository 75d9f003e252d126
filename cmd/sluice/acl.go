package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/sluicehq/sluice/auth"
)

func aclCommand() *command {
	return &command{
		name:    "acl",
		summary: "manage Kafka ACLs (enforced by sluice serve --authorizer, and by http sources with auth: principals)",
		sub: []*command{
			{name: "add", summary: "allow or deny principals operations on a resource", run: aclAdd},
			{name: "list", summary: "list ACLs (all, or those a filter matches)", run: aclList},
			{name: "delete", summary: "delete the ACLs a filter matches", run: aclDelete},
		},
	}
}

// aclFlags are the flags naming ACLs (add) or filtering them (list,
// delete).
type aclFlags struct {
	principals []string
	hosts      []string
	ops        []string
	topic      optString
	group      optString
	txnID      optString
	cluster    bool
	pattern    string
	permission string
}

// optString is a string flag that knows whether it was given.
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string     { return o.v }
func (o *optString) Set(v string) error { o.v, o.set = v, true; return nil }

func (a *aclFlags) register(fs *flag.FlagSet, add bool) {
	list := func(dst *[]string) func(string) error {
		return func(v string) error {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					*dst = append(*dst, s)
				}
			}
			return nil
		}
	}
	fs.Func("principal", "principal TYPE:NAME (User:alice, User:* for everyone); repeatable", list(&a.principals))
	fs.Func("host", "client IP address the ACL applies to (* for every host, the default when adding); repeatable", list(&a.hosts))
	fs.Func("operation", "read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write or all; comma-separated or repeatable", list(&a.ops))
	fs.Var(&a.topic, "topic", "topic name (or prefix with --pattern prefixed; * for every topic)")
	fs.Var(&a.group, "group", "consumer group id (or prefix; * for every group)")
	fs.Var(&a.txnID, "transactional-id", "transactional id (or prefix; * for every id)")
	fs.BoolVar(&a.cluster, "cluster", false, "the cluster resource (kafka-cluster)")
	if add {
		fs.StringVar(&a.pattern, "pattern", "literal", "resource pattern: literal or prefixed")
		fs.StringVar(&a.permission, "permission", "allow", "allow or deny")
	} else {
		fs.StringVar(&a.pattern, "pattern", "any", "resource pattern filter: any, match (every ACL that applies to the name), literal or prefixed")
		fs.StringVar(&a.permission, "permission", "any", "allow, deny or any")
	}
}

// resource returns the resource named by the flags; ok is false when none
// is given. Two resources are a usage error.
func (a *aclFlags) resource() (rt auth.ResourceType, name string, ok bool, err error) {
	n := 0
	for _, r := range []struct {
		set  bool
		typ  auth.ResourceType
		name string
	}{
		{a.topic.set, auth.ResourceTopic, a.topic.v},
		{a.group.set, auth.ResourceGroup, a.group.v},
		{a.txnID.set, auth.ResourceTransactionalID, a.txnID.v},
		{a.cluster, auth.ResourceCluster, auth.ClusterName},
	} {
		if r.set {
			n++
			rt, name = r.typ, r.name
		}
	}
	if n > 1 {
		return 0, "", false, usagef("give one of --topic, --group, --transactional-id and --cluster")
	}
	return rt, name, n == 1, nil
}

// acls returns the ACLs `acl add` creates: every principal, host and
// operation given.
func (a *aclFlags) acls() ([]auth.ACL, error) {
	rt, name, ok, err := a.resource()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, usagef("name the resource: --topic, --group, --transactional-id or --cluster")
	}
	if len(a.principals) == 0 || len(a.ops) == 0 {
		return nil, usagef("--principal and --operation are required")
	}
	pt, err := auth.ParsePatternType(a.pattern)
	if err != nil {
		return nil, usagef("--pattern: %v", err)
	}
	perm, err := auth.ParsePermission(a.permission)
	if err != nil {
		return nil, usagef("--permission: %v", err)
	}
	hosts := a.hosts
	if len(hosts) == 0 {
		hosts = []string{auth.WildcardHost}
	}
	var out []auth.ACL
	for _, p := range a.principals {
		for _, h := range hosts {
			for _, o := range a.ops {
				op, err := auth.ParseOperation(o)
				if err != nil {
					return nil, usagef("--operation: %v", err)
				}
				acl := auth.ACL{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: p, Host: h, Operation: op, Permission: perm}
				if err := acl.Validate(); err != nil {
					return nil, usagef("%v", err)
				}
				out = append(out, acl)
			}
		}
	}
	return out, nil
}

// filters returns the filters of `acl list` and `acl delete`: one per
// principal, host and operation given (any when none is).
func (a *aclFlags) filters() ([]auth.Filter, error) {
	base := auth.AnyFilter()
	rt, name, ok, err := a.resource()
	if err != nil {
		return nil, err
	}
	if ok {
		base.ResourceType, base.ResourceName = rt, &name
	}
	if base.PatternType, err = auth.ParsePatternType(a.pattern); err != nil {
		return nil, usagef("--pattern: %v", err)
	}
	if base.Permission, err = auth.ParsePermission(a.permission); err != nil {
		return nil, usagef("--permission: %v", err)
	}
	out := []auth.Filter{base}
	expand := func(vals []string, set func(f *auth.Filter, v string) error) error {
		if len(vals) == 0 {
			return nil
		}
		var next []auth.Filter
		for _, f := range out {
			for _, v := range vals {
				g := f
				if err := set(&g, v); err != nil {
					return err
				}
				next = append(next, g)
			}
		}
		out = next
		return nil
	}
	err = expand(a.principals, func(f *auth.Filter, v string) error { f.Principal = &v; return nil })
	if err == nil {
		err = expand(a.hosts, func(f *auth.Filter, v string) error { f.Host = &v; return nil })
	}
	if err == nil {
		err = expand(a.ops, func(f *auth.Filter, v string) (err error) {
			if f.Operation, err = auth.ParseOperation(v); err != nil {
				return usagef("--operation: %v", err)
			}
			return nil
		})
	}
	return out, err
}

// empty reports whether no filter flag narrows the selection.
func (a *aclFlags) empty() bool {
	_, _, ok, _ := a.resource()
	return !ok && len(a.principals) == 0 && len(a.hosts) == 0 && len(a.ops) == 0
}

func aclAdd(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice acl add", "--principal User:NAME --operation OP[,OP] (--topic T | --group G | --transactional-id X | --cluster) [--pattern literal|prefixed] [--permission allow|deny] [--host IP]")
	var bf backendFlags
	bf.register(c, fs)
	var af aclFlags
	af.register(fs, true)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	acls, err := af.acls()
	if err != nil {
		return err
	}
	b, err := bf.openOrCreate(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateACLs(ctx, acls); err != nil {
		return err
	}
	for _, a := range acls {
		fmt.Fprintf(c.stdout, "added: %s\n", a)
	}
	return nil
}

func aclList(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice acl list", "[--principal P] [--topic T | --group G | --transactional-id X | --cluster] [--pattern any|match|literal|prefixed] [--operation OP] [--permission allow|deny|any]")
	var bf backendFlags
	bf.register(c, fs)
	var af aclFlags
	af.register(fs, false)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	filters, err := af.filters()
	if err != nil {
		return err
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	seen := map[auth.ACL]bool{}
	var acls []auth.ACL
	for _, f := range filters {
		got, err := b.ListACLs(ctx, f)
		if err != nil {
			return err
		}
		for _, a := range got {
			if !seen[a] {
				seen[a] = true
				acls = append(acls, a)
			}
		}
	}
	return printACLs(c, acls)
}

func aclDelete(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice acl delete", "[--principal P] [--topic T | --group G | --transactional-id X | --cluster] [--pattern any|match|literal|prefixed] [--operation OP] [--permission allow|deny|any]")
	var bf backendFlags
	bf.register(c, fs)
	var af aclFlags
	af.register(fs, false)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if af.empty() {
		return usagef("name what to delete: a resource, --principal, --host or --operation (acl list shows the ACLs)")
	}
	filters, err := af.filters()
	if err != nil {
		return err
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	var deleted []auth.ACL
	for _, f := range filters {
		got, err := b.DeleteACLs(ctx, f)
		if err != nil {
			return err
		}
		deleted = append(deleted, got...)
	}
	for _, a := range deleted {
		fmt.Fprintf(c.stdout, "deleted: %s\n", a)
	}
	if len(deleted) == 0 {
		return fmt.Errorf("no ACL matched (acl list shows the ACLs)")
	}
	return nil
}

func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	return nil
}

func printACLs(c *cli, acls []auth.ACL) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	for _, a := range acls {
		fmt.Fprintf(tw, "%s:%s\t%s\t%s\t%s\t%s\t%s\n", a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission)
	}
	return tw.Flush()
}
