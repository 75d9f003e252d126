package kbench

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/internal/secfile"
	"github.com/sluicehq/sluice/kafka"
)

// Security is how the benchmark's clients connect: a Kafka security
// protocol and, for SASL, a mechanism and credentials.
type Security struct {
	// Protocol is PLAINTEXT (the default), SSL, SASL_PLAINTEXT or SASL_SSL.
	Protocol string
	// Mechanism is SCRAM-SHA-512 (the default), SCRAM-SHA-256 or PLAIN.
	Mechanism string
	// User and Password log in on SASL listeners. The in-process server
	// creates this user (default "kbench" with a random password).
	User, Password string
	// TLS is the clients' TLS configuration on SSL and SASL_SSL. The
	// in-process server fills it in (trusting its throwaway CA); for
	// Config.Broker set it (CAFile in the CLI).
	TLS *tls.Config
}

func (s Security) withDefaults() Security {
	s.Protocol = strings.ToUpper(s.Protocol)
	if s.Protocol == "" {
		s.Protocol = string(kafka.Plaintext)
	}
	s.Mechanism = strings.ToUpper(s.Mechanism)
	if s.Mechanism == "" {
		s.Mechanism = "SCRAM-SHA-512"
	}
	return s
}

func (s Security) validate() error {
	switch kafka.SecurityProtocol(s.Protocol) {
	case kafka.Plaintext, kafka.SSL, kafka.SASLPlaintext, kafka.SASLSSL:
	default:
		return fmt.Errorf("security protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", s.Protocol)
	}
	switch s.Mechanism {
	case "SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN":
	default:
		return fmt.Errorf("SASL mechanism %q: want SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN", s.Mechanism)
	}
	return nil
}

// mechanism is the franz-go SASL mechanism of s.
func (s Security) mechanism() sasl.Mechanism {
	switch s.Mechanism {
	case "PLAIN":
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
	}
	return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
}

// ClientOptions are the franz-go options that connect with s.
func (s Security) ClientOptions() []kgo.Opt {
	var o []kgo.Opt
	p := kafka.SecurityProtocol(s.Protocol)
	if p.TLS() {
		t := s.TLS
		if t == nil {
			t = &tls.Config{MinVersion: tls.VersionTLS12} // the system's roots
		}
		o = append(o, kgo.DialTLSConfig(t))
	}
	if p.SASL() {
		o = append(o, kgo.SASL(s.mechanism()))
	}
	return o
}

// LoadCA returns a client TLS configuration trusting the PEM CA in file
// (the system roots when file is empty).
func LoadCA(file string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if file == "" {
		return c, nil
	}
	pool, err := secfile.CertPool(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	c.RootCAs = pool
	return c, nil
}

// describe names the protocol (and mechanism on SASL) for reports.
func (s Security) describe() string {
	if s.Protocol == "" {
		return string(kafka.Plaintext)
	}
	if kafka.SecurityProtocol(s.Protocol).SASL() {
		return s.Protocol + " " + s.Mechanism
	}
	return s.Protocol
}
