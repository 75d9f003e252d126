package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/tier"
)

// localBackend runs the data commands on an embedded log in a data directory.
type localBackend struct {
	log  *logstore.Log
	tier *tier.Tier // nil without SLUICE_REMOTE_STORAGE
	// offsets is the log's consumer-offset store, opened on first use (see
	// offsetStore).
	offsets *logstore.OffsetStore
}

// offsetStore returns the log's consumer-offset store, opening it (once)
// on first use.
func (b *localBackend) offsetStore(ctx context.Context) (*logstore.OffsetStore, error) {
	if b.offsets == nil {
		o, err := logstore.OpenOffsetStore(ctx, b.log)
		if err != nil {
			return nil, err
		}
		b.offsets = o
	}
	return b.offsets, nil
}

func (b *localBackend) Close() error {
	if b.tier != nil {
		b.tier.Close()
	}
	return b.log.Close()
}

// internalTopics are the topics the server keeps its own state in. They are
// created by the server with the configuration they need (fsync always, no
// age retention) and are never deleted: losing __consumer_offsets loses every
// group's committed offsets, and losing __producer_ids lets producer ids be
// handed out twice (so a new producer's batches could be taken for another's
// duplicates). "__transaction_state" is the kafka package's topic.
var internalTopics = map[string]string{
	logstore.OffsetsTopic:     "consumer groups' committed offsets",
	logstore.ProducerIDsTopic: "the producer id allocator",
	"__transaction_state":     "the transaction coordinator's state",
	auth.UsersTopic:           "the SASL users' credentials",
	auth.QuotasTopic:          "the client quotas",
	auth.TenantsTopic:         "the tenants and namespaces",
	auth.TokensTopic:          "the HTTP tokens",
	auth.ACLsTopic:            "the Kafka ACLs",
}

func internalTopicErr(op, name string) error {
	if what, ok := internalTopics[name]; ok {
		return fmt.Errorf("topic %s is internal (it holds %s) and cannot be %s by hand", name, what, op)
	}
	return nil
}

func (b *localBackend) CreateTopic(_ context.Context, name string, spec topicSpec) error {
	if err := internalTopicErr("created", name); err != nil {
		return err
	}
	cfg := logstore.TopicConfig{Partitions: spec.partitions, Retention: spec.retention}
	if spec.fsync != "" {
		p, err := logstore.ParseFsyncPolicy(spec.fsync)
		if err != nil {
			return err
		}
		cfg.Fsync = p
	}
	for _, kv := range spec.configs {
		if err := setLocalConfig(&cfg, kv[0], &kv[1]); err != nil {
			return err
		}
	}
	return b.log.CreateTopic(name, cfg)
}

// setLocalConfig sets a Kafka-named config on cfg (value nil: back to the
// default). A config the log does not know or a bad value is a usage error.
func setLocalConfig(cfg *logstore.TopicConfig, name string, value *string) error {
	if err := cfg.SetConfig(name, value); err != nil {
		if errors.Is(err, logstore.ErrUnknownConfig) || errors.Is(err, logstore.ErrInvalidConfig) {
			return usagef("%v", err)
		}
		return err
	}
	return nil
}

func (b *localBackend) AlterTopicConfig(_ context.Context, name string, set [][2]string, del []string) error {
	if err := internalTopicErr("altered", name); err != nil {
		return err
	}
	_, err := b.log.AlterTopicConfig(name, false, func(cfg *logstore.TopicConfig) error {
		for _, kv := range set {
			if err := setLocalConfig(cfg, kv[0], &kv[1]); err != nil {
				return err
			}
		}
		for _, k := range del {
			if err := setLocalConfig(cfg, k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	var ue *usageError
	if errors.As(err, &ue) {
		return ue // without the log's "topic NAME:" prefix: it is about the flags
	}
	return err
}

func (b *localBackend) AddPartitions(_ context.Context, name string, total int32) error {
	if err := internalTopicErr("altered", name); err != nil {
		return err
	}
	return b.log.AddPartitions(name, total, false)
}

func (b *localBackend) DeleteRecords(_ context.Context, name string, partition int32, before int64) (int64, error) {
	if err := internalTopicErr("trimmed", name); err != nil {
		return 0, err
	}
	t, err := b.log.Topic(name)
	if err != nil {
		return 0, err
	}
	p, err := t.Partition(partition)
	if err != nil {
		return 0, err
	}
	return p.DeleteRecords(before)
}

// DeleteTopic deletes the topic and then every group's committed offsets
// of its partitions, as the server's DeleteTopics does (so that a topic
// created again under the same name does not resume its groups at the old
// topic's offsets). The data directory's lock keeps servers out, so no
// commit can race the deletion. A directory whose groups never committed
// (no __consumer_offsets yet) has no offsets to delete.
func (b *localBackend) DeleteTopic(ctx context.Context, name string) error {
	if err := internalTopicErr("deleted", name); err != nil {
		return err
	}
	if err := b.log.DeleteTopic(name); err != nil {
		return err
	}
	if _, err := b.log.Topic(logstore.OffsetsTopic); err != nil {
		return nil
	}
	offsets, err := b.offsetStore(ctx)
	if err != nil {
		return fmt.Errorf("topic %s deleted, but not its groups' committed offsets: %w", name, err)
	}
	if _, err := offsets.DeleteTopicOffsets(ctx, name); err != nil {
		return fmt.Errorf("topic %s deleted, but not its groups' committed offsets: %w", name, err)
	}
	return nil
}

func (b *localBackend) ListTopics(ctx context.Context) ([]topicInfo, error) {
	var out []topicInfo
	for _, name := range b.log.Topics() {
		ti, err := b.DescribeTopic(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

func (b *localBackend) DescribeTopic(_ context.Context, name string) (topicInfo, error) {
	t, err := b.log.Topic(name)
	if err != nil {
		return topicInfo{}, err
	}
	ti := topicInfo{name: name, config: map[string]string{}}
	cfg := t.Config()
	ti.config["retention"] = "forever"
	if cfg.Retention > 0 {
		ti.config["retention"] = cfg.Retention.String()
	}
	if cfg.RetentionBytes > 0 {
		ti.config["retention.bytes"] = strconv.FormatInt(cfg.RetentionBytes, 10)
	}
	ti.config["fsync"] = cfg.Fsync.String()
	ti.cleanup = t.Cleanup().String()
	for _, e := range b.log.ConfigEntries(cfg) {
		if !e.IsDefault {
			ti.overrides = append(ti.overrides, [2]string{e.Name, e.Value})
		}
	}
	sort.Slice(ti.overrides, func(i, j int) bool { return ti.overrides[i][0] < ti.overrides[j][0] })
	for p := int32(0); p < t.NumPartitions(); p++ {
		part, err := t.Partition(p)
		if err != nil {
			return ti, err
		}
		st := part.Stats()
		start, hwm, _ := part.Offsets()
		pi := partitionInfo{partition: p, earliest: start, latest: hwm, size: st.Bytes,
			remote: cfg.RemoteStorage, localStart: part.LocalLogStart(), remoteSize: -1}
		if b.tier != nil {
			if ri, ok := b.tier.Describe(name, p); ok {
				pi.remoteSize, pi.remoteSegments = ri.Bytes, ri.Segments
			}
		}
		if t.Cleanup().Compact() {
			pi.cleaner = &st.Cleaner
		}
		ti.partitions = append(ti.partitions, pi)
	}
	return ti, nil
}

// produceBatchRecords bounds how many stdin lines go into one appended batch.
const produceBatchRecords = 1000

func (b *localBackend) Produce(ctx context.Context, topic string, partition int32, recs <-chan produceRecord) (produceSummary, error) {
	var sum produceSummary
	if err := internalTopicErr("written", topic); err != nil {
		return sum, err
	}
	t, err := b.log.Topic(topic)
	if err != nil {
		return sum, err
	}
	n := t.NumPartitions()
	if partition >= n {
		return sum, fmt.Errorf("partition %d out of range: topic %s has %d partitions (0-%d)", partition, topic, n, n-1)
	}
	pending := make(map[int32][]record.Record)
	// A batch is written even when ctx ended (Ctrl-C) meanwhile: the
	// records produce took from stdin are not dropped.
	wctx := context.WithoutCancel(ctx)
	flush := func(p int32) error {
		batch := pending[p]
		if len(batch) == 0 {
			return nil
		}
		part, err := t.Partition(p)
		if err != nil {
			return err
		}
		res, err := part.AppendRecords(wctx, batch)
		if err != nil {
			return fmt.Errorf("append to %s/%d: %w (records before this batch were acknowledged)", topic, p, err)
		}
		sum.records += len(batch)
		sum.ack(p, res.BaseOffset, res.LastOffset)
		pending[p] = batch[:0]
		return nil
	}
	rr := int32(0)
	now := nowMillis()
	for {
		r, ok := nextRecord(ctx, recs)
		if !ok {
			break
		}
		p := partition
		if p < 0 {
			if r.key != nil {
				p = record.KafkaPartition(r.key, n)
			} else {
				p = rr % n
				if len(pending[p]) >= produceBatchRecords-1 {
					rr++
				}
			}
		}
		pending[p] = append(pending[p], record.Record{Timestamp: now, Key: r.key, Value: r.value})
		if len(pending[p]) >= produceBatchRecords {
			if err := flush(p); err != nil {
				return sum, err
			}
			now = nowMillis()
		}
	}
	for p := int32(0); p < n; p++ {
		if err := flush(p); err != nil {
			return sum, err
		}
	}
	return sum, ctx.Err()
}

func (b *localBackend) Consume(ctx context.Context, topic string, o consumeOptions, fn func(message) error) error {
	t, err := b.log.Topic(topic)
	if err != nil {
		return err
	}
	var offsets *logstore.OffsetStore
	var committed map[logstore.TopicPartition]logstore.CommittedOffset
	if o.group != "" {
		if offsets, err = b.offsetStore(ctx); err != nil {
			return err
		}
		committed = offsets.Fetch(o.group)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan message, 1024)
	var wg sync.WaitGroup
	errc := make(chan error, t.NumPartitions())
	for p := int32(0); p < t.NumPartitions(); p++ {
		part, err := t.Partition(p)
		if err != nil {
			return err
		}
		var start int64
		c, ok := committed[logstore.TopicPartition{Topic: topic, Partition: p}]
		if ls, hw, _ := part.Offsets(); ok && c.Offset >= ls && c.Offset <= hw {
			start = c.Offset
		} else {
			// No committed offset, or retention deleted it (or the topic
			// was recreated): start from --from, as a Kafka consumer's
			// auto.offset.reset does (and as the --broker backend does).
			if start, err = startOffset(part, o.from); err != nil {
				return err
			}
		}
		wg.Add(1)
		go func(p int32) {
			defer wg.Done()
			if err := readPartition(ctx, topic, p, part, start, o.exitAtEnd, msgs); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}(p)
	}
	go func() { wg.Wait(); close(msgs) }()
	seen := 0
	next := map[logstore.TopicPartition]logstore.CommittedOffset{}
	var ferr error
	for m := range msgs {
		if ctx.Err() != nil {
			// Ctrl-C: the records already buffered are not printed.
			break
		}
		if ferr = fn(m); ferr != nil {
			break
		}
		next[logstore.TopicPartition{Topic: topic, Partition: m.partition}] = logstore.CommittedOffset{Offset: m.offset + 1, LeaderEpoch: -1, CommitTime: nowMillis()}
		seen++
		if o.limit > 0 && seen >= o.limit {
			break
		}
	}
	cancel()
	for range msgs {
	}
	if offsets != nil && len(next) > 0 {
		if err := offsets.Commit(context.Background(), o.group, next); err != nil {
			return fmt.Errorf("commit offsets of group %s: %w", o.group, err)
		}
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	if ferr != nil {
		return ferr
	}
	if parent := context.Cause(ctx); parent != nil && !errors.Is(parent, context.Canceled) {
		return parent
	}
	return nil
}

func startOffset(part *logstore.Partition, from startPosition) (int64, error) {
	start, hwm, _ := part.Offsets()
	switch from.kind {
	case "earliest":
		return start, nil
	case "latest":
		return hwm, nil
	case "offset":
		// Below the log start the data is gone: say so. Above the end, the
		// partition has not reached the offset yet: start there (as the
		// Kafka-protocol backend does), waiting for it unless -e.
		if from.offset < start {
			return 0, fmt.Errorf("partition %d: %w: offset %d was deleted, the partition starts at %d (use --from earliest)", part.ID(), logstore.ErrOffsetOutOfRange, from.offset, start)
		}
		return from.offset, nil
	case "time":
		off, _, found, err := part.OffsetForTime(from.time)
		if err != nil {
			return 0, err
		}
		if !found {
			return hwm, nil
		}
		return off, nil
	}
	return 0, fmt.Errorf("unknown start position %q", from.kind)
}

// readPartition sends the committed (read_committed) records of one
// partition from offset on, waiting for more unless exitAtEnd.
func readPartition(ctx context.Context, topic string, p int32, part *logstore.Partition, offset int64, exitAtEnd bool, out chan<- message) error {
	_, _, end := part.Offsets()
	for {
		if exitAtEnd && offset >= end {
			return nil
		}
		if _, hw, _ := part.Offsets(); offset > hw {
			// --from OFFSET beyond this partition's end: wait until the
			// partition reaches it.
			if err := part.Wait(ctx, offset-1); err != nil {
				return err
			}
			continue
		}
		res, err := part.Read(offset, 1<<20)
		if err != nil {
			return fmt.Errorf("read %s/%d at offset %d: %w", topic, p, offset, err)
		}
		// Records at or above the last stable offset may belong to an open
		// transaction: wait until it is decided.
		if offset >= res.LastStable || len(res.Batches) == 0 {
			if res.HighWatermark > offset {
				// An open transaction holds the last stable offset back:
				// poll until it commits or aborts.
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			if err := part.Wait(ctx, offset); err != nil {
				return err
			}
			continue
		}
		aborted := part.AbortedTransactions(offset, res.LastStable)
		next := offset
		err = record.Decode(res.Batches, func(h record.Header, r record.Record) error {
			if r.Offset >= res.LastStable {
				return errStop
			}
			next = r.Offset + 1
			if r.Offset < offset || h.IsControl() || isAborted(aborted, h, r.Offset) {
				return nil
			}
			m := message{topic: topic, partition: p, offset: r.Offset, timestamp: r.Timestamp,
				key: bytes.Clone(r.Key), value: bytes.Clone(r.Value)}
			for _, hd := range r.Headers {
				m.headers = append(m.headers, messageHeader{hd.Key, bytes.Clone(hd.Value)})
			}
			select {
			case out <- m:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if next == offset {
			// Only batches below offset (or control records) were returned:
			// skip to the end of what was read.
			_ = record.Batches(res.Batches, func(h record.Header, _ []byte) error {
				next = max(next, h.LastOffset()+1)
				return nil
			})
		}
		offset = next
	}
}

var errStop = errors.New("stop")

func isAborted(aborted []logstore.AbortedTxn, h record.Header, off int64) bool {
	if !h.IsTransactional() {
		return false
	}
	for _, a := range aborted {
		if a.ProducerID == h.ProducerID && off >= a.FirstOffset && off <= a.LastOffset {
			return true
		}
	}
	return false
}

// SetUserCredential implements backend.
func (b *localBackend) SetUserCredential(ctx context.Context, user string, m auth.Mechanism, password string, iterations int) error {
	st, err := auth.OpenStore(ctx, b.log)
	if err != nil {
		return err
	}
	c, err := auth.NewCredential(m, password, iterations)
	if err != nil {
		return err
	}
	return st.Set(ctx, user, c)
}

// DeleteUserCredential implements backend.
func (b *localBackend) DeleteUserCredential(ctx context.Context, user string, m auth.Mechanism) error {
	st, err := auth.OpenStore(ctx, b.log)
	if err != nil {
		return err
	}
	return st.Delete(ctx, user, m)
}

// ListUsers implements backend.
func (b *localBackend) ListUsers(ctx context.Context) ([]auth.UserInfo, error) {
	st, err := auth.OpenStore(ctx, b.log)
	if err != nil {
		return nil, err
	}
	return st.Users(), nil
}
