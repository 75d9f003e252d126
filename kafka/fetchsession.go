package kafka

import (
	"container/list"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch session epochs (KIP-227). A request with session id 0 and epoch 0
// asks for a new session; epoch -1 is a full fetch without a session (and
// closes the session named, if any).
const (
	sessionInitialEpoch           int32 = 0
	sessionFinalEpoch             int32 = -1
	firstFetchVersionWithSessions int16 = 7
)

// Fetch session cache defaults (Config.FetchSessionCacheSlots and
// FetchSessionIdleTimeout), Kafka's.
const (
	defaultFetchSessionSlots = 1000
	defaultFetchSessionIdle  = 2 * time.Minute
)

// fetchKey names a partition in a fetch.
type fetchKey struct {
	topic     string
	partition int32
}

// fetchWant is what a fetch asks of one partition.
type fetchWant struct {
	fetchKey
	offset           int64
	maxBytes         int32
	currentEpoch     int32 // the client's idea of the leader epoch; -1 = unchecked
	lastFetchedEpoch int32 // epoch of the last batch the client fetched; -1 = unknown
}

// sessionPart is a partition of a fetch session: what the client last asked
// of it and the offsets last answered, so that an incremental response
// carries only what changed.
type sessionPart struct {
	want                     fetchWant
	hwm, lso, logStartOffset int64
}

// fetchSession is an incremental fetch session of one client.
type fetchSession struct {
	id    int32
	epoch int32 // the epoch the next request must carry
	parts []*sessionPart
	byKey map[fetchKey]*sessionPart
	used  time.Time
	elem  *list.Element // in fetchSessions.lru
}

// FetchSessionStats counts the incremental fetch sessions (KIP-227) of a
// server.
type FetchSessionStats struct {
	Open        int   // sessions in the cache now
	Created     int64 // sessions created by full fetches with epoch 0
	Incremental int64 // incremental fetches served (valid session id and epoch)
	Closed      int64 // sessions closed or replaced by their client
	Evicted     int64 // sessions evicted, least recently used first, to make room
	Expired     int64 // sessions dropped after being idle for the idle timeout
	Rejected    int64 // incremental fetches answered FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH
}

// fetchSessions is the server's bounded cache of fetch sessions. Sessions
// idle for longer than idle are dropped; when the cache is full a new
// session evicts the least recently used one.
type fetchSessions struct {
	mu       sync.Mutex
	slots    int
	idle     time.Duration
	now      func() time.Time
	sessions map[int32]*fetchSession
	lru      list.List // *fetchSession, least recently used at the front
	stats    FetchSessionStats
}

func newFetchSessions(slots int, idle time.Duration) *fetchSessions {
	return &fetchSessions{slots: slots, idle: idle, now: time.Now, sessions: make(map[int32]*fetchSession)}
}

// fetchContext is how one Fetch request is served: the partitions to read,
// in order, and what to do with the session afterwards.
type fetchContext struct {
	wants   []fetchWant
	session *fetchSession // an incremental fetch of this session
	create  bool          // a full fetch opening a new session
}

// nextSessionEpoch is the epoch after e, wrapping past the largest to 1.
func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// begin decides how req is served. A full fetch (epoch 0 or -1) closes the
// session it names and reads the partitions of the request; with epoch 0 a
// new session is opened by end. An incremental fetch updates its session
// with the request's partitions, drops the forgotten ones and reads every
// partition of the session; an unknown session id or a wrong epoch is a
// top-level error code.
func (c *fetchSessions) begin(req *kmsg.FetchRequest) (*fetchContext, int16) {
	if req.Version < firstFetchVersionWithSessions {
		return &fetchContext{wants: requestWants(req)}, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	if req.SessionEpoch == sessionInitialEpoch || req.SessionEpoch == sessionFinalEpoch {
		if sess := c.sessions[req.SessionID]; req.SessionID != 0 && sess != nil {
			c.removeLocked(sess)
			c.stats.Closed++
		}
		return &fetchContext{wants: requestWants(req), create: req.SessionEpoch == sessionInitialEpoch}, 0
	}
	sess := c.sessions[req.SessionID]
	if sess == nil {
		c.stats.Rejected++
		return nil, kerr.FetchSessionIDNotFound.Code
	}
	if req.SessionEpoch != sess.epoch {
		c.stats.Rejected++
		return nil, kerr.InvalidFetchSessionEpoch.Code
	}
	for _, w := range requestWants(req) {
		if sp := sess.byKey[w.fetchKey]; sp != nil {
			sp.want = w
			continue
		}
		sp := &sessionPart{want: w, hwm: -1, lso: -1, logStartOffset: -1}
		sess.parts = append(sess.parts, sp)
		sess.byKey[w.fetchKey] = sp
	}
	for _, ft := range req.ForgottenTopics {
		for _, part := range ft.Partitions {
			k := fetchKey{ft.Topic, part}
			if sess.byKey[k] == nil {
				continue
			}
			delete(sess.byKey, k)
			sess.parts = slices.DeleteFunc(sess.parts, func(sp *sessionPart) bool { return sp.want.fetchKey == k })
		}
	}
	sess.epoch = nextSessionEpoch(sess.epoch)
	c.touchLocked(sess)
	c.stats.Incremental++
	fc := &fetchContext{session: sess, wants: make([]fetchWant, len(sess.parts))}
	for i, sp := range sess.parts {
		fc.wants[i] = sp.want
	}
	return fc, 0
}

// end finishes a fetch once its partitions are answered (outs, parallel to
// fc.wants). It returns the session id of the response and which
// partitions it carries (nil: all of them). A full fetch with epoch 0 opens
// a session remembering what was answered; an incremental one carries only
// the partitions with news (records, an error, a diverging epoch, a changed
// high watermark, last stable offset or log start offset) and moves those
// that returned records to the end of the session's order, so that every
// partition gets its turn when responses fill up.
func (c *fetchSessions) end(fc *fetchContext, outs []kmsg.FetchResponseTopicPartition) (int32, []bool) {
	switch {
	case fc.session != nil:
		c.mu.Lock()
		defer c.mu.Unlock()
		sess := fc.session
		include := make([]bool, len(outs))
		var rotate []*sessionPart
		for i := range outs {
			sp := sess.byKey[fc.wants[i].fetchKey]
			if sp == nil { // dropped meanwhile (a concurrent misuse): just report
				include[i] = true
				continue
			}
			include[i] = sp.record(&outs[i])
			if len(outs[i].RecordBatches) > 0 {
				rotate = append(rotate, sp)
			}
		}
		if len(rotate) > 0 {
			moved := make(map[*sessionPart]bool, len(rotate))
			for _, sp := range rotate {
				moved[sp] = true
			}
			sess.parts = append(slices.DeleteFunc(sess.parts, func(sp *sessionPart) bool { return moved[sp] }), rotate...)
		}
		return sess.id, include
	case fc.create:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.createLocked(fc.wants, outs), nil
	}
	return 0, nil
}

// record remembers what out answers for the partition and reports whether
// an incremental response must carry it.
func (sp *sessionPart) record(out *kmsg.FetchResponseTopicPartition) bool {
	must := len(out.RecordBatches) > 0 || out.ErrorCode != 0 || out.DivergingEpoch.Epoch >= 0
	if out.HighWatermark != sp.hwm || out.LastStableOffset != sp.lso || out.LogStartOffset != sp.logStartOffset {
		must = true
		sp.hwm, sp.lso, sp.logStartOffset = out.HighWatermark, out.LastStableOffset, out.LogStartOffset
	}
	if out.ErrorCode != 0 {
		sp.hwm = -1 // answer the partition again once the error is gone
	}
	return must
}

// createLocked opens a session over the partitions of a full fetch and
// returns its id, or 0 when the cache holds no sessions at all.
func (c *fetchSessions) createLocked(wants []fetchWant, outs []kmsg.FetchResponseTopicPartition) int32 {
	if c.slots <= 0 {
		return 0
	}
	for len(c.sessions) >= c.slots {
		lru := c.lru.Front().Value.(*fetchSession)
		c.removeLocked(lru)
		c.stats.Evicted++
	}
	sess := &fetchSession{id: c.newIDLocked(), epoch: nextSessionEpoch(sessionInitialEpoch), byKey: make(map[fetchKey]*sessionPart, len(wants))}
	for i, w := range wants {
		sp := sess.byKey[w.fetchKey]
		if sp == nil {
			sp = &sessionPart{}
			sess.byKey[w.fetchKey] = sp
			sess.parts = append(sess.parts, sp)
		}
		sp.want = w
		sp.record(&outs[i])
	}
	c.sessions[sess.id] = sess
	sess.elem = c.lru.PushBack(sess)
	sess.used = c.now()
	c.stats.Created++
	return sess.id
}

// newIDLocked picks a random positive session id not in use.
func (c *fetchSessions) newIDLocked() int32 {
	for {
		id := mrand.Int32N(math.MaxInt32) + 1
		if c.sessions[id] == nil {
			return id
		}
	}
}

func (c *fetchSessions) touchLocked(sess *fetchSession) {
	sess.used = c.now()
	if sess.elem != nil {
		c.lru.MoveToBack(sess.elem)
	}
}

func (c *fetchSessions) removeLocked(sess *fetchSession) {
	delete(c.sessions, sess.id)
	if sess.elem != nil {
		c.lru.Remove(sess.elem)
		sess.elem = nil
	}
}

// expireLocked drops the sessions idle for the idle timeout or longer.
func (c *fetchSessions) expireLocked() {
	now := c.now()
	for e := c.lru.Front(); e != nil; e = c.lru.Front() {
		sess := e.Value.(*fetchSession)
		if now.Sub(sess.used) < c.idle {
			return
		}
		c.removeLocked(sess)
		c.stats.Expired++
	}
}

// snapshot returns the counters.
func (c *fetchSessions) snapshot() FetchSessionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Open = len(c.sessions)
	return st
}

// requestWants lists the partitions of req in order. Fields the request's
// version does not carry keep their "unknown" values.
func requestWants(req *kmsg.FetchRequest) []fetchWant {
	var wants []fetchWant
	for i := range req.Topics {
		rt := &req.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			w := fetchWant{fetchKey: fetchKey{rt.Topic, rp.Partition}, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
				currentEpoch: noLeaderEpoch, lastFetchedEpoch: noLeaderEpoch}
			if req.Version >= 9 {
				w.currentEpoch = rp.CurrentLeaderEpoch
			}
			if req.Version >= 12 {
				w.lastFetchedEpoch = rp.LastFetchedEpoch
			}
			wants = append(wants, w)
		}
	}
	return wants
}

// FetchSessionStats returns the counters of the server's incremental fetch
// sessions.
func (s *Server) FetchSessionStats() FetchSessionStats { return s.sessions.snapshot() }
