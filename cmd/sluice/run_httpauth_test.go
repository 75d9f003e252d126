package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `sluice run` with an http source under auth: principals takes the
// tokens of `sluice token create` and the ACLs of `sluice acl add` from
// its --data-dir: a principal with WRITE on acl_topic ingests, one without
// gets 403, an unknown token 401.
func TestRunHTTPPrincipalTokens(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	token := func(p string) string {
		code, out, errs := runCLI(t, env, "", "token", "create", "--principal", p)
		if code != 0 {
			t.Fatalf("token create %s: %d %s", p, code, errs)
		}
		return strings.TrimSpace(out)
	}
	shop, other := token("User:shop"), token("User:other")
	if code, _, errs := runCLI(t, env, "", "acl", "add", "--principal", "User:shop", "--operation", "write", "--topic", "orders"); code != 0 {
		t.Fatalf("acl add: %d %s", code, errs)
	}
	addr := freeAddr(t)
	spec := filepath.Join(t.TempDir(), "ingest.yaml")
	yaml := fmt.Sprintf("name: ingest\nsource:\n  http: {addr: %q, auth: principals, acl_topic: orders}\n  format: json\nsink:\n  stdout: {}\nparallelism: 1\n", addr)
	if err := os.WriteFile(spec, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb lockedBuffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, c, []string{"run", "--quiet", spec}) }()
	send := func(tok, body string) (int, error) {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/ingest", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, err := send(shop, `{"order":"from-shop"}`)
		if err == nil {
			if code != 200 {
				t.Fatalf("principal with WRITE on orders: %d", code)
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("run ended with %d before listening: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("http source never answered: %v; stderr %s", err, errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, err := send(other, `{"order":"from-other"}`); err != nil || code != 403 {
		t.Fatalf("principal without WRITE: %d %v", code, err)
	}
	if code, err := send("sluice_bogus", `{"order":"bogus"}`); err != nil || code != 401 {
		t.Fatalf("unknown token: %d %v", code, err)
	}
	for !strings.Contains(out.String(), "from-shop") {
		if time.Now().After(deadline) {
			t.Fatalf("record not delivered; stdout %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := out.String(); strings.Contains(got, "from-other") || strings.Contains(got, "bogus") {
		t.Fatalf("refused records delivered: %q", got)
	}
}
