package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicehq/sluice/pipeline"
)

// runAuthFlags are `sluice run`'s Kafka client security flags: the
// principal a pipeline's kafka sources and sinks authenticate as, when
// their spec blocks set no security_protocol, sasl or tls of their own.
type runAuthFlags struct {
	principal string
	pwFile    string
	mechanism string
	protocol  string
	tlsCA     string
}

// passwordEnv is the environment variable --principal's password is read
// from when --password-file is not given.
const passwordEnv = "SLUICE_PASSWORD"

func (f *runAuthFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.principal, "principal", "", "authenticate the pipeline's kafka sources and sinks that set no security_protocol, sasl or tls of their own as this SASL user (User:NAME or NAME); the password comes from --password-file or the env "+passwordEnv)
	fs.StringVar(&f.pwFile, "password-file", "", "file whose first line is --principal's password (default: the env "+passwordEnv+")")
	fs.StringVar(&f.mechanism, "sasl-mechanism", pipeline.MechScramSHA512, "SASL mechanism of --principal: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
	fs.StringVar(&f.protocol, "security-protocol", "", "security protocol of those kafka connectors: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: SASL_SSL with --principal, SSL with only --tls-ca)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM CA bundle trusted for the brokers' certificates under SSL and SASL_SSL (default: the system's roots)")
}

// defaults returns the Kafka security defaults the flags give (nil when
// none is set), reading the password now. Its errors never contain the
// password.
func (f *runAuthFlags) defaults(c *cli) (*pipeline.KafkaSecurity, error) {
	if f.principal == "" && f.protocol == "" && f.tlsCA == "" {
		if f.pwFile != "" {
			return nil, usagef("--password-file needs --principal")
		}
		return nil, nil
	}
	k := &pipeline.KafkaSecurity{Protocol: strings.ToUpper(f.protocol)}
	if f.tlsCA != "" {
		k.TLS = &pipeline.KafkaTLS{CAFile: f.tlsCA}
	}
	if f.principal != "" {
		user := strings.TrimPrefix(f.principal, "User:")
		pw, err := f.password(c)
		if err != nil {
			return nil, err
		}
		k.SASL = &pipeline.KafkaSASL{Mechanism: strings.ToUpper(f.mechanism), Username: user, Password: pipeline.Secret(pw)}
	} else if f.pwFile != "" {
		return nil, usagef("--password-file needs --principal")
	}
	if k.Protocol != "" && k.TLS == nil && (k.Protocol == pipeline.KafkaSSL || k.Protocol == pipeline.KafkaSASLSSL) {
		k.TLS = &pipeline.KafkaTLS{} // the system's roots
	}
	if err := k.Validate(); err != nil {
		return nil, usagef("%s", flagWords(err.Error()))
	}
	return k, nil
}

// password reads --principal's password from --password-file, or else
// from the environment.
func (f *runAuthFlags) password(c *cli) (string, error) {
	if f.pwFile != "" {
		return readPassword(c, f.pwFile)
	}
	if pw := c.getenv(passwordEnv); pw != "" {
		return pw, nil
	}
	return "", usagef("--principal %s needs its password: --password-file FILE or the env %s", f.principal, passwordEnv)
}

// flagWords rewrites pipeline.KafkaSecurity's messages with the flags'
// names.
func flagWords(m string) string {
	return strings.NewReplacer(
		"security protocol", "--security-protocol",
		"SASL mechanism", "--sasl-mechanism",
		"SASL credentials (a mechanism, a username and a password)", "--principal",
		"SASL credentials are set", "--principal is set",
		"TLS settings are set", "--tls-ca is set",
	).Replace(m)
}

// authHint adds to a run's error what to check when the cluster refused
// the credentials.
func (f *runAuthFlags) authHint(err error) error {
	if err == nil || !errors.Is(err, kerr.SaslAuthenticationFailed) {
		return err
	}
	if f.principal != "" {
		return fmt.Errorf("%w\n(check the password of --principal %s, from --password-file or %s, and --sasl-mechanism %s; kafka blocks with their own sasl settings use those instead)", err, f.principal, passwordEnv, f.mechanism)
	}
	return fmt.Errorf("%w\n(check the sasl settings of the pipeline's kafka blocks, or give --principal)", err)
}
