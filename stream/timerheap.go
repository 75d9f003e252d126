package stream

// timerEntry is a pending firing: at time t, for slot (a window or a
// timer), valid while the slot's generation is still gen.
type timerEntry struct {
	t       int64
	slot    int32
	gen     uint32
	cleanup bool
}

// timerQueue holds timer entries grouped by time: a min-heap of the
// distinct times, each with a bucket of entries. Windows of fixed size end
// together (every key's window [0s,10s) fires at 9.999s), so a firing
// costs one step through a bucket instead of one heap operation per
// window. Entries made stale (the slot was merged, rescheduled or freed)
// are skipped when they come up, which is cheaper than removing them.
//
// A bucket holds its entries in chunks of at most chunkSize (once it has
// grown past one chunk): a bucket of every key's window (a million
// entries) then grows without copying what it holds, which as one slice
// cost q5 a seventh of its CPU in growslice and in faulting in the fresh
// memory of each growth. Chunks of recycled buckets are kept for reuse.
type timerQueue struct {
	times   []int64         // min-heap of the times that have a bucket
	buckets map[int64]int32 // time -> index in lists
	lists   [][][]timerEntry
	free    []int32
	spare   [][]timerEntry // empty chunks of chunkSize capacity
	// chunk is the chunk size; 0 means timerChunk (tests set it small).
	chunk int
	// last is the bucket of the most recent push: pushes come in runs of
	// one time (every key opening the same window).
	lastT int64
	lastB int32
}

// timerChunk is the number of entries per chunk of a large bucket.
const timerChunk = 1024

func (q *timerQueue) chunkSize() int {
	if q.chunk > 0 {
		return q.chunk
	}
	return timerChunk
}

// add appends e to bucket b: to its last chunk while that has room or is
// still smaller than a chunk, else to a new chunk.
func (q *timerQueue) add(b int32, e timerEntry) {
	cs := q.lists[b]
	if n := len(cs); n > 0 {
		if c := cs[n-1]; len(c) < cap(c) || cap(c) < q.chunkSize() {
			cs[n-1] = append(c, e)
			return
		}
	}
	var c []timerEntry
	if n := len(q.spare); n > 0 && len(cs) > 0 {
		c = q.spare[n-1]
		q.spare[n-1] = nil
		q.spare = q.spare[:n-1]
	} else if len(cs) > 0 {
		c = make([]timerEntry, 0, q.chunkSize())
	}
	q.lists[b] = append(cs, append(c, e))
}

func (q *timerQueue) len() int { return len(q.times) }

// min returns the earliest time with pending entries.
func (q *timerQueue) min() (int64, bool) {
	if len(q.times) == 0 {
		return 0, false
	}
	return q.times[0], true
}

func (q *timerQueue) push(e timerEntry) {
	if q.lastB > 0 && q.lastT == e.t {
		q.add(q.lastB-1, e)
		return
	}
	if q.buckets == nil {
		q.buckets = make(map[int64]int32)
	}
	b, ok := q.buckets[e.t]
	if !ok {
		if n := len(q.free); n > 0 {
			b = q.free[n-1]
			q.free = q.free[:n-1]
		} else {
			q.lists = append(q.lists, nil)
			b = int32(len(q.lists) - 1)
		}
		q.buckets[e.t] = b
		q.pushTime(e.t)
	}
	q.add(b, e)
	q.lastT, q.lastB = e.t, b+1
}

// take removes the bucket of the earliest time and returns its entries
// (in chunks) and its index for done. Entries pushed while the caller goes
// through them land in other buckets, even for the same time.
func (q *timerQueue) take() ([][]timerEntry, int32) {
	t := q.popTime()
	b := q.buckets[t]
	delete(q.buckets, t)
	if q.lastB == b+1 {
		q.lastB = 0
	}
	return q.lists[b], b
}

// done recycles bucket b after take.
func (q *timerQueue) done(b int32) {
	cs := q.lists[b]
	if len(cs) == 0 {
		q.free = append(q.free, b)
		return
	}
	// The first chunk stays with the bucket (most buckets have one),
	// the others go to the spares.
	for i, c := range cs {
		clear(c)
		if i > 0 {
			q.spare = append(q.spare, c[:0])
			cs[i] = nil
		}
	}
	q.lists[b] = append(cs[:0], cs[0][:0])
	q.free = append(q.free, b)
}

func (q *timerQueue) pushTime(t int64) {
	q.times = append(q.times, t)
	s := q.times
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (q *timerQueue) popTime() int64 {
	s := q.times
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r] < s[l] {
			m = r
		}
		if s[i] <= s[m] {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	q.times = s
	return top
}
