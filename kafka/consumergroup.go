package kafka

import (
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The consumer group protocol of KIP-848, as a deterministic state machine.
//
// consumerCoordinator, like groupCoordinator, owns no goroutines, timers or
// I/O: every method takes the current time and the topic metadata it needs,
// and Tick applies what time alone changes (session expiry, revocation
// deadlines) and what metadata changes alone imply (new topics or partitions
// matching a subscription). The server calls it under the same mutex as the
// classic coordinator; tests drive it with a fake clock.
//
// Epochs follow Kafka. The group epoch is bumped whenever the inputs of the
// assignment change: a member joins or leaves (or is fenced), a member's
// subscription or preferred assignor changes, or the partitions of the
// subscribed topics change. Each bump recomputes the target assignment at
// once (so the target assignment epoch always equals the group epoch; the
// group is never left "Assigning").
//
// Each member is then reconciled towards its target, only when it
// heartbeats, as Kafka's CurrentAssignmentBuilder does:
//
//   - partitions it holds that are no longer in its target are first
//     revoked: the member keeps its epoch and is told its assignment without
//     them (state "unrevoked"), and it must confirm by heartbeating with
//     owned partitions that no longer include them (within its rebalance
//     timeout, or it is fenced);
//   - then it moves to the target epoch and is given the partitions of its
//     target that no other member holds; a partition still held (assigned or
//     pending revocation) by another member is withheld (state
//     "unreleased") until that member releases it.
//
// So at no time do two members hold the same partition according to what
// the coordinator told them; owner records who holds each partition.

// Consumer group member epochs with special meanings.
const (
	cgJoinEpoch        int32 = 0
	cgLeaveEpoch       int32 = -1
	cgStaticLeaveEpoch int32 = -2
)

// Server-side assignors (ConsumerGroupHeartbeat ServerAssignor).
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

// consumerAssignors lists the assignors served, the default first (Kafka's
// group.consumer.assignors).
var consumerAssignors = []string{assignorUniform, assignorRange}

// topicMeta is the partition count of every topic, by name.
type topicMeta map[string]int32

// cgState is a consumer group's state (Kafka's names).
type cgState int8

const (
	cgEmpty cgState = iota
	cgAssigning
	cgReconciling
	cgStable
	cgDead
)

// String returns Kafka's name of the state.
func (s cgState) String() string {
	switch s {
	case cgEmpty:
		return "Empty"
	case cgAssigning:
		return "Assigning"
	case cgReconciling:
		return "Reconciling"
	case cgStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// memberState is where a member is in its reconciliation.
type memberState int8

const (
	memberStable     memberState = iota // holds its target at the target epoch
	memberUnrevoked                     // must release partitions first
	memberUnreleased                    // waits for partitions others still hold
)

// cgParams is a ConsumerGroupHeartbeat as the coordinator sees it. Nil
// slices and pointers mean "not sent" (unchanged since the last heartbeat).
type cgParams struct {
	Group       string
	MemberID    string
	MemberEpoch int32
	InstanceID  *string
	RackID      *string
	// RebalanceTimeout is negative when not sent.
	RebalanceTimeout time.Duration
	SubscribedNames  []string
	SubscribedRegex  *string
	ServerAssignor   *string
	// Owned is the partitions the member owns; OwnedSent is false when the
	// request did not carry them.
	Owned      []tp
	OwnedSent  bool
	ClientID   string
	ClientHost string
	// MayDescribe, when set, tells which topics the member's principal
	// may describe: a regex subscription matches only those (as Kafka's
	// coordinator resolves regexes). Nil: every topic.
	MayDescribe func(topic string) bool
}

// full reports whether the heartbeat carries everything (Kafka sends the
// assignment back on such requests).
func (p cgParams) full() bool {
	return p.RebalanceTimeout >= 0 && (p.SubscribedNames != nil || p.SubscribedRegex != nil) && p.OwnedSent
}

// cgResult is the answer to one ConsumerGroupHeartbeat.
type cgResult struct {
	ErrorCode    int16
	ErrorMessage string
	MemberID     string
	MemberEpoch  int32
	// Assignment is the member's assignment (sorted) when HasAssignment.
	Assignment    []tp
	HasAssignment bool
}

type cgMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string

	epoch, prevEpoch int32
	state            memberState
	names            []string // subscribed topic names, sorted
	regex            string
	re               *regexp.Regexp
	mayDescribe      func(topic string) bool // nil: every topic (cgParams.MayDescribe)
	assignor         string
	rebalanceTimeout time.Duration
	lastSeen         time.Time
	revokeDeadline   time.Time

	// assigned and revoking map each partition the member holds to the
	// member epoch at which it was given (KIP-1251 commit validation).
	assigned map[tp]int32
	revoking map[tp]int32
	target   map[tp]struct{}
}

type consumerGroup struct {
	id              string
	epoch           int32
	assignmentEpoch int32
	assignor        string
	members         map[string]*cgMember
	static          map[string]string          // instance id -> member id
	owner           map[tp]string              // partition -> member holding it
	subMeta         topicMeta                  // subscribed topics' partitions at the last target
	seenMeta        topicMeta                  // every topic's partitions when subMeta was derived
	subs            map[string]map[string]bool // each member's subscribed topics at the last target
	// authz is the authorizer's version now (consumerCoordinator.authzVersion),
	// seenAuthz the one the last target was derived under: a regex
	// subscription matches only topics the member may describe, so an ACL
	// or tenant change may change it without any topic changing.
	authz, seenAuthz uint64
	// emptySince is when Tick first saw the group without members (zero:
	// it has members); see consumerCoordinator.Tick.
	emptySince time.Time
}

// consumerCoordinator holds every consumer-protocol group. Not safe for
// concurrent use.
type consumerCoordinator struct {
	groups            map[string]*consumerGroup
	heartbeatInterval time.Duration
	sessionTimeout    time.Duration
	// newMemberID returns a fresh member id (v0 heartbeats, where the
	// server picks it).
	newMemberID func() string
	// authzVersion, when set, changes whenever what cgParams.MayDescribe
	// answers may have changed (the ACLs, the tenants).
	authzVersion func() uint64
	// hasOffsets, when set, reports whether a group has committed
	// offsets: an empty group that has is kept (nil: none has).
	hasOffsets func(group string) bool
}

// at returns group id (nil if none) with the authorizer's version noted.
func (c *consumerCoordinator) at(id string) *consumerGroup {
	g := c.groups[id]
	if g != nil && c.authzVersion != nil {
		g.authz = c.authzVersion()
	}
	return g
}

func newConsumerCoordinator(heartbeat, session time.Duration, newMemberID func() string) *consumerCoordinator {
	if newMemberID == nil {
		newMemberID = randomUUID
	}
	return &consumerCoordinator{groups: make(map[string]*consumerGroup), heartbeatInterval: heartbeat, sessionTimeout: session, newMemberID: newMemberID}
}

func cgError(code int16, msg string) cgResult { return cgResult{ErrorCode: code, ErrorMessage: msg} }

// Has reports whether a consumer group with this id exists, and whether it
// has members.
func (c *consumerCoordinator) Has(groupID string) (exists, nonEmpty bool) {
	g := c.groups[groupID]
	if g == nil {
		return false, false
	}
	return true, len(g.members) > 0
}

// Heartbeat handles a ConsumerGroupHeartbeat already validated by
// validateConsumerHeartbeat.
func (c *consumerCoordinator) Heartbeat(now time.Time, p cgParams, meta topicMeta) cgResult {
	if code, msg := checkParams(p); code != 0 {
		return cgError(code, msg)
	}
	g := c.at(p.Group)
	switch p.MemberEpoch {
	case cgLeaveEpoch, cgStaticLeaveEpoch:
		if g == nil {
			return cgError(kerr.GroupIDNotFound.Code, "consumer group "+p.Group+" not found")
		}
		return g.leave(now, p, meta)
	case cgJoinEpoch:
		if g == nil {
			g = &consumerGroup{id: p.Group, members: make(map[string]*cgMember), static: make(map[string]string), owner: make(map[tp]string), subMeta: topicMeta{}}
			c.groups[p.Group] = g
			g = c.at(p.Group)
		}
		if p.MemberID == "" {
			p.MemberID = c.newMemberID()
		}
		return g.join(now, p, meta)
	}
	if g == nil {
		// Kafka answers GROUP_ID_NOT_FOUND, but its groups survive a
		// restart and these do not: a member of a group lost with a
		// restart must rejoin, which UNKNOWN_MEMBER_ID tells every client
		// (the Java consumer treats GROUP_ID_NOT_FOUND here as fatal).
		return cgError(kerr.UnknownMemberID.Code, "consumer group "+p.Group+" not found (the coordinator restarted?); rejoin")
	}
	m := g.members[p.MemberID]
	if m == nil {
		if p.InstanceID != nil && g.static[*p.InstanceID] != "" {
			return cgError(kerr.FencedInstanceID.Code, "instance id "+*p.InstanceID+" belongs to another member")
		}
		return cgError(kerr.UnknownMemberID.Code, "unknown member "+p.MemberID)
	}
	if code, msg := m.checkEpoch(p); code != 0 {
		return cgError(code, msg)
	}
	return g.heartbeat(now, m, p, meta, false)
}

// checkEpoch accepts the member's epoch, or its previous epoch when it
// reports a subset of its assignment (the answer that bumped it was lost).
func (m *cgMember) checkEpoch(p cgParams) (int16, string) {
	if p.MemberEpoch == m.epoch {
		return 0, ""
	}
	if p.MemberEpoch < m.epoch && p.MemberEpoch == m.prevEpoch && p.OwnedSent {
		subset := true
		for _, o := range p.Owned {
			if _, ok := m.assigned[o]; !ok {
				subset = false
				break
			}
		}
		if subset {
			return 0, ""
		}
	}
	return kerr.FencedMemberEpoch.Code, "the member epoch does not match the coordinator's; the member must abandon its partitions and rejoin"
}

// join handles epoch 0: a new member, a member rejoining in place (a lost
// join answer or a fenced member), or a static member replacing its former
// incarnation.
func (g *consumerGroup) join(now time.Time, p cgParams, meta topicMeta) cgResult {
	m := g.members[p.MemberID]
	changed := false
	if p.InstanceID != nil {
		if oldID, ok := g.static[*p.InstanceID]; ok && oldID != p.MemberID {
			old := g.members[oldID]
			if old != nil && old.epoch != cgStaticLeaveEpoch {
				return cgError(kerr.UnreleasedInstanceID.Code, "instance id "+*p.InstanceID+" is still in use by member "+oldID)
			}
			if old != nil {
				m = g.replaceStatic(old, p.MemberID)
			}
		}
		g.static[*p.InstanceID] = p.MemberID
	}
	if m == nil {
		m = &cgMember{id: p.MemberID, assigned: make(map[tp]int32), revoking: make(map[tp]int32), target: make(map[tp]struct{})}
		g.members[m.id] = m
		changed = true
	} else if m.epoch == cgStaticLeaveEpoch {
		m.epoch, m.prevEpoch = 0, 0
	}
	return g.heartbeat(now, m, p, meta, changed)
}

// replaceStatic moves a static member that left temporarily (epoch -2)
// to a new member id, with its assignment.
func (g *consumerGroup) replaceStatic(old *cgMember, newID string) *cgMember {
	delete(g.members, old.id)
	m := *old
	m.id = newID
	m.epoch, m.prevEpoch, m.state = 0, 0, memberStable
	for t := range m.assigned {
		g.owner[t] = newID
	}
	g.members[newID] = &m
	return &m
}

// heartbeat updates a member from a heartbeat, recomputes the target
// assignment if its inputs changed (bump: a new member), and reconciles the
// member.
func (g *consumerGroup) heartbeat(now time.Time, m *cgMember, p cgParams, meta topicMeta, bump bool) cgResult {
	if m.update(p) {
		bump = true
	}
	m.clientID, m.clientHost = p.ClientID, p.ClientHost
	m.lastSeen = now
	before := m.assignedList()
	g.refresh(meta, bump)
	g.reconcile(now, m, p.Owned, p.OwnedSent)
	r := cgResult{MemberID: m.id, MemberEpoch: m.epoch}
	after := m.assignedList()
	if p.MemberEpoch == cgJoinEpoch || p.full() || !slices.Equal(before, after) {
		r.Assignment, r.HasAssignment = after, true
	}
	return r
}

// checkParams rejects an unknown assignor or an invalid regex.
func checkParams(p cgParams) (int16, string) {
	if p.ServerAssignor != nil && !slices.Contains(consumerAssignors, *p.ServerAssignor) {
		return kerr.UnsupportedAssignor.Code, "assignor " + *p.ServerAssignor + " is not supported (uniform, range)"
	}
	if p.SubscribedRegex != nil {
		if err := checkTopicRegex(*p.SubscribedRegex); err != nil {
			return kerr.InvalidRegularExpression.Code, "invalid regular expression: " + err.Error()
		}
	}
	return 0, ""
}

// update applies the subscription, assignor and other fields of p (checked
// by checkParams); it reports a change that needs a new target assignment.
func (m *cgMember) update(p cgParams) (sub bool) {
	if p.ServerAssignor != nil && *p.ServerAssignor != m.assignor {
		m.assignor, sub = *p.ServerAssignor, true
	}
	if p.MayDescribe != nil {
		m.mayDescribe = p.MayDescribe
	}
	if p.SubscribedRegex != nil && *p.SubscribedRegex != m.regex {
		m.regex, sub = *p.SubscribedRegex, true
		m.re, _ = compileTopicRegex(m.regex)
		if m.regex == "" {
			m.re = nil
		}
	}
	if p.SubscribedNames != nil {
		names := slices.Clone(p.SubscribedNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.names) {
			m.names, sub = names, true
		}
	}
	if p.RackID != nil && (m.rackID == nil || *m.rackID != *p.RackID) {
		m.rackID, sub = p.RackID, true
	}
	if p.InstanceID != nil {
		m.instanceID = p.InstanceID
	}
	if p.RebalanceTimeout >= 0 {
		m.rebalanceTimeout = p.RebalanceTimeout
	}
	return sub
}

// Bounds of a subscription regex. Compiling one costs more than its
// length, up to seconds for a few KiB of counted repetitions (a{1000}...)
// and over a minute for 8 MiB, and a heartbeat's regex is looked at under
// the lock of every group; topic names are at most 249 bytes, so these
// leave room for an alternation of dozens of them.
const (
	maxTopicRegexBytes = 8 << 10
	maxTopicRegexInsts = 20000 // an estimate of the compiled program's instructions
)

// checkTopicRegex parses a subscription regex, which is cheap, and refuses
// it if it is invalid or too large to compile (maxTopicRegexBytes,
// maxTopicRegexInsts).
func checkTopicRegex(expr string) error {
	if len(expr) > maxTopicRegexBytes {
		return fmt.Errorf("the regex is %d bytes, more than the %d allowed", len(expr), maxTopicRegexBytes)
	}
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return err
	}
	if regexInsts(re) > maxTopicRegexInsts {
		return fmt.Errorf("the regex would compile to more than %d instructions (counted repetitions multiply)", maxTopicRegexInsts)
	}
	return nil
}

// regexInsts estimates the instructions re compiles to, saturating just
// past maxTopicRegexInsts.
func regexInsts(re *syntax.Regexp) int {
	n := 1
	switch re.Op {
	case syntax.OpLiteral:
		n += len(re.Rune)
	case syntax.OpRepeat:
		times := re.Max
		if times < 0 {
			times = re.Min + 1
		}
		n += max(times, 1) * regexInsts(re.Sub[0])
	default:
		for _, sub := range re.Sub {
			n += regexInsts(sub)
		}
	}
	return min(n, maxTopicRegexInsts+1)
}

// compileTopicRegex checks (checkTopicRegex) and compiles a subscription
// regex; as Kafka (RE2J's matches), it must match the whole topic name.
func compileTopicRegex(expr string) (*regexp.Regexp, error) {
	if err := checkTopicRegex(expr); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// subscribes reports whether the member subscribes to topic.
func (m *cgMember) subscribes(topic string) bool {
	if _, ok := slices.BinarySearch(m.names, topic); ok {
		return true
	}
	return m.re != nil && m.re.MatchString(topic) && (m.mayDescribe == nil || m.mayDescribe(topic))
}

func (m *cgMember) assignedList() []tp { return slices.SortedFunc(maps.Keys(m.assigned), compareTP) }

func compareTP(a, b tp) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// subscriptionMeta returns the partition counts of the existing topics
// some member subscribes to.
func (g *consumerGroup) subscriptionMeta(meta topicMeta) topicMeta {
	out := topicMeta{}
	for name, n := range meta {
		for _, m := range g.members {
			if m.subscribes(name) {
				out[name] = n
				break
			}
		}
	}
	return out
}

// refresh bumps the group epoch and recomputes the target assignment when
// force is set or the subscribed topics' partitions changed. meta nil means
// no metadata is known (only force applies, with the last one seen).
func (g *consumerGroup) refresh(meta topicMeta, force bool) {
	authz := g.authz != g.seenAuthz
	if !force && !authz && (meta == nil || maps.Equal(meta, g.seenMeta)) {
		return // nothing that the subscribed partitions depend on changed
	}
	g.seenAuthz = g.authz
	sub := g.subMeta
	if meta != nil {
		g.seenMeta = maps.Clone(meta)
		sub = g.subscriptionMeta(meta)
	} else if authz {
		sub = g.subscriptionMeta(g.seenMeta)
	}
	if !force && maps.Equal(sub, g.subMeta) && !(authz && !g.sameSubs(g.memberSubs(sub))) {
		return
	}
	g.epoch++
	g.subMeta = sub
	g.computeTarget()
}

// memberSubs returns each member's subscribed topics among those of sub.
func (g *consumerGroup) memberSubs(sub topicMeta) map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(g.members))
	for id, m := range g.members {
		subs := make(map[string]bool)
		for name := range sub {
			if m.subscribes(name) {
				subs[name] = true
			}
		}
		out[id] = subs
	}
	return out
}

// sameSubs reports whether subs are the members' subscriptions at the last
// target.
func (g *consumerGroup) sameSubs(subs map[string]map[string]bool) bool {
	return maps.EqualFunc(subs, g.subs, func(a, b map[string]bool) bool { return maps.Equal(a, b) })
}

// preferredAssignor is the assignor most members ask for (ties and no
// preference go to the order of consumerAssignors).
func (g *consumerGroup) preferredAssignor() string {
	votes := map[string]int{}
	for _, m := range g.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := consumerAssignors[0]
	for _, a := range consumerAssignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// computeTarget recomputes every member's target from the subscriptions
// and g.subMeta, and moves the target assignment epoch to the group epoch.
func (g *consumerGroup) computeTarget() {
	g.assignor = g.preferredAssignor()
	g.subs = g.memberSubs(g.subMeta)
	in := assignInput{meta: g.subMeta, subs: g.subs, prev: make(map[string]map[tp]struct{})}
	for id, m := range g.members {
		in.members = append(in.members, id)
		in.prev[id] = m.target
	}
	slices.Sort(in.members)
	var out map[string]map[tp]struct{}
	if g.assignor == assignorRange {
		out = assignRange(in)
	} else {
		out = assignUniform(in)
	}
	for id, m := range g.members {
		m.target = out[id]
	}
	g.assignmentEpoch = g.epoch
}

// reconcile moves m towards its target (Kafka's CurrentAssignmentBuilder).
func (g *consumerGroup) reconcile(now time.Time, m *cgMember, owned []tp, ownedSent bool) {
	switch m.state {
	case memberStable:
		if m.epoch == g.assignmentEpoch {
			return
		}
	case memberUnrevoked:
		if !ownedSent || ownsAny(owned, m.revoking) {
			return
		}
		g.release(m, m.revoking)
		clear(m.revoking)
	}
	g.nextAssignment(now, m, owned, ownedSent)
}

func ownsAny(owned []tp, set map[tp]int32) bool {
	for _, o := range owned {
		if _, ok := set[o]; ok {
			return true
		}
	}
	return false
}

// release frees the partitions of set that m holds.
func (g *consumerGroup) release(m *cgMember, set map[tp]int32) {
	for t := range set {
		if g.owner[t] == m.id {
			delete(g.owner, t)
		}
	}
}

func (g *consumerGroup) nextAssignment(now time.Time, m *cgMember, owned []tp, ownedSent bool) {
	revoke := make(map[tp]int32)
	for t, e := range m.assigned {
		if _, ok := m.target[t]; !ok {
			revoke[t] = e
		}
	}
	if len(revoke) > 0 && (!ownedSent || ownsAny(owned, revoke)) {
		for t, e := range revoke {
			delete(m.assigned, t)
			m.revoking[t] = e
		}
		if m.state != memberUnrevoked {
			m.revokeDeadline = now.Add(m.rebalanceTimeout)
		}
		m.state = memberUnrevoked
		return
	}
	for t := range revoke {
		delete(m.assigned, t)
	}
	g.release(m, revoke)
	unreleased := false
	for _, t := range slices.SortedFunc(maps.Keys(m.target), compareTP) {
		if _, ok := m.assigned[t]; ok {
			continue
		}
		if o := g.owner[t]; o != "" && o != m.id {
			unreleased = true
			continue
		}
		g.owner[t] = m.id
		m.assigned[t] = g.assignmentEpoch
	}
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, g.assignmentEpoch
	}
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleased
	}
}

// leave handles epochs -1 (leave) and -2 (a static member leaving for a
// while: it keeps its assignment until it rejoins or its session expires).
func (g *consumerGroup) leave(now time.Time, p cgParams, meta topicMeta) cgResult {
	m := g.members[p.MemberID]
	if p.MemberEpoch == cgStaticLeaveEpoch && p.InstanceID != nil {
		id, ok := g.static[*p.InstanceID]
		if !ok || g.members[id] == nil {
			return cgError(kerr.UnknownMemberID.Code, "unknown static member "+*p.InstanceID)
		}
		if id != p.MemberID {
			return cgError(kerr.FencedInstanceID.Code, "instance id "+*p.InstanceID+" belongs to another member")
		}
		g.release(m, m.revoking)
		clear(m.revoking)
		m.prevEpoch, m.epoch, m.state = m.epoch, cgStaticLeaveEpoch, memberStable
		m.lastSeen = now
		return cgResult{MemberID: m.id, MemberEpoch: cgStaticLeaveEpoch}
	}
	if m == nil {
		return cgError(kerr.UnknownMemberID.Code, "unknown member "+p.MemberID)
	}
	g.remove(m, meta)
	return cgResult{MemberID: p.MemberID, MemberEpoch: cgLeaveEpoch}
}

// remove drops m (left or fenced), frees its partitions and recomputes the
// target assignment.
func (g *consumerGroup) remove(m *cgMember, meta topicMeta) {
	g.release(m, m.assigned)
	g.release(m, m.revoking)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	g.refresh(meta, true)
}

// RemoveMembers handles a LeaveGroup naming members of a consumer group
// (Kafka's administrative removal, as kadm's LeaveGroup and the Java
// admin's removeMembersFromConsumerGroup send it): a static member named
// by its instance id alone is removed and its partitions freed; a member
// named by member id does not use the classic protocol and answers
// UNKNOWN_MEMBER_ID, as does an unknown instance id; an instance id with
// another member's id answers FENCED_INSTANCE_ID. ok is false when there is
// no consumer group with that id.
func (c *consumerCoordinator) RemoveMembers(groupID string, members []leaveMember, meta topicMeta) (codes []int16, ok bool) {
	g := c.at(groupID)
	if g == nil {
		return nil, false
	}
	codes = make([]int16, len(members))
	for i, lm := range members {
		if lm.InstanceID == nil {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		m := g.members[g.static[*lm.InstanceID]]
		switch {
		case m == nil:
			codes[i] = kerr.UnknownMemberID.Code
		case lm.MemberID != "" && lm.MemberID != m.id:
			codes[i] = kerr.FencedInstanceID.Code
		case lm.MemberID != "":
			codes[i] = kerr.UnknownMemberID.Code // not a classic-protocol member
		default:
			g.remove(m, meta)
		}
	}
	return codes, true
}

// Tick fences members whose session expired or who did not revoke
// partitions within their rebalance timeout, recomputes targets whose
// subscribed topics changed in meta (nil: not checked), and forgets a
// group left without members for emptyGroupRetention unless it has
// committed offsets (Kafka keeps those; it is looked at again after
// another retention).
func (c *consumerCoordinator) Tick(now time.Time, meta topicMeta) {
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.at(id)
		for _, mid := range slices.Sorted(maps.Keys(g.members)) {
			m := g.members[mid]
			expired := !now.Before(m.lastSeen.Add(c.sessionTimeout))
			stuck := m.state == memberUnrevoked && !now.Before(m.revokeDeadline)
			if expired || stuck {
				g.remove(m, meta)
			}
		}
		switch {
		case len(g.members) > 0:
			g.emptySince = time.Time{}
		case g.emptySince.IsZero():
			g.emptySince = now
		case !now.Before(g.emptySince.Add(emptyGroupRetention)):
			if c.hasOffsets == nil || !c.hasOffsets(id) {
				delete(c.groups, id)
				continue
			}
			g.emptySince = now
		}
		if meta != nil || g.authz != g.seenAuthz {
			g.refresh(meta, false)
		}
	}
}

// state derives the group's state.
func (g *consumerGroup) state() cgState {
	if len(g.members) == 0 {
		return cgEmpty
	}
	if g.epoch != g.assignmentEpoch {
		return cgAssigning
	}
	for _, m := range g.members {
		if m.epoch != cgStaticLeaveEpoch && (m.epoch != g.assignmentEpoch || m.state != memberStable) {
			return cgReconciling
		}
	}
	return cgStable
}

// cgMemberSummary describes one member (ConsumerGroupDescribe).
type cgMemberSummary struct {
	ID, ClientID, ClientHost string
	InstanceID, RackID       *string
	Epoch                    int32
	Names                    []string
	Regex                    *string
	Assigned, Target         []tp
}

// cgSummary describes one consumer group.
type cgSummary struct {
	ID                     string
	State                  cgState
	Epoch, AssignmentEpoch int32
	Assignor               string
	Members                []cgMemberSummary
}

// Describe returns a consumer group's summary; ok is false when there is
// no consumer group with that id.
func (c *consumerCoordinator) Describe(groupID string) (cgSummary, bool) {
	g := c.groups[groupID]
	if g == nil {
		return cgSummary{ID: groupID, State: cgDead}, false
	}
	s := cgSummary{ID: g.id, State: g.state(), Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch, Assignor: g.assignor}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		ms := cgMemberSummary{
			ID: id, ClientID: m.clientID, ClientHost: m.clientHost, InstanceID: m.instanceID, RackID: m.rackID,
			Epoch: m.epoch, Names: slices.Clone(m.names), Assigned: m.assignedList(), Target: slices.SortedFunc(maps.Keys(m.target), compareTP),
		}
		if ms.Names == nil {
			ms.Names = []string{}
		}
		if m.re != nil {
			r := m.regex
			ms.Regex = &r
		}
		s.Members = append(s.Members, ms)
	}
	return s, true
}

// Subscription returns what OffsetDelete needs to know of a consumer
// group: its members and the topics of meta some member subscribes to (by
// name or regex); known is false when there is no such group.
func (c *consumerCoordinator) Subscription(groupID string, meta topicMeta) groupSubscription {
	g := c.groups[groupID]
	if g == nil {
		return groupSubscription{}
	}
	s := groupSubscription{known: true, members: len(g.members), protocolType: consumerProtocolType, topics: make(map[string]bool)}
	for name := range g.subscriptionMeta(meta) {
		s.topics[name] = true
	}
	return s
}

// List returns the summaries of every consumer group, sorted by id.
func (c *consumerCoordinator) List() []cgSummary {
	out := make([]cgSummary, 0, len(c.groups))
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		s, _ := c.Describe(id)
		out = append(out, s)
	}
	return out
}

// Delete forgets an empty consumer group; ok is false when there is none.
func (c *consumerCoordinator) Delete(groupID string) (code int16, ok bool) {
	g := c.groups[groupID]
	if g == nil {
		return 0, false
	}
	if len(g.members) > 0 {
		return kerr.NonEmptyGroup.Code, true
	}
	delete(c.groups, groupID)
	return 0, true
}

// commitCheck is the outcome of validating an offset commit against a
// consumer group.
type commitCheck struct {
	// Code applies to every partition.
	Code int16
	// Epochs, when not nil, holds the assignment epoch of each partition
	// the member holds: the commit's epoch is older than the member's, and
	// a partition is accepted only if it was assigned at or before the
	// commit's epoch (KIP-1251).
	Epochs map[tp]int32
	Epoch  int32
}

// Partition returns the error code for committing one partition.
func (c commitCheck) Partition(t tp) int16 {
	if c.Code != 0 || c.Epochs == nil {
		return c.Code
	}
	if e, ok := c.Epochs[t]; ok && e <= c.Epoch {
		return 0
	}
	return kerr.StaleMemberEpoch.Code
}

// ValidateCommit checks an OffsetCommit (txn false) or TxnOffsetCommit
// against a consumer group; known is false when there is no consumer group
// with that id. A negative epoch commits freely into a group without
// members (admin tools); otherwise the member must exist, use OffsetCommit
// v9+ (non-transactional), and commit with its epoch or, per partition,
// an older epoch at which it already held the partition.
func (c *consumerCoordinator) ValidateCommit(groupID, memberID string, epoch int32, version int16, txn bool) (check commitCheck, known bool) {
	g := c.groups[groupID]
	if g == nil {
		return commitCheck{}, false
	}
	if epoch < 0 && len(g.members) == 0 {
		return commitCheck{}, true
	}
	m := g.members[memberID]
	switch {
	case m == nil:
		return commitCheck{Code: kerr.UnknownMemberID.Code}, true
	case !txn && version < 9:
		return commitCheck{Code: kerr.UnsupportedVersion.Code}, true
	case epoch > m.epoch || epoch < 0:
		return commitCheck{Code: kerr.StaleMemberEpoch.Code}, true
	case epoch == m.epoch:
		return commitCheck{}, true
	}
	epochs := maps.Clone(m.assigned)
	maps.Copy(epochs, m.revoking)
	return commitCheck{Epochs: epochs, Epoch: epoch}, true
}

// ValidateFetch checks an OffsetFetch (v9+) from a consumer group member;
// known is false when there is no consumer group with that id.
func (c *consumerCoordinator) ValidateFetch(groupID string, memberID *string, epoch int32) (code int16, known bool) {
	g := c.groups[groupID]
	if g == nil {
		return 0, false
	}
	if memberID == nil && epoch < 0 {
		return 0, true
	}
	var m *cgMember
	if memberID != nil {
		m = g.members[*memberID]
	}
	if m == nil {
		return kerr.UnknownMemberID.Code, true
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch.Code, true
	}
	return 0, true
}
