package kafka

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic consumer-group protocol, as a deterministic state machine.
//
// groupCoordinator owns no goroutines, timers or I/O: every method takes the
// current time, and Tick(now) applies what time alone changes (session
// expiry, rebalance deadlines). The server holds one mutex around it and
// calls Tick periodically; tests drive it with a fake clock.
//
// A group moves through these states (Kafka's names):
//
//	Empty ──join──> PreparingRebalance ──all joined / deadline──> CompletingRebalance
//	  ^                 ^       ^                                    │ leader syncs
//	  │                 │       └──── join (new member, leader, ─────┤
//	  │                 │             changed metadata), leave,      v
//	  └── last member ──┴──────────── session expiry ───────────  Stable
//
// Static members (KIP-345) join with a group.instance.id. Their member id is
// the instance id plus a random suffix, as Kafka's. A static member that
// rejoins without a member id (a restarted process) takes over its instance's
// slot under a new member id: it keeps the instance's assignment, and while
// the group is Stable and the rejoin does not change the group's protocol no
// rebalance happens (the restarted leader is told to skip the assignment,
// KIP-814). The old member id is fenced from then on: every request that
// names the instance with another member id (JoinGroup, SyncGroup,
// Heartbeat, OffsetCommit, TxnOffsetCommit, LeaveGroup) answers
// FENCED_INSTANCE_ID, and a JoinGroup or SyncGroup it had pending is answered
// so. Static members skip the KIP-394 member-id round trip and, like every
// member, are removed when their session expires.
//
// A rebalance completes when every known member has a JoinGroup pending and
// no KIP-394 pending member id is outstanding, or when the rebalance deadline
// (the largest rebalance timeout among members) passes; members that did not
// rejoin by then are removed. Completing bumps the generation, picks the
// protocol every member supports that most members prefer, keeps the leader
// if it is still a member, and answers every pending JoinGroup (the leader's
// answer lists the members and their metadata). The leader's SyncGroup then
// distributes the assignment and makes the group Stable.
//
// Blocking calls (JoinGroup, SyncGroup) return a channel with capacity 1;
// the coordinator sends on it exactly once, never blocking. A caller that
// goes away simply never reads it.

// groupState is a classic group's state.
type groupState int8

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
)

// String returns Kafka's name for the state (DescribeGroups, ListGroups).
func (s groupState) String() string {
	switch s {
	case groupEmpty:
		return "Empty"
	case groupPreparingRebalance:
		return "PreparingRebalance"
	case groupCompletingRebalance:
		return "CompletingRebalance"
	case groupStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// Session timeout bounds accepted by JoinGroup (Kafka's
// group.min/max.session.timeout.ms are 6s and 30min; the minimum is lower
// here so that tests and local tools can use short timeouts).
const (
	minSessionTimeout = 100 * time.Millisecond
	maxSessionTimeout = 30 * time.Minute
)

// joinResult is the answer to one JoinGroup.
type joinResult struct {
	ErrorCode    int16
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	MemberID     string
	Members      []kmsg.JoinGroupResponseMember
	// SkipAssignment tells the leader to sync without assignments: the
	// group keeps the ones it has (KIP-814).
	SkipAssignment bool
}

// syncResult is the answer to one SyncGroup.
type syncResult struct {
	ErrorCode    int16
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// joinParams is a JoinGroup request as the coordinator sees it.
type joinParams struct {
	Group            string
	MemberID         string
	InstanceID       *string
	ClientID         string
	ClientHost       string
	ProtocolType     string
	Protocols        []kmsg.JoinGroupRequestProtocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID enables the KIP-394 flow (JoinGroup v4+): a member
	// joining without an id first gets MEMBER_ID_REQUIRED and its new id.
	RequireKnownMemberID bool
	// SkipAssignment: the client understands JoinGroup's SkipAssignment
	// (v9+, KIP-814), so a restarted static leader can be told it leads
	// but must not compute a new assignment.
	SkipAssignment bool
}

type groupMember struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	lastSeen         time.Time
	assignment       []byte
	join             chan joinResult // pending JoinGroup, nil when none
	sync             chan syncResult // pending SyncGroup, nil when none
}

type group struct {
	id           string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*groupMember
	// pending holds KIP-394 member ids handed out but not yet used, with the
	// time after which they are forgotten.
	pending           map[string]time.Time
	rebalanceDeadline time.Time
	// emptySince is when the group last became Empty (zero: never had a
	// generation); Tick forgets a group Empty for emptyGroupRetention.
	emptySince time.Time
}

// emptyGroupRetention is how long a classic group stays known once it has
// no members (Kafka drops such groups at its offsets retention check,
// every 10 minutes). Its committed offsets stay in the offset store; the
// group itself is a generation number, which starts again at 1, and
// member ids, which no client can still hold validly.
const emptyGroupRetention = 10 * time.Minute

// groupCoordinator is the state of every classic group. Not safe for
// concurrent use; see the comment at the top of this file.
type groupCoordinator struct {
	groups map[string]*group
	// newMemberID returns a fresh member id starting with prefix (the
	// client id, or the instance id of a static member).
	newMemberID func(prefix string) string
}

func newGroupCoordinator(newMemberID func(prefix string) string) *groupCoordinator {
	if newMemberID == nil {
		// Random, as Kafka's client-id-UUID (instance-id-UUID for static
		// members, which franz-go relies on to recognise a restarted
		// leader): ids must not repeat across server restarts, when
		// clients may still hold ids of before.
		newMemberID = func(prefix string) string {
			var b [16]byte
			crand.Read(b[:])
			return prefix + "-" + hex.EncodeToString(b[:])
		}
	}
	return &groupCoordinator{groups: make(map[string]*group), newMemberID: newMemberID}
}

func immediateJoin(r joinResult) <-chan joinResult {
	ch := make(chan joinResult, 1)
	ch <- r
	return ch
}

func immediateSync(r syncResult) <-chan syncResult {
	ch := make(chan syncResult, 1)
	ch <- r
	return ch
}

// Join handles JoinGroup. The returned channel receives the answer, at once
// or when the rebalance completes.
func (c *groupCoordinator) Join(now time.Time, p joinParams) <-chan joinResult {
	fail := func(code int16) <-chan joinResult {
		return immediateJoin(joinResult{ErrorCode: code, MemberID: p.MemberID, Generation: -1})
	}
	if p.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	if p.SessionTimeout < minSessionTimeout || p.SessionTimeout > maxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	if p.RebalanceTimeout <= 0 {
		p.RebalanceTimeout = p.SessionTimeout
	}
	if len(p.Protocols) == 0 || p.ProtocolType == "" {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	g := c.groups[p.Group]
	if g == nil {
		g = &group{id: p.Group, members: make(map[string]*groupMember), pending: make(map[string]time.Time)}
		c.groups[p.Group] = g
	}
	if g.state == groupDead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if len(g.members) > 0 && (g.protocolType != p.ProtocolType || !g.supportsOne(p.Protocols, p.MemberID)) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}

	if p.InstanceID != nil {
		s := g.staticMember(*p.InstanceID)
		switch {
		case s != nil && p.MemberID == "":
			// A restarted static member takes over its instance's slot.
			return c.replaceStatic(now, g, s, p)
		case s != nil && s.id != p.MemberID:
			return fail(kerr.FencedInstanceID.Code)
		case s == nil && p.MemberID != "":
			return fail(kerr.UnknownMemberID.Code)
		}
	}

	fresh := false // a member id assigned by this call
	if p.MemberID == "" {
		prefix := p.ClientID
		if p.InstanceID != nil {
			prefix = *p.InstanceID
		}
		id := c.newMemberID(prefix)
		if p.RequireKnownMemberID && p.InstanceID == nil {
			g.pending[id] = now.Add(p.SessionTimeout)
			return immediateJoin(joinResult{ErrorCode: kerr.MemberIDRequired.Code, MemberID: id, Generation: -1})
		}
		p.MemberID = id
		fresh = true
	}

	if len(g.members) == 0 {
		g.protocolType = p.ProtocolType
	}
	m := g.members[p.MemberID]
	if m == nil {
		if _, ok := g.pending[p.MemberID]; !ok && !fresh {
			return fail(kerr.UnknownMemberID.Code)
		}
		delete(g.pending, p.MemberID)
		m = &groupMember{id: p.MemberID}
		g.members[p.MemberID] = m
		m.update(now, p)
		ch := m.setJoin()
		g.prepareRebalance(now)
		g.maybeCompleteJoin(now)
		return ch
	}

	// A known member rejoins.
	changed := !sameProtocols(m.protocols, p.Protocols)
	m.update(now, p)
	switch g.state {
	case groupPreparingRebalance:
		ch := m.setJoin()
		g.maybeCompleteJoin(now)
		return ch
	case groupCompletingRebalance, groupStable:
		if !changed && (g.state == groupCompletingRebalance || m.id != g.leader) {
			return immediateJoin(g.joinAnswer(m))
		}
		ch := m.setJoin()
		g.prepareRebalance(now)
		g.maybeCompleteJoin(now)
		return ch
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
}

// replaceStatic gives the slot of static member old to a rejoin of its
// instance without a member id (a restarted process): a new member id, the
// old one fenced (its pending JoinGroup or SyncGroup answered
// FENCED_INSTANCE_ID), the assignment kept. A Stable group whose protocol
// the rejoin leaves unchanged answers at once with the current generation,
// so the member gets its assignment back from SyncGroup without a
// rebalance; otherwise the group rebalances.
func (c *groupCoordinator) replaceStatic(now time.Time, g *group, old *groupMember, p joinParams) <-chan joinResult {
	if old.join != nil {
		old.join <- joinResult{ErrorCode: kerr.FencedInstanceID.Code, MemberID: old.id, Generation: -1}
		old.join = nil
	}
	if old.sync != nil {
		old.sync <- syncResult{ErrorCode: kerr.FencedInstanceID.Code}
		old.sync = nil
	}
	oldID, oldLeader := old.id, g.leader
	m := old // keeps the assignment
	delete(g.members, oldID)
	m.id = c.newMemberID(*p.InstanceID)
	g.members[m.id] = m
	if g.leader == oldID {
		g.leader = m.id
	}
	m.update(now, p)
	switch g.state {
	case groupStable:
		if g.selectProtocol(g.memberIDs()) != g.protocol {
			break // the rejoin changes the protocol: rebalance
		}
		r := g.joinAnswer(m)
		if m.id == g.leader {
			if p.SkipAssignment {
				r.SkipAssignment = true
			} else {
				// A client without SkipAssignment must not believe it
				// leads: its assignment would be ignored by the Stable
				// group. It learns the old leader id, as from Kafka.
				r.LeaderID, r.Members = oldLeader, nil
			}
		}
		return immediateJoin(r)
	case groupPreparingRebalance:
		ch := m.setJoin()
		g.maybeCompleteJoin(now)
		return ch
	}
	// CompletingRebalance: the leader may be assigning to the old member
	// id, so a new rebalance gives the new id its assignment.
	ch := m.setJoin()
	g.prepareRebalance(now)
	g.maybeCompleteJoin(now)
	return ch
}

// staticMember returns the member of a static instance, or nil.
func (g *group) staticMember(instanceID string) *groupMember {
	for _, m := range g.members {
		if m.instanceID != nil && *m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

// member returns the member a request names, or the error code for it: with
// an instance id (a static member) the instance must be in the group
// (UNKNOWN_MEMBER_ID) under that member id (FENCED_INSTANCE_ID, KIP-345).
func (g *group) member(memberID string, instanceID *string) (*groupMember, int16) {
	if instanceID != nil {
		m := g.staticMember(*instanceID)
		switch {
		case m == nil:
			return nil, kerr.UnknownMemberID.Code
		case m.id != memberID:
			return nil, kerr.FencedInstanceID.Code
		}
		return m, 0
	}
	if m := g.members[memberID]; m != nil {
		return m, 0
	}
	return nil, kerr.UnknownMemberID.Code
}

func (m *groupMember) update(now time.Time, p joinParams) {
	m.instanceID = p.InstanceID
	m.clientID = p.ClientID
	m.clientHost = p.ClientHost
	m.protocols = p.Protocols
	m.sessionTimeout = p.SessionTimeout
	m.rebalanceTimeout = p.RebalanceTimeout
	m.lastSeen = now
}

// setJoin installs a fresh pending-join channel, answering an older one (a
// client retry on another connection) with REBALANCE_IN_PROGRESS.
func (m *groupMember) setJoin() <-chan joinResult {
	if m.join != nil {
		m.join <- joinResult{ErrorCode: kerr.RebalanceInProgress.Code, MemberID: m.id, Generation: -1}
	}
	m.join = make(chan joinResult, 1)
	return m.join
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.JoinGroupRequestProtocol) bool {
		return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata)
	})
}

// supportsOne reports whether at least one of protos is supported by every
// member other than self.
func (g *group) supportsOne(protos []kmsg.JoinGroupRequestProtocol, self string) bool {
	for _, p := range protos {
		all := true
		for id, m := range g.members {
			if id == self {
				continue
			}
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// prepareRebalance moves the group to PreparingRebalance (if not already),
// failing pending SyncGroups and setting the rebalance deadline.
func (g *group) prepareRebalance(now time.Time) {
	if g.state == groupPreparingRebalance {
		return
	}
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- syncResult{ErrorCode: kerr.RebalanceInProgress.Code}
			m.sync = nil
		}
	}
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	g.state = groupPreparingRebalance
	g.rebalanceDeadline = now.Add(timeout)
}

// maybeCompleteJoin completes the rebalance if every member has rejoined.
func (g *group) maybeCompleteJoin(now time.Time) {
	if g.state != groupPreparingRebalance || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoin(now)
}

// completeJoin ends PreparingRebalance: members that have not rejoined are
// removed, the generation is bumped and every pending join is answered.
func (g *group) completeJoin(now time.Time) {
	for id, m := range g.members {
		if m.join == nil {
			delete(g.members, id)
		}
	}
	clear(g.pending)
	g.generation++
	if len(g.members) == 0 {
		g.state = groupEmpty
		g.protocol = ""
		g.leader = ""
		g.emptySince = now
		return
	}
	ids := g.memberIDs()
	g.protocol = g.selectProtocol(ids)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ids[0]
	}
	g.state = groupCompletingRebalance
	for _, id := range ids {
		m := g.members[id]
		m.assignment = nil
		m.lastSeen = now
		m.join <- g.joinAnswer(m)
		m.join = nil
	}
}

func (g *group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// selectProtocol picks, among the protocols every member supports, the one
// that most members list first among those candidates (ties go to the order
// of the first member's list).
func (g *group) selectProtocol(ids []string) string {
	first := g.members[ids[0]]
	var candidates []string
	for _, p := range first.protocols {
		all := true
		for _, id := range ids {
			if !slices.ContainsFunc(g.members[id].protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := make(map[string]int)
	for _, id := range ids {
		for _, p := range g.members[id].protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func (g *group) joinAnswer(m *groupMember) joinResult {
	r := joinResult{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		LeaderID:     g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		for _, id := range g.memberIDs() {
			o := g.members[id]
			var meta []byte
			for _, p := range o.protocols {
				if p.Name == g.protocol {
					meta = p.Metadata
					break
				}
			}
			r.Members = append(r.Members, kmsg.JoinGroupResponseMember{MemberID: id, InstanceID: o.instanceID, ProtocolMetadata: meta})
		}
	}
	return r
}

// syncParams is a SyncGroup request as the coordinator sees it.
type syncParams struct {
	Group        string
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string
	Protocol     *string
	Assignments  []kmsg.SyncGroupRequestGroupAssignment
}

// Sync handles SyncGroup. The returned channel receives the member's
// assignment, at once or when the leader's SyncGroup arrives.
func (c *groupCoordinator) Sync(now time.Time, p syncParams) <-chan syncResult {
	fail := func(code int16) <-chan syncResult { return immediateSync(syncResult{ErrorCode: code}) }
	g := c.groups[p.Group]
	if g == nil || g.state == groupEmpty || g.state == groupDead {
		return fail(kerr.UnknownMemberID.Code)
	}
	m, code := g.member(p.MemberID, p.InstanceID)
	if code != 0 {
		return fail(code)
	}
	if p.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if (p.ProtocolType != nil && *p.ProtocolType != g.protocolType) || (p.Protocol != nil && *p.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m.lastSeen = now
	switch g.state {
	case groupPreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case groupStable:
		return immediateSync(g.syncAnswer(m))
	}
	// CompletingRebalance.
	if m.sync != nil {
		m.sync <- syncResult{ErrorCode: kerr.RebalanceInProgress.Code}
	}
	m.sync = make(chan syncResult, 1)
	ch := m.sync
	if m.id == g.leader {
		for _, a := range p.Assignments {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = a.MemberAssignment
			}
		}
		g.state = groupStable
		for _, o := range g.members {
			if o.sync != nil {
				o.sync <- g.syncAnswer(o)
				o.sync = nil
			}
		}
	}
	return ch
}

func (g *group) syncAnswer(m *groupMember) syncResult {
	return syncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
}

// Heartbeat handles Heartbeat and returns its error code. instanceID is
// the static member's instance id, nil for a dynamic member.
func (c *groupCoordinator) Heartbeat(now time.Time, groupID, memberID string, instanceID *string, generation int32) int16 {
	g := c.groups[groupID]
	if g == nil || g.state == groupEmpty || g.state == groupDead {
		return kerr.UnknownMemberID.Code
	}
	m, code := g.member(memberID, instanceID)
	if code != 0 {
		return code
	}
	m.lastSeen = now
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	if g.state == groupPreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// leaveMember is one member of a LeaveGroup: by member id, or (a static
// member, v3+) by instance id with the member id optional.
type leaveMember struct {
	MemberID   string
	InstanceID *string
}

// Leave removes members from a group (LeaveGroup) and returns one error code
// per member, in order. A static member named by instance id with another
// member id than its current one is not removed: FENCED_INSTANCE_ID.
func (c *groupCoordinator) Leave(now time.Time, groupID string, members []leaveMember) []int16 {
	codes := make([]int16, len(members))
	g := c.groups[groupID]
	for i, lm := range members {
		if g == nil {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		if lm.InstanceID == nil {
			if _, ok := g.pending[lm.MemberID]; ok {
				delete(g.pending, lm.MemberID)
				g.maybeCompleteJoin(now)
				continue
			}
		}
		id := lm.MemberID
		if id == "" && lm.InstanceID != nil {
			if s := g.staticMember(*lm.InstanceID); s != nil {
				id = s.id
			}
		}
		m, code := g.member(id, lm.InstanceID)
		if code != 0 {
			codes[i] = code
			continue
		}
		g.removeMember(now, m)
	}
	return codes
}

// removeMember drops m and starts (or completes) a rebalance.
func (g *group) removeMember(now time.Time, m *groupMember) {
	if m.join != nil {
		m.join <- joinResult{ErrorCode: kerr.UnknownMemberID.Code, MemberID: m.id, Generation: -1}
	}
	if m.sync != nil {
		m.sync <- syncResult{ErrorCode: kerr.UnknownMemberID.Code}
	}
	delete(g.members, m.id)
	if g.state == groupEmpty || g.state == groupDead {
		return
	}
	g.prepareRebalance(now)
	g.maybeCompleteJoin(now)
}

// Tick applies the passage of time: expired KIP-394 pending ids are
// forgotten, members whose session expired are removed (members with a
// JoinGroup or SyncGroup in flight are alive), a rebalance whose deadline
// passed completes with the members that rejoined, and a group Empty for
// emptyGroupRetention is forgotten.
func (c *groupCoordinator) Tick(now time.Time) {
	for id, g := range c.groups {
		if g.state == groupEmpty && len(g.members) == 0 && len(g.pending) == 0 && !now.Before(g.emptySince.Add(emptyGroupRetention)) {
			delete(c.groups, id)
			continue
		}
		for id, deadline := range g.pending {
			if !now.Before(deadline) {
				delete(g.pending, id)
			}
		}
		for _, m := range g.members {
			if m.join == nil && m.sync == nil && !now.Before(m.lastSeen.Add(m.sessionTimeout)) {
				if g.state == groupPreparingRebalance {
					// Not rejoined: removed when the rebalance completes,
					// or now if its session is over.
					delete(g.members, m.id)
					continue
				}
				g.removeMember(now, m)
			}
		}
		if g.state == groupPreparingRebalance {
			if !now.Before(g.rebalanceDeadline) {
				g.completeJoin(now)
			} else {
				g.maybeCompleteJoin(now)
			}
		}
	}
}

// ValidateCommit checks an OffsetCommit (or, transactional, a
// TxnOffsetCommit) against the group's membership, as Kafka's classic
// coordinator does. Generation -1 with no member id is a simple (admin)
// commit, allowed while the group has no members (and, for a transactional
// commit from a client too old to send its member, always). Otherwise the
// member must be in the group (UNKNOWN_MEMBER_ID; FENCED_INSTANCE_ID for a
// static member's stale member id) at the current generation
// (ILLEGAL_GENERATION); a plain commit is refused with REBALANCE_IN_PROGRESS
// while the group waits for its leader's assignment, a transactional one is
// not (KIP-447: the member already holds the new generation). It returns
// an error code (0 when the commit may proceed) and refreshes the member's
// session.
func (c *groupCoordinator) ValidateCommit(now time.Time, groupID, memberID string, instanceID *string, generation int32, transactional bool) int16 {
	simple := generation < 0 && memberID == "" && instanceID == nil
	g := c.groups[groupID]
	if g == nil || g.state == groupEmpty || g.state == groupDead {
		if generation < 0 {
			return 0
		}
		return kerr.IllegalGeneration.Code
	}
	if simple {
		if transactional {
			return 0
		}
		return kerr.IllegalGeneration.Code
	}
	m, code := g.member(memberID, instanceID)
	if code != 0 {
		return code
	}
	m.lastSeen = now
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	if g.state == groupCompletingRebalance && !transactional {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// groupSummary describes one group (DescribeGroups, ListGroups).
type groupSummary struct {
	ID           string
	State        groupState
	ProtocolType string
	Protocol     string
	Generation   int32
	Members      []kmsg.DescribeGroupsResponseGroupMember
}

// Describe returns a group's summary; ok is false for a group the
// coordinator has never seen.
func (c *groupCoordinator) Describe(groupID string) (groupSummary, bool) {
	g := c.groups[groupID]
	if g == nil {
		return groupSummary{ID: groupID, State: groupDead}, false
	}
	s := groupSummary{ID: g.id, State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol, Generation: g.generation}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		var meta []byte
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				meta = p.Metadata
			}
		}
		s.Members = append(s.Members, kmsg.DescribeGroupsResponseGroupMember{
			MemberID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			ProtocolMetadata: meta, MemberAssignment: m.assignment,
		})
	}
	return s, true
}

// List returns the summaries of every known group, sorted by id.
func (c *groupCoordinator) List() []groupSummary {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]groupSummary, 0, len(ids))
	for _, id := range ids {
		s, _ := c.Describe(id)
		out = append(out, s)
	}
	return out
}

// Delete forgets an empty group (DeleteGroups); it returns NON_EMPTY_GROUP
// for a group with members.
func (c *groupCoordinator) Delete(groupID string) int16 {
	g := c.groups[groupID]
	if g == nil {
		return 0
	}
	if len(g.members) > 0 {
		return kerr.NonEmptyGroup.Code
	}
	g.state = groupDead
	delete(c.groups, groupID)
	return 0
}
