package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTenantCommandsLive: sluice tenant and sluice namespace with --server
// change a running sluice serve through its HTTP admin API, and its Kafka
// listener applies the change at once (a topic of a namespace created
// live can be created); only the --http-token and --super-user principals
// may; the data-directory mode is refused while the server runs.
func TestTenantCommandsLive(t *testing.T) {
	dir := t.TempDir()
	tokens := map[string]string{}
	for _, p := range []string{"User:ANONYMOUS", "User:bob"} {
		code, out, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": dir}, "", "token", "create", "--principal", p)
		if code != 0 {
			t.Fatalf("token create %s: %d %s", p, code, errs)
		}
		tokens[p] = strings.TrimSpace(out)
	}
	httpAddr := freeAddr(t)
	kafkaAddr, cmd, stderr := startServeWith(t, dir, []string{"--http-addr", httpAddr, "--http-token", "admin-secret", "--authorizer", "--super-user", "User:ANONYMOUS"}, nil)
	defer cmd.Process.Kill()
	server := "http://" + httpAddr
	admin := map[string]string{"SLUICE_SERVER": server, "SLUICE_HTTP_TOKEN": "admin-secret"}
	broker := map[string]string{"SLUICE_BROKER": kafkaAddr}
	mustRun := func(env map[string]string, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, env, "", args...)
		if code != 0 {
			t.Fatalf("%v: status %d, stderr %s\nserver: %s", args, code, errs, stderr)
		}
		return out
	}

	mustRun(admin, "tenant", "create", "acme", "--member", "User:alice")
	// The tenant exists for the Kafka listener: its topics need a namespace.
	if code, _, errs := runCLI(t, broker, "", "topic", "create", "acme.prod.orders"); code == 0 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("topic of a missing namespace: %d %q", code, errs)
	}
	// A super user's principal token may too (its file's first line).
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(tokens["User:ANONYMOUS"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(map[string]string{"SLUICE_SERVER": server}, "namespace", "create", "acme/prod", "--retention", "48h", "--produce-rate", "5000", "--http-token-file", tokFile)
	mustRun(broker, "topic", "create", "acme.prod.orders")
	if out := mustRun(admin, "tenant", "list"); !strings.Contains(out, "User:alice") || !strings.Contains(out, "48h0m0s") || !strings.Contains(out, "5000") {
		t.Fatalf("tenant list --server: %q", out)
	}

	// Refused: another principal, no token, bad input, the data directory.
	if code, _, errs := runCLI(t, map[string]string{"SLUICE_SERVER": server, "SLUICE_HTTP_TOKEN": tokens["User:bob"]}, "", "tenant", "create", "globex"); code != 1 || !strings.Contains(errs, "403") {
		t.Fatalf("bob: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, map[string]string{"SLUICE_SERVER": server}, "", "tenant", "list"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("no token: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, admin, "", "namespace", "create", "globex/prod"); code != 1 || !strings.Contains(errs, `no tenant "globex"`) || !strings.Contains(errs, "404") {
		t.Fatalf("unknown tenant: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, admin, "", "tenant", "delete", "acme"); code != 1 || !strings.Contains(errs, "still has namespaces") {
		t.Fatalf("tenant with namespaces: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, map[string]string{"SLUICE_SERVER": "127.0.0.1:1"}, "", "tenant", "list"); code != 2 || !strings.Contains(errs, "want a URL") {
		t.Fatalf("bad --server: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": dir}, "", "tenant", "create", "globex"); code != 1 || !strings.Contains(errs, "use --server") {
		t.Fatalf("data-directory mode on a running server's directory: %d %q", code, errs)
	}

	// Tokens live: one created through the API works at once, and stops
	// working once revoked; bad input is refused.
	out := mustRun(admin, "token", "create", "--principal", "User:ANONYMOUS", "--ttl", "1h")
	live := strings.TrimSpace(out)
	withLive := map[string]string{"SLUICE_SERVER": server, "SLUICE_HTTP_TOKEN": live}
	if out := mustRun(withLive, "tenant", "list"); !strings.Contains(out, "acme") {
		t.Fatalf("tenant list with a token created live: %q", out)
	}
	if code, _, errs := runCLI(t, admin, "", "token", "create", "--principal", "carol"); code != 1 || !strings.Contains(errs, "User:NAME") || !strings.Contains(errs, "400") {
		t.Fatalf("token for a bad principal: %d %q", code, errs)
	}
	var id string
	for _, line := range strings.Split(mustRun(admin, "token", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(live, "sluice_") && f[1] == "User:ANONYMOUS" && !strings.Contains(line, "never") {
			id = f[0]
		}
	}
	if id == "" {
		t.Fatal("token list --server does not show the token created live")
	}
	mustRun(admin, "token", "revoke", id)
	if code, _, errs := runCLI(t, withLive, "", "tenant", "list"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("a revoked token: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, admin, "", "token", "revoke", id); code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("revoking twice: %d %q", code, errs)
	}

	mustRun(admin, "namespace", "delete", "acme/prod")
	// Its topic is left, still acme's: the tenant goes only after it
	// (TestDeleteTenantRefusedWhileTopicsRemain).
	if code, _, errs := runCLI(t, admin, "", "tenant", "delete", "acme"); code != 1 || !strings.Contains(errs, "still has topics acme.prod.orders") || !strings.Contains(errs, "400") {
		t.Fatalf("deleting a tenant with topics: %d %q", code, errs)
	}
	mustRun(broker, "topic", "delete", "acme.prod.orders")
	mustRun(admin, "tenant", "delete", "acme")
	if out := mustRun(admin, "tenant", "list"); strings.Contains(out, "acme") {
		t.Fatalf("tenant list after delete: %q", out)
	}
}
