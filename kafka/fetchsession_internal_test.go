package kafka

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionReq is a Fetch v12 of partitions 0..n-1 of topic "t".
func sessionReq(id, epoch int32, n int) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.SessionID, req.SessionEpoch = id, epoch
	if n > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		for p := range int32(n) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// newOuts returns n default partition answers.
func newOuts(n int) []kmsg.FetchResponseTopicPartition {
	outs := make([]kmsg.FetchResponseTopicPartition, n)
	for i := range outs {
		outs[i] = kmsg.NewFetchResponseTopicPartition()
	}
	return outs
}

// fakeClock is a settable clock for the session cache.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// openSession runs a full fetch with epoch 0 through c.
func openSession(t *testing.T, c *fetchSessions, n int) int32 {
	t.Helper()
	fc, code := c.begin(sessionReq(0, 0, n))
	if code != 0 {
		t.Fatalf("begin: %d", code)
	}
	id, _ := c.end(fc, newOuts(len(fc.wants)))
	return id
}

// incremental runs an empty incremental fetch and returns its error code.
func incremental(c *fetchSessions, id, epoch int32) int16 {
	fc, code := c.begin(sessionReq(id, epoch, 0))
	if code == 0 {
		c.end(fc, newOuts(len(fc.wants)))
	}
	return code
}

func TestFetchSessionCacheEvictsLeastRecentlyUsed(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newFetchSessions(2, time.Minute)
	c.now = clock.now
	a := openSession(t, c, 1)
	b := openSession(t, c, 1)
	if a == 0 || b == 0 || a == b {
		t.Fatalf("session ids %d and %d", a, b)
	}
	if code := incremental(c, a, 1); code != 0 { // a is now the most recently used
		t.Fatalf("incremental on a: %d", code)
	}
	openSession(t, c, 1) // evicts b
	if code := incremental(c, b, 1); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session answered %d", code)
	}
	if code := incremental(c, a, 2); code != 0 {
		t.Fatalf("kept session answered %d", code)
	}
	if st := c.snapshot(); st.Evicted != 1 || st.Open != 2 || st.Created != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFetchSessionCacheExpiresIdleSessions(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newFetchSessions(10, time.Minute)
	c.now = clock.now
	a := openSession(t, c, 1)
	clock.t = clock.t.Add(59 * time.Second)
	b := openSession(t, c, 1)
	if code := incremental(c, a, 1); code != 0 { // used within the minute
		t.Fatalf("a: %d", code)
	}
	clock.t = clock.t.Add(61 * time.Second) // both idle for over a minute
	for _, id := range []int32{a, b} {
		if code := incremental(c, id, 2); code != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("expired session %d answered %d", id, code)
		}
	}
	if st := c.snapshot(); st.Expired != 2 || st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFetchSessionCacheDisabled(t *testing.T) {
	c := newFetchSessions(-1, time.Minute)
	if id := openSession(t, c, 1); id != 0 {
		t.Fatalf("a cache without slots opened session %d", id)
	}
}

// TestFetchSessionRotation: partitions that returned records move to the
// end of the session's order, so a full response does not starve the rest.
func TestFetchSessionRotation(t *testing.T) {
	c := newFetchSessions(10, time.Minute)
	id := openSession(t, c, 3)
	fc, code := c.begin(sessionReq(id, 1, 0))
	if code != 0 {
		t.Fatal(code)
	}
	outs := newOuts(len(fc.wants))
	outs[0].RecordBatches = []byte{1} // partition 0 returned data
	_, include := c.end(fc, outs)
	if !include[0] || include[1] || include[2] {
		t.Fatalf("include %v, want only partition 0", include)
	}
	fc, _ = c.begin(sessionReq(id, 2, 0))
	var order []int32
	for _, w := range fc.wants {
		order = append(order, w.partition)
	}
	if len(order) != 3 || order[0] != 1 || order[1] != 2 || order[2] != 0 {
		t.Fatalf("order after rotation %v, want [1 2 0]", order)
	}
}

func TestNextSessionEpochWraps(t *testing.T) {
	if nextSessionEpoch(math.MaxInt32) != 1 || nextSessionEpoch(0) != 1 || nextSessionEpoch(7) != 8 {
		t.Fatal("session epochs must go 0, 1, ..., MaxInt32, 1")
	}
}
