package kafka

import (
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeConsumers drives a consumerCoordinator with a fake clock.
type fakeConsumers struct {
	t    *testing.T
	c    *consumerCoordinator
	now  time.Time
	meta topicMeta
	ids  int
}

func newFakeConsumers(t *testing.T, meta topicMeta) *fakeConsumers {
	f := &fakeConsumers{t: t, now: time.Unix(1000, 0), meta: meta}
	f.c = newConsumerCoordinator(time.Second, 10*time.Second, func() string { f.ids++; return fmt.Sprintf("srv-%d", f.ids) })
	return f
}

func (f *fakeConsumers) advance(d time.Duration) { f.now = f.now.Add(d); f.c.Tick(f.now, f.meta) }

func (f *fakeConsumers) hb(p cgParams) cgResult {
	if p.Group == "" {
		p.Group = "g"
	}
	if p.RebalanceTimeout == 0 {
		p.RebalanceTimeout = 30 * time.Second
	}
	return f.c.Heartbeat(f.now, p, f.meta)
}

func joinParams848(id string, topics ...string) cgParams {
	return cgParams{MemberID: id, SubscribedNames: topics, OwnedSent: true, Owned: []tp{}}
}

func tps(topic string, parts ...int32) []tp {
	var out []tp
	for _, p := range parts {
		out = append(out, tp{topic, p})
	}
	return out
}

func mustOK(t *testing.T, r cgResult) cgResult {
	t.Helper()
	if r.ErrorCode != 0 {
		t.Fatalf("heartbeat failed: %v (%s)", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	return r
}

func TestConsumerGroupJoinRevokeThenAssign(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"t": 4})
	a := mustOK(t, f.hb(joinParams848("a", "t")))
	if a.MemberEpoch != 1 || !slices.Equal(a.Assignment, tps("t", 0, 1, 2, 3)) {
		t.Fatalf("a joined: %+v", a)
	}
	b := mustOK(t, f.hb(joinParams848("b", "t")))
	// b's target is two of a's partitions, which a still holds.
	if b.MemberEpoch != 2 || len(b.Assignment) != 0 || !b.HasAssignment {
		t.Fatalf("b joined: %+v", b)
	}
	// a is told to revoke, keeping its epoch.
	a = mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0, 1, 2, 3)}))
	if a.MemberEpoch != 1 || !slices.Equal(a.Assignment, tps("t", 0, 1)) {
		t.Fatalf("a revoking: %+v", a)
	}
	// Until a confirms, b gets nothing.
	b = mustOK(t, f.hb(cgParams{MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1}))
	if b.HasAssignment {
		t.Fatalf("b before a revoked: %+v", b)
	}
	// A keepalive without owned partitions does not confirm.
	a = mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1}))
	if a.MemberEpoch != 1 {
		t.Fatalf("a keepalive: %+v", a)
	}
	a = mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0, 1)}))
	if a.MemberEpoch != 2 || a.HasAssignment {
		t.Fatalf("a confirmed: %+v", a)
	}
	b = mustOK(t, f.hb(cgParams{MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1}))
	if !slices.Equal(b.Assignment, tps("t", 2, 3)) {
		t.Fatalf("b after a revoked: %+v", b)
	}
	s, _ := f.c.Describe("g")
	if s.State != cgStable || s.Epoch != 2 || s.Assignor != assignorUniform {
		t.Fatalf("describe: %+v", s)
	}
}

func TestConsumerGroupFencing(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"t": 2})
	mustOK(t, f.hb(joinParams848("a", "t")))
	mustOK(t, f.hb(joinParams848("b", "t")))
	a := mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0)}))
	if a.MemberEpoch != 2 {
		t.Fatalf("a: %+v", a)
	}
	// A future epoch, or an old one with partitions it does not hold, is fenced.
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: 3, RebalanceTimeout: -1}); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("future epoch: %+v", r)
	}
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 1)}); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("previous epoch, foreign partition: %+v", r)
	}
	// The previous epoch with a subset of its assignment is a lost answer.
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0)}); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Fatalf("previous epoch, subset: %+v", r)
	}
	if r := f.hb(cgParams{MemberID: "zz", MemberEpoch: 2, RebalanceTimeout: -1}); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %+v", r)
	}
	// b stops heartbeating: fenced when its session expires; a gets all.
	for range 9 {
		f.advance(time.Second)
		mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 2, RebalanceTimeout: -1}))
	}
	f.advance(time.Second)
	if r := f.hb(cgParams{MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1}); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("expired b: %+v", r)
	}
	a = mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 2, RebalanceTimeout: -1}))
	if a.MemberEpoch != 3 || !slices.Equal(a.Assignment, tps("t", 0, 1)) {
		t.Fatalf("a after b expired: %+v", a)
	}
	// Leaving.
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: cgLeaveEpoch}); r.ErrorCode != 0 || r.MemberEpoch != cgLeaveEpoch {
		t.Fatalf("leave: %+v", r)
	}
	if s, _ := f.c.Describe("g"); s.State != cgEmpty || s.Epoch != 4 {
		t.Fatalf("after leave: %+v", s)
	}
}

func TestConsumerGroupRevocationTimeout(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"t": 2})
	mustOK(t, f.hb(joinParams848("a", "t")))
	mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: 3 * time.Second, OwnedSent: true, Owned: tps("t", 0, 1)}))
	mustOK(t, f.hb(joinParams848("b", "t")))
	mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1}))
	// a keeps heartbeating but never releases: fenced after 3s.
	epoch := int32(2)
	for range 3 {
		f.advance(time.Second)
		f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0, 1)})
		epoch = mustOK(t, f.hb(cgParams{MemberID: "b", MemberEpoch: epoch, RebalanceTimeout: -1})).MemberEpoch
	}
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1}); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("a after the revocation timeout: %+v", r)
	}
	b := mustOK(t, f.hb(cgParams{MemberID: "b", MemberEpoch: epoch, OwnedSent: true, Owned: []tp{}, SubscribedNames: []string{"t"}}))
	if b.MemberEpoch != 3 || !slices.Equal(b.Assignment, tps("t", 0, 1)) {
		t.Fatalf("b: %+v", b)
	}
}

func TestConsumerGroupStaticMembership(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"t": 2})
	inst := "i1"
	p := joinParams848("a", "t")
	p.InstanceID = &inst
	mustOK(t, f.hb(p))
	mustOK(t, f.hb(joinParams848("b", "t")))
	mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0, 1)}))
	a := mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0)}))
	if a.MemberEpoch != 2 || a.HasAssignment { // t-0 was given with the revocation
		t.Fatalf("a: %+v", a)
	}
	// Another member cannot take the instance id while a is active.
	p2 := joinParams848("a2", "t")
	p2.InstanceID = &inst
	if r := f.hb(p2); r.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("instance in use: %+v", r)
	}
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: cgStaticLeaveEpoch, InstanceID: &inst}); r.ErrorCode != 0 || r.MemberEpoch != cgStaticLeaveEpoch {
		t.Fatalf("static leave: %+v", r)
	}
	// b does not get a's partition while a is away.
	b := mustOK(t, f.hb(cgParams{MemberID: "b", MemberEpoch: 2, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 1)}))
	if b.MemberEpoch != 2 {
		t.Fatalf("b: %+v", b)
	}
	r := mustOK(t, f.hb(p2))
	if r.MemberEpoch != a.MemberEpoch || !slices.Equal(r.Assignment, tps("t", 0)) {
		t.Fatalf("a2 replacing a: %+v, a was %+v", r, a)
	}
	if r := f.hb(cgParams{MemberID: "a", MemberEpoch: 2, RebalanceTimeout: -1}); r.ErrorCode != kerr.UnknownMemberID.Code && r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old a: %+v", r)
	}
}

func TestConsumerGroupRegexAndNewTopics(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"logs-a": 1, "other": 1})
	re := "logs-.*"
	p := cgParams{MemberID: "a", SubscribedRegex: &re, OwnedSent: true, Owned: []tp{}}
	a := mustOK(t, f.hb(p))
	if !slices.Equal(a.Assignment, tps("logs-a", 0)) {
		t.Fatalf("regex join: %+v", a)
	}
	f.meta["logs-b"] = 2
	f.meta["logs-a"] = 2
	f.advance(time.Second)
	a = mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: a.MemberEpoch, RebalanceTimeout: -1}))
	want := append(tps("logs-a", 0, 1), tps("logs-b", 0, 1)...)
	if a.MemberEpoch != 2 || !slices.Equal(a.Assignment, want) {
		t.Fatalf("after new topics: %+v", a)
	}
	bad := "("
	if r := f.hb(cgParams{MemberID: "b", SubscribedRegex: &bad, OwnedSent: true, Owned: []tp{}}); r.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Fatalf("bad regex: %+v", r)
	}
	unknown := "sticky"
	if r := f.hb(cgParams{MemberID: "b", SubscribedNames: []string{"x"}, ServerAssignor: &unknown, OwnedSent: true, Owned: []tp{}}); r.ErrorCode != kerr.UnsupportedAssignor.Code {
		t.Fatalf("unknown assignor: %+v", r)
	}
}

func TestConsumerGroupCommitValidation(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"t": 2})
	if _, known := f.c.ValidateCommit("g", "", -1, 9, false); known {
		t.Fatal("no consumer group yet")
	}
	mustOK(t, f.hb(joinParams848("a", "t")))
	mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0, 1)}))
	mustOK(t, f.hb(joinParams848("b", "t"))) // epoch 2: a keeps t-0 and moves to 2
	mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0, 1)}))
	mustOK(t, f.hb(cgParams{MemberID: "a", MemberEpoch: 1, RebalanceTimeout: -1, OwnedSent: true, Owned: tps("t", 0)}))
	for _, c := range []struct {
		member  string
		epoch   int32
		version int16
		part    int32
		want    int16
	}{
		{"a", 2, 9, 0, 0},
		{"a", 1, 9, 0, 0},                            // held since epoch 1
		{"a", 3, 9, 0, kerr.StaleMemberEpoch.Code},   // future
		{"a", 1, 9, 1, kerr.StaleMemberEpoch.Code},   // no longer held
		{"a", 2, 8, 0, kerr.UnsupportedVersion.Code}, // consumer groups need v9
		{"zz", 2, 9, 0, kerr.UnknownMemberID.Code},   // unknown member
		{"", -1, 9, 0, kerr.UnknownMemberID.Code},    // admin commit into a live group
	} {
		check, known := f.c.ValidateCommit("g", c.member, c.epoch, c.version, false)
		if got := check.Partition(tp{"t", c.part}); !known || got != c.want {
			t.Errorf("commit %+v: %v, want %v", c, kerr.ErrorForCode(got), kerr.ErrorForCode(c.want))
		}
	}
	if code, _ := f.c.ValidateFetch("g", nil, -1); code != 0 {
		t.Errorf("admin fetch: %v", code)
	}
	a := "a"
	if code, _ := f.c.ValidateFetch("g", &a, 1); code != kerr.StaleMemberEpoch.Code {
		t.Errorf("stale fetch: %v", code)
	}
	if code, _ := f.c.ValidateFetch("g", &a, 2); code != 0 {
		t.Errorf("fetch: %v", code)
	}
}

func TestValidateConsumerHeartbeat(t *testing.T) {
	base := func() *kmsg.ConsumerGroupHeartbeatRequest {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version, r.Group, r.MemberID, r.RebalanceTimeoutMillis = 1, "g", "m", 1000
		r.SubscribedTopicNames, r.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return r
	}
	empty := ""
	for name, c := range map[string]struct {
		mod  func(r *kmsg.ConsumerGroupHeartbeatRequest)
		want int16
	}{
		"ok":             {func(*kmsg.ConsumerGroupHeartbeatRequest) {}, 0},
		"no group":       {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidGroupID.Code},
		"v1 no member":   {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest.Code},
		"v0 no member":   {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Version, r.MemberID = 0, "" }, 0},
		"empty instance": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = &empty }, kerr.InvalidRequest.Code},
		"join owning": {func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = make([]kmsg.ConsumerGroupHeartbeatRequestTopic, 1)
		}, kerr.InvalidRequest.Code},
		"join no owned": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest.Code},
		"join no subs":  {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest.Code},
		"join no rebal": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest.Code},
		"epoch -3":      {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest.Code},
		"static leave":  {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }, kerr.InvalidRequest.Code},
		"v0 hb no id":   {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Version, r.MemberID, r.MemberEpoch = 0, "", 3 }, kerr.InvalidRequest.Code},
	} {
		r := base()
		c.mod(r)
		if got, msg := validateConsumerHeartbeat(r); got != c.want {
			t.Errorf("%s: %v (%s), want %v", name, kerr.ErrorForCode(got), msg, kerr.ErrorForCode(c.want))
		}
	}
}

func TestAssignors(t *testing.T) {
	in := assignInput{
		members: []string{"a", "b", "c"},
		subs:    map[string]map[string]bool{"a": {"x": true, "y": true}, "b": {"x": true, "y": true}, "c": {"x": true, "y": true}},
		meta:    topicMeta{"x": 4, "y": 3},
		prev:    map[string]map[tp]struct{}{},
	}
	r := assignRange(in)
	if !slices.Equal(slices.SortedFunc(maps.Keys(r["a"]), compareTP), append(tps("x", 0, 1), tps("y", 0)...)) {
		t.Errorf("range a: %v", r["a"])
	}
	u := assignUniform(in)
	checkBalanced(t, in, u)
	// Sticky: a fourth member takes only what balance requires.
	in.members = append(in.members, "d")
	in.subs["d"] = map[string]bool{"x": true, "y": true}
	in.prev = u
	u2 := assignUniform(in)
	checkBalanced(t, in, u2)
	moved := 0
	for _, id := range []string{"a", "b", "c"} {
		for t := range u[id] {
			if _, ok := u2[id][t]; !ok {
				moved++
			}
		}
	}
	if moved != len(u2["d"]) {
		t.Errorf("%d partitions moved, d got %d", moved, len(u2["d"]))
	}
	// Heterogeneous subscriptions.
	in.subs["d"] = map[string]bool{"y": true}
	checkBalanced(t, in, assignUniform(in))
}

// checkBalanced checks that every partition is assigned once, to a
// subscriber, and that no member could take one from another member with
// two more.
func checkBalanced(t *testing.T, in assignInput, out assignment) {
	t.Helper()
	seen := map[tp]string{}
	for id, set := range out {
		for p := range set {
			if o, dup := seen[p]; dup {
				t.Fatalf("%v assigned to %s and %s", p, o, id)
			}
			if !in.subs[id][p.Topic] {
				t.Fatalf("%v assigned to non-subscriber %s", p, id)
			}
			seen[p] = id
		}
	}
	if len(seen) != len(in.partitions()) {
		t.Fatalf("%d of %d partitions assigned", len(seen), len(in.partitions()))
	}
	for p, from := range seen {
		for _, to := range in.members {
			if in.subs[to][p.Topic] && len(out[from])-len(out[to]) >= 2 {
				t.Fatalf("unbalanced: %s has %d, %s has %d and could take %v", from, len(out[from]), to, len(out[to]), p)
			}
		}
	}
}

// modelClient is a consumer as the model test drives it.
type modelClient struct {
	id       string
	epoch    int32
	topics   []string
	assignor string
	held     map[tp]bool // told to it and not yet released
	lag      int         // heartbeats to wait before releasing revoked partitions
	revoked  map[tp]int  // revoked partitions not yet released -> heartbeats left
	crashed  bool
	lastBeat time.Time
}

func (m *modelClient) owned() []tp {
	return slices.SortedFunc(maps.Keys(m.held), compareTP)
}

// TestConsumerGroupModel drives the coordinator with random joins, leaves,
// crashes, subscription changes, new partitions and topics, and clients
// that release revoked partitions late. After every step no two live
// clients hold the same partition; once the chaos stops every subscribed
// partition ends up held by exactly one client, as the coordinator's target
// says.
func TestConsumerGroupModel(t *testing.T) {
	for seed := range uint64(150) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runConsumerModel(t, seed) })
	}
}

func runConsumerModel(t *testing.T, seed uint64) {
	rng := mrand.New(mrand.NewPCG(seed, 848))
	f := newFakeConsumers(t, topicMeta{"a": 3, "b": 4, "c": 2})
	topicSets := [][]string{{"a"}, {"a", "b"}, {"b", "c"}, {"a", "b", "c"}}
	var clients []*modelClient
	n := 0

	heartbeat := func(m *modelClient, keepalive bool) {
		p := cgParams{Group: "g", MemberID: m.id, MemberEpoch: m.epoch, RebalanceTimeout: -1}
		if m.epoch == 0 || !keepalive {
			p.RebalanceTimeout = 30 * time.Second
			p.SubscribedNames = m.topics
			p.ServerAssignor = &m.assignor
			p.OwnedSent, p.Owned = true, m.owned()
			if m.epoch == 0 {
				p.Owned = []tp{}
			}
		}
		r := f.hb(p)
		m.lastBeat = f.now
		switch r.ErrorCode {
		case 0:
		case kerr.FencedMemberEpoch.Code, kerr.UnknownMemberID.Code:
			m.held, m.revoked, m.epoch = map[tp]bool{}, map[tp]int{}, 0
			return
		default:
			t.Fatalf("seed %d: heartbeat %+v: %v %s", seed, p, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		m.epoch = r.MemberEpoch
		// Release revoked partitions whose delay ran out.
		for p, left := range m.revoked {
			if left <= 0 {
				delete(m.held, p)
				delete(m.revoked, p)
			} else {
				m.revoked[p] = left - 1
			}
		}
		if !r.HasAssignment {
			return
		}
		now := map[tp]bool{}
		for _, p := range r.Assignment {
			now[p] = true
			m.held[p] = true
			delete(m.revoked, p)
		}
		for p := range m.held {
			if !now[p] {
				if _, ok := m.revoked[p]; !ok {
					m.revoked[p] = m.lag
				}
			}
		}
		for p, left := range m.revoked {
			if left <= 0 {
				delete(m.held, p)
				delete(m.revoked, p)
			}
		}
	}
	live := func() []*modelClient {
		var out []*modelClient
		for _, m := range clients {
			if !m.crashed {
				out = append(out, m)
			}
		}
		return out
	}
	checkDisjoint := func(step int) {
		holder := map[tp]string{}
		for _, m := range live() {
			for p := range m.held {
				if o, dup := holder[p]; dup {
					t.Fatalf("seed %d step %d: %v held by %s and %s", seed, step, p, o, m.id)
				}
				holder[p] = m.id
			}
		}
	}

	assignor := []string{assignorUniform, assignorRange}[rng.IntN(2)]
	for step := range 300 {
		switch x := rng.IntN(100); {
		case x < 12 && len(live()) < 6:
			n++
			clients = append(clients, &modelClient{
				id: fmt.Sprintf("m%d", n), topics: topicSets[rng.IntN(len(topicSets))], assignor: assignor,
				held: map[tp]bool{}, revoked: map[tp]int{}, lag: rng.IntN(3),
			})
			heartbeat(clients[len(clients)-1], false)
		case x < 16 && len(live()) > 0: // leave
			ls := live()
			m := ls[rng.IntN(len(ls))]
			if m.epoch > 0 {
				f.hb(cgParams{Group: "g", MemberID: m.id, MemberEpoch: cgLeaveEpoch})
			}
			m.crashed = true // gone either way
		case x < 20 && len(live()) > 0: // crash: silence
			ls := live()
			ls[rng.IntN(len(ls))].crashed = true
		case x < 25 && len(live()) > 0: // subscription change
			ls := live()
			m := ls[rng.IntN(len(ls))]
			m.topics = topicSets[rng.IntN(len(topicSets))]
			heartbeat(m, false)
		case x < 28: // metadata: a new partition or a new topic
			if rng.IntN(2) == 0 {
				f.meta["b"]++
			} else {
				f.meta[fmt.Sprintf("n%d", step)] = 2
			}
		case x < 50:
			f.advance(time.Second)
		default:
			if ls := live(); len(ls) > 0 {
				heartbeat(ls[rng.IntN(len(ls))], rng.IntN(2) == 0)
			}
		}
		// Live clients never miss their session.
		for _, m := range live() {
			if f.now.Sub(m.lastBeat) >= 5*time.Second {
				heartbeat(m, false)
			}
		}
		checkDisjoint(step)
	}

	// Quiesce: every live client heartbeats until nothing changes.
	for range 30 {
		f.advance(time.Second)
		for _, m := range live() {
			heartbeat(m, false)
		}
		checkDisjoint(-1)
	}
	g := f.c.groups["g"]
	want := map[tp]bool{}
	for _, m := range live() {
		for name, parts := range f.meta {
			if slices.Contains(m.topics, name) {
				for p := range parts {
					want[tp{name, p}] = true
				}
			}
		}
		cm := g.members[m.id]
		if cm == nil {
			t.Fatalf("seed %d: live client %s not a member", seed, m.id)
		}
		if !maps.Equal(m.held, func() map[tp]bool {
			out := map[tp]bool{}
			for p := range cm.target {
				out[p] = true
			}
			return out
		}()) || m.epoch != g.epoch {
			t.Fatalf("seed %d: %s holds %v at epoch %d, target %v at %d", seed, m.id, m.owned(), m.epoch, cm.target, g.epoch)
		}
	}
	got := map[tp]bool{}
	for _, m := range live() {
		for p := range m.held {
			got[p] = true
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("seed %d: held %v, want %v", seed, got, want)
	}
	if len(live()) > 0 {
		if s, _ := f.c.Describe("g"); s.State != cgStable {
			t.Fatalf("seed %d: state %v", seed, s.State)
		}
	}
}

// TestConsumerGroupHugeRegexRefused: a subscription regex longer than
// maxTopicRegexBytes, or whose counted repetitions would compile to more
// than maxTopicRegexInsts instructions, answers INVALID_REGULAR_EXPRESSION
// without being compiled. Compiling costs more than the length (8 KiB of
// a{1000} take seconds, an 8 MiB alternation over a minute) and happened
// several times per heartbeat under the lock of every group, so one
// member's heartbeat stalled every group's joins, heartbeats and commits.
func TestConsumerGroupHugeRegexRefused(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"ab": 1})
	long := strings.Repeat("(a|b)", maxTopicRegexBytes/5+1)
	repeats := strings.Repeat("a{1000}", 30)
	for _, re := range []string{long, repeats, "((a{100}){100}){100}"} {
		r := f.hb(cgParams{MemberID: "a", SubscribedRegex: &re, OwnedSent: true, Owned: []tp{}})
		if r.ErrorCode != kerr.InvalidRegularExpression.Code {
			t.Fatalf("regex %.40q... of %d bytes: %+v, want INVALID_REGULAR_EXPRESSION", re, len(re), r)
		}
	}
	for _, re := range []string{long[:maxTopicRegexBytes/5*5], "a{1000}b{1000}", "topic-[0-9]{1,3}"} {
		mustOK(t, f.hb(cgParams{MemberID: "a", SubscribedRegex: &re, OwnedSent: true, Owned: []tp{}}))
	}
}

// TestConsumerGroupEmptyForgotten: a consumer-protocol group without
// members and without committed offsets is forgotten after
// emptyGroupRetention; one with offsets is kept (as Kafka keeps it until
// its offsets expire). Every such group stayed, and while any consumer
// group existed every tick listed every topic's partitions for them.
func TestConsumerGroupEmptyForgotten(t *testing.T) {
	f := newFakeConsumers(t, topicMeta{"t": 2})
	committed := map[string]bool{"kept": true}
	f.c.hasOffsets = func(group string) bool { return committed[group] }
	for _, g := range []string{"gone", "kept"} {
		p := joinParams848("a", "t")
		p.Group = g
		a := mustOK(t, f.hb(p))
		mustOK(t, f.hb(cgParams{Group: g, MemberID: "a", MemberEpoch: cgLeaveEpoch, RebalanceTimeout: -1}))
		if a.MemberEpoch == 0 {
			t.Fatalf("join of %s: %+v", g, a)
		}
	}
	f.advance(time.Second) // the groups are seen empty
	f.advance(emptyGroupRetention - time.Second)
	if _, ok := f.c.Describe("gone"); !ok {
		t.Fatal("an empty group was forgotten before the retention")
	}
	f.advance(time.Second)
	if s, ok := f.c.Describe("gone"); ok {
		t.Fatalf("empty group without offsets after the retention: %+v, want forgotten", s)
	}
	if s, ok := f.c.Describe("kept"); !ok || s.State != cgEmpty {
		t.Fatalf("empty group with offsets after the retention: %+v, %v; want kept Empty", s, ok)
	}
}
