package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleLeaveGroup removes members (one before v3, a list from v3) and
// starts a rebalance for those who stay.
func (s *Server) handleLeaveGroup(req *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	ids := []string{req.MemberID}
	s.gmu.Lock()
	if req.Version >= 3 {
		ids = ids[:0]
		for _, m := range req.Members {
			id := m.MemberID
			if id == "" && m.InstanceID != nil { // a static member leaving by instance id
				id = s.groups.MemberForInstance(req.Group, *m.InstanceID)
			}
			ids = append(ids, id)
		}
	}
	codes := s.groups.Leave(time.Now(), req.Group, ids)
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
