package logstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Changes to a live topic: its configuration, its partition count, and its
// log start offset (DeleteRecords). Each is durable before it returns and
// takes effect without a restart.

// AlterTopicConfig changes the named topic's configuration: fn edits a copy
// of it, which is validated, persisted (topic.json, replaced atomically)
// and published. The fsync policy, timestamp type and cleanup policy apply
// to the next append; the segment size and age to the next roll; retention
// and compaction settings to the next retention run or cleaner pass. The
// partition count cannot change here (AddPartitions). With validateOnly the
// result is checked and returned but nothing changes.
func (l *Log) AlterTopicConfig(name string, validateOnly bool, fn func(*TopicConfig) error) (TopicConfig, error) {
	t, err := l.Topic(name)
	if err != nil {
		return TopicConfig{}, err
	}
	return t.alterConfig(validateOnly, fn)
}

// alterConfig is AlterTopicConfig once the topic is looked up.
func (t *Topic) alterConfig(validateOnly bool, fn func(*TopicConfig) error) (TopicConfig, error) {
	l, name := t.log, t.name
	t.cfgMu.Lock()
	defer t.cfgMu.Unlock()
	if t.deleted {
		return TopicConfig{}, fmt.Errorf("topic %s: %w", name, ErrUnknownTopic)
	}
	cfg := t.Config()
	if err := fn(&cfg); err != nil {
		return TopicConfig{}, fmt.Errorf("topic %s: %w", name, err)
	}
	if cfg.Partitions != t.Config().Partitions {
		return TopicConfig{}, fmt.Errorf("topic %s: %w: the partition count changes only through AddPartitions", name, ErrInvalidTopic)
	}
	if err := cfg.validate(); err != nil {
		return TopicConfig{}, fmt.Errorf("topic %s: %w", name, err)
	}
	prev := t.Config()
	if err := l.checkRemoteConfig(&prev, cfg); err != nil {
		return TopicConfig{}, fmt.Errorf("topic %s: %w", name, err)
	}
	assignRemoteID(&prev, &cfg)
	cfg.ID = prev.ID
	if validateOnly {
		return cfg, nil
	}
	if err := t.persistConfig(cfg); err != nil {
		return TopicConfig{}, err
	}
	t.publishConfig(cfg)
	l.logger.Info("topic config changed", "topic", name, "config", cfg)
	return cfg, nil
}

// persistConfig writes cfg to topic.json atomically (cfgMu held).
func (t *Topic) persistConfig(cfg TopicConfig) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(t.log.fs, filepath.Join(t.dir, topicConfig), append(b, '\n')); err != nil {
		return fmt.Errorf("topic %s: %w", t.name, err)
	}
	return nil
}

// publishConfig makes cfg the live configuration (cfgMu held).
func (t *Topic) publishConfig(cfg TopicConfig) {
	t.cfg.Store(&cfg)
	set := t.log.settingsFor(cfg)
	for _, p := range t.partitions() {
		p.set.Store(set)
	}
	t.stopSyncLoop()
	t.startSyncLoop(cfg)
}

// AddPartitions grows the named topic to total partitions (Kafka's
// CreatePartitions: the count can only grow). The new partitions' empty
// directories are created first and the configuration naming them is
// written last, so a crash leaves the old count (and unused directories,
// reused by the next attempt).
func (l *Log) AddPartitions(name string, total int32, validateOnly bool) error {
	t, err := l.Topic(name)
	if err != nil {
		return err
	}
	return t.addPartitions(total, validateOnly)
}

// addPartitions is AddPartitions once the topic is looked up.
func (t *Topic) addPartitions(total int32, validateOnly bool) error {
	l, name := t.log, t.name
	t.cfgMu.Lock()
	defer t.cfgMu.Unlock()
	if t.deleted {
		return fmt.Errorf("topic %s: %w", name, ErrUnknownTopic)
	}
	cfg := t.Config()
	if total <= cfg.Partitions {
		return fmt.Errorf("topic %s: %w: it has %d partitions; the count can only grow", name, ErrInvalidPartitions, cfg.Partitions)
	}
	next := cfg
	next.Partitions = total
	if err := next.validate(); err != nil {
		return fmt.Errorf("topic %s: %w: %w", name, ErrInvalidPartitions, err)
	}
	if validateOnly {
		return nil
	}
	for i := cfg.Partitions; i < total; i++ {
		dir := filepath.Join(t.dir, strconv.Itoa(int(i)))
		if err := l.fs.MkdirAll(dir, 0o755); err != nil {
			return ioError("create partition directory "+dir, err)
		}
	}
	if err := l.fs.SyncDir(t.dir); err != nil {
		return ioError("sync "+t.dir, err)
	}
	parts, err := l.openPartitions(t, cfg.Partitions, total, next)
	if err != nil {
		return err
	}
	if err := t.persistConfig(next); err != nil {
		for _, p := range parts {
			p.close(false)
		}
		return err
	}
	all := append(append([]*Partition(nil), t.partitions()...), parts...)
	t.cfg.Store(&next)
	t.parts.Store(&all)
	l.logger.Info("partitions added", "topic", name, "partitions", total)
	return nil
}

// ErrInvalidPartitions: a partition count that cannot be applied (Kafka:
// INVALID_PARTITIONS).
var ErrInvalidPartitions = errors.New("invalid partition count")

const logStartFile = "log-start-offset"

// DeleteRecords moves the partition's log start offset up to offset (-1:
// the high watermark), as Kafka's DeleteRecords: records below it are no
// longer served (reads get ErrOffsetOutOfRange) and the segments wholly
// below it are deleted. The new start is durable before it returns. An
// offset above the high watermark fails with ErrOffsetOutOfRange; one at or
// below the current start changes nothing. An offset below the local start
// of a remote-enabled partition whose manifest the remote tier has not read
// yet fails with the retriable ErrRemoteNotReady. It returns the log start
// offset.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	p.cleaner.mu.Lock()
	defer p.cleaner.mu.Unlock()
	select {
	case <-p.closing:
		return 0, p.closedErrNoLock()
	default:
	}
	if err := p.finishSwapLocked(); err != nil {
		return p.logStartOffset(), err
	}
	t := p.tip.Load()
	if offset == -1 {
		offset = t.hw
	}
	if offset >= 0 && offset < p.logStart.Load() {
		// In the remote range: its start is unknown until the tier has
		// read the manifest, and answering the local start would report
		// records deleted that are served again once it has.
		if err := p.RemoteReady(); err != nil {
			return p.logStart.Load(), fmt.Errorf("delete records below %d: %w", offset, err)
		}
	}
	ls := p.logStartOffset() // of both tiers, with remote storage
	if offset < 0 || offset > t.hw {
		return ls, fmt.Errorf("partition %s: delete records below %d: %w (available: %d to %d)", p.name, offset, ErrOffsetOutOfRange, ls, t.hw)
	}
	if offset <= ls {
		return ls, nil
	}
	if err := writeFileAtomic(p.fs, filepath.Join(p.dir, logStartFile), []byte(strconv.FormatInt(offset, 10)+"\n")); err != nil {
		return ls, fmt.Errorf("partition %s: delete records: %w", p.name, err)
	}
	p.deleteFloor.Store(offset)
	if offset > p.logStart.Load() {
		p.logStart.Store(offset)
	}
	p.mu.Lock()
	st := p.pstate
	p.mu.Unlock()
	if st != nil {
		st.dropBelow(offset)
	}
	// Whole segments below the new start go, as retention removes them.
	p.segMu.RLock()
	var del []*segment
	for i, s := range p.segments[:len(p.segments)-1] {
		if p.segments[i+1].base <= offset {
			del = append(del, s)
		}
	}
	p.segMu.RUnlock()
	if len(del) > 0 {
		if err := p.deleteOldest(del); err != nil {
			return offset, err
		}
	}
	p.logger.Info("records deleted", "partition", p.name, "log_start", offset)
	return offset, nil
}

// loadLogStart applies a log start offset recorded by DeleteRecords (after
// recovery set it to the first segment's base). A file that cannot be
// read fails it (ErrIO); a malformed one is logged and ignored.
func (p *Partition) loadLogStart() error {
	name := filepath.Join(p.dir, logStartFile)
	b, err := readFile(p.fs, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		// Falling back to the first segment's base would serve the
		// records DeleteRecords removed again.
		return ioError("read the log start offset "+name, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		p.logger.Warn("ignoring a malformed log start offset file", "partition", p.name, "content", string(b))
		return nil
	}
	p.deleteFloor.Store(min(n, p.nextOffset))
	if n > p.logStart.Load() {
		p.logStart.Store(min(n, p.nextOffset))
	}
	return nil
}
