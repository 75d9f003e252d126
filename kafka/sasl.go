package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// SASL on the Kafka listener.
//
// On a SASL_PLAINTEXT or SASL_SSL listener a connection may send only
// ApiVersions, SaslHandshake (v0-1) and SaslAuthenticate until it has
// authenticated; anything else closes it, as Kafka does. The handshake
// picks the mechanism; SaslAuthenticate carries the mechanism's messages:
// one for PLAIN ("authzid NUL user NUL password", checked against the
// stored SCRAM credentials), two for SCRAM-SHA-256/512 (RFC 5802, the
// server side in scram.go, over the credentials of package
// auth). A failed authentication is answered SASL_AUTHENTICATION_FAILED
// and the connection closed after the answer. After a SaslHandshake v0
// (pre-1.0 clients) the mechanism's messages travel as bare frames and a
// failure closes the connection without an answer, as Kafka does.
// librdkafka needs v0 among the versions offered before it will send v1.
//
// Re-authentication (KIP-368): with Config.ReauthInterval set, a
// successful SaslAuthenticate (v1+) tells the client how long its session
// lives; the client authenticates again on the same connection before it
// ends (a new SaslHandshake and SaslAuthenticate, with the same mechanism,
// for the same principal), and a connection whose session has ended is
// closed at its next request other than those. As on Kafka, a SaslHandshake
// on an authenticated connection is refused (ILLEGAL_SASL_STATE, then
// closed) when the server has no session lifetime, so re-authentication is
// off, and when it names another mechanism than the connection's last
// authentication.
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

// maxUnauthenticatedFrame bounds a frame from a connection on a SASL
// listener that has not authenticated yet (Kafka's default
// sasl.server.max.receive.size); a larger one closes the connection.
const maxUnauthenticatedFrame = 512 << 10

// anonymous is the principal of a connection that did not authenticate.
const anonymous = "User:ANONYMOUS"

// saslState is a connection's SASL exchange in progress.
type saslState struct {
	mech string
	conv *scramServer // SCRAM only
	// raw: started by SaslHandshake v0, so the client sends its messages
	// as bare frames rather than SaslAuthenticate requests.
	raw bool
}

// connAuth is a connection's authentication state.
type connAuth struct {
	lis       Listener
	principal string
	mech      string    // mechanism of the last SASL authentication
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

// rawToken reports whether the next frame is a bare SASL message
// (after SaslHandshake v0) rather than a request.
func (a *connAuth) rawToken() bool { return a.sasl != nil && a.sasl.raw }

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
	if reason := s.refuseReauth(a, req.Mechanism); reason != "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		s.metrics.auth(req.Mechanism, reason)
		s.logger.Info("kafka re-authentication refused", "remote", cc.remote.String(), "listener", a.lis.Name, "principal", a.principal,
			"mechanism", req.Mechanism, "first_mechanism", a.mech, "reason", reason)
		a.closing = true
		return resp
	}
	if !slices.Contains(s.cfg.SASLMechanisms, req.Mechanism) {
		// Answered with the mechanisms offered, then closed, as Kafka
		// does: the client reconnects with one of them.
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.metrics.auth(req.Mechanism, "unsupported_mechanism")
		s.logger.Info("kafka authentication failed", "remote", cc.remote.String(), "listener", a.lis.Name, "mechanism", req.Mechanism, "reason", "unsupported_mechanism")
		a.closing = true
		return resp
	}
	st := &saslState{mech: req.Mechanism}
	if req.Mechanism != mechPlain {
		m, _ := auth.ParseMechanism(req.Mechanism)
		st.conv = newSCRAMServer(m, s.creds.Lookup)
	}
	st.raw = req.Version == 0
	a.sasl = st
	return resp
}

// refuseReauth returns why a SaslHandshake for mech on a connection that
// already authenticated is refused ("" if it is not a re-authentication,
// or an allowed one): re-authentication is off without a session lifetime
// (Kafka processes such a handshake as an ordinary request, which it
// answers ILLEGAL_SASL_STATE), and may not change the mechanism (Kafka's
// SaslServerAuthenticator fails it and closes the connection).
func (s *Server) refuseReauth(a *connAuth, mech string) string {
	switch {
	case !a.authed:
		return ""
	case s.cfg.ReauthInterval <= 0:
		return "reauth_disabled"
	case mech != a.mech:
		return "reauth_mechanism_changed"
	}
	return ""
}

// handleSASLAuthenticate runs one step of the exchange the handshake
// started.
func (s *Server) handleSASLAuthenticate(cc *clientConn, req *kmsg.SASLAuthenticateRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	out, lifetime, fail := s.saslStep(cc, req.SASLAuthBytes)
	if fail != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, kmsg.StringPtr(fail.msg)
		return resp
	}
	resp.SASLAuthBytes, resp.SessionLifetimeMillis = out, lifetime
	return resp
}

// handleRawSASLToken runs one step of an exchange started by SaslHandshake
// v0, whose messages travel as bare size-prefixed frames instead of
// SaslAuthenticate requests (as Kafka serves pre-1.0 clients). There is no
// way to send an error: a failed authentication closes the connection
// without an answer, as Kafka does.
func (s *Server) handleRawSASLToken(cc *clientConn, token []byte) reply {
	out, _, fail := s.saslStep(cc, token)
	if fail != nil {
		return reply{} // closing is set: nothing is written
	}
	if out == nil {
		out = []byte{} // PLAIN's (empty) answer is still a frame
	}
	return reply{key: -1, token: out, start: time.Now()}
}

// saslFailure is a failed authentication step, already logged and
// counted; the connection closes after its answer.
type saslFailure struct{ msg string }

// saslStep feeds one client message to the exchange in progress and
// returns the server's message and, when the exchange completed, the
// session lifetime in milliseconds (0: none).
func (s *Server) saslStep(cc *clientConn, msg []byte) (out []byte, lifetimeMillis int64, fail *saslFailure) {
	a := cc.auth
	st := a.sasl
	failed := func(text, reason string) *saslFailure {
		a.sasl, a.closing = nil, true
		s.metrics.auth(st.mech, reason)
		s.logger.Info("kafka authentication failed", "remote", cc.remote.String(), "listener", a.lis.Name, "mechanism", st.mech, "reason", reason)
		return &saslFailure{msg: text}
	}
	authFailed := fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", st.mech)
	var user string
	if st.mech == mechPlain {
		u, ok := s.checkPlain(msg)
		if !ok {
			return nil, 0, failed(authFailed, "invalid_credentials")
		}
		user = u
	} else {
		step, err := st.conv.Step(msg)
		if err != nil {
			s.logger.Debug("kafka SCRAM exchange failed", "remote", cc.remote.String(), "err", err)
			return nil, 0, failed(authFailed, "invalid_credentials")
		}
		out = step
		if !st.conv.Done() {
			return out, 0, nil // the server-first message; the client answers
		}
		user = st.conv.User()
	}
	if auth.NewUserName(user) != nil {
		// A credential stored before the name was reserved: User:ANONYMOUS
		// is every unauthenticated connection, never a login.
		return nil, 0, failed(authFailed, "reserved_user")
	}
	principal := "User:" + user
	reauth := a.authed && a.lis.Protocol.SASL()
	if reauth && principal != a.principal {
		return nil, 0, failed("re-authentication must keep the principal "+a.principal, "reauth_principal_changed")
	}
	if reauth {
		s.reauthOK.Add(1)
	}
	a.authed, a.principal, a.mech, a.sasl = true, principal, st.mech, nil
	a.expires = time.Time{}
	if s.cfg.ReauthInterval > 0 {
		a.expires = time.Now().Add(s.cfg.ReauthInterval)
		lifetimeMillis = s.cfg.ReauthInterval.Milliseconds()
	}
	s.metrics.auth(st.mech, "ok")
	s.authOK.Add(1)
	s.sawPrincipal(principal)
	s.logger.Debug("kafka client authenticated", "remote", cc.remote.String(), "listener", a.lis.Name, "principal", principal, "mechanism", st.mech)
	return out, lifetimeMillis, nil
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

// appendToken appends a bare SASL message as a size-prefixed frame.
func appendToken(dst, token []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(token)))
	return append(dst, token...)
}
