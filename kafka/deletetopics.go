package kafka

import (
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteTopics deletes topics by name (v6 may also name them by the
// ids Metadata reported), with the offsets groups committed for them.
func (s *Server) handleDeleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	for _, n := range req.TopicNames {
		targets = append(targets, target{name: kmsg.StringPtr(n)})
	}
	for _, t := range req.Topics {
		targets = append(targets, target{name: t.Topic, id: t.TopicID})
	}
	for _, t := range targets {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = t.name, t.id
		if t.name == nil {
			if n := s.topicByID(t.id); n != "" {
				ot.Topic = kmsg.StringPtr(n)
			}
		}
		switch {
		case ot.Topic == nil:
			ot.ErrorCode = kerr.UnknownTopicID.Code
		case isCoordinatorTopic(*ot.Topic):
			ot.ErrorCode = kerr.TopicAuthorizationFailed.Code
			ot.ErrorMessage = kmsg.StringPtr("internal topics cannot be deleted over the Kafka protocol")
		default:
			if err := s.log.DeleteTopic(*ot.Topic); err != nil {
				ot.ErrorCode = errorCode(err)
				ot.ErrorMessage = kmsg.StringPtr(err.Error())
			} else {
				ot.TopicID = topicID(*ot.Topic)
				s.logger.Info("deleted topic", "topic", *ot.Topic)
				s.deleteTopicOffsets(*ot.Topic)
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// deleteTopicOffsets deletes every group's committed offsets of a deleted
// topic's partitions (durably, as Kafka does when a topic is deleted), so
// that a topic created again under the same name does not resume its
// groups at the old topic's offsets. A failure is logged: the topic is
// gone already.
func (s *Server) deleteTopicOffsets(topic string) {
	for _, group := range s.offsets.Groups() {
		var del []logstore.TopicPartition
		for tp := range s.offsets.Fetch(group) {
			if tp.Topic == topic {
				del = append(del, tp)
			}
		}
		if len(del) == 0 {
			continue
		}
		if _, err := s.offsets.DeleteOffsets(s.ctx, group, del); err != nil {
			s.logger.Warn("deleting a deleted topic's committed offsets", "topic", topic, "group", group, "err", err)
		}
	}
}
