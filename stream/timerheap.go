package stream

// timerEntry is a pending firing: at time t, for slot (a window or a
// timer), valid while the slot's generation is still gen.
type timerEntry struct {
	t       int64
	slot    int32
	gen     uint32
	cleanup bool
}

// timerHeap is a binary min-heap of timer entries by time. Entries made
// stale (the slot was merged, rescheduled or freed) are skipped when they
// come up, which is cheaper than removing them.
type timerHeap []timerEntry

func (h timerHeap) min() (timerEntry, bool) {
	if len(h) == 0 {
		return timerEntry{}, false
	}
	return h[0], true
}

func (h *timerHeap) push(e timerEntry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].t <= s[i].t {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *timerHeap) pop() timerEntry {
	s := *h
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
		if r := l + 1; r < len(s) && s[r].t < s[l].t {
			m = r
		}
		if s[i].t <= s[m].t {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
