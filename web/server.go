package web

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/internal/netutil"
	"github.com/sluicehq/sluice/observe"
)

// Config configures the HTTP server.
type Config struct {
	// Addr is the listen address; the default is 127.0.0.1:8080.
	Addr string
	// Token, when set, is required as "Authorization: Bearer TOKEN" on
	// every endpoint but the probes (/healthz, /readyz). It is mandatory
	// for a non-loopback Addr.
	Token string
	// Gatherer provides /metrics; nil serves the default registry.
	Gatherer prometheus.Gatherer
	// Ready reports whether the process is ready to serve (/readyz).
	Ready func() error
	// Observer, when set, adds the JSON API of topics, groups and jobs
	// (/api/v1/...), its server-sent events and the dashboard (/ and
	// /assets/). Its sampling loop (Observer.Run) is the caller's to start.
	Observer *observe.Observer
	// TLS, when set, serves HTTPS (sluice serve --tls-cert, --tls-key).
	TLS *tls.Config
	// Tokens, when set, maps bearer tokens tied to principals (sluice
	// token create) to their principal; Token stays a super token.
	Tokens TokenVerifier
	// Authorize, when set, decides whether a principal authenticated by a
	// token may make a request (the ACLs); nil allows every authenticated
	// request.
	Authorize func(principal string, r *http.Request) bool
	// Visible, when set, decides whether a principal authenticated by a
	// token may see a topic or group (kind ResourceTopic or
	// ResourceGroup) in the JSON API: lists leave out the others, and
	// asking for one by name answers 403. nil shows everything.
	Visible func(principal string, r *http.Request, kind, name string) bool
	// Registerer, when set, registers the server's own metrics
	// (sluice_http_auth_failures_total); nil uses Gatherer when it is also
	// a Registerer (a *prometheus.Registry), else they are not exported.
	Registerer prometheus.Registerer
	// Cluster, when set, serves GET /api/v1/cluster: the clustered
	// pipeline instance's members, tasks, lag and rebalances, and the
	// dashboard with its cluster page (the landing page when Observer is
	// nil). It is called once per request, with the request's context.
	Cluster func(ctx context.Context) cluster.Status
	// Tenants, when set, serves the tenant admin API (/api/v1/tenants...,
	// tenants.go): tenants and namespaces changed while the server runs,
	// for the static token's principal and super users only.
	Tenants *auth.Tenants
	// SuperUser reports whether a principal authenticated by a token is a
	// super user (sluice serve --super-user), who may use the tenant admin
	// API; nil: only the static token's principal may.
	SuperUser func(principal string) bool
	// TokenAdmin, when set, serves the token admin API (/api/v1/tokens,
	// tenants.go) to the same principals as Tenants. It should be the
	// store Tokens reads, so that changes apply to the next request.
	TokenAdmin *auth.Tokens
}

// TokenVerifier maps a bearer token to the principal it acts as.
type TokenVerifier interface {
	Principal(token string, now time.Time) (string, bool)
}

// expiryReporter is implemented by a TokenVerifier that can tell an
// expired token from an unknown one (auth.Tokens), for the log and the
// failure metric.
type expiryReporter interface {
	Expired(token string, now time.Time) bool
}

// SuperPrincipal is the principal of the static --http-token.
const SuperPrincipal = "User:admin"

type authnKey struct{}

// authn is who authenticated a request: the principal, and whether it
// came with the static --http-token (which the ACLs do not restrict). A
// stored token issued to the principal SuperPrincipal is not the static
// token: it is checked like any other.
type authn struct {
	principal string
	static    bool
}

// PrincipalFrom returns the principal that authenticated the request ("" when
// the server needs no token).
func PrincipalFrom(ctx context.Context) string {
	a, _ := ctx.Value(authnKey{}).(authn)
	return a.principal
}

// staticToken reports whether the request came with the static
// --http-token.
func staticToken(ctx context.Context) bool {
	a, _ := ctx.Value(authnKey{}).(authn)
	return a.static
}

// Server is the HTTP server. Register more handlers on Mux before Serve.
type Server struct {
	cfg    Config
	logger *slog.Logger
	Mux    *http.ServeMux
	srv    *http.Server

	streams     chan struct{} // semaphore of open event streams
	stopStreams chan struct{} // closed when shutdown begins

	authFailures *prometheus.CounterVec // refused requests by reason
}

// New checks cfg and builds a server.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	loop, err := netutil.IsLoopback(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http address: %w", err)
	}
	if !loop && cfg.Token == "" && cfg.Tokens == nil {
		return nil, fmt.Errorf("http address %s is not loopback: set a bearer token (--http-token or SLUICE_HTTP_TOKEN) to bind it", cfg.Addr)
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{cfg: cfg, logger: logger, Mux: http.NewServeMux(),
		streams: make(chan struct{}, maxEventStreams), stopStreams: make(chan struct{})}
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	s.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	s.Mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "{\"status\":\"not ready\",\"error\":%q}\n", err.Error())
				return
			}
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	s.Mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	if cfg.Cluster != nil {
		s.Mux.HandleFunc("GET /api/v1/cluster", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, cfg.Cluster(r.Context()))
		})
	}
	if cfg.Observer != nil {
		s.registerAPI(cfg.Observer)
	}
	if cfg.Tenants != nil {
		s.registerTenantAPI(cfg.Tenants)
	}
	if cfg.TokenAdmin != nil {
		s.registerTokenAPI(cfg.TokenAdmin)
	}
	if cfg.Observer != nil || cfg.Cluster != nil {
		info := Info{Jobs: cfg.Observer != nil, Cluster: cfg.Cluster != nil}
		s.Mux.HandleFunc("GET /api/v1/info", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, info)
		})
		s.Mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path)
		})
		if err := s.registerDashboard(); err != nil {
			return nil, err
		}
	}
	s.srv = &http.Server{
		Handler:           s.authorize(http.MaxBytesHandler(s.Mux, 1<<20)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.srv.RegisterOnShutdown(func() { close(s.stopStreams) })
	return s, nil
}

func (s *Server) authorize(next http.Handler) http.Handler {
	if s.cfg.Token == "" && s.cfg.Tokens == nil {
		// No token: the listener is loopback (New), and only local
		// requests are answered (netutil.LocalRequest); the probes hold
		// nothing and are left to anyone who reaches them.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := netutil.LocalRequest(r); err != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
				s.refused(r, "not_local", "")
				writeError(w, http.StatusForbidden, "%v; set a bearer token (--http-token) to serve others", err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		principal, static, reason := s.principal(r.Header.Get("Authorization"))
		if reason != "" {
			s.refused(r, reason, "")
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			if reason == "expired" {
				writeError(w, http.StatusUnauthorized, "the bearer token has expired: create a new one (sluice token create)")
				return
			}
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if !static && s.cfg.Authorize != nil && !s.cfg.Authorize(principal, r) {
			s.refused(r, "forbidden", principal)
			writeError(w, http.StatusForbidden, "%s is not allowed to %s %s", principal, r.Method, r.URL.Path)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authnKey{}, authn{principal: principal, static: static})))
	})
}

// stillAuthorized checks a long-lived answer (an event stream) again
// before each event: its bearer token must still authenticate the
// principal it started as, and the Authorize hook still let that
// principal through, so that a revoked or expired token, or an ACL taken
// away, ends the stream as it refuses the next request. A refusal is
// counted and logged as the first check's are.
func (s *Server) stillAuthorized(r *http.Request) bool {
	if s.cfg.Token == "" && s.cfg.Tokens == nil {
		return true // no token: nothing to revoke (loopback, local requests only)
	}
	a, _ := r.Context().Value(authnKey{}).(authn)
	principal, static, reason := s.principal(r.Header.Get("Authorization"))
	switch {
	case reason != "":
	case principal != a.principal || static != a.static:
		reason = "invalid"
	case !static && s.cfg.Authorize != nil && !s.cfg.Authorize(principal, r):
		reason = "forbidden"
	default:
		return true
	}
	s.refused(r, reason, a.principal)
	return false
}

// principal authenticates an Authorization header: the static token is
// the super principal (static is then true), a stored token its own
// principal. A refused header returns why: "missing" (no bearer token),
// "expired" or "invalid".
func (s *Server) principal(header string) (principal string, static bool, reason string) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return "", false, "missing"
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) == 1 {
		return SuperPrincipal, true, ""
	}
	if s.cfg.Tokens != nil {
		now := time.Now()
		if p, ok := s.cfg.Tokens.Principal(token, now); ok {
			return p, false, ""
		}
		if e, ok := s.cfg.Tokens.(expiryReporter); ok && e.Expired(token, now) {
			return "", false, "expired"
		}
	}
	return "", false, "invalid"
}

// refused counts and logs a request refused for reason (missing, invalid,
// expired, forbidden).
func (s *Server) refused(r *http.Request, reason, principal string) {
	s.authFailures.WithLabelValues(reason).Inc()
	s.logger.Info("http request refused", "reason", reason, "principal", principal, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
}

// registerMetrics makes the server's metrics and registers them.
func (s *Server) registerMetrics() error {
	s.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_http_auth_failures_total",
		Help: "HTTP requests refused by the token check, by reason: missing (no bearer token), invalid (unknown or revoked), expired, forbidden (the principal's ACLs), not_local (without a token: addressed to a non-loopback name or sent by another site's page).",
	}, []string{"reason"})
	reg := s.cfg.Registerer
	if reg == nil {
		reg, _ = s.cfg.Gatherer.(prometheus.Registerer)
	}
	if reg == nil {
		return nil
	}
	if err := reg.Register(s.authFailures); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("http metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return fmt.Errorf("http metrics: %w", err)
		}
		s.authFailures = existing
	}
	return nil
}

// public reports whether path needs no token: the probes (an
// orchestrator's health and readiness checks cannot send a secret header),
// and the dashboard's static files (they hold no data; the page asks for
// the token and sends it with its API requests).
func public(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/" || strings.HasPrefix(path, "/assets/")
}

// Jobs returns the registry where running stream jobs are registered, or
// nil when the server has no Observer.
func (s *Server) Jobs() JobRegistry {
	if s.cfg.Observer == nil {
		return nil
	}
	return s.cfg.Observer
}

// Listen binds the configured address.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen on %s: %w", s.cfg.Addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
