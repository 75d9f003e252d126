package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleSyncGroup hands each member the assignment its leader computed,
// waiting for the leader's SyncGroup when a follower's comes first.
func (s *Server) handleSyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	s.gmu.Lock()
	ch := s.groups.Sync(time.Now(), syncParams{
		Group:        req.Group,
		MemberID:     req.MemberID,
		InstanceID:   req.InstanceID,
		Generation:   req.Generation,
		ProtocolType: req.ProtocolType,
		Protocol:     req.Protocol,
		Assignments:  req.GroupAssignment,
	})
	s.gmu.Unlock()
	var r syncResult
	select {
	case r = <-ch:
	case <-ctx.Done():
		r = syncResult{ErrorCode: kerr.CoordinatorNotAvailable.Code}
	}
	resp.ErrorCode = r.ErrorCode
	resp.MemberAssignment = r.Assignment
	if r.ErrorCode == 0 {
		resp.ProtocolType = kmsg.StringPtr(r.ProtocolType)
		resp.Protocol = kmsg.StringPtr(r.Protocol)
	}
	return resp
}
