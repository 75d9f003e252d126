package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is every operation Kafka defines on a group; without
// authorization a client may perform them all.
var groupOperations = opsBits(aclRead, aclDescribe, aclDelete)

// handleDescribeGroups describes groups: state, protocol and members. A group
// known only by its committed offsets is Empty; an unknown one is Dead, with
// no error (as Kafka answers).
func (s *Server) handleDescribeGroups(req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	stored := s.offsets.Groups()
	for _, id := range req.Groups {
		s.gmu.Lock()
		sum, ok := s.groups.Describe(id)
		s.gmu.Unlock()
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
