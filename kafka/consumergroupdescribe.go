package kafka

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleConsumerGroupDescribe describes consumer-protocol groups: epochs,
// assignor, and each member's subscription, assignment and target. A group
// that does not exist, or is a classic group, answers GROUP_ID_NOT_FOUND.
func (s *Server) handleConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	topicIDs := s.topicIDs()
	for _, id := range req.Groups {
		og := kmsg.NewConsumerGroupDescribeResponseGroup()
		og.Group = id
		og.AuthorizedOperations = math.MinInt32 // not asked for
		if req.IncludeAuthorizedOperations {
			og.AuthorizedOperations = groupOperations // the authorizer narrows them (authorize.go)
		}
		s.gmu.Lock()
		sum, ok := s.cgroups.Describe(id)
		s.gmu.Unlock()
		switch {
		case id == "":
			og.ErrorCode = kerr.InvalidGroupID.Code
		case !ok:
			og.ErrorCode = kerr.GroupIDNotFound.Code
			og.ErrorMessage = kmsg.StringPtr("group " + id + " is not a consumer group")
		default:
			og.State = sum.State.String()
			og.Epoch, og.AssignmentEpoch, og.AssignorName = sum.Epoch, sum.AssignmentEpoch, sum.Assignor
			for _, m := range sum.Members {
				om := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				om.MemberID, om.InstanceID, om.RackID, om.MemberEpoch = m.ID, m.InstanceID, m.RackID, m.Epoch
				om.ClientID, om.ClientHost = m.ClientID, m.ClientHost
				om.SubscribedTopics, om.SubscribedTopicRegex = m.Names, m.Regex
				om.Assignment, om.TargetAssignment = kmsgAssignment(m.Assigned, topicIDs), kmsgAssignment(m.Target, topicIDs)
				om.MemberType = 1 // consumer protocol
				og.Members = append(og.Members, om)
			}
		}
		resp.Groups = append(resp.Groups, og)
	}
	return resp
}

// kmsgAssignment groups sorted partitions by topic, with their ids.
func kmsgAssignment(parts []tp, ids map[string][16]byte) kmsg.Assignment {
	a := kmsg.NewAssignment()
	for _, t := range parts {
		if n := len(a.TopicPartitions); n == 0 || a.TopicPartitions[n-1].Topic != t.Topic {
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID, at.Topic = ids[t.Topic], t.Topic
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		at := &a.TopicPartitions[len(a.TopicPartitions)-1]
		at.Partitions = append(at.Partitions, t.Partition)
	}
	return a
}
