package kbench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/kafka"
)

// AuthResult is the latency of SASL logins on fresh connections.
type AuthResult struct {
	Protocol, Mechanism string
	Logins              int
	// TLS handshake times (TLS protocols only).
	TLSP50, TLSP99 time.Duration
	// Login times: SaslHandshake plus SaslAuthenticate round trips,
	// including the client's own work (SCRAM's salted password).
	LoginP50, LoginP99 time.Duration
}

// String renders the result on one line.
func (r AuthResult) String() string {
	s := fmt.Sprintf("auth bench: %s %s, %d logins: login p50 %v p99 %v", r.Protocol, r.Mechanism, r.Logins, r.LoginP50.Round(time.Microsecond), r.LoginP99.Round(time.Microsecond))
	if r.TLSP50 > 0 {
		s += fmt.Sprintf(", TLS handshake p50 %v p99 %v", r.TLSP50.Round(time.Microsecond), r.TLSP99.Round(time.Microsecond))
	}
	return s + "\n"
}

// MeasureAuth opens logins connections to a SASL listener at addr one
// after another and times the TLS handshake and the SASL login of each.
func MeasureAuth(ctx context.Context, addr string, sec Security, logins int) (AuthResult, error) {
	sec = sec.withDefaults()
	res := AuthResult{Protocol: sec.Protocol, Mechanism: sec.Mechanism, Logins: logins}
	if err := sec.validate(); err != nil {
		return res, err
	}
	if !kafka.SecurityProtocol(sec.Protocol).SASL() {
		return res, fmt.Errorf("auth bench needs a SASL protocol, got %s", sec.Protocol)
	}
	var tlsTimes, loginTimes []time.Duration
	for range logins {
		hs, login, err := oneLogin(ctx, addr, sec)
		if err != nil {
			return res, err
		}
		tlsTimes, loginTimes = append(tlsTimes, hs), append(loginTimes, login)
	}
	res.TLSP50, res.TLSP99 = percentiles(tlsTimes)
	res.LoginP50, res.LoginP99 = percentiles(loginTimes)
	return res, nil
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// oneLogin dials addr, completes TLS when the protocol has it, and logs in.
func oneLogin(ctx context.Context, addr string, sec Security) (tlsTime, loginTime time.Duration, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if kafka.SecurityProtocol(sec.Protocol).TLS() {
		cfg := sec.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		start := time.Now()
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, 0, fmt.Errorf("TLS handshake: %w", err)
		}
		tlsTime = time.Since(start)
		conn = tc
	}
	rw := &kconn{c: conn, r: bufio.NewReader(conn)}
	start := time.Now()
	hs := &kmsg.SASLHandshakeRequest{Version: 1, Mechanism: sec.Mechanism}
	hresp := kmsg.NewPtrSASLHandshakeResponse()
	if err := rw.roundTrip(hs, hresp); err != nil {
		return 0, 0, err
	}
	if err := kerr.ErrorForCode(hresp.ErrorCode); err != nil {
		return 0, 0, fmt.Errorf("SaslHandshake %s: %w", sec.Mechanism, err)
	}
	sess, msg, err := sec.mechanism().Authenticate(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	for {
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := rw.roundTrip(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: msg}, resp); err != nil {
			return 0, 0, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return 0, 0, fmt.Errorf("SaslAuthenticate: %w", err)
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return 0, 0, err
		}
		if done {
			break
		}
		msg = next
	}
	return tlsTime, time.Since(start), nil
}

// kconn sends requests and reads their responses on one connection.
type kconn struct {
	c    net.Conn
	r    *bufio.Reader
	corr int32
}

func (k *kconn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	k.corr++
	resp.SetVersion(req.GetVersion())
	if _, err := k.c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("kbench")).AppendRequest(nil, req, k.corr)); err != nil {
		return fmt.Errorf("%s: %w", strings.TrimSuffix(fmt.Sprintf("%T", req), "Request"), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(k.r, size[:]); err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(k.r, body); err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != k.corr {
		return fmt.Errorf("response with the wrong correlation id")
	}
	body = body[4:]
	if resp.IsFlexible() {
		if len(body) == 0 {
			return fmt.Errorf("empty response")
		}
		body = body[1:] // empty header tags
	}
	return resp.ReadFrom(body)
}
