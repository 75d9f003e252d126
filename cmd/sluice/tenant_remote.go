package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/secfile"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/web"
)

// tenantStore is where sluice tenant and sluice namespace make their
// changes: the data directory of a stopped server (*auth.Tenants), or a
// running server's HTTP admin API (--server).
type tenantStore interface {
	PutTenant(ctx context.Context, x auth.Tenant) error
	DeleteTenant(ctx context.Context, name string) error
	PutNamespace(ctx context.Context, n auth.Namespace) error
	DeleteNamespace(ctx context.Context, tenant, name string) error
}

// tenantFlags are the flags choosing the tenant store.
type tenantFlags struct {
	dir, server, token, tokenFile, tlsCA string
}

func (f *tenantFlags) register(c *cli, fs *flag.FlagSet) {
	dataDirVar(c, fs, &f.dir, "data directory of a stopped server (a running one locks it: use --server)")
	fs.StringVar(&f.server, "server", envOr(c, "SLUICE_SERVER", ""), "base URL of a running sluice serve's HTTP listener, like http://127.0.0.1:8080, to change it live through its admin API instead of --data-dir (env SLUICE_SERVER)")
	fs.StringVar(&f.token, "http-token", envOr(c, "SLUICE_HTTP_TOKEN", ""), "with --server: the server's --http-token, or a token of a --super-user principal (env SLUICE_HTTP_TOKEN)")
	fs.StringVar(&f.tokenFile, "http-token-file", "", "with --server: read the bearer token from this file's first line")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "with an https --server: PEM file of the CA that signed its certificate (default: the system's)")
}

// open returns the store (*auth.Tenants or *remoteTenants) and a function
// that closes it.
func (f *tenantFlags) open(ctx context.Context, c *cli) (tenantStore, func(), error) {
	if f.server == "" {
		return openDirStore(ctx, c, f, "tenants", auth.OpenTenants)
	}
	r, err := f.remote()
	if err != nil {
		return nil, nil, err
	}
	return r, func() {}, nil
}

// openDirStore opens one of the auth stores (what names it in errors) of
// the stopped server's data directory f.dir, and returns it with the
// function that closes it. A running server locks its directory: the
// error then says to go through its HTTP admin API.
func openDirStore[T any](ctx context.Context, c *cli, f *tenantFlags, what string, open func(context.Context, *logstore.Log) (T, error)) (T, func(), error) {
	var zero T
	if f.tokenFile != "" || f.tlsCA != "" {
		return zero, nil, usagef("--http-token-file and --tls-ca need --server")
	}
	b, st, err := openStore(ctx, c, f.dir, open)
	var locked *logstore.LockedError
	if errors.As(err, &locked) {
		return zero, nil, fmt.Errorf("%w: a running server manages its %s through its HTTP admin API: use --server http://HOST:PORT with --http-token", err, what)
	}
	if err != nil {
		return zero, nil, err
	}
	return st, func() { b.Close() }, nil
}

func (f *tenantFlags) remote() (*remoteTenants, error) {
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q: want a URL like http://127.0.0.1:8080", f.server)
	}
	token := f.token
	if f.tokenFile != "" {
		t, err := secfile.FirstLineOf(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--http-token-file: %w", err)
		}
		token = strings.TrimSpace(t)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f.tlsCA != "" {
		pool, err := secfile.CertPool(f.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &remoteTenants{base: strings.TrimSuffix(u.String(), "/"), token: token,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// remoteTenants is the HTTP admin API of a running server.
type remoteTenants struct {
	base, token string
	client      *http.Client
}

// do sends a request and decodes a 2xx answer into out (when not nil); an
// error answer becomes an error with the server's message.
func (r *remoteTenants) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("server %s: %w", r.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("server %s: %w", r.base, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("server %s: %s (%s)", r.base, e.Error, resp.Status)
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return fmt.Errorf("server %s: %s %s: %s: is it a sluice serve of this version?", r.base, method, path, resp.Status)
		}
		return fmt.Errorf("server %s: %s %s: %s", r.base, method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("server %s: unexpected answer to %s %s: %w", r.base, method, path, err)
		}
	}
	return nil
}

func (r *remoteTenants) PutTenant(ctx context.Context, x auth.Tenant) error {
	members := x.Members
	if members == nil {
		members = []string{}
	}
	return r.do(ctx, http.MethodPut, "/api/v1/tenants/"+url.PathEscape(x.Name), map[string][]string{"members": members}, nil)
}

func (r *remoteTenants) DeleteTenant(ctx context.Context, name string) error {
	return r.do(ctx, http.MethodDelete, "/api/v1/tenants/"+url.PathEscape(name), nil, nil)
}

func (r *remoteTenants) PutNamespace(ctx context.Context, n auth.Namespace) error {
	body := web.NamespaceJSON{MaxStorage: n.MaxStorage, OnFull: n.OnFull, ProduceRate: n.ProduceRate, FetchRate: n.FetchRate}
	if n.Retention > 0 {
		body.Retention = n.Retention.String()
	}
	return r.do(ctx, http.MethodPut, "/api/v1/tenants/"+url.PathEscape(n.Tenant)+"/namespaces/"+url.PathEscape(n.Name), body, nil)
}

func (r *remoteTenants) DeleteNamespace(ctx context.Context, tenant, name string) error {
	return r.do(ctx, http.MethodDelete, "/api/v1/tenants/"+url.PathEscape(tenant)+"/namespaces/"+url.PathEscape(name), nil, nil)
}

// List returns the server's tenants and namespaces.
func (r *remoteTenants) List(ctx context.Context) ([]auth.Tenant, []auth.Namespace, error) {
	var l web.TenantList
	if err := r.do(ctx, http.MethodGet, "/api/v1/tenants", nil, &l); err != nil {
		return nil, nil, err
	}
	ts := make([]auth.Tenant, 0, len(l.Tenants))
	for _, x := range l.Tenants {
		ts = append(ts, auth.Tenant{Name: x.Name, Members: x.Members})
	}
	nss := make([]auth.Namespace, 0, len(l.Namespaces))
	for _, j := range l.Namespaces {
		n := auth.Namespace{Tenant: j.Tenant, Name: j.Name, MaxStorage: j.MaxStorage, OnFull: j.OnFull, ProduceRate: j.ProduceRate, FetchRate: j.FetchRate}
		if j.Retention != "" {
			d, err := time.ParseDuration(j.Retention)
			if err != nil {
				return nil, nil, fmt.Errorf("server %s: namespace %s/%s: retention %q", r.base, j.Tenant, j.Name, j.Retention)
			}
			n.Retention = d
		}
		nss = append(nss, n)
	}
	return ts, nss, nil
}

// CreateToken creates a token on the server (POST /api/v1/tokens).
func (r *remoteTenants) CreateToken(ctx context.Context, principal string, ttl time.Duration) (string, auth.TokenInfo, error) {
	body := map[string]string{"principal": principal}
	if ttl != 0 {
		body["ttl"] = ttl.String() // the server refuses a negative one
	}
	var out web.CreatedToken
	if err := r.do(ctx, http.MethodPost, "/api/v1/tokens", body, &out); err != nil {
		return "", auth.TokenInfo{}, err
	}
	return out.Token, out.TokenInfo, nil
}

// ListTokens lists the server's tokens (GET /api/v1/tokens).
func (r *remoteTenants) ListTokens(ctx context.Context) ([]auth.TokenInfo, error) {
	var out []auth.TokenInfo
	err := r.do(ctx, http.MethodGet, "/api/v1/tokens", nil, &out)
	return out, err
}

// RevokeToken revokes a token on the server (DELETE /api/v1/tokens/ID).
func (r *remoteTenants) RevokeToken(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil)
}
