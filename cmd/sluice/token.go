package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/auth"
)

func tokenCommand() *command {
	return &command{
		name:    "token",
		summary: "manage HTTP bearer tokens tied to principals",
		sub: []*command{
			{name: "create", summary: "create a token acting as a principal (printed once)", run: tokenCreate},
			{name: "list", summary: "list tokens (ids and principals, never the tokens)", run: tokenList},
			{name: "revoke", summary: "revoke a token by id", run: tokenRevoke},
		},
	}
}

// tokenStore is the token store of a stopped server's data directory or
// of a running server's HTTP admin API (--server).
type tokenStore struct {
	local  *auth.Tokens
	remote *remoteTenants
	close  func()
}

func (f *tenantFlags) openTokens(ctx context.Context, c *cli) (*tokenStore, error) {
	if f.server != "" {
		r, err := f.remote()
		if err != nil {
			return nil, err
		}
		return &tokenStore{remote: r, close: func() {}}, nil
	}
	t, closeFn, err := openDirStore(ctx, c, f, "tokens", auth.OpenTokens)
	if err != nil {
		return nil, err
	}
	return &tokenStore{local: t, close: closeFn}, nil
}

func (s *tokenStore) create(ctx context.Context, principal string, ttl time.Duration) (string, auth.TokenInfo, error) {
	if s.remote != nil {
		return s.remote.CreateToken(ctx, principal, ttl)
	}
	return s.local.Create(ctx, principal, ttl)
}

func (s *tokenStore) list(ctx context.Context) ([]auth.TokenInfo, error) {
	if s.remote != nil {
		return s.remote.ListTokens(ctx)
	}
	return s.local.List(), nil
}

func (s *tokenStore) revoke(ctx context.Context, id string) error {
	if s.remote != nil {
		return s.remote.RevokeToken(ctx, id)
	}
	return s.local.Revoke(ctx, id)
}

func tokenCreate(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice token create", "--principal User:NAME [--ttl 720h] [--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	principal := fs.String("principal", "", "the principal the token acts as, User:NAME (required)")
	ttl := durationFlag(fs, "ttl", 0, "lifetime of the token (0: until revoked)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	if *principal == "" {
		return usagef("--principal is required")
	}
	if *ttl < 0 {
		return usagef("--ttl must not be negative (0: until revoked), got %s", *ttl)
	}
	t, err := tf.openTokens(ctx, c)
	if err != nil {
		return err
	}
	defer t.close()
	token, info, err := t.create(ctx, *principal, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, token)
	expires := "never"
	if !info.Expires.IsZero() {
		expires = info.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(c.stderr, "token %s for %s, expires %s: shown once, store it now (Authorization: Bearer TOKEN)\n", info.ID, info.Principal, expires)
	return nil
}

func tokenList(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice token list", "[--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	t, err := tf.openTokens(ctx, c)
	if err != nil {
		return err
	}
	defer t.close()
	infos, err := t.list(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tCREATED\tEXPIRES")
	for _, i := range infos {
		exp := "never"
		if !i.Expires.IsZero() {
			exp = i.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.ID, i.Principal, i.Created.Format(time.RFC3339), exp)
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice token revoke", "ID [--data-dir DIR | --server URL]")
	var tf tenantFlags
	tf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one token ID, got %d arguments", len(pos))
	}
	t, err := tf.openTokens(ctx, c)
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.revoke(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "token %s revoked\n", pos[0])
	return nil
}
