package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
)

func tenantCommand() *command {
	return &command{
		name:    "tenant",
		summary: "manage tenants (they own namespaces; topics are named TENANT.NAMESPACE.NAME)",
		sub: []*command{
			{name: "create", summary: "create a tenant, or change its members", run: tenantCreate},
			{name: "list", summary: "list tenants and their namespaces with their limits", run: tenantList},
			{name: "delete", summary: "delete a tenant without namespaces or topics", run: tenantDelete},
		},
	}
}

func namespaceCommand() *command {
	return &command{
		name:    "namespace",
		summary: "manage a tenant's namespaces and their limits",
		sub: []*command{
			{name: "create", summary: "create a namespace, or change its limits", run: namespaceCreate},
			{name: "delete", summary: "delete a namespace", run: namespaceDelete},
		},
	}
}

// openStore opens one of the auth stores of a data directory, which only
// a stopped server allows (a running one locks it; it reads the stores
// when it starts). Tenants and namespaces of a running server are changed
// through its HTTP admin API instead (--server, tenant_remote.go).
func openStore[T any](ctx context.Context, c *cli, dir string, open func(context.Context, *logstore.Log) (T, error)) (*localBackend, T, error) {
	var zero T
	b, err := openLocal(ctx, c, dir)
	if err != nil {
		return nil, zero, err
	}
	st, err := open(ctx, b.log)
	if err != nil {
		b.Close()
		return nil, zero, err
	}
	return b, st, nil
}

func tenantCreate(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice tenant create", "NAME [--member User:NAME ...] [--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	var members stringList
	fs.Var(&members, "member", "a principal that belongs to the tenant, User:NAME (repeatable); the tenant's topics, groups and transactional ids are theirs")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one tenant NAME, got %d arguments", len(pos))
	}
	if err := auth.ValidTenantName(pos[0]); err != nil {
		return usagef("%v", err)
	}
	t, closeStore, err := tf.open(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := t.PutTenant(ctx, auth.Tenant{Name: pos[0], Members: members}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "tenant %s: members %s\n", pos[0], strings.Join(members, ", "))
	return nil
}

func tenantList(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice tenant list", "[--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	t, closeStore, err := tf.open(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()
	var ts []auth.Tenant
	var nss []auth.Namespace
	switch t := t.(type) {
	case *auth.Tenants:
		ts, nss = t.List()
	case *remoteTenants:
		if ts, nss, err = t.List(ctx); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNAMESPACE\tRETENTION\tMAX STORAGE\tON FULL\tPRODUCE B/S\tFETCH B/S\tMEMBERS")
	for _, x := range ts {
		fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t%s\n", x.Name, strings.Join(x.Members, ", "))
		for _, n := range nss {
			if n.Tenant == x.Name {
				onFull := auth.OnFullRefuse
				if n.OnFull != "" {
					onFull = n.OnFull
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.Name, n.Name, orNone(n.Retention.String(), n.Retention == 0),
					orNone(fmt.Sprint(n.MaxStorage), n.MaxStorage == 0), orNone(onFull, n.MaxStorage == 0), orNone(formatRate(n.ProduceRate), n.ProduceRate == 0), orNone(formatRate(n.FetchRate), n.FetchRate == 0))
			}
		}
	}
	return tw.Flush()
}

func orNone(s string, none bool) string {
	if none {
		return "-"
	}
	return s
}

func tenantDelete(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice tenant delete", "NAME [--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one tenant NAME, got %d arguments", len(pos))
	}
	t, closeStore, err := tf.open(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := t.DeleteTenant(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "tenant %s deleted\n", pos[0])
	return nil
}

func namespaceCreate(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice namespace create", "TENANT/NAMESPACE [--retention 24h] [--max-storage SIZE] [--on-full refuse|evict] [--produce-rate SIZE/s] [--fetch-rate SIZE/s] [--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	retention := durationFlag(fs, "retention", 0, "retention of topics created in the namespace that set none (0: the log's default)")
	var maxStorage byteSize
	sizeVar(fs, &maxStorage, "max-storage", "bytes all the namespace's topics may store, like 10GiB; over it, what --on-full says happens (0: no limit)")
	onFull := fs.String("on-full", auth.OnFullRefuse, "over --max-storage: refuse (produce requests get POLICY_VIOLATION until space is freed) or evict (the namespace's oldest segments are deleted, as retention would, and the produce is accepted)")
	var produceRate byteRate
	rateVar(fs, &produceRate, "produce-rate", "bytes per second all clients together may produce to the namespace's topics, like 5MiB or 5MiB/s; over it they are throttled (0: no limit)")
	var fetchRate byteRate
	rateVar(fs, &fetchRate, "fetch-rate", "bytes per second all clients together may fetch from the namespace's topics, like 20MiB/s (0: no limit)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	tenant, name, err := namespaceArg(pos)
	if err != nil {
		return err
	}
	if *retention < 0 {
		return usagef("limits must not be negative")
	}
	if *onFull != auth.OnFullRefuse && *onFull != auth.OnFullEvict {
		return usagef("--on-full %q: use refuse or evict", *onFull)
	}
	t, closeStore, err := tf.open(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()
	ns := auth.Namespace{Tenant: tenant, Name: name, Retention: *retention, MaxStorage: int64(maxStorage), ProduceRate: float64(produceRate), FetchRate: float64(fetchRate), OnFull: *onFull}
	if *onFull == auth.OnFullRefuse {
		ns.OnFull = "" // the default, stored as such
	}
	if err := t.PutNamespace(ctx, ns); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "namespace %s/%s: topics named %s*\n", tenant, name, ns.Prefix())
	return nil
}

func namespaceDelete(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice namespace delete", "TENANT/NAMESPACE [--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	tenant, name, err := namespaceArg(pos)
	if err != nil {
		return err
	}
	t, closeStore, err := tf.open(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := t.DeleteNamespace(ctx, tenant, name); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "namespace %s/%s deleted (its topics stay: sluice topic delete them)\n", tenant, name)
	return nil
}

func namespaceArg(pos []string) (string, string, error) {
	if len(pos) != 1 {
		return "", "", usagef("want one TENANT/NAMESPACE, got %d arguments", len(pos))
	}
	tenant, name, ok := strings.Cut(pos[0], "/")
	if !ok {
		return "", "", usagef("want TENANT/NAMESPACE, got %q", pos[0])
	}
	for _, s := range []string{tenant, name} {
		if err := auth.ValidTenantName(s); err != nil {
			return "", "", usagef("%v", err)
		}
	}
	return tenant, name, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// formatRate writes bytes per second as a plain number: whole bytes
// without an exponent (5242880, not 5.24288e+06), fractions to at most
// three decimals.
func formatRate(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
