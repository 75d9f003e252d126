package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config.
const (
	DefaultCommitInterval = time.Second
	DefaultSessionTimeout = 10 * time.Second
	// DefaultDeliveryTimeout is Kafka's delivery.timeout.ms default.
	DefaultDeliveryTimeout = 2 * time.Minute
)

// Config configures one instance of a clustered pipeline.
type Config struct {
	// Brokers are the seed brokers of the Kafka cluster.
	Brokers []string
	// ApplicationID names the consumer group and prefixes every internal
	// topic.
	ApplicationID string
	// InstanceID names this instance: its static group membership
	// (group.instance.id) and its transactional id, so an instance
	// restarted with the same id takes its tasks back at once and fences
	// its previous incarnation. Default: host name plus pid.
	InstanceID string
	// CommitInterval is how often a transaction (or, at-least-once, an
	// offset commit) closes. Default 1 s.
	CommitInterval time.Duration
	// SessionTimeout is the group session timeout. Default 10 s.
	SessionTimeout time.Duration
	// TransactionTimeout bounds how long a transaction left open by a
	// dead instance blocks read_committed readers. Default: the session
	// timeout.
	TransactionTimeout time.Duration
	// DeliveryTimeout bounds, at-least-once, how long a commit waits for
	// the brokers to acknowledge the records written since the last one
	// (outputs, repartition records, changelog writes) before it commits
	// the offsets (Kafka's delivery.timeout.ms). When it passes, the
	// instance stops with an error and commits no offsets: the records
	// since the last commit are processed again by whoever gets their
	// tasks. Exactly-once commits are bounded by TransactionTimeout
	// instead. Default DefaultDeliveryTimeout.
	DeliveryTimeout time.Duration
	// ExactlyOnce makes every commit a Kafka transaction (EOS v2);
	// otherwise the instance is at-least-once.
	ExactlyOnce bool
	// ClientOptions are added to every Kafka client (TLS, SASL).
	ClientOptions []kgo.Opt
	// Logger receives the instance's events; nil: slog.Default().
	Logger *slog.Logger
	// StandbyReplicas is how many other instances keep a warm copy of
	// each stateful task (standby.go); 0: none.
	StandbyReplicas int
	// StateDir, when set, keeps local snapshots of the tasks' state (in
	// StateDir/<application>/<instance>/), so a task that comes back to
	// this instance (after a restart under the same instance id) restores
	// only the changelog written since.
	StateDir string
	// SnapshotInterval bounds how often a changed task's state is written
	// to StateDir; default DefaultSnapshotInterval.
	SnapshotInterval time.Duration
	// PurgeInterval bounds how often consumed repartition records are
	// deleted (purge.go); default DefaultPurgeInterval.
	PurgeInterval time.Duration
	// LeaveOnClose removes the instance from the group when it stops
	// (a SIGTERM: the group moves its tasks at once). A static member
	// otherwise stays until the session times out, so that a quick
	// restart keeps its tasks. Default true through Run's callers.
	LeaveOnClose bool
}

var appIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// withDefaults validates c and fills its defaults.
func (c Config) withDefaults() (Config, error) {
	if len(c.Brokers) == 0 {
		return c, errors.New("cluster: no brokers: set cluster.brokers in the pipeline or pass --cluster HOST:PORT")
	}
	if !appIDRe.MatchString(c.ApplicationID) {
		return c, fmt.Errorf("cluster: application_id %q: use 1 to 200 letters, digits, '.', '_' or '-' (it names Kafka topics)", c.ApplicationID)
	}
	if c.InstanceID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "sluice"
		}
		c.InstanceID = host + "-" + strconv.Itoa(os.Getpid())
	}
	if !appIDRe.MatchString(c.InstanceID) {
		return c, fmt.Errorf("cluster: instance id %q: use 1 to 200 letters, digits, '.', '_' or '-'", c.InstanceID)
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = max(c.SessionTimeout, 2*c.CommitInterval)
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// heartbeatInterval is how often an instance heartbeats to its group:
// a third of the session timeout (Kafka's advice: a member that misses
// two heartbeats is still in the group), at most franz-go's default of
// 3 s. A member also learns of a rebalance only at its next heartbeat,
// so a short session timeout makes rebalances quicker too.
func heartbeatInterval(session time.Duration) time.Duration {
	return max(min(3*time.Second, session/3), 10*time.Millisecond)
}

// RepartitionTopic is the internal topic feeding the sub-topology that
// starts at step.
func RepartitionTopic(app, step string) string { return app + "-" + step + "-repartition" }

// ChangelogTopic is the compacted topic backing step's state.
func ChangelogTopic(app, step string) string { return app + "-" + step + "-changelog" }

// IngestTopic is where a non-Kafka source (HTTP) writes before
// processing.
func IngestTopic(app string) string { return app + "-ingest" }
