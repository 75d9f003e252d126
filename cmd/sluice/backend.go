package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/tier"
)

// topicSpec is what `topic create` asks for.
type topicSpec struct {
	partitions int32
	retention  time.Duration
	fsync      string // "" = server default
	// configs are Kafka topic configs (KEY, VALUE) in the order given;
	// --cleanup-policy is cleanup.policy here. They apply after retention
	// and fsync.
	configs [][2]string
}

// partitionInfo describes one partition for `topic describe`.
type partitionInfo struct {
	partition int32
	earliest  int64
	latest    int64
	size      int64 // bytes on disk; -1 when unknown (remote)
	// With remote storage (remote.storage.enable): the first offset on the
	// local disk and the remote tier's bytes and segments (-1 unknown).
	remote         bool
	localStart     int64
	remoteSize     int64
	remoteSegments int
	// cleaner is the log cleaner's progress on a compacted topic's
	// partition; nil when not compacted or unknown (remote).
	cleaner *logstore.CleanerStats
}

// topicInfo describes a topic for `topic list` and `topic describe`.
type topicInfo struct {
	name       string
	partitions []partitionInfo
	config     map[string]string
	// cleanup is the effective cleanup.policy ("" when unknown).
	cleanup string
	// overrides are the configs set on the topic (not the defaults), as
	// (KEY, VALUE) sorted by key.
	overrides [][2]string
}

// message is one record as the CLI prints it.
type message struct {
	topic     string
	partition int32
	offset    int64
	timestamp int64
	key       []byte
	value     []byte
	headers   []messageHeader
}

// messageHeader is one record header; a nil value is null, which Kafka
// tells apart from an empty one.
type messageHeader struct {
	key   string
	value []byte
}

// produceRecord is one record read from stdin.
type produceRecord struct {
	key   []byte
	value []byte
}

// produceSummary reports, per partition, the offsets acknowledged.
type produceSummary struct {
	records int
	first   map[int32]int64
	last    map[int32]int64
}

func (s *produceSummary) ack(p int32, first, last int64) {
	if s.first == nil {
		s.first, s.last = map[int32]int64{}, map[int32]int64{}
	}
	if _, ok := s.first[p]; !ok || first < s.first[p] {
		s.first[p] = first
	}
	if last > s.last[p] {
		s.last[p] = last
	}
}

// startPosition is where a consumer starts: earliest, latest, an offset or a time.
type startPosition struct {
	kind   string // "earliest", "latest", "offset", "time"
	offset int64
	time   int64 // epoch ms
}

type consumeOptions struct {
	from      startPosition
	group     string
	limit     int  // 0 = unlimited
	exitAtEnd bool // stop at the end offsets found at start
}

// backend is what the data commands need from a log: the embedded one in a
// data directory, or a Kafka-protocol server (Sluice or Kafka) over the
// network.
type backend interface {
	CreateTopic(ctx context.Context, name string, spec topicSpec) error
	DeleteTopic(ctx context.Context, name string) error
	ListTopics(ctx context.Context) ([]topicInfo, error)
	DescribeTopic(ctx context.Context, name string) (topicInfo, error)
	// AlterTopicConfig sets the configs in set and returns those in del to
	// their defaults, leaving the others as they are.
	AlterTopicConfig(ctx context.Context, name string, set [][2]string, del []string) error
	// AddPartitions grows the topic to total partitions.
	AddPartitions(ctx context.Context, name string, total int32) error
	// DeleteRecords moves a partition's start offset up to before (-1: its
	// high watermark) and returns the new start offset.
	DeleteRecords(ctx context.Context, name string, partition int32, before int64) (int64, error)
	// Produce writes recs to topic: to partition when >= 0, else by key
	// (murmur2); records without a key go a batch at a time to one
	// partition, then the next.
	Produce(ctx context.Context, topic string, partition int32, recs <-chan produceRecord) (produceSummary, error)
	// Consume calls fn for each record until the limit, the end (exitAtEnd)
	// or ctx ends.
	Consume(ctx context.Context, topic string, o consumeOptions, fn func(message) error) error
	// SetUserCredential stores user's SCRAM credential for m, derived from
	// password; DeleteUserCredential removes it; ListUsers lists users.
	SetUserCredential(ctx context.Context, user string, m auth.Mechanism, password string, iterations int) error
	DeleteUserCredential(ctx context.Context, user string, m auth.Mechanism) error
	ListUsers(ctx context.Context) ([]auth.UserInfo, error)
	// CreateACLs stores ACLs; ListACLs and DeleteACLs list and delete
	// those a filter matches (acl_backend.go).
	CreateACLs(ctx context.Context, acls []auth.ACL) error
	ListACLs(ctx context.Context, f auth.Filter) ([]auth.ACL, error)
	DeleteACLs(ctx context.Context, f auth.Filter) ([]auth.ACL, error)
	Close() error
}

// backendFlags are the flags every data command shares.
type backendFlags struct {
	dataDir string
	broker  string
}

// dataDirVar registers --data-dir into p, as every command that opens the
// embedded log reads it: from the flag, else SLUICE_DATA_DIR, else ./data.
// usage says what the command keeps there.
func dataDirVar(c *cli, fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, "data-dir", envOr(c, "SLUICE_DATA_DIR", "./data"), usage+" (env SLUICE_DATA_DIR)")
}

func (b *backendFlags) register(c *cli, fs *flag.FlagSet) {
	dataDirVar(c, fs, &b.dataDir, "embedded log data directory")
	fs.StringVar(&b.broker, "broker", envOr(c, "SLUICE_BROKER", ""), "HOST:PORT of a Kafka-protocol server (sluice serve, Kafka, Redpanda) to use instead of --data-dir (env SLUICE_BROKER)")
}

// open opens the server of --broker, or else the data directory, which
// must exist: a command that reads or changes what is there never
// creates an empty data directory of a mistyped --data-dir.
func (b *backendFlags) open(ctx context.Context, c *cli) (backend, error) {
	if b.broker == "" {
		if _, err := os.Stat(b.dataDir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data directory %s does not exist: nothing was written there yet (a mistyped --data-dir? --broker HOST:PORT talks to a server instead; sluice topic create or sluice serve makes a data directory)", b.dataDir)
		}
	}
	return b.openOrCreate(ctx, c)
}

// openOrCreate is open for the commands that add something (topic
// create, user add, acl add): a data directory that does not exist yet
// is created.
func (b *backendFlags) openOrCreate(ctx context.Context, c *cli) (backend, error) {
	if b.broker != "" {
		return openRemote(ctx, b.broker)
	}
	return openLocal(ctx, c, b.dataDir)
}

func openLocal(ctx context.Context, c *cli, dir string) (*localBackend, error) {
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", dir, err)
	}
	b := &localBackend{log: l}
	// The remote tier of remote-enabled topics, as `sluice serve
	// --remote-storage` has it (docs/log.md), so that reads and describe
	// cover both tiers without a server.
	if url := envOr(c, "SLUICE_REMOTE_STORAGE", ""); url != "" {
		store, err := objstore.Open(objstore.Config{URL: url})
		if err == nil {
			b.tier, err = tier.Open(tier.Options{Store: store, Log: l, Logger: logger})
		}
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("remote storage %s (SLUICE_REMOTE_STORAGE): %w", url, err)
		}
	}
	return b, nil
}
