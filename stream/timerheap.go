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
type timerQueue struct {
	times   []int64         // min-heap of the times that have a bucket
	buckets map[int64]int32 // time -> index in lists
	lists   [][]timerEntry
	free    []int32
	// last is the bucket of the most recent push: pushes come in runs of
	// one time (every key opening the same window).
	lastT int64
	lastB int32
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
		q.lists[q.lastB-1] = append(q.lists[q.lastB-1], e)
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
	q.lists[b] = append(q.lists[b], e)
	q.lastT, q.lastB = e.t, b+1
}

// take removes the bucket of the earliest time and returns its entries
// and its index for done. Entries pushed while the caller goes through
// them land in other buckets, even for the same time.
func (q *timerQueue) take() ([]timerEntry, int32) {
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
	clear(q.lists[b])
	q.lists[b] = q.lists[b][:0]
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
