package logstore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Topic configuration by Kafka's names: CreateTopics, DescribeConfigs,
// AlterConfigs and IncrementalAlterConfigs of the Kafka listener, and the
// CLI, all read and write a TopicConfig through this table, so a config
// means the same everywhere.

// ConfigType is the type of a config's value, as Kafka describes it.
type ConfigType int8

// Config types (the values of Kafka's DescribeConfigs config_type).
const (
	ConfigBoolean ConfigType = 1
	ConfigString  ConfigType = 2
	ConfigInt     ConfigType = 3
	ConfigLong    ConfigType = 5
	ConfigDouble  ConfigType = 6
	ConfigList    ConfigType = 7
)

// ConfigEntry is one topic config's effective value.
type ConfigEntry struct {
	Name      string
	Value     string
	IsDefault bool // not set on the topic: the value is the log's default
	ReadOnly  bool
	Type      ConfigType
	Doc       string
}

// ErrUnknownConfig: a config name the log does not know (Kafka:
// INVALID_CONFIG).
var ErrUnknownConfig = errors.New("unknown topic config")

// ErrInvalidConfig: a config value that does not parse or is out of range
// (Kafka: INVALID_CONFIG).
var ErrInvalidConfig = errors.New("invalid topic config value")

type topicConfigDef struct {
	name string
	typ  ConfigType
	doc  string
	// get returns the value and whether the topic sets it; l supplies the
	// log's defaults.
	get func(l *Log, c *TopicConfig) (string, bool)
	// set parses v into c; reset (v == nil) returns it to the default.
	set func(c *TopicConfig, v *string) error
	// readOnly configs are described, never set.
	readOnly bool
}

func parseMs(v string, min int64) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return 0, fmt.Errorf("%w: %q is not a whole number of milliseconds >= %d", ErrInvalidConfig, v, min)
	}
	if n > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64, nil
	}
	return time.Duration(n) * time.Millisecond, nil
}

func msString(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// timestampBoundDef is message.timestamp.before.max.ms or
// message.timestamp.after.max.ms: field points at the bound; nil (and
// Long.MAX_VALUE, Kafka's default) is no bound.
func timestampBoundDef(name, side string, field func(*TopicConfig) **time.Duration) topicConfigDef {
	return topicConfigDef{
		name: name, typ: ConfigLong,
		doc: "On a CreateTime topic, the longest a record's timestamp may be " + side + " the broker's clock; a batch with a record beyond is refused with INVALID_TIMESTAMP. 9223372036854775807: no bound.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if d := *field(c); d != nil {
				return msString(*d), true
			}
			return strconv.FormatInt(math.MaxInt64, 10), false
		},
		set: func(c *TopicConfig, v *string) error {
			f := field(c)
			*f = nil
			if v == nil {
				return nil
			}
			d, err := parseMs(*v, 0)
			if err == nil && d != math.MaxInt64 {
				*f = &d
			}
			return err
		},
	}
}

var topicConfigDefs = []topicConfigDef{
	{
		name: "cleanup.policy", typ: ConfigList,
		doc: "delete: remove whole segments past the retention limits; compact: keep the latest record of every key; compact,delete: both.",
		get: func(l *Log, c *TopicConfig) (string, bool) { return l.cleanupOf(*c).String(), c.Cleanup != 0 },
		set: func(c *TopicConfig, v *string) error {
			if v == nil {
				c.Cleanup = 0
				return nil
			}
			p, err := ParseCleanupPolicy(*v)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
			}
			c.Cleanup = p
			return nil
		},
	},
	{
		name: "retention.ms", typ: ConfigLong,
		doc: "Age after which whole segments are deleted (cleanup.policy delete); -1 keeps forever.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.Retention <= 0 {
				return "-1", false
			}
			return msString(c.Retention), true
		},
		set: func(c *TopicConfig, v *string) error {
			c.Retention = 0
			if v == nil || *v == "-1" {
				return nil
			}
			d, err := parseMs(*v, 1)
			c.Retention = d
			return err
		},
	},
	{
		name: "retention.bytes", typ: ConfigLong,
		doc: "Size per partition above which the oldest segments are deleted (cleanup.policy delete); -1 is unlimited.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.RetentionBytes <= 0 {
				return "-1", false
			}
			return strconv.FormatInt(c.RetentionBytes, 10), true
		},
		set: func(c *TopicConfig, v *string) error {
			c.RetentionBytes = 0
			if v == nil || *v == "-1" {
				return nil
			}
			n, err := strconv.ParseInt(*v, 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("%w: %q is not -1 or a positive number of bytes", ErrInvalidConfig, *v)
			}
			c.RetentionBytes = n
			return nil
		},
	},
	{
		name: "segment.bytes", typ: ConfigInt,
		doc: "Size at which the active segment is rolled (1 KiB to 2 GiB); takes effect at the next roll.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			return strconv.FormatInt(c.segmentBytes(), 10), c.SegmentBytes != 0
		},
		set: func(c *TopicConfig, v *string) error {
			c.SegmentBytes = 0
			if v == nil {
				return nil
			}
			n, err := strconv.ParseInt(*v, 10, 64)
			if err != nil || n < 1024 || n > maxSegmentBytes {
				return fmt.Errorf("%w: %q is not a segment size from 1024 to %d bytes", ErrInvalidConfig, *v, maxSegmentBytes)
			}
			c.SegmentBytes = n
			return nil
		},
	},
	{
		name: "segment.ms", typ: ConfigLong,
		doc: "Age of its first batch at which the active segment is rolled, so that compaction and retention reach quiet partitions.",
		get: func(_ *Log, c *TopicConfig) (string, bool) { return msString(c.segmentAge()), c.SegmentAge != 0 },
		set: func(c *TopicConfig, v *string) error {
			c.SegmentAge = 0
			if v == nil {
				return nil
			}
			d, err := parseMs(*v, 1)
			c.SegmentAge = d
			return err
		},
	},
	{
		name: "min.cleanable.dirty.ratio", typ: ConfigDouble,
		doc: "The cleaner compacts a partition once uncleaned bytes are at least this share of the cleanable bytes.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			r := c.minCleanableDirtyRatio()
			if r == math.SmallestNonzeroFloat64 {
				r = 0 // how set stores 0
			}
			return strconv.FormatFloat(r, 'g', -1, 64), c.MinCleanableDirtyRatio != 0
		},
		set: func(c *TopicConfig, v *string) error {
			c.MinCleanableDirtyRatio = 0
			if v == nil {
				return nil
			}
			f, err := strconv.ParseFloat(*v, 64)
			if err != nil || f < 0 || f > 1 {
				return fmt.Errorf("%w: %q is not a ratio from 0 to 1", ErrInvalidConfig, *v)
			}
			if f == 0 {
				f = math.SmallestNonzeroFloat64 // 0 is the default's marker: clean at any dirtiness
			}
			c.MinCleanableDirtyRatio = f
			return nil
		},
	},
	{
		name: "min.compaction.lag.ms", typ: ConfigLong,
		doc: "A record stays uncompacted at least this long.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			return msString(c.MinCompactionLag), c.MinCompactionLag != 0
		},
		set: func(c *TopicConfig, v *string) error {
			c.MinCompactionLag = 0
			if v == nil {
				return nil
			}
			d, err := parseMs(*v, 0)
			c.MinCompactionLag = d
			return err
		},
	},
	{
		name: "max.compaction.lag.ms", typ: ConfigLong,
		doc: "A record is compacted at the latest this long after it was written, whatever the dirty ratio.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.MaxCompactionLag == 0 {
				return strconv.FormatInt(math.MaxInt64, 10), false
			}
			return msString(c.MaxCompactionLag), true
		},
		set: func(c *TopicConfig, v *string) error {
			c.MaxCompactionLag = 0
			if v == nil {
				return nil
			}
			d, err := parseMs(*v, 1)
			if d == math.MaxInt64 {
				d = 0 // Long.MAX_VALUE: no limit
			}
			c.MaxCompactionLag = d
			return err
		},
	},
	{
		name: "delete.retention.ms", typ: ConfigLong,
		doc: "How long tombstones and transaction markers stay after the cleaner first passed them.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			return msString(c.deleteRetention()), c.DeleteRetention != nil
		},
		set: func(c *TopicConfig, v *string) error {
			c.DeleteRetention = nil
			if v == nil {
				return nil
			}
			d, err := parseMs(*v, 0)
			if err == nil {
				c.DeleteRetention = &d
			}
			return err
		},
	},
	{
		name: "max.message.bytes", typ: ConfigInt,
		doc: "Largest record batch (as the producer compressed it) a producer may append; larger ones are refused with MESSAGE_TOO_LARGE. Default: the segment size.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.MaxMessageBytes == 0 {
				return strconv.FormatInt(min(c.segmentBytes(), math.MaxInt32), 10), false
			}
			return strconv.FormatInt(int64(c.MaxMessageBytes), 10), true
		},
		set: func(c *TopicConfig, v *string) error {
			c.MaxMessageBytes = 0
			if v == nil {
				return nil
			}
			n, err := strconv.ParseInt(*v, 10, 32)
			if err != nil || n < 1 {
				return fmt.Errorf("%w: %q is not a positive number of bytes up to %d", ErrInvalidConfig, *v, math.MaxInt32)
			}
			c.MaxMessageBytes = int32(n)
			return nil
		},
	},
	{
		name: "message.timestamp.type", typ: ConfigString,
		doc: "CreateTime (the producer's) or LogAppendTime (the log's, on append).",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.LogAppendTime {
				return "LogAppendTime", true
			}
			return "CreateTime", false
		},
		set: func(c *TopicConfig, v *string) error {
			c.LogAppendTime = false
			switch {
			case v == nil || *v == "CreateTime":
			case *v == "LogAppendTime":
				c.LogAppendTime = true
			default:
				return fmt.Errorf("%w: %q is not CreateTime or LogAppendTime", ErrInvalidConfig, *v)
			}
			return nil
		},
	},
	timestampBoundDef("message.timestamp.before.max.ms", "before", func(c *TopicConfig) **time.Duration { return &c.TimestampBeforeMax }),
	timestampBoundDef("message.timestamp.after.max.ms", "after", func(c *TopicConfig) **time.Duration { return &c.TimestampAfterMax }),
	{
		name: "sluice.fsync", typ: ConfigString,
		doc: "Durability policy acknowledged writes wait for: always, interval[:DURATION], never.",
		get: func(l *Log, c *TopicConfig) (string, bool) {
			return c.Fsync.resolve(l.opts.DefaultFsync).String(), c.Fsync != (FsyncPolicy{})
		},
		set: func(c *TopicConfig, v *string) error {
			c.Fsync = FsyncPolicy{}
			if v == nil {
				return nil
			}
			p, err := ParseFsyncPolicy(*v)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
			}
			c.Fsync = p
			return nil
		},
	},
	{
		name: "remote.storage.enable", typ: ConfigBoolean,
		doc: "Keep closed segments in the server's remote storage (--remote-storage) too, and read them back from there once local retention removed them. Not with cleanup.policy compact; cannot be turned off.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			return strconv.FormatBool(c.RemoteStorage), c.RemoteStorage
		},
		set: func(c *TopicConfig, v *string) error {
			c.RemoteStorage = false
			if v == nil {
				return nil
			}
			b, err := strconv.ParseBool(*v)
			if err != nil {
				return fmt.Errorf("%w: %q is not true or false", ErrInvalidConfig, *v)
			}
			c.RemoteStorage = b
			return nil
		},
	},
	{
		name: "local.retention.ms", typ: ConfigLong,
		doc: "With remote storage: age after which uploaded segments leave the local disk (at most retention.ms); -2 means retention.ms.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.LocalRetention <= 0 {
				return "-2", false
			}
			return msString(c.LocalRetention), true
		},
		set: func(c *TopicConfig, v *string) error {
			c.LocalRetention = 0
			if v == nil || *v == "-2" {
				return nil
			}
			d, err := parseMs(*v, 1)
			c.LocalRetention = d
			return err
		},
	},
	{
		name: "local.retention.bytes", typ: ConfigLong,
		doc: "With remote storage: local size per partition above which the oldest uploaded segments leave the local disk (at most retention.bytes); -2 means retention.bytes.",
		get: func(_ *Log, c *TopicConfig) (string, bool) {
			if c.LocalRetentionBytes <= 0 {
				return "-2", false
			}
			return strconv.FormatInt(c.LocalRetentionBytes, 10), true
		},
		set: func(c *TopicConfig, v *string) error {
			c.LocalRetentionBytes = 0
			if v == nil || *v == "-2" {
				return nil
			}
			n, err := strconv.ParseInt(*v, 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("%w: %q is not -2 or a positive number of bytes", ErrInvalidConfig, *v)
			}
			c.LocalRetentionBytes = n
			return nil
		},
	},
	{
		name: "min.insync.replicas", typ: ConfigInt, readOnly: true,
		doc: "A single broker: always 1.",
		get: func(*Log, *TopicConfig) (string, bool) { return "1", false },
	},
}

// IsListConfig reports whether the named config holds a comma-separated
// list (IncrementalAlterConfigs may APPEND to and SUBTRACT from it).
func IsListConfig(name string) bool {
	for _, d := range topicConfigDefs {
		if d.name == name {
			return d.typ == ConfigList
		}
	}
	return false
}

// SetConfig sets the Kafka-named config to value, or back to its default
// when value is nil. Unknown names fail with ErrUnknownConfig, bad values
// and read-only configs with ErrInvalidConfig.
func (c *TopicConfig) SetConfig(name string, value *string) error {
	for _, d := range topicConfigDefs {
		if d.name != name {
			continue
		}
		if d.readOnly {
			if value != nil {
				if v, _ := d.get(nil, c); *value == v {
					return nil // setting it to what it is: harmless, as Kafka
				}
			}
			return fmt.Errorf("config %s: %w: it is read-only", name, ErrInvalidConfig)
		}
		if err := d.set(c, value); err != nil {
			return fmt.Errorf("config %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("config %s: %w", name, ErrUnknownConfig)
}

// ConfigEntries describes every config of cfg with its effective value
// under this log's defaults.
func (l *Log) ConfigEntries(cfg TopicConfig) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(topicConfigDefs))
	for _, d := range topicConfigDefs {
		v, set := d.get(l, &cfg)
		out = append(out, ConfigEntry{Name: d.name, Value: v, IsDefault: !set, ReadOnly: d.readOnly, Type: d.typ, Doc: d.doc})
	}
	return out
}
