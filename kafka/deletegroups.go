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
//
// As Kafka's coordinator, each group is checked and deleted, offsets
// included, under one hold of the group lock (and exclusively of offmu):
// a member cannot join and commit between the check and the deletion and
// see its commit deleted, and a commit checked before the deletion lands
// before it. Joins and commits wait for the tombstones' fsync meanwhile.
func (s *Server) handleDeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		g.ErrorCode, g.ErrorMessage = s.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

// deleteGroup deletes one group and its committed offsets (see
// handleDeleteGroups) and returns the group's error code and message.
func (s *Server) deleteGroup(ctx context.Context, id string) (int16, *string) {
	s.offmu.Lock()
	defer s.offmu.Unlock()
	s.gmu.Lock()
	defer s.gmu.Unlock()
	code, consumer := s.cgroups.Delete(id)
	if !consumer {
		_, classic := s.groups.Describe(id)
		code = s.groups.Delete(id)
		if !classic && !slices.Contains(s.offsets.Groups(), id) {
			code = kerr.GroupIDNotFound.Code
		}
	}
	if code != 0 {
		return code, nil
	}
	s.hook("deletegroups")
	if err := s.offsets.DeleteGroup(ctx, id); err != nil {
		return kerr.KafkaStorageError.Code, kmsg.StringPtr(err.Error())
	}
	return 0, nil
}
