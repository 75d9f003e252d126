package logstore

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FsyncMode says when appended data is forced to stable storage.
type FsyncMode int

const (
	// FsyncDefault (the zero value) stands for the server default in a TopicConfig.
	FsyncDefault FsyncMode = iota
	// FsyncAlways acknowledges an append only after an fsync covering it
	// (group commit: concurrent appends share one fsync). Acknowledged data
	// survives a process crash and a power loss.
	FsyncAlways
	// FsyncInterval acknowledges an append once it is written to the
	// operating system, and fsyncs every Interval. Acknowledged data survives
	// a process crash; a power loss may lose up to Interval of it.
	FsyncInterval
	// FsyncNever acknowledges an append once it is written to the operating
	// system and leaves flushing to the OS (and to segment rolls and Close).
	// Acknowledged data survives a process crash, not necessarily a power loss.
	FsyncNever
)

// DefaultFsyncInterval is the interval of "interval" without a duration.
const DefaultFsyncInterval = 50 * time.Millisecond

// FsyncPolicy is a durability policy: a mode and, for FsyncInterval, the period.
type FsyncPolicy struct {
	Mode     FsyncMode
	Interval time.Duration // FsyncInterval only; 0 means DefaultFsyncInterval
}

// String renders the policy as ParseFsyncPolicy accepts it.
func (p FsyncPolicy) String() string {
	switch p.Mode {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		if p.Interval == 0 {
			return "interval"
		}
		return "interval:" + p.Interval.String()
	case FsyncNever:
		return "never"
	default:
		return "default"
	}
}

// ParseFsyncPolicy parses "always", "interval", "interval:50ms" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch {
	case s == "always":
		return FsyncPolicy{Mode: FsyncAlways}, nil
	case s == "never":
		return FsyncPolicy{Mode: FsyncNever}, nil
	case s == "interval":
		return FsyncPolicy{Mode: FsyncInterval, Interval: DefaultFsyncInterval}, nil
	case strings.HasPrefix(s, "interval:"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "interval:"))
		if err != nil || d <= 0 {
			return FsyncPolicy{}, fmt.Errorf("fsync policy %q: want a positive duration after \"interval:\"", s)
		}
		return FsyncPolicy{Mode: FsyncInterval, Interval: d}, nil
	}
	return FsyncPolicy{}, fmt.Errorf("fsync policy %q: want always, interval, interval:DURATION or never", s)
}

// MarshalText implements encoding.TextMarshaler (used in topic.json).
func (p FsyncPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *FsyncPolicy) UnmarshalText(b []byte) error {
	if string(b) == "default" || len(b) == 0 {
		*p = FsyncPolicy{}
		return nil
	}
	q, err := ParseFsyncPolicy(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

func (p FsyncPolicy) resolve(def FsyncPolicy) FsyncPolicy {
	if p.Mode == FsyncDefault {
		p = def
	}
	if p.Mode == FsyncDefault {
		p.Mode = FsyncAlways
	}
	if p.Mode == FsyncInterval && p.Interval <= 0 {
		p.Interval = DefaultFsyncInterval
	}
	return p
}

// DefaultSegmentBytes is the segment size used when TopicConfig.SegmentBytes is 0.
const DefaultSegmentBytes = 128 << 20

// maxSegmentBytes keeps every position in a segment within the uint32 of the offset index.
const maxSegmentBytes = 1 << 31

// CleanupPolicy says what becomes of old data (Kafka's cleanup.policy):
// deletion by retention, compaction to the latest record of each key, or
// both. The zero value stands for the log's default (Options.DefaultCleanup).
type CleanupPolicy uint8

const (
	// CleanupDelete deletes whole segments past the retention limits.
	CleanupDelete CleanupPolicy = 1 << iota
	// CleanupCompact keeps, in the closed segments, only the latest record
	// of each key (see cleaner.go).
	CleanupCompact
)

// Compact reports whether the policy compacts.
func (c CleanupPolicy) Compact() bool { return c&CleanupCompact != 0 }

// Delete reports whether the policy deletes by retention.
func (c CleanupPolicy) Delete() bool { return c&CleanupDelete != 0 }

// String renders the policy as Kafka's cleanup.policy does.
func (c CleanupPolicy) String() string {
	switch c {
	case CleanupDelete:
		return "delete"
	case CleanupCompact:
		return "compact"
	case CleanupCompact | CleanupDelete:
		return "compact,delete"
	case 0:
		return "default"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(c))
}

// ParseCleanupPolicy parses Kafka's cleanup.policy: "delete", "compact",
// or both separated by a comma, in either order.
func ParseCleanupPolicy(s string) (CleanupPolicy, error) {
	var c CleanupPolicy
	for _, part := range strings.Split(s, ",") {
		switch strings.TrimSpace(part) {
		case "delete":
			c |= CleanupDelete
		case "compact":
			c |= CleanupCompact
		default:
			return 0, fmt.Errorf("cleanup policy %q: want delete, compact or compact,delete", s)
		}
	}
	return c, nil
}

// MarshalText implements encoding.TextMarshaler (used in topic.json).
func (c CleanupPolicy) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *CleanupPolicy) UnmarshalText(b []byte) error {
	if string(b) == "default" || len(b) == 0 {
		*c = 0
		return nil
	}
	p, err := ParseCleanupPolicy(string(b))
	if err != nil {
		return err
	}
	*c = p
	return nil
}

// Defaults of the compaction settings, as Kafka's.
const (
	DefaultMinCleanableDirtyRatio = 0.5
	DefaultDeleteRetention        = 24 * time.Hour
	DefaultSegmentAge             = 7 * 24 * time.Hour
)

// TopicConfig is a topic's configuration, persisted in its directory.
type TopicConfig struct {
	Partitions     int32
	Fsync          FsyncPolicy   // zero value = the log's default (Options.DefaultFsync)
	Retention      time.Duration // delete segments whose newest record is older; 0 = keep forever
	RetentionBytes int64         // per partition: delete oldest segments beyond this size; 0 = unlimited
	SegmentBytes   int64         // roll segments at this size; 0 = DefaultSegmentBytes
	LogAppendTime  bool          // the log stamps record timestamps on append (Kafka's LogAppendTime)

	// Cleanup is the cleanup policy; zero = the log's default
	// (Options.DefaultCleanup, itself delete unless set). Retention and
	// RetentionBytes apply only when it includes delete.
	Cleanup CleanupPolicy `json:",omitempty"`
	// MinCleanableDirtyRatio: the cleaner compacts a partition once its
	// uncleaned bytes are at least this fraction of the cleanable bytes
	// (min.cleanable.dirty.ratio); 0 = DefaultMinCleanableDirtyRatio.
	MinCleanableDirtyRatio float64 `json:",omitempty"`
	// MinCompactionLag: a record stays uncompacted at least this long after
	// it was appended (min.compaction.lag.ms; by the segment's largest
	// timestamp, as Kafka); 0 = no lag.
	MinCompactionLag time.Duration `json:",omitempty"`
	// MaxCompactionLag: a segment whose oldest record is older than this is
	// compacted whatever the dirty ratio (max.compaction.lag.ms); 0 = no
	// limit.
	MaxCompactionLag time.Duration `json:",omitempty"`
	// DeleteRetention is how long tombstones and transaction markers stay
	// after the cleaner first passed over them (delete.retention.ms); nil =
	// DefaultDeleteRetention.
	DeleteRetention *time.Duration `json:",omitempty"`
	// TimestampBeforeMax and TimestampAfterMax bound how far before and
	// after the broker's clock a producer's record timestamp may be on a
	// CreateTime topic (message.timestamp.before.max.ms and
	// message.timestamp.after.max.ms, KIP-937); the Kafka listener
	// refuses a batch with a record outside with INVALID_TIMESTAMP. nil =
	// no bound (Kafka's default, Long.MAX_VALUE).
	TimestampBeforeMax *time.Duration `json:",omitempty"`
	TimestampAfterMax  *time.Duration `json:",omitempty"`
	// SegmentAge rolls the active segment once its first batch is this old
	// (segment.ms), so that compaction and retention reach quiet
	// partitions; 0 = DefaultSegmentAge.
	SegmentAge time.Duration `json:",omitempty"`

	// MaxMessageBytes bounds the size of a record batch producers may
	// append (max.message.bytes; larger ones fail with ErrBatchTooLarge);
	// 0 = the segment size, which bounds every batch anyway.
	MaxMessageBytes int32 `json:",omitempty"`

	// RemoteStorage keeps the topic's closed segments in the remote tier
	// (remote.storage.enable; see remote.go). It needs a log with a remote
	// tier and a cleanup policy without compact, and cannot be turned off.
	RemoteStorage bool `json:",omitempty"`
	// LocalRetention is how long segments stay on the local disk once
	// uploaded (local.retention.ms); 0 = Retention (Kafka's -2). At most
	// Retention.
	LocalRetention time.Duration `json:",omitempty"`
	// LocalRetentionBytes bounds the local size per partition of uploaded
	// segments (local.retention.bytes); 0 = RetentionBytes (Kafka's -2).
	// At most RetentionBytes.
	LocalRetentionBytes int64 `json:",omitempty"`
	// RemoteID names the topic's data in the remote tier; the log assigns
	// it when remote storage is first enabled, so that a topic deleted and
	// created again under the same name never meets the old one's remote
	// segments. It is not a Kafka config and survives every change.
	RemoteID string `json:",omitempty"`
	// ID is the topic's id (Kafka's topic id). CreateTopic gives every new
	// topic a random one, whatever the config passed says; it is not a
	// Kafka config and survives every change.
	ID TopicID `json:",omitzero"`
}

// localRetention is the effective local.retention.ms (0: keep forever).
func (c TopicConfig) localRetention() time.Duration {
	if c.LocalRetention > 0 {
		return c.LocalRetention
	}
	return c.Retention
}

// localRetentionBytes is the effective local.retention.bytes (0: unlimited).
func (c TopicConfig) localRetentionBytes() int64 {
	if c.LocalRetentionBytes > 0 {
		return c.LocalRetentionBytes
	}
	return c.RetentionBytes
}

// LocalRetentionOrDefault is the effective local.retention.ms (0: forever).
func (c TopicConfig) LocalRetentionOrDefault() time.Duration { return c.localRetention() }

// LocalRetentionBytesOrDefault is the effective local.retention.bytes (0:
// unlimited).
func (c TopicConfig) LocalRetentionBytesOrDefault() int64 { return c.localRetentionBytes() }

// deleteRetention is the effective delete.retention.ms.
func (c TopicConfig) deleteRetention() time.Duration {
	if c.DeleteRetention == nil {
		return DefaultDeleteRetention
	}
	return *c.DeleteRetention
}

// DeleteRetentionOrDefault is the effective delete.retention.ms.
func (c TopicConfig) DeleteRetentionOrDefault() time.Duration { return c.deleteRetention() }

func (c TopicConfig) minCleanableDirtyRatio() float64 {
	if c.MinCleanableDirtyRatio == 0 {
		return DefaultMinCleanableDirtyRatio
	}
	return c.MinCleanableDirtyRatio
}

// MinCleanableDirtyRatioOrDefault is the effective min.cleanable.dirty.ratio.
func (c TopicConfig) MinCleanableDirtyRatioOrDefault() float64 { return c.minCleanableDirtyRatio() }

func (c TopicConfig) segmentAge() time.Duration {
	if c.SegmentAge == 0 {
		return DefaultSegmentAge
	}
	return c.SegmentAge
}

// SegmentAgeOrDefault is the effective segment.ms.
func (c TopicConfig) SegmentAgeOrDefault() time.Duration { return c.segmentAge() }

// SegmentBytesOrDefault is the effective segment.bytes.
func (c TopicConfig) SegmentBytesOrDefault() int64 { return c.segmentBytes() }

func (c TopicConfig) validate() error {
	if c.Partitions < 1 || c.Partitions > 1<<16 {
		return fmt.Errorf("%w: %d partitions, want 1..65536", ErrInvalidTopic, c.Partitions)
	}
	if c.Retention < 0 || c.RetentionBytes < 0 || c.SegmentBytes < 0 {
		return fmt.Errorf("%w: negative retention or segment size", ErrInvalidTopic)
	}
	if c.Cleanup > CleanupDelete|CleanupCompact {
		return fmt.Errorf("%w: unknown cleanup policy %d", ErrInvalidTopic, c.Cleanup)
	}
	if c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 {
		return fmt.Errorf("%w: min.cleanable.dirty.ratio %v, want 0..1", ErrInvalidTopic, c.MinCleanableDirtyRatio)
	}
	if c.MinCompactionLag < 0 || c.MaxCompactionLag < 0 || c.SegmentAge < 0 || (c.DeleteRetention != nil && *c.DeleteRetention < 0) ||
		(c.TimestampBeforeMax != nil && *c.TimestampBeforeMax < 0) || (c.TimestampAfterMax != nil && *c.TimestampAfterMax < 0) {
		return fmt.Errorf("%w: negative compaction lag, segment age, delete retention or timestamp bound", ErrInvalidTopic)
	}
	if c.MaxCompactionLag > 0 && c.MaxCompactionLag < c.MinCompactionLag {
		return fmt.Errorf("%w: max.compaction.lag.ms %v is below min.compaction.lag.ms %v", ErrInvalidTopic, c.MaxCompactionLag, c.MinCompactionLag)
	}
	if c.SegmentBytes != 0 && (c.SegmentBytes < 1024 || c.SegmentBytes > maxSegmentBytes) {
		return fmt.Errorf("%w: segment size %d, want 1KiB..2GiB", ErrInvalidTopic, c.SegmentBytes)
	}
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("%w: negative max.message.bytes", ErrInvalidTopic)
	}
	if c.LocalRetention < 0 || c.LocalRetentionBytes < 0 {
		return fmt.Errorf("%w: negative local retention", ErrInvalidTopic)
	}
	if c.LocalRetention > 0 && c.Retention > 0 && c.LocalRetention > c.Retention {
		return fmt.Errorf("%w: local.retention.ms %v is above retention.ms %v (the total retention, local and remote)", ErrInvalidTopic, c.LocalRetention, c.Retention)
	}
	if c.LocalRetentionBytes > 0 && c.RetentionBytes > 0 && c.LocalRetentionBytes > c.RetentionBytes {
		return fmt.Errorf("%w: local.retention.bytes %d is above retention.bytes %d (the total retention, local and remote)", ErrInvalidTopic, c.LocalRetentionBytes, c.RetentionBytes)
	}
	if c.Fsync.Mode < FsyncDefault || c.Fsync.Mode > FsyncNever {
		return fmt.Errorf("%w: unknown fsync mode %d", ErrInvalidTopic, c.Fsync.Mode)
	}
	return nil
}

// maxBatchBytes is the largest batch producers may append: the segment
// size, or max.message.bytes when that is smaller.
func (c TopicConfig) maxBatchBytes() int64 {
	if c.MaxMessageBytes > 0 {
		return min(int64(c.MaxMessageBytes), c.segmentBytes())
	}
	return c.segmentBytes()
}

func (c TopicConfig) segmentBytes() int64 {
	if c.SegmentBytes == 0 {
		return DefaultSegmentBytes
	}
	return c.SegmentBytes
}

// ValidTopicName reports whether name follows Kafka's rules: 1 to 249
// characters of [a-zA-Z0-9._-], and neither "." nor "..".
func ValidTopicName(name string) error {
	if name == "" || len(name) > 249 {
		return fmt.Errorf("%w: name %q must have 1 to 249 characters", ErrInvalidTopic, name)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: name %q is reserved", ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q has character %q; allowed are a-z A-Z 0-9 . _ -", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// Options configure Open.
type Options struct {
	Dir               string       // data directory (created if missing)
	DefaultFsync      FsyncPolicy  // policy of topics that do not set one; zero value = FsyncAlways
	DefaultPartitions int32        // for auto-created topics; 0 = 1
	Logger            *slog.Logger // nil = slog.Default()
	FS                FS           // file-system seam for fault injection; nil = OSFS
	// RetentionCheckInterval is how often retention runs in the background;
	// 0 = 1 minute, negative = never (call EnforceRetention yourself).
	RetentionCheckInterval time.Duration
	// IndexIntervalBytes is the number of log bytes between two entries of
	// the sparse offset index; 0 = 4096.
	IndexIntervalBytes int
	// Registerer, when set, receives the log's Prometheus metrics
	// (sluice_log_*: per-partition offsets, sizes and append counters read
	// at scrape time, and group-commit duration and size histograms).
	Registerer prometheus.Registerer
	// DefaultCleanup is the cleanup policy of topics that do not set one;
	// zero = CleanupDelete.
	DefaultCleanup CleanupPolicy
	// Cleaner configures the log cleaner that compacts topics whose policy
	// includes compact (see cleaner.go).
	Cleaner CleanerOptions
	// RepairCorruption makes Open truncate a partition at corruption that is
	// followed by valid data (losing that data, with an error log line)
	// instead of failing with a CorruptionError.
	RepairCorruption bool
	// PageCacheWindow is how many of the most recently synced bytes of a
	// partition stay in the page cache after a commit's fdatasync; the
	// synced bytes before them are dropped from it (posix_fadvise
	// DONTNEED, Linux only): the active segment's, and the sealed segments
	// wholly behind the window, whole, once each. The log cleaner drops
	// what it reads and writes behind the window too. So new writes reuse
	// recently freed pages instead of claiming fresh ones, which on a
	// virtual machine costs several times the copy itself (see
	// docs/benchmarks-kafka.md, docs/benchmarks-compaction.md). Readers
	// within the window (consumers at the tail) read from the cache; older
	// data is read from the disk.
	// 0 = 64 MiB; negative = never drop (the kernel decides).
	PageCacheWindow int64
	// SegmentPrefill is how far beyond the append position the active
	// segment of an FsyncAlways partition is kept written with zeros (and
	// synced), so that a commit's fdatasync overwrites allocated blocks
	// and need not write the file's metadata (prefill.go). The
	// tail is topped up in the background, after commits of at most
	// 64 KiB only, so
	// throughput-bound partitions write no zeros; a sealed or closed
	// segment is cut back to its data. 0 = 1 MiB; negative = off.
	SegmentPrefill int64
}

// AppendResult describes an acknowledged append.
type AppendResult struct {
	BaseOffset    int64 // offset of the batch's first record
	LastOffset    int64 // offset of the batch's last record
	LogAppendTime int64 // the log's timestamp (epoch ms) when the topic uses LogAppendTime, else -1
	Duplicate     bool  // a retried idempotent batch: nothing was written, offsets are the original ones
}

// ReadResult is the answer to Read.
type ReadResult struct {
	Batches        []byte // whole batches, raw, starting with the batch containing the offset
	HighWatermark  int64  // next offset to be written that readers may see
	LastStable     int64  // first offset of the oldest open transaction, or HighWatermark
	LogStartOffset int64  // earliest offset still stored
}

// AbortedTxn is an aborted transaction's range in a partition (for
// read_committed fetches).
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// PartitionStats is a snapshot of a partition's size and counters.
type PartitionStats struct {
	Topic           string
	Partition       int32
	Segments        int
	Bytes           int64 // bytes of all segments (visible data)
	LogStartOffset  int64 // of both tiers (remote storage)
	LocalLogStart   int64 // first offset on the local disk
	HighWatermark   int64
	LastStable      int64
	AppendedBatches int64 // since Open
	AppendedRecords int64 // since Open
	AppendedBytes   int64 // since Open
	Syncs           int64 // fsyncs since Open (group commits)
	// RetentionBlockedBytes is what local retention would delete but keeps
	// because it is not yet in remote storage (the store is down or behind).
	RetentionBlockedBytes int64
	Cleaner               CleanerStats
}
