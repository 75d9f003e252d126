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

func openTokens(ctx context.Context, c *cli, dir string) (*localBackend, *auth.Tokens, error) {
	return openStore(ctx, c, dir, auth.OpenTokens)
}

func tokenCreate(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice token create", "--principal User:NAME [--ttl 720h]")
	dir := dataDirFlag(c, fs)
	principal := fs.String("principal", "", "the principal the token acts as, User:NAME (required)")
	ttl := fs.Duration("ttl", 0, "lifetime of the token (0: until revoked)")
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
	b, t, err := openTokens(ctx, c, *dir)
	if err != nil {
		return err
	}
	defer b.Close()
	token, info, err := t.Create(ctx, *principal, *ttl)
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
	fs := flagSet(c, "sluice token list", "")
	dir := dataDirFlag(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	b, t, err := openTokens(ctx, c, *dir)
	if err != nil {
		return err
	}
	defer b.Close()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tCREATED\tEXPIRES")
	for _, i := range t.List() {
		exp := "never"
		if !i.Expires.IsZero() {
			exp = i.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.ID, i.Principal, i.Created.Format(time.RFC3339), exp)
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice token revoke", "ID")
	dir := dataDirFlag(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one token ID, got %d arguments", len(pos))
	}
	b, t, err := openTokens(ctx, c, *dir)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := t.Revoke(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "token %s revoked\n", pos[0])
	return nil
}
