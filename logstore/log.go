package logstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/record"
)

const (
	lockFile     = "LOCK"
	formatFile   = "FORMAT"
	topicsDir    = "topics"
	trashDir     = "trash"
	topicConfig  = "topic.json"
	formatHeader = "sluice-log-format"
	// openParallelism bounds how many partitions of a topic recover at once.
	openParallelism = 8
	// FormatVersion is the version of the on-disk format this package reads
	// and writes. Open refuses a directory of another version
	// (ErrIncompatibleFormat).
	FormatVersion = 1
)

// Log is an open data directory: a set of topics. It is safe for concurrent
// use. Open it once per directory and process (the directory is locked).
type Log struct {
	opts   Options
	fs     FS
	dir    string
	logger *slog.Logger
	lock   File

	mu     sync.RWMutex
	topics map[string]*Topic
	closed bool

	stop    chan struct{}
	wg      sync.WaitGroup
	metrics *logMetrics
	remote  atomic.Pointer[remoteHolder] // SetRemoteTier (remote.go)
	// remoteDeleted holds the remote folders of deleted topics not yet
	// emptied (remotedeleted.go), guarded by remoteDelMu.
	remoteDelMu   sync.Mutex
	remoteDeleted map[string]bool

	// The cleaner (cleaner.go): cleanerRunMu serialises passes (they share
	// one offset map), cleanerMu guards om, cleanerWG waits for the
	// background loop.
	cleanerRunMu sync.Mutex
	cleanerMu    sync.Mutex
	om           *offsetMap
	cleanerWG    sync.WaitGroup
	// appendCount counts the batches assigned offsets in every partition:
	// the cleaner's duty cycle rests while it moves (cleanerduty.go).
	appendCount atomic.Int64
}

// Topic is a named set of partitions sharing one configuration.
type Topic struct {
	log  *Log
	name string
	dir  string
	// cfgMu serialises configuration changes (AlterConfig, AddPartitions)
	// and guards stopSync. cfg and parts are published atomically: the
	// data path reads them without locks.
	cfgMu    sync.Mutex
	cfg      atomic.Pointer[TopicConfig]
	parts    atomic.Pointer[[]*Partition]
	stopSync chan struct{}
	// deleted (cfgMu) is set when the topic is unlinked: a change that
	// looked the topic up before must not write into its directory, whose
	// path a topic created again under the same name may own by then.
	deleted bool
	rr      atomic.Uint32 // round robin for PartitionForKey(nil)
}

// partitions returns the topic's partitions (a snapshot: AddPartitions
// publishes a longer slice).
func (t *Topic) partitions() []*Partition { return *t.parts.Load() }

// Open opens (creating if needed) the data directory opts.Dir. It takes an
// exclusive lock on the directory (a second process gets a *LockedError
// naming the owner), checks the format version (ErrIncompatibleFormat) and
// recovers every partition (see package doc). A partition whose data is
// corrupt beyond a torn tail makes Open fail with a *CorruptionError.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("logstore: Options.Dir is empty")
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
	}
	if opts.PageCacheWindow == 0 {
		opts.PageCacheWindow = defaultPageCacheWindow
	}
	if opts.SegmentPrefill == 0 {
		opts.SegmentPrefill = defaultSegmentPrefill
	}
	if opts.IndexIntervalBytes <= 0 {
		opts.IndexIntervalBytes = 4096
	}
	if opts.RetentionCheckInterval == 0 {
		opts.RetentionCheckInterval = time.Minute
	}
	opts.DefaultFsync = opts.DefaultFsync.resolve(FsyncPolicy{Mode: FsyncAlways})
	l := &Log{opts: opts, fs: opts.FS, dir: opts.Dir, logger: opts.Logger, topics: make(map[string]*Topic), stop: make(chan struct{})}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return nil, ioError("create data directory "+l.dir, err)
	}
	l.metrics = newLogMetrics(opts.Registerer)
	if err := l.takeLock(); err != nil {
		return nil, err
	}
	err := l.open()
	if err == nil {
		err = l.metrics.register(l, opts.Registerer)
	}
	if err != nil {
		l.closeTopics()
		l.lock.Close()
		return nil, err
	}
	if opts.RetentionCheckInterval > 0 {
		l.wg.Add(1)
		go l.retentionLoop(opts.RetentionCheckInterval)
	}
	if every := opts.Cleaner.Interval; every >= 0 {
		if every == 0 {
			every = defaultCleanerInterval
		}
		l.cleanerWG.Add(1)
		go l.cleanerLoop(every)
	}
	return l, nil
}

func (l *Log) takeLock() error {
	name := filepath.Join(l.dir, lockFile)
	f, err := l.fs.Lock(name)
	if errors.Is(err, errLockHeld) {
		owner := "unknown"
		if b, rerr := readFile(l.fs, name); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			owner = strings.TrimSpace(string(b))
		}
		return &LockedError{Dir: l.dir, Owner: owner}
	}
	if err != nil {
		return ioError("lock data directory "+l.dir, err)
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("pid %d on host %s", os.Getpid(), host)
	if err := f.Truncate(0); err == nil {
		if _, err := f.Seek(0, 0); err == nil {
			f.Write([]byte(owner + "\n"))
		}
	}
	l.lock = f
	return nil
}

func (l *Log) open() error {
	// Format version.
	fpath := filepath.Join(l.dir, formatFile)
	b, err := readFile(l.fs, fpath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, serr := l.fs.Stat(filepath.Join(l.dir, topicsDir)); serr == nil {
			return fmt.Errorf("data directory %s: %w: it has topics but no %s file", l.dir, ErrIncompatibleFormat, formatFile)
		}
		if err := writeFileAtomic(l.fs, fpath, fmt.Appendf(nil, "%s %d\n", formatHeader, FormatVersion)); err != nil {
			return err
		}
	case err != nil:
		return ioError("read "+fpath, err)
	default:
		fields := strings.Fields(string(b))
		if len(fields) != 2 || fields[0] != formatHeader {
			return fmt.Errorf("data directory %s: %w: %s is not a sluice format file", l.dir, ErrIncompatibleFormat, fpath)
		}
		v, err := strconv.Atoi(fields[1])
		if err != nil || v != FormatVersion {
			return fmt.Errorf("data directory %s: %w: format version %s, this sluice reads version %d", l.dir, ErrIncompatibleFormat, fields[1], FormatVersion)
		}
	}
	if err := l.loadRemoteDeleted(); err != nil {
		return err
	}
	// Leftovers of interrupted creations and deletions.
	if err := l.fs.RemoveAll(filepath.Join(l.dir, trashDir)); err != nil {
		return ioError("clean "+trashDir, err)
	}
	tdir := filepath.Join(l.dir, topicsDir)
	if err := l.fs.MkdirAll(tdir, 0o755); err != nil {
		return ioError("create "+tdir, err)
	}
	entries, err := l.fs.ReadDir(tdir)
	if err != nil {
		return ioError("list topics", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		if ValidTopicName(name) != nil {
			l.logger.Warn("ignoring unexpected directory among topics", "dir", filepath.Join(tdir, name))
			continue
		}
		cb, err := readFile(l.fs, filepath.Join(tdir, name, topicConfig))
		if err != nil {
			return ioError(fmt.Sprintf("topic %s: read %s", name, topicConfig), err)
		}
		var cfg TopicConfig
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return fmt.Errorf("topic %s: %s: %w", name, topicConfig, err)
		}
		if cfg.ID.IsZero() {
			l.migrateTopicID(name, &cfg)
		}
		t, err := l.openTopic(name, cfg)
		if err != nil {
			return err
		}
		l.topics[name] = t
	}
	return nil
}

// migrateTopicID gives a topic written before topics had ids the id
// earlier versions derived from its name, which clients know it by, and
// writes it into its topic.json; a failure to write is logged (the same
// id is derived again at the next open).
func (l *Log) migrateTopicID(name string, cfg *TopicConfig) {
	cfg.ID = LegacyTopicID(name)
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err == nil {
		err = writeFileAtomic(l.fs, filepath.Join(l.dir, topicsDir, name, topicConfig), append(b, '\n'))
	}
	if err != nil {
		l.logger.Warn("cannot record the topic's id in its topic.json; it is derived from its name again at the next start", "topic", name, "err", err)
		return
	}
	l.logger.Info("recorded the topic id of a topic written by an earlier version (the id it had, derived from its name)", "topic", name, "id", cfg.ID)
}

func (l *Log) openTopic(name string, cfg TopicConfig) (*Topic, error) {
	t := &Topic{log: l, name: name, dir: filepath.Join(l.dir, topicsDir, name)}
	t.cfg.Store(&cfg)
	parts, err := l.openPartitions(t, 0, cfg.Partitions, cfg)
	if err != nil {
		return nil, err
	}
	t.parts.Store(&parts)
	t.startSyncLoop(cfg)
	return t, nil
}

// settingsFor is what a partition's data path needs of its topic's config.
func (l *Log) settingsFor(cfg TopicConfig) *partSettings {
	return &partSettings{
		policy:        cfg.Fsync.resolve(l.opts.DefaultFsync),
		segBytes:      cfg.segmentBytes(),
		maxBatch:      cfg.maxBatchBytes(),
		logAppendTime: cfg.LogAppendTime,
		cleanup:       l.cleanupOf(cfg),
	}
}

// cleanupOf is cfg's effective cleanup policy. A remote-enabled topic
// that sets none is delete whatever the server's default: compaction would
// rewrite segments already uploaded (an explicit compact is refused).
func (l *Log) cleanupOf(cfg TopicConfig) CleanupPolicy {
	if cfg.Cleanup != 0 {
		return cfg.Cleanup
	}
	if cfg.RemoteStorage {
		return CleanupDelete
	}
	if l.opts.DefaultCleanup != 0 {
		return l.opts.DefaultCleanup
	}
	return CleanupDelete
}

// openPartitions opens (recovering) partitions [from, to) of t.
func (l *Log) openPartitions(t *Topic, from, to int32, cfg TopicConfig) ([]*Partition, error) {
	set := l.settingsFor(cfg)
	parts := make([]*Partition, 0, to-from)
	for i := from; i < to; i++ {
		p := &Partition{
			topic:         t,
			id:            i,
			name:          fmt.Sprintf("%s/%d", t.name, i),
			dir:           filepath.Join(t.dir, strconv.Itoa(int(i))),
			fs:            l.fs,
			logger:        l.logger,
			indexInterval: l.opts.IndexIntervalBytes,
			cacheWindow:   l.opts.PageCacheWindow,
			prefill:       l.opts.SegmentPrefill,
			notify:        make(chan struct{}),
			commitDone:    make(chan struct{}),
			metrics:       l.metrics,
			closing:       make(chan struct{}),
		}
		p.cleaner.abort = make(chan struct{})
		p.set.Store(set)
		parts = append(parts, p)
	}
	// Partitions recover independently; after a crash each one reads its
	// tail and fsyncs, so a few at a time overlap that I/O.
	errs := make([]error, len(parts))
	sem := make(chan struct{}, openParallelism)
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := l.fs.MkdirAll(p.dir, 0o755); err != nil {
				errs[i] = ioError("create partition directory "+p.dir, err)
				return
			}
			errs[i] = p.recoverPartition(l.opts.RepairCorruption)
			if errs[i] == nil {
				errs[i] = p.beginLeaderEpoch() // a new leader epoch per open (epochs.go)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, p := range parts {
			if errs[i] == nil {
				p.close(false)
			}
		}
		return nil, err
	}
	return parts, nil
}

// startSyncLoop starts the interval fsync loop when cfg asks for it
// (cfgMu held, or before the topic is shared).
func (t *Topic) startSyncLoop(cfg TopicConfig) {
	policy := cfg.Fsync.resolve(t.log.opts.DefaultFsync)
	if policy.Mode != FsyncInterval || t.stopSync != nil {
		return
	}
	t.stopSync = make(chan struct{})
	t.log.wg.Add(1)
	go t.syncLoop(policy.Interval, t.stopSync)
}

// stopSyncLoop stops the interval fsync loop if it runs (cfgMu held).
func (t *Topic) stopSyncLoop() {
	if t.stopSync != nil {
		close(t.stopSync)
		t.stopSync = nil
	}
}

// syncLoop fsyncs the topic's partitions every interval (FsyncInterval).
func (t *Topic) syncLoop(interval time.Duration, stop chan struct{}) {
	defer t.log.wg.Done()
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			for _, p := range t.partitions() {
				p.syncNow() // failures are sticky in the partition and logged
			}
		}
	}
}

func (l *Log) retentionLoop(every time.Duration) {
	defer l.wg.Done()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tk.C:
			if err := l.EnforceRetention(time.Now()); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("retention failed", "err", err)
			}
		}
	}
}

// Close stops background work, flushes and fsyncs every partition, writes
// their recovery points and producer-state snapshots and releases the
// directory lock. Appends and reads after Close fail with ErrClosed; pending
// Waits return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.cleanerWG.Wait()
	err := l.closeTopics()
	l.wg.Wait()
	if cerr := l.lock.Close(); err == nil && cerr != nil {
		err = ioError("unlock data directory", cerr)
	}
	return err
}

func (l *Log) closeTopics() error {
	l.mu.Lock()
	topics := make([]*Topic, 0, len(l.topics))
	for _, t := range l.topics {
		topics = append(topics, t)
	}
	l.mu.Unlock()
	var errs []error
	for _, t := range topics {
		if err := t.closePartitions(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *Topic) closePartitions() error {
	t.cfgMu.Lock()
	t.stopSyncLoop()
	t.cfgMu.Unlock()
	var errs []error
	for _, p := range t.partitions() {
		if err := p.close(false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close flushes and checkpoints the partition and closes its files. With
// deleting, the data is about to be removed: nothing is flushed.
func (p *Partition) close(deleting bool) error {
	p.stopCleaning()
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	var err error
	if !deleting && p.syncErr == nil {
		if err = p.flushLocked(true); err == nil {
			err = p.trimPrefill(p.active)
		}
		if err == nil {
			if err = p.snapshotProducers(p.nextOffset); err == nil {
				err = p.checkpoint()
			}
		}
	}
	if deleting {
		// Appenders still waiting for a commit get ErrClosed.
		p.syncErr = fmt.Errorf("partition %s: %w (topic deleted)", p.name, ErrClosed)
		p.bumpEpoch(p.syncErr)
		p.dropPendingLocked()
	}
	p.closed = true
	p.deleted = deleting
	p.closedSync = true
	close(p.closing)
	// A write-ahead that took its batches before closed was set finishes
	// before the files close; later ones see closed and write nothing.
	p.mu.Unlock()
	p.writeMu.Lock()
	p.writeMu.Unlock() //nolint:staticcheck // waiting for the holder is the point
	p.fillWG.Wait()    // the filler sees closed and stops (it takes no syncMu)
	p.closeFillSyncer()
	p.mu.Lock()
	p.segMu.Lock()
	for _, s := range p.segments {
		s.deleted.Store(true)
		s.release()
	}
	p.segMu.Unlock()
	if err != nil {
		return fmt.Errorf("partition %s: close: %w", p.name, err)
	}
	return nil
}

// CreateTopic creates a topic and its partition directories durably.
// It fails with ErrInvalidTopic for a bad name or configuration and
// ErrTopicExists if the name is taken.
func (l *Log) CreateTopic(name string, cfg TopicConfig) error {
	if err := ValidTopicName(name); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("topic %s: %w", name, err)
	}
	if err := l.checkRemoteConfig(nil, cfg); err != nil {
		return fmt.Errorf("topic %s: %w", name, err)
	}
	cfg.ID = newTopicID()
	cfg.RemoteID = "" // a new topic never shares another one's remote segments
	assignRemoteID(nil, &cfg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("create topic %s: %w", name, ErrClosed)
	}
	if _, ok := l.topics[name]; ok {
		return fmt.Errorf("topic %s: %w", name, ErrTopicExists)
	}
	// Build the topic in trash/ and rename it into place, so that a crash
	// never leaves a half-created topic.
	tmp := filepath.Join(l.dir, trashDir, fmt.Sprintf("create-%d", time.Now().UnixNano()))
	for i := int32(0); i < cfg.Partitions; i++ {
		if err := l.fs.MkdirAll(filepath.Join(tmp, strconv.Itoa(int(i))), 0o755); err != nil {
			return ioError("create topic "+name, err)
		}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.fs, filepath.Join(tmp, topicConfig), append(b, '\n')); err != nil {
		l.fs.RemoveAll(tmp)
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	final := filepath.Join(l.dir, topicsDir, name)
	if err := l.fs.Rename(tmp, final); err != nil {
		l.fs.RemoveAll(tmp)
		return ioError("create topic "+name, err)
	}
	if err := l.fs.SyncDir(filepath.Join(l.dir, topicsDir)); err != nil {
		return ioError("create topic "+name, err)
	}
	t, err := l.openTopic(name, cfg)
	if err != nil {
		return err
	}
	l.topics[name] = t
	return nil
}

// CheckTopicConfig reports whether CreateTopic would accept cfg's settings,
// its partition count aside: each config in range and the configs
// consistent with one another and with this log (remote storage). The
// error wraps ErrInvalidTopic or ErrInvalidConfig.
func (l *Log) CheckTopicConfig(cfg TopicConfig) error {
	cfg.Partitions = 1 // checked by the caller, against its own bound
	if err := cfg.validate(); err != nil {
		return err
	}
	return l.checkRemoteConfig(nil, cfg)
}

// DeleteTopic closes the topic's partitions (pending reads and waits fail
// with ErrClosed) and removes its data. ErrUnknownTopic if it does not
// exist. It is UnlinkTopic and then DeletedTopic.Remove.
func (l *Log) DeleteTopic(name string) error {
	d, err := l.UnlinkTopic(name)
	if err != nil {
		return err
	}
	d.Remove()
	return nil
}

// DeletedTopic is a topic UnlinkTopic deleted whose files are still to be
// removed (Remove).
type DeletedTopic struct {
	l   *Log
	dir string // in trash/
}

// UnlinkTopic deletes a topic quickly, whatever its size: it closes its
// partitions (pending reads and waits fail with ErrClosed) and moves its
// directory to the log's trash, durably, so that the name is free at once
// (a topic created again under it starts empty) and a crash never brings
// the topic back; its remote segments, if any, go in the background. The
// files, which take a while to remove for a large topic, are removed by
// the returned DeletedTopic's Remove, which a caller runs outside its own
// locks; if it never runs (a crash), the next Open removes them.
// ErrUnknownTopic if the topic does not exist.
func (l *Log) UnlinkTopic(name string) (*DeletedTopic, error) {
	var cfg TopicConfig
	if t, err := l.Topic(name); err == nil {
		cfg = t.Config()
	}
	if cfg.RemoteID != "" {
		// Before it goes: the tier removes only the remote folders of
		// topics recorded deleted.
		if err := l.recordRemoteDeleted(name + "-" + cfg.RemoteID); err != nil {
			return nil, fmt.Errorf("delete topic %s: record its remote folder for removal: %w", name, err)
		}
	}
	gone, err := l.unlinkTopic(name)
	if err != nil {
		return nil, err
	}
	if h := l.remote.Load(); h != nil && cfg.RemoteID != "" {
		if td, ok := h.rt.(interface{ TopicDeleted(name, remoteID string) }); ok {
			td.TopicDeleted(name, cfg.RemoteID) // its remote segments go too
		}
	}
	return &DeletedTopic{l: l, dir: gone}, nil
}

// Remove removes the deleted topic's files. A failure is logged (the next
// Open removes what is left): the topic is deleted already.
func (d *DeletedTopic) Remove() {
	if err := d.l.fs.RemoveAll(d.dir); err != nil {
		d.l.logger.Warn("deleted topic's files not fully removed; they go at the next open", "dir", d.dir, "err", err)
	}
}

// unlinkTopic closes the topic and moves its directory to the trash,
// returning where it went.
func (l *Log) unlinkTopic(name string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", fmt.Errorf("delete topic %s: %w", name, ErrClosed)
	}
	t, ok := l.topics[name]
	if !ok {
		return "", fmt.Errorf("topic %s: %w", name, ErrUnknownTopic)
	}
	delete(l.topics, name)
	t.cfgMu.Lock()
	t.deleted = true
	t.stopSyncLoop()
	t.cfgMu.Unlock()
	for _, p := range t.partitions() {
		p.close(true)
	}
	if err := l.fs.MkdirAll(filepath.Join(l.dir, trashDir), 0o755); err != nil {
		return "", ioError("delete topic "+name, err)
	}
	gone := filepath.Join(l.dir, trashDir, fmt.Sprintf("delete-%d", time.Now().UnixNano()))
	if err := l.fs.Rename(t.dir, gone); err != nil {
		return "", ioError("delete topic "+name, err)
	}
	if err := l.fs.SyncDir(filepath.Join(l.dir, topicsDir)); err != nil {
		return "", ioError("delete topic "+name, err)
	}
	return gone, nil
}

// Topic returns the named topic, or an error matching ErrUnknownTopic.
func (l *Log) Topic(name string) (*Topic, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, fmt.Errorf("topic %s: %w", name, ErrClosed)
	}
	t, ok := l.topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %s: %w", name, ErrUnknownTopic)
	}
	return t, nil
}

// Topics returns the names of all topics, sorted, internal ones ("__...")
// included.
func (l *Log) Topics() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	names := make([]string, 0, len(l.topics))
	for n := range l.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Dir returns the data directory.
func (l *Log) Dir() string { return l.dir }

// DefaultPartitions is the partition count for auto-created topics.
func (l *Log) DefaultPartitions() int32 { return l.opts.DefaultPartitions }

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// ID returns the topic's id (see TopicID).
func (t *Topic) ID() TopicID { return t.cfg.Load().ID }

// Config returns the topic's configuration as created.
func (t *Topic) Config() TopicConfig { return *t.cfg.Load() }

// Cleanup returns the topic's effective cleanup policy (its own, or the
// log's default).
func (t *Topic) Cleanup() CleanupPolicy { return t.log.cleanupOf(t.Config()) }

// NumPartitions returns the number of partitions.
func (t *Topic) NumPartitions() int32 { return int32(len(t.partitions())) }

// Partition returns partition p, or an error matching ErrPartitionOutOfRange.
func (t *Topic) Partition(p int32) (*Partition, error) {
	parts := t.partitions()
	if p < 0 || int(p) >= len(parts) {
		return nil, fmt.Errorf("topic %s: partition %d: %w (the topic has %d)", t.name, p, ErrPartitionOutOfRange, len(parts))
	}
	return parts[p], nil
}

// PartitionForKey returns the partition Kafka's default partitioner chooses
// for key (murmur2), so that Sluice and Kafka clients agree on where a key
// lives. A nil key gets partitions in round robin.
func (t *Topic) PartitionForKey(key []byte) int32 {
	n := int32(len(t.partitions()))
	if key == nil {
		return int32((t.rr.Add(1) - 1) % uint32(n))
	}
	return record.KafkaPartition(key, n)
}
