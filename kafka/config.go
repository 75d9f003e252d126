package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/netutil"
)

// Config configures the Kafka listener. The zero value is not useful; start
// from DefaultConfig. Fields mirror the `sluice serve` flags.
type Config struct {
	// Addr is the address to listen on (--kafka-addr). Default 127.0.0.1:9092.
	Addr string
	// AdvertisedAddr is the host:port that Metadata and FindCoordinator
	// return to clients (--kafka-advertised-addr). Empty means the address
	// the listener is actually bound to.
	AdvertisedAddr string
	// AutoCreateTopics creates a topic when a client asks Metadata for one
	// that does not exist (--auto-create-topics). Default true.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of
	// CreateTopics requests with -1 partitions (--default-partitions).
	// Default 1.
	DefaultPartitions int32
	// MaxRequestBytes bounds one request frame (--max-request-bytes); a
	// larger frame closes the connection. Default 100 MiB.
	MaxRequestBytes int32
	// AllowUnauthenticated permits a non-loopback Addr
	// (--allow-unauthenticated). The listener has no authentication.
	AllowUnauthenticated bool
	// NodeID is the broker id reported to clients. Default 0.
	NodeID int32
	// ClusterID is reported in Metadata and DescribeCluster. Empty (the
	// default) means an id generated on the data directory's first start
	// and kept in its file kafka-cluster.id.
	ClusterID string
	// MaxTransactionTimeout bounds a transactional producer's timeout
	// (Kafka's transaction.max.timeout.ms). Default 15 minutes.
	MaxTransactionTimeout time.Duration
	// MaxPartitions bounds the partition count of one topic created over
	// the protocol (each partition is a directory of files). Default 1024.
	MaxPartitions int32
	// Registerer receives the listener's metrics (sluice_kafka_*); nil
	// means no metrics.
	Registerer prometheus.Registerer
	// Tenants, when set, is the tenant registry of the log the server
	// serves, shared with whoever changes it while the server runs (the
	// HTTP admin API): changes take effect on the next request. nil: the
	// server opens its own from the log's __sluice_tenants.
	Tenants *auth.Tenants
	// TickInterval is how often group sessions and transaction timeouts are
	// checked. Default 100ms.
	TickInterval time.Duration
	// FetchMaxBytes bounds the record bytes of one Fetch response, whatever
	// the request's MaxBytes (Kafka's broker fetch.max.bytes; a partition's
	// first batch is still returned whole). Default 55 MiB, Kafka's.
	FetchMaxBytes int32
	// FetchSessionCacheSlots bounds the incremental fetch sessions kept
	// (Kafka's max.incremental.fetch.session.cache.slots); a new session
	// evicts the least recently used one. Default 1000; negative keeps none.
	FetchSessionCacheSlots int
	// FetchSessionIdleTimeout drops a fetch session unused for that long
	// (its client starts a new one). Default 2 minutes (Kafka's
	// min.incremental.fetch.session.eviction.ms).
	FetchSessionIdleTimeout time.Duration
	// ConsumerHeartbeatInterval is the heartbeat interval given to members
	// of consumer-protocol groups (Kafka's
	// group.consumer.heartbeat.interval.ms). Default 5s.
	ConsumerHeartbeatInterval time.Duration
	// ConsumerSessionTimeout is how long a consumer-protocol group member
	// may go without heartbeating before it is fenced (Kafka's
	// group.consumer.session.timeout.ms). Default 45s.
	ConsumerSessionTimeout time.Duration

	// Listeners are the listeners ListenAndServe opens (--listener
	// NAME=PROTOCOL://HOST:PORT, Kafka style). Empty: one PLAINTEXT
	// listener on Addr.
	Listeners []Listener
	// TLS is the server side of SSL and SASL_SSL listeners (--tls-cert,
	// --tls-key; ClientAuth RequireAndVerifyClientCert with ClientCAs for
	// mutual TLS, --tls-client-ca). The certificate's subject becomes the
	// principal of an SSL client.
	TLS *tls.Config
	// SASLMechanisms are the mechanisms SASL listeners offer. Default
	// SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN (PLAIN only makes sense over
	// TLS: it sends the password).
	SASLMechanisms []string
	// ReauthInterval is the longest a SASL session lives before the client
	// must re-authenticate on the same connection (KIP-368, Kafka's
	// connections.max.reauth.ms); 0 = never.
	ReauthInterval time.Duration
	// Authorizer configures Kafka ACL authorisation (--authorizer,
	// --super-user, --allow-everyone-if-no-acl); off by default.
	Authorizer AuthorizerConfig
}

// AuthorizerConfig configures authorisation by Kafka ACLs (authorize.go).
// The ACLs themselves live in the log (auth.ACLsTopic) and are managed
// with CreateAcls/DeleteAcls or `sluice acl`.
type AuthorizerConfig struct {
	// Enabled checks every request against the ACLs, as Kafka does with
	// an authorizer configured. Off: every request is allowed and the ACL
	// APIs answer SECURITY_DISABLED.
	Enabled bool
	// SuperUsers are principals ("User:admin") that bypass the ACLs
	// (Kafka's super.users).
	SuperUsers []string
	// AllowEveryoneIfNoACL allows an operation on a resource no ACL
	// applies to (Kafka's allow.everyone.if.no.acl.found); by default it
	// is denied.
	AllowEveryoneIfNoACL bool
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Addr:                  "127.0.0.1:9092",
		AutoCreateTopics:      true,
		DefaultPartitions:     1,
		MaxRequestBytes:       100 << 20,
		MaxTransactionTimeout: 15 * time.Minute,
		TickInterval:          100 * time.Millisecond,
		MaxPartitions:         1024,
		FetchMaxBytes:         55 << 20,

		ConsumerHeartbeatInterval: 5 * time.Second,
		ConsumerSessionTimeout:    45 * time.Second,
	}
}

// ErrNotLoopback is returned (wrapped) by Config.Validate for a non-loopback
// listen address of a listener without authentication (PLAINTEXT, or SSL
// without required client certificates) and without AllowUnauthenticated.
var ErrNotLoopback = errors.New("kafka listener has no authentication: refusing a non-loopback address (use a SASL_SSL listener, mutual TLS, or --allow-unauthenticated)")

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = d.DefaultPartitions
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = d.MaxRequestBytes
	}
	if c.MaxTransactionTimeout <= 0 {
		c.MaxTransactionTimeout = d.MaxTransactionTimeout
	}
	if c.MaxPartitions <= 0 {
		c.MaxPartitions = d.MaxPartitions
	}
	if c.TickInterval <= 0 {
		c.TickInterval = d.TickInterval
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = d.FetchMaxBytes
	}
	if c.FetchSessionCacheSlots == 0 {
		c.FetchSessionCacheSlots = defaultFetchSessionSlots
	}
	if c.FetchSessionIdleTimeout <= 0 {
		c.FetchSessionIdleTimeout = defaultFetchSessionIdle
	}
	if c.ConsumerHeartbeatInterval <= 0 {
		c.ConsumerHeartbeatInterval = d.ConsumerHeartbeatInterval
	}
	if c.ConsumerSessionTimeout <= 0 {
		c.ConsumerSessionTimeout = d.ConsumerSessionTimeout
	}
	if len(c.SASLMechanisms) == 0 {
		c.SASLMechanisms = allMechanisms
	}
	return c
}

// Validate checks the configuration: Addr must be host:port, and a
// non-loopback host (including an empty host or 0.0.0.0, which listen on
// every interface) needs AllowUnauthenticated.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, l := range c.listeners() {
		if err := checkListenAddr(l.Addr, c.AllowUnauthenticated || l.authenticates(c.TLS)); err != nil {
			return fmt.Errorf("listener %s: %w", l, err)
		}
		if l.Protocol.TLS() && (c.TLS == nil || (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil)) {
			return fmt.Errorf("listener %s: %s needs a certificate and key (--tls-cert, --tls-key)", l, l.Protocol)
		}
	}
	for _, p := range c.Authorizer.SuperUsers {
		if err := auth.ValidPrincipal(p); err != nil {
			return fmt.Errorf("super user: %w", err)
		}
	}
	for _, m := range c.SASLMechanisms {
		if !slices.Contains(allMechanisms, m) {
			return fmt.Errorf("SASL mechanism %q: want one of %s", m, strings.Join(allMechanisms, ", "))
		}
	}
	if c.DefaultPartitions > c.MaxPartitions {
		return fmt.Errorf("kafka default partitions %d exceed the maximum of %d", c.DefaultPartitions, c.MaxPartitions)
	}
	if c.ConsumerHeartbeatInterval >= c.ConsumerSessionTimeout {
		return fmt.Errorf("kafka consumer group heartbeat interval %v must be below the session timeout %v", c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout)
	}
	if c.AdvertisedAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertisedAddr); err != nil {
			return fmt.Errorf("kafka advertised address %q: %w", c.AdvertisedAddr, err)
		}
	}
	return nil
}

func checkListenAddr(addr string, allow bool) error {
	loop, err := netutil.IsLoopback(addr)
	if err != nil {
		return fmt.Errorf("kafka listen address: %w", err)
	}
	if allow || loop {
		return nil
	}
	return fmt.Errorf("kafka listen address %q: %w", addr, ErrNotLoopback)
}
