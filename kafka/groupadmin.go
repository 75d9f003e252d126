package kafka

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerProtocolType is the protocol type of Kafka consumers' groups,
// whose member metadata and assignments have a known encoding.
const consumerProtocolType = "consumer"

// groupSubscription is what OffsetDelete needs to know of a classic group.
type groupSubscription struct {
	known        bool // the coordinator holds the group (not Dead)
	members      int
	protocolType string
	// topics is the union of the members' subscriptions; nil when it is not
	// known (no protocol selected yet, or metadata that does not decode).
	topics map[string]bool
}

// subscribed reports whether the group's members consume topic; an unknown
// subscription counts as every topic.
func (s groupSubscription) subscribed(topic string) bool {
	return s.topics == nil || s.topics[topic]
}

// Subscription returns the group's members count, protocol type and, for
// consumer groups, the topics its members subscribe to (from their
// metadata for the selected protocol).
func (c *groupCoordinator) Subscription(groupID string) groupSubscription {
	g := c.groups[groupID]
	if g == nil || g.state == groupDead {
		return groupSubscription{}
	}
	s := groupSubscription{known: true, members: len(g.members), protocolType: g.protocolType}
	if g.protocolType != consumerProtocolType || g.protocol == "" {
		return s
	}
	topics := make(map[string]bool)
	for _, m := range g.members {
		i := slices.IndexFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == g.protocol })
		if i < 0 {
			return s
		}
		sub, err := decodeConsumerSubscription(m.protocols[i].Metadata)
		if err != nil {
			return s
		}
		for _, t := range sub {
			topics[t] = true
		}
	}
	s.topics = topics
	return s
}

// decodeConsumerSubscription returns the topics of a consumer protocol
// member metadata (ConsumerProtocolSubscription), as sent by a client.
func decodeConsumerSubscription(meta []byte) ([]string, error) {
	var m kmsg.ConsumerMemberMetadata
	if err := m.ReadFrom(meta); err != nil {
		return nil, fmt.Errorf("consumer member metadata of %d bytes: %w", len(meta), err)
	}
	return m.Topics, nil
}

// AssignedPartitions is one topic's partitions in a member's assignment.
type AssignedPartitions struct {
	Topic      string
	Partitions []int32
}

// decodeConsumerAssignment returns the partitions of a consumer protocol
// assignment (ConsumerProtocolAssignment), as the group leader sent it,
// sorted by topic and partition. An empty assignment has none.
func decodeConsumerAssignment(b []byte) ([]AssignedPartitions, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("consumer assignment of %d bytes: %w", len(b), err)
	}
	byTopic := make(map[string][]int32, len(a.Topics))
	for _, t := range a.Topics {
		byTopic[t.Topic] = append(byTopic[t.Topic], t.Partitions...)
	}
	out := make([]AssignedPartitions, 0, len(byTopic))
	for topic, parts := range byTopic {
		slices.Sort(parts)
		out = append(out, AssignedPartitions{Topic: topic, Partitions: slices.Compact(parts)})
	}
	slices.SortFunc(out, func(x, y AssignedPartitions) int { return cmp.Compare(x.Topic, y.Topic) })
	return out, nil
}

// GroupInfo describes a live classic consumer group: what DescribeGroups
// answers, with consumer members' subscriptions and assignments decoded.
type GroupInfo struct {
	Group        string
	State        string
	ProtocolType string
	Protocol     string
	Generation   int32
	Members      []GroupMemberInfo
}

// GroupMemberInfo is one member of a group.
type GroupMemberInfo struct {
	MemberID   string
	InstanceID string // static membership id, "" when none
	ClientID   string
	ClientHost string
	// Subscription and Assignment are decoded for groups of protocol type
	// "consumer"; DecodeError says why they could not be.
	Subscription []string
	Assignment   []AssignedPartitions
	DecodeError  string
}

// Groups describes every group the coordinator holds (groups known only by
// their committed offsets are not listed: they have no members), sorted by
// id.
func (s *Server) Groups() []GroupInfo {
	s.gmu.Lock()
	sums := s.groups.List()
	s.gmu.Unlock()
	out := make([]GroupInfo, 0, len(sums))
	for _, sum := range sums {
		gi := GroupInfo{Group: sum.ID, State: sum.State.String(), ProtocolType: sum.ProtocolType, Protocol: sum.Protocol, Generation: sum.Generation}
		for _, m := range sum.Members {
			mi := GroupMemberInfo{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost}
			if m.InstanceID != nil {
				mi.InstanceID = *m.InstanceID
			}
			if sum.ProtocolType == consumerProtocolType {
				mi.decode(m.ProtocolMetadata, m.MemberAssignment)
			}
			gi.Members = append(gi.Members, mi)
		}
		out = append(out, gi)
	}
	return out
}

// decode fills the member's subscription and assignment from the consumer
// protocol bytes its client and the group leader sent.
func (mi *GroupMemberInfo) decode(meta, assignment []byte) {
	if len(meta) > 0 {
		sub, err := decodeConsumerSubscription(meta)
		if err != nil {
			mi.DecodeError = err.Error()
			return
		}
		mi.Subscription = slices.Sorted(slices.Values(sub))
	}
	a, err := decodeConsumerAssignment(assignment)
	if err != nil {
		mi.DecodeError = err.Error()
		return
	}
	mi.Assignment = a
}
