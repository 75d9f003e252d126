package kafka

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteGroups deletes groups without members (classic or
// consumer-protocol), with their committed offsets. A group with neither
// live state nor committed offsets answers GROUP_ID_NOT_FOUND, as Kafka.
func (s *Server) handleDeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	stored := s.offsets.Groups()
	for _, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		s.gmu.Lock()
		code, consumer := s.cgroups.Delete(id)
		if !consumer {
			_, classic := s.groups.Describe(id)
			code = s.groups.Delete(id)
			if !classic && !slices.Contains(stored, id) {
				code = kerr.GroupIDNotFound.Code
			}
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
