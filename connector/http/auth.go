package http

import (
	"crypto/subtle"
	"fmt"
	"net"
	nethttp "net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluicehq/sluice/internal/netutil"
)

// Verdict is an Authorizer's answer about a bearer token.
type Verdict int

const (
	// Allowed: the token is known and its principal may ingest.
	Allowed Verdict = iota
	// UnknownToken: no such token (or it was revoked): 401.
	UnknownToken
	// ExpiredToken: the token's lifetime ended: 401.
	ExpiredToken
	// Denied: the token is valid but its principal may not ingest: 403.
	Denied
)

var verdictNames = []string{"allowed", "unknown token", "expired token", "denied"}

func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Authorizer checks bearer tokens tied to principals (Config.Authorizer).
// The source knows nothing of how tokens and permissions are stored: the
// caller (the pipeline package, over the embedded log's token store and
// ACLs) implements it.
type Authorizer interface {
	// AuthorizeIngest maps token to its principal and says whether that
	// principal may send records from host (the client's IP address).
	// The principal is returned for logging whenever it is known.
	AuthorizeIngest(token, host string) (principal string, v Verdict)
}

// authLogInterval spaces the log lines of refused requests: a client
// retrying with a bad token must not flood the log. Every refusal is
// counted in Stats all the same.
const authLogInterval = 10 * time.Second

func newAuthLog() *rate.Sometimes { return &rate.Sometimes{First: 3, Interval: authLogInterval} }

// authenticate checks the request's credentials and answers it (401 or
// 403) when they do not do. It reports whether the request may go on.
func (s *Source) authenticate(w nethttp.ResponseWriter, r *nethttp.Request) bool {
	if s.cfg.Token == "" && s.cfg.Authorizer == nil {
		// No token: the listener is loopback (NewSource), and only local
		// requests may send records (netutil.LocalRequest).
		if err := netutil.LocalRequest(r); err != nil {
			s.refuse(w, r, nethttp.StatusForbidden, err.Error()+"; set a token to serve others", "", "not a local request")
			return false
		}
		return true
	}
	header := r.Header.Get("Authorization")
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(header), []byte("Bearer "+s.cfg.Token)) == 1 {
		return true
	}
	if s.cfg.Authorizer == nil {
		s.refuse(w, r, nethttp.StatusUnauthorized, "missing or wrong bearer token", "", "wrong or missing static token")
		return false
	}
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		s.refuse(w, r, nethttp.StatusUnauthorized, "missing bearer token (Authorization: Bearer TOKEN)", "", "no bearer token")
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	principal, v := s.cfg.Authorizer.AuthorizeIngest(token, host)
	switch v {
	case Allowed:
		return true
	case Denied:
		s.refuse(w, r, nethttp.StatusForbidden, "principal "+principal+" may not ingest here (it needs WRITE on the source's ACL topic)", principal, v.String())
	case ExpiredToken:
		s.refuse(w, r, nethttp.StatusUnauthorized, "bearer token expired: create a new one (sluice token create)", principal, v.String())
	default:
		s.refuse(w, r, nethttp.StatusUnauthorized, "unknown or revoked bearer token", principal, v.String())
	}
	return false
}

// refuse counts, logs (rate-limited) and answers a refused request.
func (s *Source) refuse(w nethttp.ResponseWriter, r *nethttp.Request, code int, msg, principal, reason string) {
	if code == nethttp.StatusForbidden {
		s.cnt.forbidden.Add(1)
	} else {
		s.cnt.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
	}
	s.authLog.Do(func() {
		st := s.Stats()
		s.logger.Warn("http source refused a request (logged at most every "+authLogInterval.String()+"; see the unauthorized and forbidden counters)",
			"status", code, "reason", reason, "principal", principal, "remote", r.RemoteAddr, "path", r.URL.Path,
			"unauthorized_total", st.Unauthorized, "forbidden_total", st.Forbidden)
	})
	reply(w, code, answer{Error: msg})
}
