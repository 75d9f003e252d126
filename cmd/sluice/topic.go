package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

func topicCommand() *command {
	return &command{
		name:    "topic",
		summary: "create, list, describe, alter and delete topics",
		sub: []*command{
			{name: "create", summary: "create a topic", run: topicCreate},
			{name: "list", summary: "list topics with their partitions and offsets", run: topicList},
			{name: "describe", summary: "show a topic's configs and partitions: offsets, size, compaction progress", run: topicDescribe},
			{name: "alter", summary: "change a topic's configs (Kafka names) without a restart", run: topicAlter},
			{name: "add-partitions", summary: "grow a topic to more partitions", run: topicAddPartitions},
			{name: "delete-records", summary: "delete a partition's records below an offset", run: topicDeleteRecords},
			{name: "delete", summary: "delete a topic and its data", run: topicDelete},
		},
	}
}

func topicCreate(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic create", "NAME [--partitions N] [--retention 24h] [--fsync always|interval|never] [--cleanup-policy delete|compact|compact,delete] [--segment-bytes SIZE] [--remote [--local-retention 1h] [--local-retention-bytes SIZE]] [--config KEY=VALUE ...]")
	var bf backendFlags
	bf.register(c, fs)
	partitions := fs.Int("partitions", 1, "number of partitions")
	retention := durationFlag(fs, "retention", 0, "delete whole segments older than this (0 keeps data forever)")
	fsync := fs.String("fsync", "", "durability policy: always (group commit), interval[:DURATION], never (default: the server's)")
	cleanup := fs.String("cleanup-policy", "", "delete (retention), compact (keep each key's latest record; every record needs a key) or compact,delete (default: the server's, delete)")
	var segBytes byteSize
	sizeVar(fs, &segBytes, "segment-bytes", "roll segments at this size, like 64MiB (segment.bytes; default: 128MiB)")
	remote := fs.Bool("remote", false, "keep closed segments in the server's remote storage too (remote.storage.enable; the server needs --remote-storage)")
	localRet := durationFlag(fs, "local-retention", 0, "with --remote: keep uploaded segments on the local disk this long (local.retention.ms; default: --retention)")
	var localRetBytes byteSize
	sizeVar(fs, &localRetBytes, "local-retention-bytes", "with --remote: local size per partition, like 1GiB, above which uploaded segments leave the local disk (local.retention.bytes; default: retention.bytes)")
	var configs configFlag
	fs.Var(&configs, "config", "topic config by its Kafka name, KEY=VALUE (repeatable): cleanup.policy, retention.ms, retention.bytes, segment.bytes, segment.ms, min.cleanable.dirty.ratio, min.compaction.lag.ms, max.compaction.lag.ms, delete.retention.ms, message.timestamp.type, message.timestamp.before.max.ms, message.timestamp.after.max.ms, max.message.bytes, sluice.fsync, remote.storage.enable, local.retention.ms, local.retention.bytes")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := oneTopicName(pos); err != nil {
		return err
	}
	if *partitions < 1 || *partitions > 10000 {
		return usagef("--partitions must be between 1 and 10000, got %d", *partitions)
	}
	if *retention < 0 {
		return usagef("--retention must not be negative")
	}
	if *fsync != "" {
		if _, err := logstore.ParseFsyncPolicy(*fsync); err != nil {
			return usagef("--fsync: %v", err)
		}
	}
	spec := topicSpec{partitions: int32(*partitions), retention: *retention, fsync: *fsync}
	if *cleanup != "" {
		if _, err := logstore.ParseCleanupPolicy(*cleanup); err != nil {
			return usagef("--cleanup-policy: %v", err)
		}
		if configs.has("cleanup.policy") {
			return usagef("give the cleanup policy once: --cleanup-policy or --config cleanup.policy=..., not both")
		}
		spec.configs = append(spec.configs, [2]string{"cleanup.policy", *cleanup})
	}
	for _, f := range []struct {
		set       bool
		flag, key string
		value     string
	}{
		{segBytes != 0, "--segment-bytes", "segment.bytes", strconv.FormatInt(int64(segBytes), 10)},
		{*remote, "--remote", "remote.storage.enable", "true"},
		{*localRet != 0, "--local-retention", "local.retention.ms", strconv.FormatInt(localRet.Milliseconds(), 10)},
		{localRetBytes != 0, "--local-retention-bytes", "local.retention.bytes", strconv.FormatInt(int64(localRetBytes), 10)},
	} {
		if !f.set {
			continue
		}
		if configs.has(f.key) {
			return usagef("give %s once: %s or --config %s=..., not both", f.key, f.flag, f.key)
		}
		spec.configs = append(spec.configs, [2]string{f.key, f.value})
	}
	if (*localRet != 0 || localRetBytes != 0) && !*remote && !configs.has("remote.storage.enable") {
		return usagef("--local-retention and --local-retention-bytes apply to topics with --remote")
	}
	if *localRet < 0 {
		return usagef("--local-retention must not be negative")
	}
	if *retention > 0 && *localRet > *retention {
		return usagef("--local-retention %v is longer than --retention %v (the total, local and remote)", *localRet, *retention)
	}
	spec.configs = append(spec.configs, configs...)
	b, err := bf.openOrCreate(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, pos[0], spec); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created topic %s with %d partitions\n", pos[0], *partitions)
	return nil
}

func topicList(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic list", "[--internal]")
	var bf backendFlags
	bf.register(c, fs)
	internal := fs.Bool("internal", false, "include internal topics (names starting with __)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	topics, err := b.ListTopics(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS")
	for _, t := range topics {
		if strings.HasPrefix(t.name, "__") && !*internal {
			continue
		}
		var n int64
		for _, p := range t.partitions {
			n += p.latest - p.earliest
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", t.name, len(t.partitions), n)
	}
	return tw.Flush()
}

func topicDescribe(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic describe", "NAME")
	var bf backendFlags
	bf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := oneTopicName(pos); err != nil {
		return err
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	t, err := b.DescribeTopic(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "topic: %s\npartitions: %d\n", t.name, len(t.partitions))
	keys := make([]string, 0, len(t.config))
	for k := range t.config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(c.stdout, "%s: %s\n", k, t.config[k])
	}
	if t.cleanup != "" {
		fmt.Fprintf(c.stdout, "cleanup.policy: %s\n", t.cleanup)
	}
	if len(t.overrides) > 0 {
		fmt.Fprintln(c.stdout, "configs set on the topic:")
		for _, kv := range t.overrides {
			fmt.Fprintf(c.stdout, "  %s=%s\n", kv[0], kv[1])
		}
	}
	fmt.Fprintln(c.stdout)
	return printPartitions(c, t.partitions)
}

// printPartitions prints the partition table of `topic describe`, with the
// cleaner's progress when it is known.
func printPartitions(c *cli, parts []partitionInfo) error {
	cleaner, remote := false, false
	for _, p := range parts {
		cleaner = cleaner || p.cleaner != nil
		remote = remote || p.remote
	}
	if remote {
		return printTieredPartitions(c, parts)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	head := "PARTITION\tEARLIEST\tLATEST\tRECORDS\tSIZE"
	if cleaner {
		head += "\tFIRST-DIRTY\tDIRTY-RATIO\tPASSES\tLAST-PASS"
	}
	fmt.Fprintln(tw, head)
	for _, p := range parts {
		size := "-"
		if p.size >= 0 {
			size = humanBytes(p.size)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s", p.partition, p.earliest, p.latest, p.latest-p.earliest, size)
		if cs := p.cleaner; cs != nil {
			last := "never"
			if !cs.LastPass.IsZero() {
				last = cs.LastPass.UTC().Format(time.RFC3339)
			}
			if cs.LastError != "" {
				last += " (failed: " + cs.LastError + ")"
			}
			fmt.Fprintf(tw, "\t%d\t%.2f\t%d\t%s", cs.FirstDirty, cs.DirtyRatio, cs.Passes, last)
		} else if cleaner {
			fmt.Fprint(tw, "\t-\t-\t-\t-")
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printTieredPartitions prints the partition table of a topic with remote
// storage: the range of each tier and its size. The remote range is
// [EARLIEST, LOCAL-START), the local one [LOCAL-START, LATEST) (the tiers
// may overlap: uploaded segments stay local until local retention).
func printTieredPartitions(c *cli, parts []partitionInfo) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tEARLIEST\tLOCAL-START\tLATEST\tRECORDS\tLOCAL-SIZE\tREMOTE-SIZE\tREMOTE-SEGMENTS")
	unknown := func(n int64, f func(int64) string) string {
		if n < 0 {
			return "-"
		}
		return f(n)
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, p := range parts {
		segs := "-"
		if p.remoteSize >= 0 {
			segs = strconv.Itoa(p.remoteSegments)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", p.partition, p.earliest, unknown(p.localStart, num), p.latest, p.latest-p.earliest,
			unknown(p.size, humanBytes), unknown(p.remoteSize, humanBytes), segs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(parts) > 0 && parts[0].remoteSize < 0 {
		fmt.Fprintln(c.stdout, "(remote sizes: the server's sluice_tier_remote_bytes metric, or this command on the data directory with SLUICE_REMOTE_STORAGE set)")
	}
	return nil
}

func topicAlter(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic alter", "NAME [--config KEY=VALUE ...] [--delete-config KEY ...]")
	var bf backendFlags
	bf.register(c, fs)
	var set configFlag
	var del listFlag
	fs.Var(&set, "config", "set a topic config by its Kafka name, KEY=VALUE (repeatable); see 'sluice topic create --help'")
	fs.Var(&del, "delete-config", "return a config to its default (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := oneTopicName(pos); err != nil {
		return err
	}
	if len(set) == 0 && len(del) == 0 {
		return usagef("nothing to change: give --config KEY=VALUE or --delete-config KEY")
	}
	for _, k := range del {
		if set.has(k) {
			return usagef("config %s is both set and deleted", k)
		}
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.AlterTopicConfig(ctx, pos[0], set, del); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "altered topic %s\n", pos[0])
	return nil
}

func topicAddPartitions(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic add-partitions", "NAME --partitions N")
	var bf backendFlags
	bf.register(c, fs)
	partitions := fs.Int("partitions", 0, "the new total number of partitions (more than the topic has)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := oneTopicName(pos); err != nil {
		return err
	}
	if *partitions < 1 || *partitions > 10000 {
		return usagef("--partitions (the new total) must be between 1 and 10000, got %d", *partitions)
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.AddPartitions(ctx, pos[0], int32(*partitions)); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "topic %s now has %d partitions\n", pos[0], *partitions)
	return nil
}

func topicDeleteRecords(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic delete-records", "NAME --partition P --before OFFSET")
	var bf backendFlags
	bf.register(c, fs)
	var partition, before optionalInt
	fs.Var(&partition, "partition", "the `PARTITION` (required)")
	fs.Var(&before, "before", "delete the records below this `OFFSET` (required); -1 deletes every record written so far (the high watermark)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := oneTopicName(pos); err != nil {
		return err
	}
	if !partition.set || partition.v < 0 || partition.v > 1<<31-1 {
		return usagef("--partition is required (0 or more)")
	}
	if !before.set || before.v < -1 {
		return usagef("--before is required: an offset, or -1 for the high watermark")
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	start, err := b.DeleteRecords(ctx, pos[0], int32(partition.v), before.v)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "partition %d of %s now starts at offset %d\n", partition.v, pos[0], start)
	return nil
}

// configFlag collects repeated --config KEY=VALUE flags in order.
type configFlag [][2]string

func (f *configFlag) String() string { return "" }

func (f *configFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	if f.has(k) {
		return fmt.Errorf("config %s given twice", k)
	}
	*f = append(*f, [2]string{k, val})
	return nil
}

func (f configFlag) has(k string) bool {
	for _, kv := range f {
		if kv[0] == k {
			return true
		}
	}
	return false
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

func (f *listFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*f = append(*f, v)
	return nil
}

func topicDelete(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic delete", "NAME")
	var bf backendFlags
	bf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := oneTopicName(pos); err != nil {
		return err
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.DeleteTopic(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted topic %s\n", pos[0])
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// oneTopicName checks that the positional arguments are exactly one topic
// NAME.
func oneTopicName(pos []string) error {
	if len(pos) != 1 {
		return usagef("want exactly one topic NAME, got %d arguments", len(pos))
	}
	return nil
}

// optionalInt is an integer flag whose unset state is not a number: its
// --help shows no default (a sentinel like -2 would read as one), and the
// command asks set.
type optionalInt struct {
	v   int64
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatInt(o.v, 10)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return errors.New("not a whole number")
	}
	o.v, o.set = v, true
	return nil
}
