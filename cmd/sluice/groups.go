package main

import (
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/observe"
)

// liveGroups adapts the Kafka listener's group coordinator to the
// dashboard's group source.
func liveGroups(srv *kafka.Server) func() []observe.LiveGroup {
	return func() []observe.LiveGroup {
		groups := srv.Groups()
		out := make([]observe.LiveGroup, 0, len(groups))
		for _, g := range groups {
			lg := observe.LiveGroup{Name: g.Group, State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol, Generation: g.Generation}
			for _, m := range g.Members {
				gm := observe.GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost,
					Subscription: m.Subscription, DecodeError: m.DecodeError}
				for _, a := range m.Assignment {
					gm.Assignment = append(gm.Assignment, observe.MemberAssignment{Topic: a.Topic, Partitions: a.Partitions})
				}
				lg.Members = append(lg.Members, gm)
			}
			out = append(out, lg)
		}
		return out
	}
}
