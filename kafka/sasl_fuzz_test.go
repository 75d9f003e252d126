package kafka

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
)

// fuzzSASLServer is a server over a throwaway log with user alice
// (password "alice-secret", both SCRAM mechanisms).
func fuzzSASLServer(tb testing.TB) *Server {
	log, err := logstore.Open(logstore.Options{Dir: tb.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { log.Close() })
	s, err := New(log, DefaultConfig(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	for _, m := range auth.Mechanisms {
		c, err := auth.NewCredential(m, "alice-secret", auth.MinIterations)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.creds.Set(context.Background(), "alice", c); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

func saslConn() *clientConn {
	return &clientConn{
		local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092},
		remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555},
		auth:   newConnAuth(Listener{Name: "SASL_PLAINTEXT", Protocol: SASLPlaintext}),
	}
}

// saslFrame is a request frame body (no size prefix).
func saslFrame(req kmsg.Request) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, 1)[4:]
}

// FuzzSASL drives the SASL exchange of a SASL listener's connection with
// arbitrary client messages, after a SaslHandshake v0 (bare frames) or v1
// (SaslAuthenticate), and with arbitrary whole frames: nothing panics,
// every answer encodes, and nothing authenticates without alice's
// password (a SCRAM proof cannot be forged, so SCRAM never does; PLAIN
// only with exactly alice's password).
func FuzzSASL(f *testing.F) {
	f.Add(uint8(0), false, []byte("\x00alice\x00alice-secret"), []byte(nil), []byte(nil))
	f.Add(uint8(0), true, []byte("alice\x00alice\x00wrong"), []byte(nil), []byte(nil))
	f.Add(uint8(1), false, []byte("n,,n=alice,r=abcdef"), []byte("c=biws,r=abcdefXYZ,p=AAAA"), []byte(nil))
	f.Add(uint8(2), true, []byte("y,a=alice,n=alice,r=x,tokenauth=true"), []byte("c=eSxhPWFsaWNlLA==,r=x,p="), []byte(nil))
	f.Add(uint8(1), false, []byte("n,,n=al=2Cice,r=\x7f"), []byte(""), saslFrame(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte("\x00alice\x00x")}))
	f.Add(uint8(3), false, []byte(nil), []byte(nil), saslFrame(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: "PLAIN"}))
	s := fuzzSASLServer(f)
	mechs := []string{mechPlain, mechScramSHA256, mechScramSHA512, "GSSAPI"}
	f.Fuzz(func(t *testing.T, mech uint8, v0 bool, first, second, raw []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		m := mechs[int(mech)%len(mechs)]
		cc := saslConn()
		send := func(frame []byte) bool {
			r, _, ok := s.handleFrame(ctx, cc, frame)
			if !ok {
				return false
			}
			if r.resp != nil {
				appendResponse(nil, r.corr, r.resp)
			}
			return !cc.auth.closing
		}
		version := int16(1)
		if v0 {
			version = 0
		}
		if send(saslFrame(&kmsg.SASLHandshakeRequest{Version: version, Mechanism: m})) {
			for _, msg := range [][]byte{first, second} {
				frame := msg
				if !v0 {
					frame = saslFrame(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: msg})
				}
				if cc.auth.authed || !send(frame) {
					break
				}
			}
		}
		if cc.auth.authed {
			ok := m == mechPlain && (bytes.Equal(first, []byte("\x00alice\x00alice-secret")) || bytes.Equal(first, []byte("alice\x00alice\x00alice-secret")))
			if !ok || cc.auth.principal != "User:alice" {
				t.Fatalf("authenticated as %s with %s after %q, %q", cc.auth.principal, m, first, second)
			}
		}
		// An arbitrary frame on a fresh connection: only ApiVersions and
		// the SASL exchange are served before authentication.
		fresh := saslConn()
		r, _, ok := s.handleFrame(ctx, fresh, raw)
		if ok && r.resp != nil {
			appendResponse(nil, r.corr, r.resp)
			switch r.resp.Key() {
			case apiKeyApiVersions, apiKeySASLHandshake, apiKeySASLAuthenticate:
			default:
				t.Fatalf("answered %s before authentication", apiName(r.resp.Key()))
			}
		}
		if fresh.auth.authed {
			t.Fatalf("one frame authenticated a connection: %q", raw)
		}
	})
}

// TestSCRAMServerNonceSuffix: the client-final nonce must end with the
// server's combined nonce (librdkafka prefixes its own once more, which
// Kafka accepts); anything else fails.
func TestSCRAMServerNonceSuffix(t *testing.T) {
	cred, err := auth.NewCredential(auth.ScramSHA256, "pw", auth.MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(user string, m auth.Mechanism) (auth.Credential, bool) { return cred, user == "u" }
	for _, c := range []struct {
		name  string
		nonce func(full string) string
		ok    bool
	}{
		{"exact", func(full string) string { return full }, true},
		{"librdkafka prefix", func(full string) string { return "cn" + full }, true},
		{"truncated", func(full string) string { return full[:len(full)-1] }, false},
		{"client nonce only", func(string) string { return "cn" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newSCRAMServer(auth.ScramSHA256, lookup)
			first, err := srv.Step([]byte("n,,n=u,r=cn"))
			if err != nil {
				t.Fatal(err)
			}
			full := string(bytes.TrimPrefix(bytes.Split(first, []byte(","))[0], []byte("r=")))
			final := scramClientFinal(t, cred, "n=u,r=cn", string(first), "c=biws,r="+c.nonce(full), "pw")
			_, err = srv.Step([]byte(final))
			if (err == nil) != c.ok || srv.Done() != c.ok {
				t.Fatalf("err %v, done %v; want ok=%v", err, srv.Done(), c.ok)
			}
		})
	}
	if _, err := newSCRAMServer(auth.ScramSHA256, lookup).Step([]byte("n,,n=nobody,r=cn")); err == nil {
		t.Fatal("unknown user accepted")
	}
}

// scramClientFinal computes a client-final message the way a client does
// (RFC 5802), for the given client-final-without-proof.
func scramClientFinal(t *testing.T, cred auth.Credential, clientFirstBare, serverFirst, withoutProof, password string) string {
	t.Helper()
	sp, err := auth.SaltedPassword(cred.Mechanism, password, cred.Salt, cred.Iterations)
	if err != nil {
		t.Fatal(err)
	}
	srv := &scramServer{mech: cred.Mechanism}
	h := srv.hash()
	clientKey := hmacSum(h, sp, []byte("Client Key"))
	sum := h()
	sum.Write(clientKey)
	sig := hmacSum(h, sum.Sum(nil), []byte(clientFirstBare+","+serverFirst+","+withoutProof))
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return withoutProof + ",p=" + b64(sig)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestSASLReauthenticationRules: a SaslHandshake on a connection that has
// authenticated is a re-authentication (KIP-368), which, as on Kafka, is
// refused with ILLEGAL_SASL_STATE and the connection closed when the
// server has no session lifetime or when it names another mechanism than
// the connection's authentication; with the same mechanism and a lifetime
// it succeeds and the connection stays open.
func TestSASLReauthenticationRules(t *testing.T) {
	plainMsg := []byte("\x00alice\x00alice-secret")
	for _, c := range []struct {
		name     string
		lifetime time.Duration
		mech     string
		ok       bool
	}{
		{"no lifetime", 0, mechPlain, false},
		{"same mechanism", time.Hour, mechPlain, true},
		{"other mechanism", time.Hour, mechScramSHA256, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := fuzzSASLServer(t)
			s.cfg.ReauthInterval = c.lifetime
			cc := saslConn()
			send := func(req kmsg.Request) kmsg.Response {
				t.Helper()
				r, _, ok := s.handleFrame(context.Background(), cc, saslFrame(req))
				if !ok || r.resp == nil {
					t.Fatalf("%s: no answer", apiName(req.Key()))
				}
				return r.resp
			}
			send(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: mechPlain})
			if r := send(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: plainMsg}).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 || !cc.auth.authed {
				t.Fatalf("first authentication: error %d", r.ErrorCode)
			}
			hs := send(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: c.mech}).(*kmsg.SASLHandshakeResponse)
			if !c.ok {
				if hs.ErrorCode != kerr.IllegalSaslState.Code || !cc.auth.closing || cc.auth.sasl != nil {
					t.Fatalf("re-authentication handshake answered %d, closing %v, exchange started %v; want ILLEGAL_SASL_STATE and closed", hs.ErrorCode, cc.auth.closing, cc.auth.sasl != nil)
				}
				return
			}
			if hs.ErrorCode != 0 || cc.auth.closing {
				t.Fatalf("re-authentication handshake answered %d, closing %v", hs.ErrorCode, cc.auth.closing)
			}
			if r := send(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: plainMsg}).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 || cc.auth.closing || s.Reauthentications() != 1 {
				t.Fatalf("re-authentication: error %d, closing %v, %d re-authentications", r.ErrorCode, cc.auth.closing, s.Reauthentications())
			}
		})
	}
}
