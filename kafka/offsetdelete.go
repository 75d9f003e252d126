package kafka

import (
	"context"
	"slices"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetDelete deletes a group's committed offsets of the given
// partitions, durably (tombstones in the offset store). As Kafka:
//   - an empty group id is INVALID_GROUP_ID, a group with neither live state
//     nor committed offsets GROUP_ID_NOT_FOUND, and a group with members
//     of a protocol type other than "consumer" NON_EMPTY_GROUP;
//   - a partition of a topic that does not exist is
//     UNKNOWN_TOPIC_OR_PARTITION;
//   - while the group (classic or consumer-protocol) has members, the
//     partitions of topics they subscribe to are GROUP_SUBSCRIBED_TO_TOPIC
//     and keep their offsets;
//   - any other partition answers no error, whether it had an offset or not.
//
// The check and the deletion are done under one hold of the group lock
// (and exclusively of offmu), as in Kafka's coordinator: a member that
// joins and commits cannot have its fresh commit deleted by a deletion
// checked before it joined.
func (s *Server) handleOffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	s.offmu.Lock()
	defer s.offmu.Unlock()
	s.gmu.Lock()
	defer s.gmu.Unlock()
	sub := s.cgroups.Subscription(req.Group, s.topicMeta())
	if !sub.known {
		sub = s.groups.Subscription(req.Group)
	}
	switch {
	case !sub.known && !slices.Contains(s.offsets.Groups(), req.Group):
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	case sub.members > 0 && sub.protocolType != consumerProtocolType:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	var del []logstore.TopicPartition
	var pending []*kmsg.OffsetDeleteResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewOffsetDeleteResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		t, terr := s.log.Topic(rt.Topic)
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewOffsetDeleteResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case terr != nil:
				op.ErrorCode = errorCode(terr)
			case rp.Partition < 0 || rp.Partition >= t.NumPartitions():
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case sub.members > 0 && sub.subscribed(rt.Topic):
				op.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				del = append(del, logstore.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
				pending = append(pending, op)
			}
		}
	}
	s.hook("offsetdelete")
	if len(del) > 0 {
		if _, err := s.offsets.DeleteOffsets(ctx, req.Group, del); err != nil {
			s.logger.Warn("offset delete failed", "group", req.Group, "err", err)
			code := errorCode(err)
			if code == kerr.UnknownServerError.Code {
				code = kerr.KafkaStorageError.Code
			}
			for _, op := range pending {
				op.ErrorCode = code
			}
		}
	}
	return resp
}
