package kafka

import (
	"slices"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetFetchPart is one answered partition.
type offsetFetchPart struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
	code        int16
}

// handleOffsetFetch returns committed offsets (-1 for partitions without
// one). Topics nil means every partition the group committed. With
// RequireStable, partitions with offsets pending in an open transaction
// answer UNSTABLE_OFFSET_COMMIT so the client retries. From v9 a member of a
// consumer-protocol group is checked (UNKNOWN_MEMBER_ID,
// STALE_MEMBER_EPOCH); requests without a member id and epoch (admin tools)
// are not.
func (s *Server) handleOffsetFetch(req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics map[string][]int32
		if req.Topics != nil {
			topics = make(map[string][]int32)
			for _, t := range req.Topics {
				topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			}
		}
		for _, t := range s.fetchGroupOffsets(req.Group, topics, req.Topics == nil, req.RequireStable) {
			ot := kmsg.NewOffsetFetchResponseTopic()
			ot.Topic = t.topic
			for _, p := range t.parts {
				op := kmsg.NewOffsetFetchResponseTopicPartition()
				op.Partition, op.Offset, op.LeaderEpoch, op.Metadata, op.ErrorCode = p.partition, p.offset, p.leaderEpoch, kmsg.StringPtr(p.metadata), p.code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp
	}
	for _, g := range req.Groups {
		og := kmsg.NewOffsetFetchResponseGroup()
		og.Group = g.Group
		if req.Version >= 9 {
			s.gmu.Lock()
			og.ErrorCode, _ = s.cgroups.ValidateFetch(g.Group, g.MemberID, g.MemberEpoch)
			s.gmu.Unlock()
			if og.ErrorCode != 0 {
				resp.Groups = append(resp.Groups, og)
				continue
			}
		}
		var topics map[string][]int32
		if g.Topics != nil {
			topics = make(map[string][]int32)
			for _, t := range g.Topics {
				topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			}
		}
		for _, t := range s.fetchGroupOffsets(g.Group, topics, g.Topics == nil, req.RequireStable) {
			ot := kmsg.NewOffsetFetchResponseGroupTopic()
			ot.Topic = t.topic
			for _, p := range t.parts {
				op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				op.Partition, op.Offset, op.LeaderEpoch, op.Metadata, op.ErrorCode = p.partition, p.offset, p.leaderEpoch, kmsg.StringPtr(p.metadata), p.code
				ot.Partitions = append(ot.Partitions, op)
			}
			og.Topics = append(og.Topics, ot)
		}
		resp.Groups = append(resp.Groups, og)
	}
	return resp
}

type offsetFetchTopic struct {
	topic string
	parts []offsetFetchPart
}

func (s *Server) fetchGroupOffsets(group string, topics map[string][]int32, all, requireStable bool) []offsetFetchTopic {
	committed := s.offsets.Fetch(group)
	if all {
		topics = make(map[string][]int32)
		for tp := range committed {
			topics[tp.Topic] = append(topics[tp.Topic], tp.Partition)
		}
	}
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]offsetFetchTopic, 0, len(names))
	for _, n := range names {
		parts := slices.Clone(topics[n])
		slices.Sort(parts)
		t := offsetFetchTopic{topic: n}
		for _, p := range slices.Compact(parts) {
			r := offsetFetchPart{partition: p, offset: -1, leaderEpoch: -1}
			if c, ok := committed[logstore.TopicPartition{Topic: n, Partition: p}]; ok {
				r.offset, r.leaderEpoch, r.metadata = c.Offset, c.LeaderEpoch, c.Metadata
			}
			if requireStable && s.txns.HasPendingOffsets(group, tp{n, p}) {
				r.code = kerr.UnstableOffsetCommit.Code
			}
			t.parts = append(t.parts, r)
		}
		out = append(out, t)
	}
	return out
}
