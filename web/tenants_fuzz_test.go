package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
)

// FuzzAdminAPI sends arbitrary methods, paths and bodies to the tenant and
// token admin API as the admin: every answer is a JSON 2xx or 4xx, never a
// panic or a 5xx (the log does not fail here).
func FuzzAdminAPI(f *testing.F) {
	l, err := logstore.Open(logstore.Options{Dir: f.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	tn, err := auth.OpenTenants(ctx, l)
	if err != nil {
		f.Fatal(err)
	}
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Token: "admin", Tokens: tokens, Tenants: tn, TokenAdmin: tokens, Gatherer: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range [][3]string{
		{"PUT", "/api/v1/tenants/acme", `{"members":["User:alice"]}`},
		{"PUT", "/api/v1/tenants/acme/namespaces/prod", `{"retention":"48h","max_storage":100,"on_full":"evict","produce_rate":5.5}`},
		{"PUT", "/api/v1/tenants/acme/namespaces/prod", `{"retention":"-1h","fetch_rate":-3}`},
		{"DELETE", "/api/v1/tenants/acme", ``},
		{"POST", "/api/v1/tokens", `{"principal":"User:bob","ttl":"1h"}`},
		{"DELETE", "/api/v1/tokens/abc", ``},
		{"PUT", "/api/v1/tenants/a%2Eb", `{"members":[]} {}`},
		{"GET", "/api/v1/tenants", ``},
	} {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer admin")
		w := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
		if w.Code != http.StatusNoContent && w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: %d without a JSON body: %q", method, path, w.Code, w.Body)
		}
	})
}
