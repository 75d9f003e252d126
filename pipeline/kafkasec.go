package pipeline

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sluicehq/sluice/internal/secfile"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Kafka security protocols, as Kafka's security.protocol names them.
const (
	KafkaPlaintext     = "PLAINTEXT"
	KafkaSSL           = "SSL"
	KafkaSASLPlaintext = "SASL_PLAINTEXT"
	KafkaSASLSSL       = "SASL_SSL"
)

// SASL mechanisms a kafka connector authenticates with.
const (
	MechScramSHA512 = "SCRAM-SHA-512"
	MechScramSHA256 = "SCRAM-SHA-256"
	MechPlain       = "PLAIN"
)

var (
	kafkaProtocols = []string{KafkaPlaintext, KafkaSSL, KafkaSASLPlaintext, KafkaSASLSSL}
	kafkaMechs     = []string{MechScramSHA512, MechScramSHA256, MechPlain}
)

// Secret is a password. It never prints: fmt, slog and JSON render it as
// "[redacted]"; string(s) is the value.
type Secret string

const redacted = "[redacted]"

// Format implements fmt.Formatter for every verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// KafkaSecurity is how a kafka connector connects and authenticates: the
// spec's security_protocol, sasl and tls settings of a `kafka:` block, or
// the defaults `sluice run` gives every kafka connector that sets none
// (Host.KafkaDefaults).
type KafkaSecurity struct {
	// Protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; empty means
	// SASL_SSL with SASL set, SSL with only TLS set, PLAINTEXT otherwise
	// (credentials are sent in the clear only when asked to).
	Protocol string
	// SASL authenticates the connector; required by the SASL protocols.
	SASL *KafkaSASL
	// TLS configures the TLS protocols; nil means the system's roots and
	// no client certificate.
	TLS *KafkaTLS

	// at locates the settings' keys in a spec ("sasl.password_file" ->
	// its position; "" -> the kafka block); nil for run defaults.
	at map[string]Pos
}

// KafkaSASL is a connector's SASL identity. Exactly one of Password,
// PasswordFile and PasswordEnv gives the password.
type KafkaSASL struct {
	// Mechanism is SCRAM-SHA-512 (the default), SCRAM-SHA-256 or PLAIN.
	Mechanism string
	Username  string
	Password  Secret
	// PasswordFile is a file whose first line is the password, read when
	// the pipeline starts.
	PasswordFile string
	// PasswordEnv names an environment variable holding the password,
	// read when the pipeline starts.
	PasswordEnv string
}

// KafkaTLS is a connector's TLS settings.
type KafkaTLS struct {
	// CAFile is a PEM bundle of the CAs trusted for the brokers'
	// certificates; empty means the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that require mutual TLS.
	CertFile, KeyFile string
	// ServerName is the name verified in the brokers' certificates;
	// empty means each broker's host.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate (tests only).
	InsecureSkipVerify bool
}

// EffectiveProtocol is the protocol the settings mean (see Protocol).
func (k *KafkaSecurity) EffectiveProtocol() string {
	switch {
	case k == nil:
		return KafkaPlaintext
	case k.Protocol != "":
		return k.Protocol
	case k.SASL != nil:
		return KafkaSASLSSL
	case k.TLS != nil:
		return KafkaSSL
	}
	return KafkaPlaintext
}

func protocolTLS(p string) bool  { return p == KafkaSSL || p == KafkaSASLSSL }
func protocolSASL(p string) bool { return p == KafkaSASLPlaintext || p == KafkaSASLSSL }

// Validate checks run defaults built outside a spec (`sluice run`
// flags): the same rules as a spec's kafka block. Its messages never
// contain the password.
func (k *KafkaSecurity) Validate() error {
	if k == nil {
		return nil
	}
	var errs []error
	if k.Protocol != "" && !contains(kafkaProtocols, k.Protocol) {
		errs = append(errs, fmt.Errorf("security protocol %q: allowed: %s", k.Protocol, strings.Join(kafkaProtocols, ", ")))
	}
	for _, m := range k.conflicts() {
		errs = append(errs, errors.New(m))
	}
	if s := k.SASL; s != nil {
		if s.Mechanism != "" && !contains(kafkaMechs, s.Mechanism) {
			errs = append(errs, fmt.Errorf("SASL mechanism %q: allowed: %s", s.Mechanism, strings.Join(kafkaMechs, ", ")))
		}
		if s.Username == "" {
			errs = append(errs, errors.New("SASL needs a username (the principal)"))
		}
		if n := s.passwordSources(); n != 1 {
			errs = append(errs, fmt.Errorf("SASL needs exactly one password source (a password, a password file or an environment variable), got %d", n))
		}
	}
	if t := k.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("a TLS client certificate needs both its certificate and its key file"))
	}
	return errors.Join(errs...)
}

// conflicts lists the contradictions between the protocol and the SASL
// and TLS settings.
func (k *KafkaSecurity) conflicts() []string {
	p := k.EffectiveProtocol()
	var out []string
	if protocolSASL(p) && k.SASL == nil {
		out = append(out, fmt.Sprintf("security protocol %s needs SASL credentials (a mechanism, a username and a password)", p))
	}
	if !protocolSASL(p) && k.SASL != nil {
		out = append(out, fmt.Sprintf("SASL credentials are set but security protocol %s does not authenticate with SASL: use SASL_SSL (or SASL_PLAINTEXT)", p))
	}
	if !protocolTLS(p) && k.TLS != nil {
		out = append(out, fmt.Sprintf("TLS settings are set but security protocol %s does not use TLS: use SSL or SASL_SSL", p))
	}
	return out
}

func (s *KafkaSASL) passwordSources() int {
	n := 0
	for _, set := range []bool{s.Password != "", s.PasswordFile != "", s.PasswordEnv != ""} {
		if set {
			n++
		}
	}
	return n
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// parseKafkaSecurity reads a kafka block's security_protocol, sasl and tls
// keys; nil when it sets none of them.
func parseKafkaSecurity(e *errs, o *obj) *KafkaSecurity {
	if !o.has("security_protocol") && !o.has("sasl") && !o.has("tls") {
		return nil
	}
	k := &KafkaSecurity{at: map[string]Pos{"": {File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}}
	k.Protocol = o.enum("security_protocol", "", kafkaProtocols...)
	if so := o.object("sasl", "mechanism, username and one of password, password_file, password_env"); so != nil {
		k.SASL = parseKafkaSASL(e, so)
		k.mark("sasl", so)
	} else if o.has("sasl") {
		k.SASL = &KafkaSASL{} // reported as not a mapping already
	}
	if to := o.object("tls", "ca_file, cert_file, key_file, server_name, insecure_skip_verify"); to != nil {
		k.TLS = &KafkaTLS{
			CAFile:             to.str("ca_file", ""),
			CertFile:           to.str("cert_file", ""),
			KeyFile:            to.str("key_file", ""),
			ServerName:         to.str("server_name", ""),
			InsecureSkipVerify: to.boolean("insecure_skip_verify", false),
		}
		if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
			e.at(to.node, to.path, "cert_file and key_file go together (a client certificate and its key)")
		}
		to.done("ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify")
		k.mark("tls", to)
	} else if o.has("tls") {
		k.TLS = &KafkaTLS{}
	}
	if k.Protocol == "" && o.has("security_protocol") {
		return k // an invalid protocol, reported: no conflicts on top
	}
	at, field := o.node, o.path
	if o.has("security_protocol") {
		at, field = o.get("security_protocol"), o.sub("security_protocol")
	}
	for _, m := range k.conflicts() {
		e.at(at, field, "%s", specWords(m))
	}
	return k
}

// mark records where the keys of the block name (sasl or tls) are, for
// the errors of reading their files when the pipeline starts.
func (k *KafkaSecurity) mark(name string, o *obj) {
	k.at[name] = Pos{File: o.e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}
	for _, key := range o.keys {
		p := o.pos(key)
		k.at[name+"."+key] = p
	}
}

// specWords rewrites a conflict message in the spec's key names.
func specWords(m string) string {
	return strings.NewReplacer(
		"security protocol", "security_protocol",
		"SASL credentials (a mechanism, a username and a password)", "sasl: {mechanism, username, password_file}",
		"SASL credentials are set", "sasl is set",
		"TLS settings are set", "tls is set",
	).Replace(m)
}

func parseKafkaSASL(e *errs, o *obj) *KafkaSASL {
	s := &KafkaSASL{Mechanism: o.enum("mechanism", MechScramSHA512, kafkaMechs...)}
	s.Username = o.reqStr("username", "the principal to authenticate as")
	if v, ok := o.scalar("password"); v != nil {
		if !ok {
			e.at(v, o.sub("password"), "must be a string, not %s", describe(v))
		} else if v.Value == "" {
			e.at(v, o.sub("password"), "must not be empty")
		}
		s.Password = Secret(v.Value)
	}
	s.PasswordFile = o.str("password_file", "")
	s.PasswordEnv = o.str("password_env", "")
	if o.has("password_env") && !envNameOK(s.PasswordEnv) {
		e.at(o.get("password_env"), o.sub("password_env"), "must name an environment variable (letters, digits and _), like KAFKA_PASSWORD")
	}
	if o.has("password_file") && s.PasswordFile == "" {
		e.at(o.get("password_file"), o.sub("password_file"), "must not be empty")
	}
	given := 0
	for _, k := range []string{"password", "password_file", "password_env"} {
		if o.has(k) {
			given++
		}
	}
	switch {
	case given == 0:
		e.at(o.node, o.path, "needs the password: password_file (a file whose first line is the password), password_env (an environment variable) or password")
	case given > 1:
		e.at(o.node, o.path, "give one of password, password_file and password_env, not %d", given)
	}
	o.done("mechanism", "username", "password", "password_file", "password_env")
	return s
}

func envNameOK(s string) bool { return s != "" && identRe.MatchString(s) }

// kafkaClientOptions turns the connector's own settings, or else the
// run's defaults, into franz-go options: reading the password and the
// certificates now. Its errors never contain the password.
func kafkaClientOptions(own *KafkaSecurity, bc *buildCtx) ([]kgo.Opt, error) {
	k := own
	if k == nil && bc.host != nil {
		k = bc.host.KafkaDefaults
	}
	if k == nil {
		return nil, nil
	}
	p := k.EffectiveProtocol()
	var opts []kgo.Opt
	if protocolTLS(p) {
		tc, err := k.TLS.config(k.fail)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if protocolSASL(p) && k.SASL != nil {
		m, err := k.SASL.mechanism(k.fail)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// fail makes an error about a setting: a *SpecError at its key in the
// spec (file:line: key), or, for run defaults, naming the flag that set it.
func (k *KafkaSecurity) fail(key, flag string, err error) error {
	if k.at == nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	p, ok := k.at[key]
	if !ok {
		p = k.at[""]
		p.Field += "." + key
	}
	return &SpecError{File: p.File, Line: p.Line, Column: p.Column, Field: p.Field, Msg: err.Error()}
}

func (t *KafkaTLS) config(fail func(key, flag string, err error) error) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return c, nil
	}
	c.ServerName, c.InsecureSkipVerify = t.ServerName, t.InsecureSkipVerify
	if t.CAFile != "" {
		pool, err := secfile.CertPool(t.CAFile)
		if err != nil {
			return nil, fail("tls.ca_file", "--tls-ca", err)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fail("tls.cert_file", "--tls-cert", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// password reads the password from where the settings say.
func (s *KafkaSASL) password(fail func(key, flag string, err error) error) (string, error) {
	switch {
	case s.Password != "":
		return string(s.Password), nil
	case s.PasswordFile != "":
		pw, err := secfile.FirstLineOf(s.PasswordFile)
		if err != nil {
			return "", fail("sasl.password_file", "--password-file", err)
		}
		return pw, nil
	case s.PasswordEnv != "":
		pw := os.Getenv(s.PasswordEnv)
		if pw == "" {
			return "", fail("sasl.password_env", "SLUICE_PASSWORD", fmt.Errorf("environment variable %s is not set or empty", s.PasswordEnv))
		}
		return pw, nil
	}
	return "", fail("sasl", "--principal", errors.New("no password"))
}

// mechanism is the franz-go SASL mechanism of the settings.
func (s *KafkaSASL) mechanism(fail func(key, flag string, err error) error) (sasl.Mechanism, error) {
	pw, err := s.password(fail)
	if err != nil {
		return nil, err
	}
	switch s.Mechanism {
	case MechScramSHA256:
		return scram.Auth{User: s.Username, Pass: pw}.AsSha256Mechanism(), nil
	case MechPlain:
		return plain.Auth{User: s.Username, Pass: pw}.AsMechanism(), nil
	case MechScramSHA512, "":
		return scram.Auth{User: s.Username, Pass: pw}.AsSha512Mechanism(), nil
	}
	return nil, fail("sasl.mechanism", "--sasl-mechanism", fmt.Errorf("unknown SASL mechanism %q", s.Mechanism))
}
