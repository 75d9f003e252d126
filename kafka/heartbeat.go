package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleHeartbeat keeps a member's session alive and tells it, with
// REBALANCE_IN_PROGRESS, when it must rejoin. A static member's old member
// id, replaced by a restart of its instance, gets FENCED_INSTANCE_ID.
func (s *Server) handleHeartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	s.gmu.Lock()
	resp.ErrorCode = s.groups.Heartbeat(time.Now(), req.Group, req.MemberID, req.InstanceID, req.Generation)
	s.gmu.Unlock()
	return resp
}
