package observe

import (
	"cmp"
	"slices"
)

// LiveGroup is what a group coordinator knows of a consumer group that has
// state beyond its committed offsets: its state and members.
type LiveGroup struct {
	Name         string
	State        string
	ProtocolType string
	Protocol     string
	Generation   int32
	Members      []GroupMember
}

// GroupMember is a live member of a consumer group and the partitions the
// group leader assigned to it (decoded for groups of protocol type
// "consumer").
type GroupMember struct {
	MemberID     string             `json:"member_id"`
	InstanceID   string             `json:"instance_id,omitempty"`
	ClientID     string             `json:"client_id"`
	ClientHost   string             `json:"client_host"`
	Subscription []string           `json:"subscription"`
	Assignment   []MemberAssignment `json:"assignment"`
	// DecodeError says why the subscription or assignment could not be
	// decoded.
	DecodeError string `json:"decode_error,omitempty"`
}

// MemberAssignment is one topic's partitions assigned to a member.
type MemberAssignment struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// SetGroupSource sets the function that reports live consumer groups (the
// Kafka listener's group coordinator), whose states and members are shown
// with the groups' offsets.
func (o *Observer) SetGroupSource(fn func() []LiveGroup) {
	o.mu.Lock()
	o.opts.Groups = fn
	o.mu.Unlock()
}

// mergeLiveGroupsLocked adds the live groups' states and members to out
// (groups known only by offsets are Empty) and the groups without offsets,
// keeping out sorted by name, and marks each partition with its owner.
func (o *Observer) mergeLiveGroupsLocked(out []GroupStatus) []GroupStatus {
	for i := range out {
		out[i].State, out[i].Members = "Empty", []GroupMember{}
	}
	if o.opts.Groups == nil {
		return out
	}
	for _, lg := range o.opts.Groups() {
		i, found := slices.BinarySearchFunc(out, lg.Name, func(g GroupStatus, name string) int { return cmp.Compare(g.Name, name) })
		if !found {
			out = slices.Insert(out, i, GroupStatus{Name: lg.Name, Partitions: []GroupPartition{}})
		}
		g := &out[i]
		g.State, g.ProtocolType, g.Protocol, g.Generation = lg.State, lg.ProtocolType, lg.Protocol, lg.Generation
		g.Members = make([]GroupMember, 0, len(lg.Members))
		for _, m := range lg.Members {
			if m.Subscription == nil {
				m.Subscription = []string{}
			}
			if m.Assignment == nil {
				m.Assignment = []MemberAssignment{}
			}
			g.Members = append(g.Members, m)
			for _, a := range m.Assignment {
				for j := range g.Partitions {
					p := &g.Partitions[j]
					if p.Topic == a.Topic && slices.Contains(a.Partitions, p.Partition) {
						p.Member = m.MemberID
					}
				}
			}
		}
	}
	return out
}
