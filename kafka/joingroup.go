package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleJoinGroup joins a member to a classic group and waits for the
// rebalance to complete (see group.go). Members joining without an id at v4+
// first get MEMBER_ID_REQUIRED with their id (KIP-394); static members
// (KIP-345) do not. A group id used by
// a consumer-protocol group with members answers INCONSISTENT_GROUP_PROTOCOL.
func (s *Server) handleJoinGroup(ctx context.Context, cc *clientConn, req *kmsg.JoinGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = 0 // v0 has no rebalance timeout: the session timeout is used
	}
	s.gmu.Lock()
	if exists, nonEmpty := s.cgroups.Has(req.Group); nonEmpty {
		s.gmu.Unlock()
		resp.ErrorCode, resp.MemberID, resp.Generation = kerr.InconsistentGroupProtocol.Code, req.MemberID, -1
		return resp
	} else if exists {
		s.cgroups.Delete(req.Group) // an empty consumer group becomes classic
	}
	ch := s.groups.Join(time.Now(), joinParams{
		Group:                req.Group,
		MemberID:             req.MemberID,
		InstanceID:           req.InstanceID,
		ClientID:             cc.clientID,
		ClientHost:           cc.clientHost(),
		ProtocolType:         req.ProtocolType,
		Protocols:            req.Protocols,
		SessionTimeout:       time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:     rebalance,
		RequireKnownMemberID: req.Version >= 4,
		SkipAssignment:       req.Version >= 9,
	})
	s.gmu.Unlock()
	var r joinResult
	select {
	case r = <-ch:
	case <-ctx.Done():
		r = joinResult{ErrorCode: kerr.CoordinatorNotAvailable.Code, MemberID: req.MemberID, Generation: -1}
	}
	resp.ErrorCode = r.ErrorCode
	resp.Generation = r.Generation
	resp.LeaderID = r.LeaderID
	resp.MemberID = r.MemberID
	resp.Members = r.Members
	resp.SkipAssignment = r.SkipAssignment
	if r.ErrorCode == 0 {
		resp.Protocol = kmsg.StringPtr(r.Protocol)
		resp.ProtocolType = kmsg.StringPtr(r.ProtocolType)
	}
	return resp
}
