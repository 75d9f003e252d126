package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is every operation Kafka defines on a group; without
// authorization a client may perform them all.
var groupOperations = opsBits(aclRead, aclDescribe, aclDelete)

// describeConsumerAsClassic renders a consumer-protocol group in
// DescribeGroups' classic form, as Kafka does for older tools: protocol type
// "consumer", the assignor as protocol, and each member's subscription and
// assignment encoded as the consumer protocol's metadata and assignment.
func describeConsumerAsClassic(s cgSummary) kmsg.DescribeGroupsResponseGroup {
	og := kmsg.NewDescribeGroupsResponseGroup()
	og.Group, og.State, og.ProtocolType, og.Protocol = s.ID, s.State.String(), "consumer", s.Assignor
	for _, m := range s.Members {
		om := kmsg.NewDescribeGroupsResponseGroupMember()
		om.MemberID, om.InstanceID, om.ClientID, om.ClientHost = m.ID, m.InstanceID, m.ClientID, m.ClientHost
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = m.Names
		om.ProtocolMetadata = meta.AppendTo(nil)
		a := kmsg.NewConsumerMemberAssignment()
		for _, t := range m.Assigned {
			if n := len(a.Topics); n == 0 || a.Topics[n-1].Topic != t.Topic {
				a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t.Topic})
			}
			a.Topics[len(a.Topics)-1].Partitions = append(a.Topics[len(a.Topics)-1].Partitions, t.Partition)
		}
		om.MemberAssignment = a.AppendTo(nil)
		og.Members = append(og.Members, om)
	}
	return og
}

// handleDescribeGroups describes groups: state, protocol and members
// (consumer-protocol groups too, see describeConsumerAsClassic). A group
// known only by its committed offsets is Empty; an unknown one is Dead, with
// no error (as Kafka answers).
func (s *Server) handleDescribeGroups(req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	stored := s.offsets.Groups()
	for _, id := range req.Groups {
		s.gmu.Lock()
		sum, ok := s.groups.Describe(id)
		csum, consumer := s.cgroups.Describe(id)
		s.gmu.Unlock()
		if consumer {
			resp.Groups = append(resp.Groups, describeConsumerAsClassic(csum))
			continue
		}
		if !ok && slices.Contains(stored, id) {
			sum.State = groupEmpty
			sum.ProtocolType = "consumer"
		}
		og := kmsg.NewDescribeGroupsResponseGroup()
		og.Group = id
		og.State = sum.State.String()
		og.ProtocolType = sum.ProtocolType
		og.Protocol = sum.Protocol
		og.Members = sum.Members
		if req.IncludeAuthorizedOperations {
			og.AuthorizedOperations = groupOperations
		}
		resp.Groups = append(resp.Groups, og)
	}
	return resp
}
