package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleLeaveGroup removes members (one before v3, a list from v3, where a
// static member may be named by its instance id alone) and starts a
// rebalance for those who stay. In a consumer-protocol group it removes
// static members named by instance id alone (admin removal; see
// consumerCoordinator.RemoveMembers).
func (s *Server) handleLeaveGroup(req *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	members := []leaveMember{{MemberID: req.MemberID}}
	if req.Version >= 3 {
		members = members[:0]
		for _, m := range req.Members {
			members = append(members, leaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	s.gmu.Lock()
	meta := s.topicMeta() // under gmu: see tickGroups
	codes, consumer := s.cgroups.RemoveMembers(req.Group, members, meta)
	if !consumer {
		codes = s.groups.Leave(time.Now(), req.Group, members)
	}
	s.gmu.Unlock()
	if req.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, m := range req.Members {
		om := kmsg.NewLeaveGroupResponseMember()
		om.MemberID, om.InstanceID, om.ErrorCode = m.MemberID, m.InstanceID, codes[i]
		resp.Members = append(resp.Members, om)
	}
	return resp
}
