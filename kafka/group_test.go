package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func protos(names ...string) []kmsg.JoinGroupRequestProtocol {
	var ps []kmsg.JoinGroupRequestProtocol
	for _, n := range names {
		ps = append(ps, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte("meta-" + n)})
	}
	return ps
}

// fakeGroups is a coordinator with a fake clock and deterministic ids.
type fakeGroups struct {
	t   *testing.T
	c   *groupCoordinator
	now time.Time
}

func newFakeGroups(t *testing.T) *fakeGroups {
	n := 0
	return &fakeGroups{t: t, now: time.Unix(1000, 0), c: newGroupCoordinator(func(client string) string {
		n++
		return fmt.Sprintf("%s-%d", client, n)
	})}
}

func (f *fakeGroups) advance(d time.Duration) { f.now = f.now.Add(d); f.c.Tick(f.now) }

func (f *fakeGroups) join(member string, names ...string) <-chan joinResult {
	return f.c.Join(f.now, joinParams{
		Group: "g", MemberID: member, ClientID: "c", ProtocolType: "consumer", Protocols: protos(names...),
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second, RequireKnownMemberID: true,
	})
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatalf("no answer ready")
		panic("unreachable")
	}
}

func none[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected answer %+v", v)
	default:
	}
}

// joinNew runs the KIP-394 two-step join for a new member and returns its id
// and the pending join channel.
func (f *fakeGroups) joinNew(names ...string) (string, <-chan joinResult) {
	r := recv(f.t, f.join("", names...))
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		f.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED", r)
	}
	return r.MemberID, f.join(r.MemberID, names...)
}

func TestGroupSingleMemberLifecycle(t *testing.T) {
	f := newFakeGroups(t)
	id, ch := f.joinNew("range")
	j := recv(t, ch)
	if j.ErrorCode != 0 || j.Generation != 1 || j.LeaderID != id || j.Protocol != "range" || len(j.Members) != 1 {
		t.Fatalf("join: %+v", j)
	}
	s := recv(t, f.c.Sync(f.now, syncParams{Group: "g", MemberID: id, Generation: 1,
		Assignments: []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("a1")}}}))
	if s.ErrorCode != 0 || string(s.Assignment) != "a1" {
		t.Fatalf("sync: %+v", s)
	}
	if code := f.c.Heartbeat(f.now, "g", id, nil, 1); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	if code := f.c.Heartbeat(f.now, "g", id, nil, 0); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat old gen: %d", code)
	}
	if code := f.c.ValidateCommit(f.now, "g", id, nil, 1, false); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if codes := f.c.Leave(f.now, "g", []leaveMember{{MemberID: id}}); codes[0] != 0 {
		t.Fatalf("leave: %v", codes)
	}
	d, _ := f.c.Describe("g")
	if d.State != groupEmpty || d.Generation != 2 || len(d.Members) != 0 {
		t.Fatalf("after leave: %+v", d)
	}
	if code := f.c.ValidateCommit(f.now, "g", "", nil, -1, false); code != 0 {
		t.Fatalf("admin commit on empty group: %d", code)
	}
}

func TestGroupSecondMemberTriggersRebalance(t *testing.T) {
	f := newFakeGroups(t)
	a, cha := f.joinNew("range")
	recv(t, cha)
	recv(t, f.c.Sync(f.now, syncParams{Group: "g", MemberID: a, Generation: 1}))

	b, chb := f.joinNew("range")
	none(t, chb) // waits for a to rejoin
	if code := f.c.Heartbeat(f.now, "g", a, nil, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("a heartbeat: %d, want REBALANCE_IN_PROGRESS", code)
	}
	cha = f.join(a, "range")
	ja, jb := recv(t, cha), recv(t, chb)
	if ja.Generation != 2 || jb.Generation != 2 || ja.LeaderID != a || jb.LeaderID != a {
		t.Fatalf("joins: %+v %+v", ja, jb)
	}
	if len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("only the leader gets members: %d %d", len(ja.Members), len(jb.Members))
	}
	// Follower syncs first and waits for the leader.
	sb := f.c.Sync(f.now, syncParams{Group: "g", MemberID: b, Generation: 2})
	none(t, sb)
	sa := f.c.Sync(f.now, syncParams{Group: "g", MemberID: a, Generation: 2, Assignments: []kmsg.SyncGroupRequestGroupAssignment{
		{MemberID: a, MemberAssignment: []byte("A")}, {MemberID: b, MemberAssignment: []byte("B")}}})
	if got := recv(t, sa); string(got.Assignment) != "A" {
		t.Fatalf("a: %+v", got)
	}
	if got := recv(t, sb); string(got.Assignment) != "B" {
		t.Fatalf("b: %+v", got)
	}
}

func TestGroupSessionTimeoutAndRebalanceDeadline(t *testing.T) {
	f := newFakeGroups(t)
	a, cha := f.joinNew("range")
	recv(t, cha)
	recv(t, f.c.Sync(f.now, syncParams{Group: "g", MemberID: a, Generation: 1}))
	b, chb := f.joinNew("range")
	none(t, chb)
	// a never rejoins nor heartbeats: its session (10s) ends before the
	// rebalance deadline (30s); b gets a generation on its own.
	f.advance(11 * time.Second)
	jb := recv(t, chb)
	if jb.ErrorCode != 0 || jb.LeaderID != b || jb.Generation != 2 || len(jb.Members) != 1 {
		t.Fatalf("b: %+v", jb)
	}
	recv(t, f.c.Sync(f.now, syncParams{Group: "g", MemberID: b, Generation: 2}))
	// b keeps heart-beating; no rebalance.
	for range 5 {
		f.advance(5 * time.Second)
		if code := f.c.Heartbeat(f.now, "g", b, nil, 2); code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	// b stops: session expiry empties the group.
	f.advance(11 * time.Second)
	if d, _ := f.c.Describe("g"); d.State != groupEmpty || d.Generation != 3 {
		t.Fatalf("after expiry: %+v", d)
	}
	if code := f.c.Heartbeat(f.now, "g", b, nil, 2); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member heartbeat: %d", code)
	}
}

func TestGroupJoinErrors(t *testing.T) {
	f := newFakeGroups(t)
	a, ch := f.joinNew("range")
	recv(t, ch)
	tests := []struct {
		name string
		p    joinParams
		want int16
	}{
		{"unknown member", joinParams{Group: "g", MemberID: "nobody", ProtocolType: "consumer", Protocols: protos("range"), SessionTimeout: time.Second}, kerr.UnknownMemberID.Code},
		{"no common protocol", joinParams{Group: "g", ProtocolType: "consumer", Protocols: protos("sticky"), SessionTimeout: time.Second}, kerr.InconsistentGroupProtocol.Code},
		{"other protocol type", joinParams{Group: "g", ProtocolType: "connect", Protocols: protos("range"), SessionTimeout: time.Second}, kerr.InconsistentGroupProtocol.Code},
		{"session too short", joinParams{Group: "g", ProtocolType: "consumer", Protocols: protos("range"), SessionTimeout: time.Millisecond}, kerr.InvalidSessionTimeout.Code},
		{"empty group id", joinParams{ProtocolType: "consumer", Protocols: protos("range"), SessionTimeout: time.Second}, kerr.InvalidGroupID.Code},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := recv(t, f.c.Join(f.now, tc.p)); got.ErrorCode != tc.want {
				t.Fatalf("code %d, want %d", got.ErrorCode, tc.want)
			}
		})
	}
	if got := recv(t, f.c.Sync(f.now, syncParams{Group: "g", MemberID: a, Generation: 7})); got.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("sync bad generation: %+v", got)
	}
}

func TestGroupProtocolVote(t *testing.T) {
	f := newFakeGroups(t)
	a, cha := f.joinNew("range", "sticky")
	recv(t, cha)
	b, chb := f.joinNew("sticky", "range")
	c, chc := f.joinNew("sticky")
	cha = f.join(a, "range", "sticky")
	_ = b
	_ = c
	for _, ch := range []<-chan joinResult{cha, chb, chc} {
		if r := recv(t, ch); r.Protocol != "sticky" {
			t.Fatalf("protocol %q, want sticky (only common one)", r.Protocol)
		}
	}
}

// TestGroupRandomOps drives the coordinator with random operations and
// checks invariants after each: a Stable or CompletingRebalance group has a
// leader among its members; every answered join of the same generation names
// the same leader; generations never decrease.
func TestGroupRandomOps(t *testing.T) {
	for seed := range 20 {
		f := newFakeGroups(t)
		rng := newRand(uint64(seed))
		var ids []string
		leaders := map[int32]string{}
		lastGen := int32(0)
		check := func(r joinResult) {
			if r.ErrorCode != 0 {
				return
			}
			if l, ok := leaders[r.Generation]; ok && l != r.LeaderID {
				t.Fatalf("seed %d: generation %d has leaders %s and %s", seed, r.Generation, l, r.LeaderID)
			}
			leaders[r.Generation] = r.LeaderID
		}
		pending := map[string]<-chan joinResult{}
		for range 300 {
			switch rng.intn(5) {
			case 0:
				id, ch := f.joinNew("range")
				ids = append(ids, id)
				pending[id] = ch
			case 1:
				if len(ids) > 0 {
					id := ids[rng.intn(len(ids))]
					pending[id] = f.join(id, "range")
				}
			case 2:
				if len(ids) > 0 {
					i := rng.intn(len(ids))
					f.c.Leave(f.now, "g", []leaveMember{{MemberID: ids[i]}})
					ids = append(ids[:i], ids[i+1:]...)
				}
			case 3:
				f.advance(time.Duration(rng.intn(12)) * time.Second)
			case 4:
				d, _ := f.c.Describe("g")
				for _, m := range d.Members {
					f.c.Heartbeat(f.now, "g", m.MemberID, nil, d.Generation)
				}
			}
			for id, ch := range pending {
				select {
				case r := <-ch:
					check(r)
					delete(pending, id)
				default:
				}
			}
			d, _ := f.c.Describe("g")
			if d.Generation < lastGen {
				t.Fatalf("seed %d: generation went back %d -> %d", seed, lastGen, d.Generation)
			}
			lastGen = d.Generation
			g := f.c.groups["g"]
			if g != nil && (g.state == groupStable || g.state == groupCompletingRebalance) {
				if _, ok := g.members[g.leader]; !ok {
					t.Fatalf("seed %d: leader %q not a member in state %v", seed, g.leader, g.state)
				}
			}
			if g != nil && g.state == groupEmpty && len(g.members) != 0 {
				t.Fatalf("seed %d: empty group with %d members", seed, len(g.members))
			}
		}
	}
}

// rand is a tiny deterministic generator (splitmix64) for property tests.
type rand struct{ s uint64 }

func newRand(seed uint64) *rand { return &rand{s: seed*0x9E3779B97F4A7C15 + 1} }

func (r *rand) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rand) intn(n int) int { return int(r.next() % uint64(n)) }

// TestGroupEmptyForgotten: a group without members is forgotten after
// emptyGroupRetention, as Kafka drops empty groups; so is one a failed
// JoinGroup created. Every group ever joined stayed in memory, walked by
// every tick under the groups' lock, so that unique group ids (console
// consumers make one per run) made the coordinator grow without bound.
func TestGroupEmptyForgotten(t *testing.T) {
	f := newFakeGroups(t)
	id, ch := f.joinNew("range")
	recv(t, ch)
	if codes := f.c.Leave(f.now, "g", []leaveMember{{MemberID: id}}); codes[0] != 0 {
		t.Fatalf("leave: %v", codes)
	}
	f.advance(emptyGroupRetention - time.Second)
	if d, ok := f.c.Describe("g"); !ok || d.State != groupEmpty {
		t.Fatalf("just before the retention: %+v, %v; want Empty", d, ok)
	}
	f.advance(time.Second)
	if d, ok := f.c.Describe("g"); ok {
		t.Fatalf("after the retention: %+v, want forgotten", d)
	}
	// A failed join (an unknown static member id) leaves nothing lasting.
	inst := "i"
	r := recv(t, f.c.Join(f.now, joinParams{Group: "h", MemberID: "m", InstanceID: &inst, ProtocolType: "consumer",
		Protocols: protos("range"), SessionTimeout: 10 * time.Second}))
	if r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("join with an unknown static member id: %+v", r)
	}
	f.advance(time.Second)
	if d, ok := f.c.Describe("h"); ok {
		t.Fatalf("group of a failed join: %+v, want forgotten", d)
	}
	// A forgotten group joined again starts at generation 1.
	_, ch = f.joinNew("range")
	if j := recv(t, ch); j.Generation != 1 {
		t.Fatalf("join of a forgotten group: generation %d, want 1", j.Generation)
	}
}
