package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/secfile"
)

func userCommand() *command {
	return &command{
		name:    "user",
		summary: "manage SASL users (SCRAM credentials, stored salted and hashed)",
		sub: []*command{
			{name: "add", summary: "add a user or change its password", run: userAdd},
			{name: "list", summary: "list users and their SCRAM mechanisms", run: userList},
			{name: "delete", summary: "delete a user's credentials", run: userDelete},
		},
	}
}

func userAdd(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice user add", "NAME [--mechanism scram-sha-256|scram-sha-512|all] [--password-file FILE] [--iterations N]")
	var bf backendFlags
	bf.register(c, fs)
	mech := fs.String("mechanism", "all", "SCRAM mechanism: scram-sha-256, scram-sha-512, or all (both)")
	pwFile := fs.String("password-file", "", "read the password from this file's first line (default: from stdin)")
	iters := fs.Int("iterations", auth.DefaultIterations, "SCRAM iteration count (4096 to 16384)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := oneUserName(pos)
	if err != nil {
		return err
	}
	if err := auth.NewUserName(name); err != nil {
		return usagef("%v", err)
	}
	mechs, err := parseMechanisms(*mech)
	if err != nil {
		return err
	}
	if *iters < auth.MinIterations || *iters > auth.MaxIterations {
		return usagef("--iterations must be between %d and %d", auth.MinIterations, auth.MaxIterations)
	}
	pw, err := readPassword(c, *pwFile)
	if err != nil {
		return err
	}
	b, err := bf.openOrCreate(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	for _, m := range mechs {
		if err := b.SetUserCredential(ctx, name, m, pw, *iters); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "user %s: %s credential stored (%d iterations)\n", name, m, *iters)
	}
	return nil
}

func userList(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice user list", "")
	var bf backendFlags
	bf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	users, err := b.ListUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tMECHANISMS")
	for _, u := range users {
		var ms []string
		for _, m := range u.Mechanisms {
			ms = append(ms, fmt.Sprintf("%s (%d iterations)", m.Mechanism, m.Iterations))
		}
		fmt.Fprintf(tw, "%s\t%s\n", u.Name, strings.Join(ms, ", "))
	}
	return tw.Flush()
}

func userDelete(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice user delete", "NAME [--mechanism scram-sha-256|scram-sha-512|all]")
	var bf backendFlags
	bf.register(c, fs)
	mech := fs.String("mechanism", "all", "the credential to delete: scram-sha-256, scram-sha-512, or all")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := oneUserName(pos)
	if err != nil {
		return err
	}
	mechs, err := parseMechanisms(*mech)
	if err != nil {
		return err
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	users, err := b.ListUsers(ctx)
	if err != nil {
		return err
	}
	has := map[auth.Mechanism]bool{}
	for _, u := range users {
		if u.Name == name {
			for _, m := range u.Mechanisms {
				has[m.Mechanism] = true
			}
		}
	}
	deleted := 0
	for _, m := range mechs {
		if !has[m] {
			continue
		}
		if err := b.DeleteUserCredential(ctx, name, m); err != nil {
			return err
		}
		deleted++
		fmt.Fprintf(c.stdout, "user %s: %s credential deleted\n", name, m)
	}
	if deleted == 0 {
		return fmt.Errorf("user %s has no %s credential (sluice user list shows the users)", name, *mech)
	}
	return nil
}

func oneUserName(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("want one user NAME, got %d arguments", len(pos))
	}
	if err := auth.ValidUserName(pos[0]); err != nil {
		return "", usagef("%v", err)
	}
	return pos[0], nil
}

func parseMechanisms(s string) ([]auth.Mechanism, error) {
	if strings.EqualFold(s, "all") {
		return auth.Mechanisms, nil
	}
	m, err := auth.ParseMechanism(s)
	if err != nil {
		return nil, usagef("--mechanism: %v", err)
	}
	return []auth.Mechanism{m}, nil
}

// readPassword reads a password from a file's first line, or stdin.
func readPassword(c *cli, file string) (string, error) {
	var r io.Reader = c.stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	pw, err := secfile.FirstLine(r)
	if errors.Is(err, secfile.ErrEmpty) {
		return "", errors.New("empty password: give it on stdin or in --password-file")
	}
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return pw, nil
}
