package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/internal/testcerts"
)

var listenerStarted = regexp.MustCompile(`msg="kafka listener started".* listener=(\S+) protocol=\S+ addr=(\S+)`)

// startSecureServe runs `sluice serve` with args as a child process and
// waits until each of the named Kafka listeners is listening; it returns
// their addresses by name. The process gets SIGTERM at cleanup.
func startSecureServe(t *testing.T, names []string, args ...string) (map[string]string, *exec.Cmd, func() string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--log-format", "text"}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var mu sync.Mutex
	var logs bytes.Buffer
	stderr := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	addrs := make(chan [2]string)
	go func() {
		defer close(addrs)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listenerStarted.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- [2]string{m[1], m[2]}
			}
		}
	}()
	got := map[string]string{}
	timeout := time.After(60 * time.Second)
	for len(got) < len(names) {
		select {
		case a, ok := <-addrs:
			if !ok {
				t.Fatalf("serve exited before its listeners started:\n%s", stderr())
			}
			got[a[0]] = a[1]
		case <-timeout:
			t.Fatalf("listeners %v did not start:\n%s", names, stderr())
		}
	}
	go func() {
		for range addrs { // keep draining the log
		}
	}()
	return got, cmd, stderr
}

// TestServeSASLSSL runs `sluice serve` with a SASL_SSL listener, TLS
// certificate and a user added with `sluice user add`: franz-go produces
// and consumes over TLS with SCRAM-SHA-512, the wrong password is refused,
// and HTTPS /healthz uses the same certificate.
func TestServeSASLSSL(t *testing.T) {
	dir := t.TempDir()
	certs, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, nil, "s3cret-pw\n", "user", "add", "alice", "--data-dir", dir); code != 0 || !strings.Contains(out, "SCRAM-SHA-512 credential stored") {
		t.Fatalf("user add: status %d, %s %s", code, out, errs)
	}
	httpAddr := freeAddr(t)
	addrs, _, stderr := startSecureServe(t, []string{"EXT"},
		"--data-dir", dir, "--http-addr", httpAddr,
		"--listener", "EXT=SASL_SSL://127.0.0.1:0",
		"--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey)
	clientTLS, err := certs.ClientTLS("", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newClient := func(pass string, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(addrs["EXT"]), kgo.DialTLSConfig(clientTLS),
			kgo.SASL(scram.Auth{User: "alice", Pass: pass}.AsSha512Mechanism()),
			kgo.AllowAutoTopicCreation(), kgo.RequestRetries(0), kgo.RetryTimeout(10 * time.Second),
		}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	cl := newClient("s3cret-pw", kgo.ConsumeTopics("secure"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secure", Value: fmt.Appendf(nil, "m%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce over SASL_SSL: %v\nserver:\n%s", err, stderr())
		}
	}
	var got []string
	for len(got) < 10 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume over SASL_SSL: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, ",") != "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9" {
		t.Fatalf("consumed %v", got)
	}
	if err := newClient("wrong").Ping(ctx); err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	// HTTPS with the same certificate; plain HTTP is not served.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: clientTLS.RootCAs}}}
	resp, err := hc.Get("https://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("https /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "localhost" {
		t.Fatalf("https /healthz: %s", resp.Status)
	}
	if resp, err := hc.Get("http://" + httpAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP /healthz answered 200 on the TLS listener")
		}
	}
}

// TestServeNonLoopbackListeners: a non-loopback PLAINTEXT listener needs
// --allow-unauthenticated (a usage error, status 2, saying so); a
// non-loopback SASL_SSL listener is accepted and serves.
func TestServeNonLoopbackListeners(t *testing.T) {
	certs, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, nil, "", "serve", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
		"--listener", "PUBLIC=PLAINTEXT://0.0.0.0:0", "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey)
	if code != 2 || !strings.Contains(errs, "PUBLIC=PLAINTEXT://0.0.0.0:0") || !strings.Contains(errs, "--allow-unauthenticated") {
		t.Fatalf("non-loopback PLAINTEXT: status %d, stderr %q; want 2 and a message naming the listener and --allow-unauthenticated", code, errs)
	}
	addrs, cmd, stderr := startSecureServe(t, []string{"PUBLIC"},
		"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
		"--listener", "PUBLIC=SASL_SSL://0.0.0.0:0", "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey)
	if !strings.HasPrefix(addrs["PUBLIC"], "0.0.0.0:") && !strings.HasPrefix(addrs["PUBLIC"], "[::]:") {
		t.Fatalf("PUBLIC listener on %s", addrs["PUBLIC"])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve with a non-loopback SASL_SSL listener exited with %v:\n%s", err, stderr())
	}
}
