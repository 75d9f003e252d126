package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleHeartbeat keeps a member's session alive and tells it, with
// REBALANCE_IN_PROGRESS, when it must rejoin.
func (s *Server) handleHeartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	s.gmu.Lock()
	resp.ErrorCode = s.groups.Heartbeat(time.Now(), req.Group, req.MemberID, req.Generation)
	s.gmu.Unlock()
	return resp
}
