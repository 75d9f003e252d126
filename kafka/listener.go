package kafka

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

// SecurityProtocol is a listener's protocol, as Kafka names them.
type SecurityProtocol string

// The security protocols.
const (
	Plaintext     SecurityProtocol = "PLAINTEXT"
	SSL           SecurityProtocol = "SSL"
	SASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	SASLSSL       SecurityProtocol = "SASL_SSL"
)

// TLS reports whether the protocol runs over TLS.
func (p SecurityProtocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL reports whether clients authenticate with SASL before anything else.
func (p SecurityProtocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// Listener is one address the Kafka protocol is served on.
type Listener struct {
	Name     string           // e.g. INTERNAL, EXTERNAL; for logs and metrics
	Protocol SecurityProtocol // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	Addr     string           // HOST:PORT to bind
	// Advertised is the HOST:PORT Metadata returns to clients of this
	// listener; empty means Config.AdvertisedAddr for a single listener, or
	// the bound address.
	Advertised string
}

// ParseListener parses Kafka's listener syntax NAME=PROTOCOL://HOST:PORT
// (or PROTOCOL://HOST:PORT, named after its protocol).
func ParseListener(s string) (Listener, error) {
	name, rest, named := strings.Cut(s, "=")
	if !named {
		rest, name = s, ""
	}
	proto, addr, ok := strings.Cut(rest, "://")
	if !ok {
		return Listener{}, fmt.Errorf("listener %q: want NAME=PROTOCOL://HOST:PORT", s)
	}
	l := Listener{Name: name, Protocol: SecurityProtocol(strings.ToUpper(proto)), Addr: addr}
	switch l.Protocol {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
	default:
		return Listener{}, fmt.Errorf("listener %q: protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", s, proto)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Listener{}, fmt.Errorf("listener %q: %w", s, err)
	}
	if l.Name == "" {
		l.Name = string(l.Protocol)
	}
	return l, nil
}

// String renders the listener as ParseListener reads it.
func (l Listener) String() string { return l.Name + "=" + string(l.Protocol) + "://" + l.Addr }

// authenticates reports whether every client of l is authenticated: SASL,
// or TLS that requires a client certificate the server verifies.
func (l Listener) authenticates(t *tls.Config) bool {
	if l.Protocol.SASL() {
		return true
	}
	return l.Protocol == SSL && t != nil && t.ClientAuth == tls.RequireAndVerifyClientCert
}

// listeners returns the configured listeners, or the single PLAINTEXT one
// on Addr.
func (c Config) listeners() []Listener {
	if len(c.Listeners) > 0 {
		return c.Listeners
	}
	return []Listener{{Name: "PLAINTEXT", Protocol: Plaintext, Addr: c.Addr, Advertised: c.AdvertisedAddr}}
}
