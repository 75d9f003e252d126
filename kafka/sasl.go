package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/sluicehq/sluice/auth"
)

// SASL on the Kafka listener.
//
// On a SASL_PLAINTEXT or SASL_SSL listener a connection may send only
// ApiVersions, SaslHandshake (v1) and SaslAuthenticate until it has
// authenticated; anything else closes it, as Kafka does. The handshake
// picks the mechanism; SaslAuthenticate carries the mechanism's messages:
// one for PLAIN ("authzid NUL user NUL password", checked against the
// stored SCRAM credentials), two for SCRAM-SHA-256/512 (RFC 5802, the
// server side of github.com/xdg-go/scram over the credentials of package
// auth). A failed authentication is answered SASL_AUTHENTICATION_FAILED
// and the connection closed after the answer.
//
// Re-authentication (KIP-368): with Config.ReauthInterval set, a
// successful SaslAuthenticate (v1+) tells the client how long its session
// lives; the client authenticates again on the same connection before it
// ends (a new SaslHandshake and SaslAuthenticate, for the same principal),
// and a connection whose session has ended is closed at its next request
// other than those.
//
// On an SSL listener with mutual TLS the principal is User:<certificate
// subject>; on PLAINTEXT and one-way SSL it is User:ANONYMOUS.

// Mechanism names.
const (
	mechPlain       = "PLAIN"
	mechScramSHA256 = string(auth.ScramSHA256)
	mechScramSHA512 = string(auth.ScramSHA512)
)

// allMechanisms are the SASL mechanisms the server implements, in the
// order offered.
var allMechanisms = []string{mechScramSHA512, mechScramSHA256, mechPlain}

// anonymous is the principal of a connection that did not authenticate.
const anonymous = "User:ANONYMOUS"

// saslState is a connection's SASL exchange in progress.
type saslState struct {
	mech string
	conv *scram.ServerConversation // SCRAM only
}

// connAuth is a connection's authentication state.
type connAuth struct {
	lis       Listener
	principal string
	authed    bool      // may send any request (always true off SASL listeners)
	expires   time.Time // end of the SASL session (KIP-368); zero = none
	sasl      *saslState
	closing   bool // close the connection once the current answer is written
	// mutedUntil: a quota throttled the connection; its next request is
	// read only then (quota.go).
	mutedUntil time.Time
}

func newConnAuth(lis Listener) *connAuth {
	return &connAuth{lis: lis, principal: anonymous, authed: !lis.Protocol.SASL()}
}

// tlsPrincipal sets the principal from a verified client certificate.
func (a *connAuth) tlsPrincipal(st tls.ConnectionState) {
	if len(st.PeerCertificates) > 0 && len(st.VerifiedChains) > 0 {
		a.principal = "User:" + st.PeerCertificates[0].Subject.String()
	}
}

// admits reports whether a request with this API key may be handled now;
// a false answer closes the connection.
func (a *connAuth) admits(key int16, now time.Time) bool {
	switch key {
	case apiKeyApiVersions, apiKeySASLHandshake:
		return true
	case apiKeySASLAuthenticate:
		return a.sasl != nil
	}
	if !a.authed {
		return false
	}
	return a.expires.IsZero() || now.Before(a.expires)
}

// handleSASLHandshake starts (or, once authenticated, restarts: KIP-368) a
// SASL exchange with the requested mechanism.
func (s *Server) handleSASLHandshake(cc *clientConn, req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	a := cc.auth
	if !a.lis.Protocol.SASL() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		a.closing = true
		return resp
	}
	resp.SupportedMechanisms = s.cfg.SASLMechanisms
	if !slices.Contains(s.cfg.SASLMechanisms, req.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.metrics.auth(req.Mechanism, "unsupported_mechanism")
		return resp
	}
	st := &saslState{mech: req.Mechanism}
	if req.Mechanism != mechPlain {
		m, _ := auth.ParseMechanism(req.Mechanism)
		hf := scram.SHA256
		if m == auth.ScramSHA512 {
			hf = scram.SHA512
		}
		srv, err := hf.NewServer(func(user string) (scram.StoredCredentials, error) {
			c, ok := s.creds.Lookup(user, m)
			if !ok {
				return scram.StoredCredentials{}, fmt.Errorf("%w: %s", auth.ErrUnknownUser, user)
			}
			return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations}, StoredKey: c.StoredKey, ServerKey: c.ServerKey}, nil
		})
		if err != nil {
			resp.ErrorCode = kerr.UnknownServerError.Code
			return resp
		}
		st.conv = srv.NewConversation()
	}
	a.sasl = st
	return resp
}

// handleSASLAuthenticate runs one step of the exchange the handshake
// started.
func (s *Server) handleSASLAuthenticate(cc *clientConn, req *kmsg.SASLAuthenticateRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	a := cc.auth
	st := a.sasl
	fail := func(code int16, msg, reason string) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		a.sasl, a.closing = nil, true
		s.metrics.auth(st.mech, reason)
		s.logger.Info("kafka authentication failed", "remote", cc.remote.String(), "listener", a.lis.Name, "mechanism", st.mech, "reason", reason)
		return resp
	}
	authFailed := fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", st.mech)
	var user string
	if st.mech == mechPlain {
		u, ok := s.checkPlain(req.SASLAuthBytes)
		if !ok {
			return fail(kerr.SaslAuthenticationFailed.Code, authFailed, "invalid_credentials")
		}
		user = u
	} else {
		out, err := st.conv.Step(string(req.SASLAuthBytes))
		if err != nil {
			return fail(kerr.SaslAuthenticationFailed.Code, authFailed, "invalid_credentials")
		}
		resp.SASLAuthBytes = []byte(out)
		if !st.conv.Done() {
			return resp // the server-first message; the client answers
		}
		if !st.conv.Valid() {
			return fail(kerr.SaslAuthenticationFailed.Code, authFailed, "invalid_credentials")
		}
		user = st.conv.Username()
	}
	principal := "User:" + user
	reauth := a.authed && a.lis.Protocol.SASL()
	if reauth && principal != a.principal {
		return fail(kerr.SaslAuthenticationFailed.Code, "re-authentication must keep the principal "+a.principal, "reauth_principal_changed")
	}
	if reauth {
		s.reauthOK.Add(1)
	}
	a.authed, a.principal, a.sasl = true, principal, nil
	a.expires = time.Time{}
	if s.cfg.ReauthInterval > 0 {
		a.expires = time.Now().Add(s.cfg.ReauthInterval)
		resp.SessionLifetimeMillis = s.cfg.ReauthInterval.Milliseconds()
	}
	s.metrics.auth(st.mech, "ok")
	s.authOK.Add(1)
	s.sawPrincipal(principal)
	s.logger.Debug("kafka client authenticated", "remote", cc.remote.String(), "listener", a.lis.Name, "principal", principal, "mechanism", st.mech)
	return resp
}

// checkPlain checks a SASL PLAIN message and returns its user.
func (s *Server) checkPlain(msg []byte) (string, bool) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", false
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && authz != user {
		return "", false // acting as another user is not supported
	}
	if auth.ValidUserName(user) != nil || pass == "" {
		return "", false
	}
	return user, s.creds.CheckPassword(user, pass)
}

// tlsHandshakeTimeout bounds a TLS handshake, so that a plaintext client on
// a TLS listener (or one that says nothing) cannot hold a connection.
const tlsHandshakeTimeout = 10 * time.Second

// handshake completes the TLS handshake of a TLS connection and sets the
// principal from a verified client certificate.
func (s *Server) handshake(ctx context.Context, tc *tls.Conn, a *connAuth) error {
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	a.tlsPrincipal(tc.ConnectionState())
	s.sawPrincipal(a.principal)
	return nil
}

// Authentications returns how many SASL authentications succeeded since
// the server started (re-authentications included).
func (s *Server) Authentications() int64 { return s.authOK.Load() }

// Reauthentications returns how many of those were re-authentications of
// a connection already authenticated (KIP-368).
func (s *Server) Reauthentications() int64 { return s.reauthOK.Load() }

// Principals returns the principals that have connected, sorted (for
// tests and the API; bounded to the first 1024).
func (s *Server) Principals() []string {
	s.principalsMu.Lock()
	defer s.principalsMu.Unlock()
	out := make([]string, 0, len(s.principals))
	for p := range s.principals {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (s *Server) sawPrincipal(p string) {
	s.principalsMu.Lock()
	defer s.principalsMu.Unlock()
	if s.principals == nil {
		s.principals = map[string]struct{}{}
	}
	if len(s.principals) < 1024 {
		s.principals[p] = struct{}{}
	}
}
