package netutil

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// loopbackName reports whether host (a name or IP address, without port
// or brackets) is "localhost" or a loopback address.
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LocalRequest checks a request to a server bound to loopback that asks
// for no credentials: it must be addressed to a loopback name (Host) and,
// when a browser says where it comes from (Origin), come from a loopback
// origin. Otherwise a web page the local user visits could use the server:
// by DNS rebinding (a name of its own resolving to 127.0.0.1, which the
// browser then treats as the page's origin) or by a cross-site request
// that needs no CORS preflight (a form POST). The error says which; the
// caller adds what would let it serve other names (a token, if it has
// one).
func LocalRequest(r *http.Request) error {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !loopbackName(host) {
		return fmt.Errorf("request addressed to %q, not to localhost or a loopback address: without credentials this server answers only those (DNS rebinding protection)", r.Host)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || !loopbackName(u.Hostname()) {
		return fmt.Errorf("request from the web page origin %q: without credentials this server answers no other site's pages", origin)
	}
	return nil
}

// LocalOnly serves next only the requests LocalRequest accepts, for a
// loopback server that has no credentials at all; others are answered
// 403 with LocalRequest's reason and what the server is (name).
func LocalOnly(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := LocalRequest(r); err != nil {
			http.Error(w, fmt.Sprintf("%s: %v", name, err), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
