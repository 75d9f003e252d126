package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

func topicCommand() *command {
	return &command{
		name:    "topic",
		summary: "create, list, describe and delete topics",
		sub: []*command{
			{name: "create", summary: "create a topic", run: topicCreate},
			{name: "list", summary: "list topics with their partitions and offsets", run: topicList},
			{name: "describe", summary: "show a topic's partitions: earliest/latest offsets, size", run: topicDescribe},
			{name: "delete", summary: "delete a topic and its data", run: topicDelete},
		},
	}
}

func topicCreate(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice topic create", "NAME [--partitions N] [--retention 24h] [--fsync always|interval|never]")
	var bf backendFlags
	bf.register(c, fs)
	partitions := fs.Int("partitions", 1, "number of partitions")
	retention := fs.Duration("retention", 0, "delete whole segments older than this (0 keeps data forever)")
	fsync := fs.String("fsync", "", "durability policy: always (group commit), interval[:DURATION], never (default: the server's)")
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
	b, err := bf.open(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, pos[0], topicSpec{partitions: int32(*partitions), retention: *retention, fsync: *fsync}); err != nil {
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
	fmt.Fprintln(c.stdout)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tEARLIEST\tLATEST\tRECORDS\tSIZE")
	for _, p := range t.partitions {
		size := "-"
		if p.size >= 0 {
			size = humanBytes(p.size)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\n", p.partition, p.earliest, p.latest, p.latest-p.earliest, size)
	}
	return tw.Flush()
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
