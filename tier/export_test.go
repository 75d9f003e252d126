package tier

// PoisonChunkBuffers makes t overwrite every chunk buffer it releases, so
// that a read of a chunk after its release shows as corrupt data.
func PoisonChunkBuffers(t *Tier) { t.cache.poison = true }

// LiveChunkBuffers empties t's memory tier and returns how many chunk
// buffers are still held (0 once every read has released its chunks).
func LiveChunkBuffers(t *Tier) int64 {
	t.cache.forgetAll()
	return t.cache.live.Load()
}

// WaitBackground waits for t's background fetches (prefetch and
// read-ahead) started so far.
func WaitBackground(t *Tier) { t.bg.Wait() }

// SetBackgroundFetching sets t's count of chunks being fetched in the
// background (tests: at the bound, nothing more is prefetched).
func SetBackgroundFetching(t *Tier, n int32) { t.fetching.Store(n) }

// MaxBackgroundFetches is the bound of the chunks fetched in the
// background at once.
const MaxBackgroundFetches = maxBackgroundFetches

// IndexedSegments returns how many remote segments of a partition have
// their index kept in memory.
func IndexedSegments(t *Tier, topic string, part int32) int {
	ps := t.state(topic, part)
	ps.idxMu.Lock()
	defer ps.idxMu.Unlock()
	return len(ps.idx)
}

// ReadAheadAfterSegment runs the read-ahead of a sequential reader that
// read the whole i-th remote segment of a partition (readBytes of it).
func ReadAheadAfterSegment(t *Tier, topic string, part int32, i int, readBytes int64) {
	ps, m := t.loaded(topic, part)
	s := &m.Segments[i]
	r := &segReader{t: t, ps: ps, s: s}
	r.readAhead(s.Size, readBytes)
	r.release()
}

// SweepDeletedTopics runs t's removal of deleted topics' folders once (the
// uploader runs it after its first successful pass).
func SweepDeletedTopics(t *Tier) error {
	ctx, cancel := t.ctx()
	defer cancel()
	return t.removeDeletedTopics(ctx)
}
