package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteGroups deletes groups without members (classic or
// consumer-protocol), with their committed offsets.
func (s *Server) handleDeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		s.gmu.Lock()
		code, consumer := s.cgroups.Delete(id)
		if !consumer {
			code = s.groups.Delete(id)
		}
		g.ErrorCode = code
		s.gmu.Unlock()
		if g.ErrorCode == 0 {
			if err := s.offsets.DeleteGroup(ctx, id); err != nil {
				g.ErrorCode = kerr.KafkaStorageError.Code
				g.ErrorMessage = kmsg.StringPtr(err.Error())
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}
