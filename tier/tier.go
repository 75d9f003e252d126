package tier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
)

// Options configure Open. Zero values take the defaults stated.
type Options struct {
	// Store holds the remote segments (required).
	Store objstore.Store
	// Log is the log whose remote-enabled topics the tier serves (required).
	// Open wires the tier into it (Log.SetRemoteTier).
	Log *logstore.Log
	// Logger; nil = slog.Default().
	Logger *slog.Logger
	// Registerer receives the sluice_tier_* metrics; nil = none.
	Registerer prometheus.Registerer
	// CacheDir holds the chunks of remote segments fetched a second time
	// (a chunk read once is only kept in memory); the chunk files a
	// previous run left there are removed on Open, and nothing else.
	// Default: <log dir>/tier-cache.
	CacheDir string
	// CacheBytes bounds the chunk cache's files, and the chunks whose
	// first fetch it remembers. Default 256 MiB.
	CacheBytes int64
	// ChunkBytes is the size of one ranged GET of a remote segment and of
	// one cache entry, fixed per segment at upload. Default 1 MiB.
	ChunkBytes int64
	// UploadInterval is how often the uploader looks for sealed segments
	// and applies remote retention besides the wake-ups of segment rolls.
	// Default 10s.
	UploadInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// upload or manifest write. Default 200ms and 30s.
	RetryMin, RetryMax time.Duration
	// OpTimeout bounds one store operation; the upload of a segment's log
	// gets as long again as it takes at 1 MiB/s. Default 2 minutes.
	OpTimeout time.Duration
}

// Tier is the remote tier of a log. It is safe for concurrent use.
type Tier struct {
	opts   Options
	store  objstore.Store
	log    *logstore.Log
	logger *slog.Logger
	cache  *chunkCache
	m      *metrics

	mu    sync.Mutex
	parts map[partKey]*partState
	// gone holds the object folders (TOPIC-REMOTEID) of the topics deleted
	// since Open: state never makes a partition state for one again, even
	// when it looked the topic up just before its deletion.
	gone map[string]bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	// base is the parent of every store call's context, cancelled by
	// Close; bg counts the background fetches (read-ahead) Close waits
	// for.
	base       context.Context
	cancelBase context.CancelFunc
	bgMu       sync.Mutex
	bg         sync.WaitGroup
	bgClosed   bool
	fetching   atomic.Int32 // fetches running in the background (prefetch, read-ahead; maxBackgroundFetches)
	closed     atomic.Bool
	opened     atomic.Bool // Open has met every partition there was (partState.atOpen)
	storeUp    atomic.Bool
}

type partKey struct {
	topic string
	part  int32
}

// partState is the remote state of one partition.
type partState struct {
	key    partKey
	dir    string // object key prefix: <topic>-<remote id>/<partition>
	man    atomic.Pointer[manifest]
	loaded atomic.Bool
	manMu  sync.Mutex // serialises manifest changes
	idxMu  sync.Mutex
	idx    map[string]*logstore.SegmentIndex // by upload id
	// idxFetching holds the upload ids whose index the read-ahead is
	// fetching (idxMu), so that readers fetch each once.
	idxFetching map[string]bool
	uploadMu    sync.Mutex // the uploader's; held while it uploads
	// deleted is set when the partition's topic is deleted: the uploader
	// leaves the partition alone from then on (it may still hold it from
	// a pass that started before) and writes no manifest for it (checked
	// under manMu), so that nothing stays in its folder after the
	// deletion emptied it.
	deleted atomic.Bool
	// unreadable holds the manifest versions found damaged when the
	// manifest was loaded (manMu): they are never deleted, and while one
	// is there no orphan is swept.
	unreadable  map[int64]bool
	nUnreadable atomic.Int32 // len(unreadable), for the metrics
	// atOpen is set for the partitions the tier found when it opened:
	// only their folders may hold segments before their manifest is
	// loaded. A partition met later (a topic created, or given remote
	// storage, since: a fresh remote id; a partition added) has none.
	atOpen bool
}

// Open starts the tier of opts.Log on opts.Store: it wires itself into the
// log, loads the manifests of the remote-enabled partitions (removing
// objects no manifest names) and starts the uploader. A store that cannot
// be reached is not an error: the uploader retries, and until then nothing
// is deleted locally.
func Open(opts Options) (*Tier, error) {
	if opts.Store == nil || opts.Log == nil {
		return nil, errors.New("tier: Options.Store and Options.Log are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(opts.Log.Dir(), "tier-cache")
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 256 << 20
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 1 << 20
	}
	if opts.UploadInterval <= 0 {
		opts.UploadInterval = 10 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 200 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 2 * time.Minute
	}
	t := &Tier{
		opts: opts, store: opts.Store, log: opts.Log, logger: opts.Logger,
		parts: map[partKey]*partState{}, gone: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	t.storeUp.Store(true)
	cache, err := newChunkCache(opts.CacheDir, opts.CacheBytes)
	if err != nil {
		return nil, err
	}
	t.cache = cache
	t.m = newMetrics(t)
	if opts.Registerer != nil {
		if err := t.m.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	t.base, t.cancelBase = context.WithCancel(context.Background())
	opts.Log.SetRemoteTier(t)
	// Load what can be loaded now, so that reads of the remote range work
	// from the start; the uploader retries the rest. Not past the first
	// failure of the store itself: one that does not answer would hold the
	// server's start for OpTimeout per partition.
	for _, p := range t.remotePartitions() {
		if _, err := t.load(p); err != nil {
			t.logger.Warn("remote storage: cannot load a partition's manifest yet; retrying in the background (nothing is deleted locally meanwhile)",
				"partition", p.key.topic+"/"+strconv.Itoa(int(p.key.part)), "store", t.store.String(), "err", err)
			if !t.storeUp.Load() {
				break // the uploader loads the others
			}
		}
	}
	t.opened.Store(true)
	go t.run()
	return t, nil
}

// Close stops the uploader (an upload in progress is abandoned; it is
// retried after the next start) and unwires the tier from the log.
func (t *Tier) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	close(t.stop)
	t.cancelBase()
	<-t.done
	t.bgMu.Lock()
	t.bgClosed = true
	t.bgMu.Unlock()
	t.bg.Wait()
	t.log.SetRemoteTier(nil)
	return nil
}

// background runs fn in a goroutine that Close waits for, unless the tier
// is closing; it reports whether it did.
func (t *Tier) background(fn func()) bool {
	t.bgMu.Lock()
	defer t.bgMu.Unlock()
	if t.bgClosed {
		return false
	}
	t.bg.Add(1)
	go func() {
		defer t.bg.Done()
		fn()
	}()
	return true
}

// Kick wakes the uploader now.
func (t *Tier) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// state returns the state of a partition of a remote-enabled topic (nil if
// the topic does not exist or has no remote storage).
func (t *Tier) state(topic string, part int32) *partState {
	k := partKey{topic, part}
	t.mu.Lock()
	ps := t.parts[k]
	t.mu.Unlock()
	if ps != nil {
		return ps
	}
	tp, err := t.log.Topic(topic)
	if err != nil {
		return nil
	}
	cfg := tp.Config()
	if !cfg.RemoteStorage || cfg.RemoteID == "" || part < 0 || part >= tp.NumPartitions() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps := t.parts[k]; ps != nil {
		return ps
	}
	if t.gone[topic+"-"+cfg.RemoteID] {
		return nil // deleted after we looked it up
	}
	ps = &partState{key: k, dir: partDir(topic, cfg.RemoteID, part), idx: map[string]*logstore.SegmentIndex{}, atOpen: !t.opened.Load()}
	t.parts[k] = ps
	return ps
}

// partDir is the object folder of a partition: TOPIC-REMOTEID/PARTITION.
func partDir(topic, remoteID string, part int32) string {
	return fmt.Sprintf("%s-%s/%d", topic, remoteID, part)
}

// remotePartitions lists the states of every partition of every
// remote-enabled topic.
func (t *Tier) remotePartitions() []*partState {
	var out []*partState
	for _, name := range t.log.Topics() {
		tp, err := t.log.Topic(name)
		if err != nil || !tp.Config().RemoteStorage {
			continue
		}
		for i := int32(0); i < tp.NumPartitions(); i++ {
			if ps := t.state(name, i); ps != nil {
				out = append(out, ps)
			}
		}
	}
	return out
}

func (t *Tier) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.base, t.opts.OpTimeout)
}

// minTransferRate is the slowest transfer to the store that an upload
// allows for, in bytes per second: a segment's log gets OpTimeout plus the
// time it takes at that rate, since a fixed bound would fail every upload
// of a segment larger than it can carry (2 minutes hold 128 MiB only at
// 1.1 MB/s), retried for ever while the local disk fills.
const minTransferRate = 1 << 20

// transferCtx is ctx for a store call that carries n bytes.
func (t *Tier) transferCtx(n int64) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.base, t.opts.OpTimeout+time.Duration(n)*time.Second/minTransferRate)
}

// load reads the partition's newest good manifest once, and removes the
// objects no manifest names (leftovers of interrupted uploads and
// deletions). Until it succeeds the partition has no remote data.
func (t *Tier) load(ps *partState) (*manifest, error) {
	if ps.loaded.Load() {
		return ps.man.Load(), nil
	}
	ps.manMu.Lock()
	defer ps.manMu.Unlock()
	if ps.loaded.Load() {
		return ps.man.Load(), nil
	}
	ctx, cancel := t.ctx()
	defer cancel()
	objs, err := t.store.List(ctx, ps.dir+"/")
	if err != nil {
		t.noteStore(err)
		return nil, fmt.Errorf("remote storage %s: list %s: %w", t.store, ps.dir, err)
	}
	var versions []int64
	for _, o := range objs {
		if v, ok := parseManifestVersion(o.Key); ok {
			versions = append(versions, v)
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] > versions[j] })
	// Every version is read: the newest good one is used, and any damaged
	// one (newer or older) may name segments no good version names, so
	// while one is there nothing is swept as an orphan — unless a good
	// version was made from it (its based_on), which then holds or
	// deliberately dropped everything the damaged one names.
	var m *manifest
	unreadable := map[int64]bool{}
	damage := map[int64]error{}
	based := map[int64]bool{} // the versions good ones were made from
	for _, v := range versions {
		b, err := objstore.ReadAll(ctx, t.store, manifestKey(ps.dir, v))
		if err != nil {
			t.noteStore(err)
			return nil, fmt.Errorf("remote storage %s: read manifest %d of %s: %w", t.store, v, ps.dir, err)
		}
		mm, err := decodeManifest(b)
		if err == nil && mm.Version != v {
			err = fmt.Errorf("manifest object %d says version %d", v, mm.Version)
		}
		if err != nil {
			unreadable[v], damage[v] = true, err
			continue
		}
		mm.origin = v
		if mm.Based > 0 {
			based[mm.Based] = true
		}
		if m == nil {
			m = mm
		}
	}
	for v := range unreadable {
		if based[v] {
			// A good version was made from this one while it was whole:
			// everything it names is there or was removed on purpose. It
			// no longer holds orphans back and goes like any old version.
			delete(unreadable, v)
			t.logger.Warn("remote storage: a damaged manifest version is superseded by a good version made from it; it is removed like any old version",
				"key", manifestKey(ps.dir, v), "err", damage[v])
			continue
		}
		t.logger.Error("remote storage: a manifest version cannot be read; it is kept, and objects no readable manifest names are kept too (they may be the segments it names). Restore it from a backup or, once you are sure its segments are not needed, delete it so that orphans are removed again",
			"key", manifestKey(ps.dir, v), "err", damage[v])
	}
	ps.nUnreadable.Store(int32(len(unreadable)))
	if m == nil && len(versions) > 0 {
		// Manifests exist but none can be read (damaged, or written by a
		// newer version): starting from an empty one would delete every
		// remote segment as an orphan. Refuse, and retry later.
		return nil, fmt.Errorf("remote storage: partition %s: none of its %d manifest versions can be read; remote data is left untouched (check the store, or the Sluice version that wrote them)", ps.dir, len(versions))
	}
	if m == nil {
		m = &manifest{Topic: ps.key.topic, Partition: ps.key.part}
	}
	t.noteStore(nil)
	if len(versions) > 0 && versions[0] > m.Version {
		// The versions above the one in use are damaged: the next one
		// goes above them all, never over one of them (versions only
		// grow), and serves the reads meanwhile.
		t.logger.Warn("remote storage: using an older manifest version; the segments only the newer, damaged ones name are not read (the local log keeps what the version in use does not name)",
			"dir", ps.dir, "using", m.Version, "newest", versions[0])
		mm := *m
		mm.Version = versions[0]
		m = &mm
	}
	ps.unreadable = unreadable
	if len(unreadable) == 0 {
		t.sweepOrphans(ctx, ps, m, objs)
	}
	ps.man.Store(m)
	ps.loaded.Store(true)
	return m, nil
}

// sweepOrphans removes the objects of ps's folder that m does not name:
// segment objects, and manifests older than m's predecessor. Only when
// every manifest version there could be read: a damaged one may name
// segments no good version names, and while one is there (it is never
// removed by the tier), nothing is removed as an orphan.
func (t *Tier) sweepOrphans(ctx context.Context, ps *partState, m *manifest, objs []objstore.Info) {
	keep := map[string]bool{}
	for _, s := range m.Segments {
		for _, k := range s.keys(ps.dir) {
			keep[k] = true
		}
	}
	for _, o := range objs {
		if v, ok := parseManifestVersion(o.Key); ok {
			if v >= m.Version-1 {
				continue
			}
		} else if keep[o.Key] {
			continue
		}
		if err := t.store.Delete(ctx, o.Key); err != nil {
			t.logger.Warn("remote storage: cannot remove an orphaned object; retried at the next start", "key", o.Key, "err", err)
			continue
		}
		t.logger.Info("remote storage: removed an object no manifest names (an interrupted upload or deletion)", "key", o.Key)
	}
}

// publish writes m as the partition's next manifest version and makes it
// current (manMu held). Older versions but the previous one are deleted.
func (t *Tier) publish(ctx context.Context, ps *partState, m *manifest) error {
	if cur := ps.man.Load(); cur != nil {
		m.Based = cur.origin
	}
	b, err := encodeManifest(m)
	if err != nil {
		return err
	}
	if err := t.store.Put(ctx, manifestKey(ps.dir, m.Version), strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.noteStore(err)
		return fmt.Errorf("remote storage %s: write manifest %d of %s: %w", t.store, m.Version, ps.dir, err)
	}
	m.origin = m.Version
	ps.man.Store(m)
	if m.Version >= 2 && !ps.unreadable[m.Version-2] {
		if err := t.store.Delete(ctx, manifestKey(ps.dir, m.Version-2)); err != nil {
			t.logger.Debug("remote storage: old manifest not removed; removed at the next start", "dir", ps.dir, "err", err)
		}
	}
	return nil
}

// noteStore records whether the store answered (err nil, or "no such
// object": a segment that remote retention deleted under a read) or
// failed. A call we cancelled (Close) says nothing about the store.
func (t *Tier) noteStore(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	up := err == nil || errors.Is(err, objstore.ErrNotExist)
	if t.storeUp.Swap(up) != up {
		if up {
			t.logger.Info("remote storage reachable again; uploads catch up", "store", t.store.String())
		} else {
			t.logger.Warn("remote storage unreachable: uploads wait and local retention keeps what is not yet remote, so the local disk grows",
				"store", t.store.String(), "err", err)
		}
	}
}

// Uploaded implements logstore.RemoteTier.
func (t *Tier) Uploaded(topic string, part int32, base, end int64) bool {
	ps := t.state(topic, part)
	if ps == nil || !ps.loaded.Load() {
		return false
	}
	m := ps.man.Load()
	return m != nil && end <= m.RemoteEnd
}

// RemoteStart implements logstore.RemoteTier.
func (t *Tier) RemoteStart(topic string, part int32) (int64, bool) {
	ps := t.state(topic, part)
	if ps == nil || !ps.loaded.Load() {
		return 0, false
	}
	return ps.man.Load().start()
}

// Ready implements logstore.RemoteTier: the partition's manifest is
// loaded, or it can have no remote segment yet (met after Open).
func (t *Tier) Ready(topic string, part int32) bool {
	ps := t.state(topic, part)
	return ps != nil && (ps.loaded.Load() || !ps.atOpen)
}

// SegmentRolled implements logstore.RemoteTier.
func (t *Tier) SegmentRolled(string, int32) { t.Kick() }

// TopicDeleted removes a deleted topic's remote segments (in the
// background; what a crash leaves is removed at the next start). The
// uploader leaves its partitions alone from now on, and an upload of one
// of them already under way removes what it wrote instead of naming it in
// a manifest, so that nothing stays in the topic's folder after it is
// emptied.
func (t *Tier) TopicDeleted(name, remoteID string) {
	top := name + "-" + remoteID
	var gone []*partState
	t.mu.Lock()
	t.gone[top] = true
	for k, ps := range t.parts {
		if k.topic == name && ps.dir == partDir(name, remoteID, k.part) {
			ps.deleted.Store(true)
			gone = append(gone, ps)
			delete(t.parts, k)
		}
	}
	t.mu.Unlock()
	t.background(func() {
		for _, ps := range gone {
			// A manifest being written is in the folder when we list it;
			// one after that sees deleted and is not written.
			ps.manMu.Lock()
			ps.manMu.Unlock()
		}
		ctx, cancel := t.ctx()
		defer cancel()
		if err := t.deletePrefix(ctx, top+"/"); err != nil {
			t.logger.Warn("remote storage: deleted topic's objects not all removed; removed at the next start", "topic", name, "err", err)
			return
		}
		t.forgetDeleted(top)
	})
}

func (t *Tier) deletePrefix(ctx context.Context, prefix string) error {
	objs, err := t.store.List(ctx, prefix)
	if err != nil {
		return err
	}
	// Manifests first, so that a partial deletion leaves orphans, never a
	// manifest naming missing objects.
	sort.SliceStable(objs, func(i, j int) bool {
		_, mi := parseManifestVersion(objs[i].Key)
		_, mj := parseManifestVersion(objs[j].Key)
		return mi && !mj
	})
	var errs []error
	for _, o := range objs {
		if err := t.store.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forgetDeleted tells the log that the deleted topic's folder is empty.
func (t *Tier) forgetDeleted(top string) {
	if err := t.log.ForgetRemoteDeleted(top); err != nil {
		t.logger.Warn("remote storage: cannot record that a deleted topic's objects are removed; they are looked for again at the next start", "dir", top, "err", err)
	}
}

// removeDeletedTopics deletes the remote objects of topics deleted from
// this data directory (while the tier was not running, or their deletion
// interrupted): only those the log recorded deleted
// (Log.RemoteDeletedTopics). A folder of a topic the log does not know is
// kept and reported: it may be another data directory's, or this one's
// before it lost its topics, and hold the only copy of its data.
func (t *Tier) removeDeletedTopics(ctx context.Context) error {
	objs, err := t.store.List(ctx, "")
	if err != nil {
		return err
	}
	deleted := map[string]bool{}
	for _, d := range t.log.RemoteDeletedTopics() {
		deleted[d] = true
	}
	live := map[string]bool{}
	for _, name := range t.log.Topics() {
		if tp, err := t.log.Topic(name); err == nil && tp.Config().RemoteID != "" {
			live[name+"-"+tp.Config().RemoteID] = true
		}
	}
	// Only folders this tier writes count: TOPIC-REMOTEID (REMOTEID is
	// 16 hex digits) holding PARTITION/manifest-N objects. Anything else
	// under the prefix (checkpoints, another tool's files) is not ours.
	gone := map[string]bool{}
	for _, o := range objs {
		top, rest, ok := strings.Cut(o.Key, "/")
		if !ok || live[top] || !isTopicDir(top) {
			continue
		}
		part, file, ok := strings.Cut(rest, "/")
		if _, err := strconv.Atoi(part); !ok || err != nil || !strings.HasPrefix(file, manifestPrefix) {
			continue
		}
		gone[top] = true
	}
	for top := range gone {
		if !deleted[top] {
			t.logger.Warn("remote storage: keeping the objects of a topic this data directory does not have and did not delete (another server's, or one of this data directory's before it lost its topics); delete them by hand if they are not needed",
				"dir", top, "store", t.store.String())
		}
	}
	for top := range deleted {
		if live[top] {
			continue // its deletion failed after it was recorded
		}
		t.logger.Info("remote storage: removing the objects of a deleted topic", "dir", top)
		if err := t.deletePrefix(ctx, top+"/"); err != nil {
			return err
		}
		t.forgetDeleted(top)
	}
	return nil
}

// isTopicDir reports whether dir has the shape of a topic's remote folder:
// NAME-REMOTEID, REMOTEID being 16 lower-case hex digits.
func isTopicDir(dir string) bool {
	i := strings.LastIndexByte(dir, '-')
	if i <= 0 || len(dir)-i-1 != 16 {
		return false
	}
	for _, c := range dir[i+1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// PartitionInfo describes a partition's remote tier.
type PartitionInfo struct {
	Start, End int64 // remote offsets [Start, End); Start == End when none
	Bytes      int64
	Segments   int
	// LagSegments and LagBytes are the sealed local segments not yet
	// uploaded.
	LagSegments int
	LagBytes    int64
}

// Describe returns the remote state of a partition (false if its topic is
// not remote-enabled or its manifest is not loaded yet).
func (t *Tier) Describe(topic string, part int32) (PartitionInfo, bool) {
	ps := t.state(topic, part)
	if ps == nil || !ps.loaded.Load() {
		return PartitionInfo{}, false
	}
	m := ps.man.Load()
	info := PartitionInfo{Bytes: m.bytes(), Segments: len(m.Segments)}
	if s, ok := m.start(); ok {
		info.Start, info.End = s, m.Segments[len(m.Segments)-1].End
	}
	info.LagSegments, info.LagBytes = t.lag(ps, m)
	return info, true
}

// lag counts the sealed local segments of ps above the manifest's end.
func (t *Tier) lag(ps *partState, m *manifest) (int, int64) {
	tp, err := t.log.Topic(ps.key.topic)
	if err != nil {
		return 0, 0
	}
	p, err := tp.Partition(ps.key.part)
	if err != nil {
		return 0, 0
	}
	var n int
	var b int64
	segs := p.Segments()
	for i := 0; i+1 < len(segs); i++ {
		if segs[i+1].Base > m.RemoteEnd {
			n++
			b += segs[i].Bytes
		}
	}
	return n, b
}
