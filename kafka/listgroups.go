package kafka

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleListGroups lists live groups and groups that only have committed
// offsets (Empty), filtered by state from v4.
func (s *Server) handleListGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	s.gmu.Lock()
	live := s.groups.List()
	s.gmu.Unlock()
	seen := make(map[string]bool)
	add := func(id, ptype, state string) {
		if seen[id] {
			return
		}
		seen[id] = true
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(f string) bool { return strings.EqualFold(f, state) }) {
			return
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = id, ptype, state, "classic"
		resp.Groups = append(resp.Groups, g)
	}
	for _, g := range live {
		if g.State != groupDead {
			add(g.ID, g.ProtocolType, g.State.String())
		}
	}
	for _, id := range s.offsets.Groups() {
		add(id, "consumer", groupEmpty.String())
	}
	return resp
}
