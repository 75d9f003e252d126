package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// remoteBackend runs the data commands against a Kafka-protocol server
// through franz-go, so the same commands work on `sluice serve`, Kafka and
// Redpanda.
type remoteBackend struct {
	broker string
	cl     *kgo.Client
	adm    *kadm.Client
}

func openRemote(_ context.Context, broker string) (*remoteBackend, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", broker, err)
	}
	return &remoteBackend{broker: broker, cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (b *remoteBackend) Close() error { b.cl.Close(); return nil }

func (b *remoteBackend) CreateTopic(ctx context.Context, name string, spec topicSpec) error {
	cfg := map[string]*string{}
	if spec.retention > 0 {
		ms := strconv.FormatInt(spec.retention.Milliseconds(), 10)
		cfg["retention.ms"] = &ms
	}
	if spec.fsync != "" {
		f := spec.fsync
		cfg["sluice.fsync"] = &f
	}
	for _, kv := range spec.configs {
		v := kv[1]
		cfg[kv[0]] = &v
	}
	resps, err := b.adm.CreateTopics(ctx, spec.partitions, -1, cfg, name)
	if err != nil {
		return fmt.Errorf("create topic %s on %s: %w", name, b.broker, err)
	}
	res, ok := resps[name]
	if !ok {
		return fmt.Errorf("create topic %s on %s: no answer for the topic", name, b.broker)
	}
	if err := withMessage(res.Err, res.ErrMessage); err != nil {
		return fmt.Errorf("create topic %s on %s: %w", name, b.broker, err)
	}
	return nil
}

// withMessage adds a server's error message to its error code's.
func withMessage(err error, msg string) error {
	if err == nil || msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

func (b *remoteBackend) AlterTopicConfig(ctx context.Context, name string, set [][2]string, del []string) error {
	var cfgs []kadm.AlterConfig
	for _, kv := range set {
		v := kv[1]
		cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: &v})
	}
	for _, k := range del {
		cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := b.adm.AlterTopicConfigs(ctx, cfgs, name)
	if err != nil {
		return fmt.Errorf("alter topic %s on %s: %w", name, b.broker, err)
	}
	for _, r := range resps {
		if err := withMessage(r.Err, r.ErrMessage); err != nil {
			return fmt.Errorf("alter topic %s on %s: %w", name, b.broker, err)
		}
	}
	return nil
}

func (b *remoteBackend) AddPartitions(ctx context.Context, name string, total int32) error {
	resps, err := b.adm.UpdatePartitions(ctx, int(total), name)
	if err != nil {
		return fmt.Errorf("add partitions to %s on %s: %w", name, b.broker, err)
	}
	r, ok := resps[name]
	if !ok {
		return fmt.Errorf("add partitions to %s on %s: no answer for the topic", name, b.broker)
	}
	if err := withMessage(r.Err, r.ErrMessage); err != nil {
		return fmt.Errorf("add partitions to %s on %s: %w", name, b.broker, err)
	}
	return nil
}

func (b *remoteBackend) DeleteRecords(ctx context.Context, name string, partition int32, before int64) (int64, error) {
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: name, Partition: partition, At: before, LeaderEpoch: -1})
	resps, err := b.adm.DeleteRecords(ctx, os)
	if err != nil {
		return 0, fmt.Errorf("delete records of %s/%d on %s: %w", name, partition, b.broker, err)
	}
	r, ok := resps.Lookup(name, partition)
	if !ok {
		return 0, fmt.Errorf("delete records of %s/%d on %s: no answer for the partition", name, partition, b.broker)
	}
	if r.Err != nil {
		return 0, fmt.Errorf("delete records of %s/%d on %s: %w", name, partition, b.broker, r.Err)
	}
	return r.LowWatermark, nil
}

func (b *remoteBackend) DeleteTopic(ctx context.Context, name string) error {
	res, err := b.adm.DeleteTopic(ctx, name)
	if err != nil {
		return fmt.Errorf("delete topic %s on %s: %w", name, b.broker, err)
	}
	return res.Err
}

func (b *remoteBackend) ListTopics(ctx context.Context) ([]topicInfo, error) {
	md, err := b.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics on %s: %w", b.broker, err)
	}
	var out []topicInfo
	for _, name := range md.Names() {
		ti, err := b.DescribeTopic(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

func (b *remoteBackend) DescribeTopic(ctx context.Context, name string) (topicInfo, error) {
	md, err := b.adm.ListTopics(ctx, name)
	if err != nil {
		return topicInfo{}, fmt.Errorf("describe topic %s on %s: %w", name, b.broker, err)
	}
	td, ok := md[name]
	if !ok || td.Err != nil {
		if ok {
			return topicInfo{}, fmt.Errorf("topic %s: %w", name, td.Err)
		}
		return topicInfo{}, fmt.Errorf("topic %s on %s: %w", name, b.broker, logstore.ErrUnknownTopic)
	}
	starts, err := b.adm.ListStartOffsets(ctx, name)
	if err != nil {
		return topicInfo{}, err
	}
	ends, err := b.adm.ListEndOffsets(ctx, name)
	if err != nil {
		return topicInfo{}, err
	}
	ti := topicInfo{name: name, config: map[string]string{}}
	for p := range td.Partitions {
		s, _ := starts.Lookup(name, p)
		e, _ := ends.Lookup(name, p)
		ti.partitions = append(ti.partitions, partitionInfo{partition: p, earliest: s.Offset, latest: e.Offset, size: -1, localStart: -1, remoteSize: -1})
	}
	sort.Slice(ti.partitions, func(i, j int) bool { return ti.partitions[i].partition < ti.partitions[j].partition })
	b.describeSizes(ctx, name, ti.partitions)
	if rcs, err := b.adm.DescribeTopicConfigs(ctx, name); err == nil {
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Value == nil {
					continue
				}
				switch c.Key {
				case "retention.ms":
					ti.config["retention.ms"] = *c.Value
				case "cleanup.policy":
					ti.cleanup = *c.Value
				case "remote.storage.enable":
					if *c.Value == "true" {
						b.describeLocalStarts(ctx, name, ti.partitions)
					}
				}
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					ti.overrides = append(ti.overrides, [2]string{c.Key, *c.Value})
				}
			}
		}
	}
	sort.Slice(ti.overrides, func(i, j int) bool { return ti.overrides[i][0] < ti.overrides[j][0] })
	return ti, nil
}

// describeSizes fills the partitions' sizes on the server's disk (the local
// tier) from DescribeLogDirs; they stay unknown (-1) if the server does not
// answer it.
func (b *remoteBackend) describeSizes(ctx context.Context, topic string, parts []partitionInfo) {
	req := kmsg.NewPtrDescribeLogDirsRequest()
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rt.Partitions = append(rt.Partitions, p.partition)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return
	}
	for _, d := range resp.Dirs {
		if d.ErrorCode != 0 {
			continue
		}
		for _, t := range d.Topics {
			if t.Topic != topic {
				continue
			}
			for _, dp := range t.Partitions {
				for i := range parts {
					if parts[i].partition == dp.Partition && dp.Size >= 0 {
						parts[i].size = max(parts[i].size, 0) + dp.Size
					}
				}
			}
		}
	}
}

// describeLocalStarts fills the partitions' local start offsets of a
// remote-enabled topic (ListOffsets -4, KIP-405's earliest local offset).
func (b *remoteBackend) describeLocalStarts(ctx context.Context, topic string, parts []partitionInfo) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p.partition, -4, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.cl)
	for i := range parts {
		parts[i].remote = true
	}
	if err != nil || len(resp.Topics) != 1 {
		return
	}
	for _, rp := range resp.Topics[0].Partitions {
		for i := range parts {
			if parts[i].partition == rp.Partition && rp.ErrorCode == 0 && rp.Offset >= 0 {
				parts[i].localStart = rp.Offset
			}
		}
	}
}

func (b *remoteBackend) Produce(ctx context.Context, topic string, partition int32, recs <-chan produceRecord) (produceSummary, error) {
	var sum produceSummary
	// Check the topic and --partition first, for the same clear errors as
	// with --data-dir.
	md, err := b.adm.ListTopics(ctx, topic)
	if err != nil {
		return sum, fmt.Errorf("look up topic %s on %s: %w", topic, b.broker, err)
	}
	td, ok := md[topic]
	if !ok || td.Err != nil {
		if ok {
			return sum, fmt.Errorf("topic %s on %s: %w (create it with 'sluice topic create')", topic, b.broker, td.Err)
		}
		return sum, fmt.Errorf("topic %s on %s: unknown topic (create it with 'sluice topic create')", topic, b.broker)
	}
	if n := int32(len(td.Partitions)); partition >= n {
		return sum, fmt.Errorf("partition %d out of range: topic %s has %d partitions (0-%d)", partition, topic, n, n-1)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(b.broker), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic)}
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return sum, err
	}
	defer cl.Close()
	var firstErr error
	results := make(chan *kgo.Record, 1024)
	errs := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range results {
			sum.records++
			sum.ack(r.Partition, r.Offset, r.Offset)
		}
	}()
	// The first failed record stops the reading of stdin: the error is
	// reported at once rather than after the rest of the input.
	pctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	// The records taken are sent and flushed even when ctx ended (Ctrl-C):
	// what produce accepted is not dropped. A second Ctrl-C kills the
	// process if the broker does not answer.
	sendCtx := context.WithoutCancel(ctx)
	for {
		r, ok := nextRecord(pctx, recs)
		if !ok {
			break
		}
		kr := &kgo.Record{Key: r.key, Value: r.value, Partition: max(partition, 0)}
		cl.Produce(sendCtx, kr, func(r *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				stopReading()
				return
			}
			results <- r
		})
	}
	if err := cl.Flush(sendCtx); err != nil {
		firstErr = err
	}
	close(results)
	<-done
	select {
	case err := <-errs:
		firstErr = err
	default:
	}
	if firstErr != nil {
		return sum, fmt.Errorf("produce to %s on %s: %w", topic, b.broker, firstErr)
	}
	return sum, ctx.Err()
}

func (b *remoteBackend) Consume(ctx context.Context, topic string, o consumeOptions, fn func(message) error) error {
	// Check the topic exists first: a consumer of a missing topic would
	// wait forever (or, with -e, exit at once as if it were empty).
	md, err := b.adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %s on %s: %w", topic, b.broker, err)
	}
	if td, ok := md[topic]; !ok || td.Err != nil {
		if ok {
			return fmt.Errorf("topic %s on %s: %w (list topics with 'sluice topic list')", topic, b.broker, td.Err)
		}
		return fmt.Errorf("topic %s on %s: unknown topic (list topics with 'sluice topic list')", topic, b.broker)
	}
	// Control records (transaction markers) are kept so that -e sees the
	// consumer pass a marker that ends a partition; they are never printed.
	opts := []kgo.Opt{kgo.SeedBrokers(b.broker), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords()}
	switch o.from.kind {
	case "earliest":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	case "latest":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	case "offset":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().At(o.from.offset)))
	case "time":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(o.from.time)))
	}
	if o.group != "" {
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.DisableAutoCommit())
	}
	var end map[int32]int64
	if o.exitAtEnd {
		ends, err := b.adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("list end offsets of %s on %s: %w", topic, b.broker, err)
		}
		starts, err := b.startOffsets(ctx, topic, o)
		if err != nil {
			return err
		}
		end = map[int32]int64{}
		ends.Each(func(lo kadm.ListedOffset) {
			if lo.Offset > starts[lo.Partition] {
				end[lo.Partition] = lo.Offset
			}
		})
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	seen := 0
	reached := func() bool {
		if end == nil {
			return false
		}
		return len(end) == 0
	}
	for !reached() {
		fctx := ctx
		var cancel context.CancelFunc = func() {}
		if end != nil {
			fctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		}
		fetches := cl.PollFetches(fctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var stop bool
		var printed []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if stop || ctx.Err() != nil {
				// Ctrl-C: the rest of the fetch is not printed.
				return
			}
			if end != nil {
				e, ok := end[r.Partition]
				if !ok || r.Offset >= e {
					return
				}
				if r.Offset+1 >= e {
					delete(end, r.Partition)
				}
			}
			if r.Attrs.IsControl() {
				return
			}
			m := message{topic: r.Topic, partition: r.Partition, offset: r.Offset, timestamp: r.Timestamp.UnixMilli(), key: r.Key, value: r.Value}
			for _, h := range r.Headers {
				m.headers = append(m.headers, messageHeader{h.Key, h.Value})
			}
			if err := fn(m); err != nil {
				ferr, stop = err, true
				return
			}
			printed = append(printed, r)
			seen++
			if o.limit > 0 && seen >= o.limit {
				stop = true
			}
		})
		if o.group != "" && len(printed) > 0 {
			if err := cl.CommitRecords(context.Background(), printed...); err != nil {
				return fmt.Errorf("commit offsets of group %s: %w", o.group, err)
			}
		}
		if ferr != nil {
			return ferr
		}
		if stop {
			return nil
		}
	}
	return nil
}

// startOffsets returns where a consumer with options o starts in each
// partition of topic, so that -e knows which partitions have nothing to read.
func (b *remoteBackend) startOffsets(ctx context.Context, topic string, o consumeOptions) (map[int32]int64, error) {
	var listed kadm.ListedOffsets
	var err error
	switch o.from.kind {
	case "earliest", "offset":
		listed, err = b.adm.ListStartOffsets(ctx, topic)
	case "latest":
		listed, err = b.adm.ListEndOffsets(ctx, topic)
	case "time":
		listed, err = b.adm.ListOffsetsAfterMilli(ctx, o.from.time, topic)
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s on %s: %w", topic, b.broker, err)
	}
	starts := map[int32]int64{}
	listed.Each(func(lo kadm.ListedOffset) {
		starts[lo.Partition] = lo.Offset
		if o.from.kind == "offset" {
			starts[lo.Partition] = max(lo.Offset, o.from.offset)
		}
	})
	if o.group != "" {
		committed, err := b.adm.FetchOffsets(ctx, o.group)
		if err != nil {
			return nil, fmt.Errorf("fetch committed offsets of group %s: %w", o.group, err)
		}
		committed.Each(func(c kadm.OffsetResponse) {
			if c.Topic == topic && c.Err == nil && c.At >= 0 {
				starts[c.Partition] = c.At
			}
		})
	}
	return starts, nil
}

func kadmMechanism(m auth.Mechanism) kadm.ScramMechanism {
	if m == auth.ScramSHA512 {
		return kadm.ScramSha512
	}
	return kadm.ScramSha256
}

// SetUserCredential implements backend: AlterUserScramCredentials (the
// client salts and hashes; the password never leaves this process).
func (b *remoteBackend) SetUserCredential(ctx context.Context, user string, m auth.Mechanism, password string, iterations int) error {
	res, err := b.adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: kadmMechanism(m), Iterations: int32(iterations), Password: password}})
	if err != nil {
		return fmt.Errorf("store credential of %s: %w", user, err)
	}
	return res.Error()
}

// DeleteUserCredential implements backend.
func (b *remoteBackend) DeleteUserCredential(ctx context.Context, user string, m auth.Mechanism) error {
	res, err := b.adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: kadmMechanism(m)}}, nil)
	if err != nil {
		return fmt.Errorf("delete credential of %s: %w", user, err)
	}
	return res.Error()
}

// ListUsers implements backend.
func (b *remoteBackend) ListUsers(ctx context.Context) ([]auth.UserInfo, error) {
	res, err := b.adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe users: %w", err)
	}
	var out []auth.UserInfo
	for _, r := range res.Sorted() {
		if r.Err != nil {
			return nil, fmt.Errorf("user %s: %w", r.User, r.Err)
		}
		u := auth.UserInfo{Name: r.User}
		for _, ci := range r.CredInfos {
			m := auth.ScramSHA256
			if ci.Mechanism == kadm.ScramSha512 {
				m = auth.ScramSHA512
			}
			u.Mechanisms = append(u.Mechanisms, auth.MechanismInfo{Mechanism: m, Iterations: int(ci.Iterations)})
		}
		out = append(out, u)
	}
	return out, nil
}
