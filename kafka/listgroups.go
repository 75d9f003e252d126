package kafka

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleListGroups lists live groups (classic and consumer-protocol) and
// groups that only have committed offsets (classic, Empty), filtered by
// state from v4 and by type ("classic", "consumer") from v5.
func (s *Server) handleListGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	s.gmu.Lock()
	live := s.groups.List()
	consumers := s.cgroups.List()
	s.gmu.Unlock()
	seen := make(map[string]bool)
	match := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	add := func(id, ptype, state, gtype string) {
		if seen[id] {
			return
		}
		seen[id] = true
		if !match(req.StatesFilter, state) || !match(req.TypesFilter, gtype) {
			return
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = id, ptype, state, gtype
		resp.Groups = append(resp.Groups, g)
	}
	for _, g := range consumers {
		add(g.ID, "consumer", g.State.String(), "consumer")
	}
	for _, g := range live {
		if g.State != groupDead {
			add(g.ID, g.ProtocolType, g.State.String(), "classic")
		}
	}
	for _, id := range s.offsets.Groups() {
		add(id, "consumer", groupEmpty.String(), "classic")
	}
	return resp
}
