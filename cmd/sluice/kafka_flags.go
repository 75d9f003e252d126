package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/secfile"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/web"
)

// kafkaFlags are serve's Kafka-listener flags.
type kafkaFlags struct {
	cfg        kafka.Config
	partitions int
	maxRequest byteSize
	disabled   bool
	srv        atomic.Pointer[kafka.Server] // set by start; read by HTTP handlers
	listeners  []string
	tlsCert    string
	tlsKey     string
	clientCA   string
	mechs      string
}

func registerKafkaFlags(c *cli, fs *flag.FlagSet) *kafkaFlags {
	d := kafka.DefaultConfig()
	k := &kafkaFlags{}
	fs.StringVar(&k.cfg.Addr, "kafka-addr", envOr(c, "SLUICE_KAFKA_ADDR", d.Addr), "Kafka protocol listen address; a non-loopback address needs --allow-unauthenticated (env SLUICE_KAFKA_ADDR)")
	fs.StringVar(&k.cfg.AdvertisedAddr, "kafka-advertised-addr", envOr(c, "SLUICE_KAFKA_ADVERTISED_ADDR", ""), "HOST:PORT that Metadata returns to clients (default: the bound address)")
	fs.BoolVar(&k.cfg.AutoCreateTopics, "auto-create-topics", d.AutoCreateTopics, "create topics on first use by a client")
	fs.IntVar(&k.partitions, "default-partitions", int(d.DefaultPartitions), "partitions of topics created on first use")
	k.maxRequest = byteSize(d.MaxRequestBytes)
	sizeVar(fs, &k.maxRequest, "max-request-bytes", "largest request frame accepted, like 100MiB (at most 1GiB); larger ones close the connection")
	fs.BoolVar(&k.cfg.AllowUnauthenticated, "allow-unauthenticated", false, "allow a non-loopback --kafka-addr although the listener has no authentication")
	fs.BoolVar(&k.disabled, "no-kafka", false, "do not start the Kafka protocol listener")
	fs.Func("listener", "a Kafka listener NAME=PROTOCOL://HOST:PORT (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); repeatable; replaces --kafka-addr", func(v string) error {
		k.listeners = append(k.listeners, v)
		return nil
	})
	fs.StringVar(&k.tlsCert, "tls-cert", envOr(c, "SLUICE_TLS_CERT", ""), "PEM certificate (chain) of the SSL and SASL_SSL listeners and of HTTPS (env SLUICE_TLS_CERT)")
	fs.StringVar(&k.tlsKey, "tls-key", envOr(c, "SLUICE_TLS_KEY", ""), "PEM private key of --tls-cert (env SLUICE_TLS_KEY)")
	fs.StringVar(&k.clientCA, "tls-client-ca", envOr(c, "SLUICE_TLS_CLIENT_CA", ""), "PEM CA bundle: SSL listeners then require client certificates it signed, whose subject is the principal (mutual TLS)")
	fs.StringVar(&k.mechs, "sasl-mechanisms", "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", "SASL mechanisms offered on SASL listeners")
	fs.DurationVar(&k.cfg.ReauthInterval, "reauth-interval", 0, "SASL session lifetime after which clients re-authenticate on their connection (KIP-368); 0 = never")
	fs.BoolVar(&k.cfg.Authorizer.Enabled, "authorizer", false, "check every Kafka request against the ACLs (sluice acl); no matching ACL denies")
	fs.Func("super-user", "a principal (User:admin) that bypasses the ACLs; repeatable (User:ANONYMOUS makes PLAINTEXT clients super users)", func(v string) error {
		k.cfg.Authorizer.SuperUsers = append(k.cfg.Authorizer.SuperUsers, v)
		return nil
	})
	fs.BoolVar(&k.cfg.Authorizer.AllowEveryoneIfNoACL, "allow-everyone-if-no-acl", false, "with --authorizer, allow operations on resources no ACL applies to (Kafka's allow.everyone.if.no.acl.found)")
	return k
}

// tlsConfig loads --tls-cert, --tls-key and --tls-client-ca (nil when no
// certificate is given).
func (k *kafkaFlags) tlsConfig() (*tls.Config, error) {
	if k.tlsCert == "" && k.tlsKey == "" {
		if k.clientCA != "" {
			return nil, usagef("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if k.tlsCert == "" || k.tlsKey == "" {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(k.tlsCert, k.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("loading --tls-cert %s and --tls-key %s: %w", k.tlsCert, k.tlsKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if k.clientCA != "" {
		pool, err := secfile.CertPool(k.clientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	return cfg, nil
}

func (k *kafkaFlags) defaultPartitions() int32 { return int32(k.partitions) }

// start validates the flags and starts the Kafka listener; the returned
// function stops it. Listener errors are sent on errc.
// The listener's metrics go to reg, and its consumer-offset store to obs.
func (k *kafkaFlags) start(ctx context.Context, l *logstore.Log, logger *slog.Logger, reg prometheus.Registerer, obs *observe.Observer, errc chan<- error) (func(), error) {
	if k.disabled {
		return func() {}, nil
	}
	cfg := k.cfg
	cfg.DefaultPartitions = int32(k.partitions)
	cfg.MaxRequestBytes = int32(min(k.maxRequest, 1<<30))
	cfg.Registerer = reg
	if k.partitions < 1 {
		return nil, usagef("--default-partitions must be at least 1")
	}
	for _, v := range k.listeners {
		lis, err := kafka.ParseListener(v)
		if err != nil {
			return nil, usagef("--listener: %v", err)
		}
		cfg.Listeners = append(cfg.Listeners, lis)
	}
	tcfg, err := k.tlsConfig()
	if err != nil {
		return nil, err
	}
	cfg.TLS = tcfg
	for _, m := range strings.Split(k.mechs, ",") {
		if m = strings.TrimSpace(m); m != "" {
			cfg.SASLMechanisms = append(cfg.SASLMechanisms, strings.ToUpper(m))
		}
	}
	if err := k.checkAuthorizer(cfg, logger); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		if errors.Is(err, kafka.ErrNotLoopback) {
			return nil, usagef("%v", err)
		}
		return nil, usagef("kafka: %v", err)
	}
	srv, err := kafka.New(l, cfg, logger)
	if err != nil {
		return nil, err
	}
	k.srv.Store(srv)
	obs.SetOffsets(srv.Offsets())
	obs.SetGroupSource(liveGroups(srv))
	logger.Info("kafka listeners starting", "auto_create_topics", cfg.AutoCreateTopics, "default_partitions", strconv.Itoa(k.partitions))
	// Bind now: "sluice serving" is logged only once clients can connect.
	serve, err := srv.Listen()
	if err != nil {
		srv.Close()
		return nil, err
	}
	go func() {
		if err := serve(ctx); err != nil && !errors.Is(err, kafka.ErrServerClosed) {
			errc <- err
		}
	}()
	return func() { srv.Close() }, nil
}

// checkAuthorizer refuses --super-user and --allow-everyone-if-no-acl
// without --authorizer, and warns when clients authenticate but nothing
// authorizes them.
func (k *kafkaFlags) checkAuthorizer(cfg kafka.Config, logger *slog.Logger) error {
	az := cfg.Authorizer
	if !az.Enabled && (len(az.SuperUsers) > 0 || az.AllowEveryoneIfNoACL) {
		return usagef("--super-user and --allow-everyone-if-no-acl need --authorizer")
	}
	if az.Enabled {
		logger.Info("kafka authorizer on: requests are checked against the ACLs", "super_users", strings.Join(az.SuperUsers, ","), "allow_everyone_if_no_acl", az.AllowEveryoneIfNoACL)
		return nil
	}
	for _, l := range cfg.Listeners {
		if l.Protocol.SASL() || l.Protocol == kafka.SSL && cfg.TLS != nil && cfg.TLS.ClientCAs != nil {
			logger.Warn("kafka clients authenticate but no authorizer is configured: every principal may do anything (use --authorizer and sluice acl)", "listener", l.Name)
			break
		}
	}
	return nil
}

// authorizeHTTP checks an HTTP request made with a token tied to a
// principal against the Kafka listener's ACLs: DESCRIBE on the cluster to
// read (GET, HEAD, and the schema registry's lookups and compatibility
// checks, which are POSTs), ALTER to change. The JSON API's topics,
// groups and overview are checked per topic and group instead
// (visibleHTTP), as Kafka's Metadata and ListGroups are. Without an
// authorizer every authenticated request is allowed. With one but no
// Kafka server to ask (it is still opening its ACLs, or --no-kafka) only
// super users are (noServer).
func (k *kafkaFlags) authorizeHTTP(principal string, r *http.Request) bool {
	srv := k.srv.Load()
	if srv == nil {
		return k.noServer(principal)
	}
	if r.Method == http.MethodGet && perResourceAPI(r.URL.Path) {
		return true
	}
	op := auth.OpAlter
	if r.Method == http.MethodGet || r.Method == http.MethodHead || schema.ReadOnlyRequest(r) {
		op = auth.OpDescribe
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return srv.AuthorizeCluster(principal, host, op)
}

// noServer decides an HTTP request while there is no Kafka server whose
// ACLs could: fail closed with an authorizer (the HTTP listener serves
// before the Kafka server has opened its ACLs), but let super users
// through; without an authorizer allow, as the ACLs would not be asked.
func (k *kafkaFlags) noServer(principal string) bool {
	return !k.cfg.Authorizer.Enabled || k.superUser(principal)
}

// superUser reports whether principal is one of --super-user (who may
// also use the HTTP tenant admin API).
func (k *kafkaFlags) superUser(principal string) bool {
	return k.cfg.Authorizer.Enabled && slices.Contains(k.cfg.Authorizer.SuperUsers, principal)
}

// perResourceAPI reports whether path is a JSON API endpoint whose topics
// and groups visibleHTTP checks one by one.
func perResourceAPI(path string) bool {
	switch path {
	case "/api/v1/overview", "/api/v1/topics", "/api/v1/groups", "/api/v1/events":
		return true
	}
	return strings.HasPrefix(path, "/api/v1/topics/") || strings.HasPrefix(path, "/api/v1/groups/")
}

// visibleHTTP reports whether principal may see a topic or group in the
// JSON API: DESCRIBE on it by the Kafka listener's ACLs (tenants' members
// see their tenant's). A refusal is not counted as a Kafka authorization
// denial: the lists are filtered with it on every request (the HTTP
// server counts a topic or group refused by name).
func (k *kafkaFlags) visibleHTTP(principal string, r *http.Request, kind, name string) bool {
	srv := k.srv.Load()
	if srv == nil {
		return k.noServer(principal)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	rt := auth.ResourceTopic
	if kind == web.ResourceGroup {
		rt = auth.ResourceGroup
	}
	return srv.Allowed(principal, host, auth.OpDescribe, rt, name) // a list filter, no refusal: not counted
}
