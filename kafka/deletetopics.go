package kafka

import (
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteTopics deletes topics by name (v6 may also name them by the
// ids Metadata reported; an entry with both, or a topic named twice,
// answers INVALID_REQUEST), with the offsets groups committed for them.
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
	byName, byID := make(map[string]int), make(map[[16]byte]int)
	for _, t := range targets {
		if t.name != nil {
			byName[*t.name]++
		} else {
			byID[t.id]++
		}
	}
	for _, t := range targets {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = t.name, t.id
		if t.name != nil && byName[*t.name] > 1 || t.name == nil && byID[t.id] > 1 {
			ot.ErrorCode, ot.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("topic named more than once in the request")
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		if t.name == nil {
			if n := s.topicByID(t.id); n != "" {
				ot.Topic = kmsg.StringPtr(n)
			}
		}
		switch {
		case t.name != nil && t.id != [16]byte{}:
			// Kafka refuses both; deleting by the name would delete a
			// topic created again under it since the id was learnt.
			ot.ErrorCode = kerr.InvalidRequest.Code
			ot.ErrorMessage = kmsg.StringPtr("give a topic's name or its id, not both")
		case ot.Topic == nil:
			ot.ErrorCode = kerr.UnknownTopicID.Code
		case isCoordinatorTopic(*ot.Topic):
			ot.ErrorCode = kerr.TopicAuthorizationFailed.Code
			ot.ErrorMessage = kmsg.StringPtr("internal topics cannot be deleted over the Kafka protocol")
		default:
			id := s.topicID(*ot.Topic) // before it is gone
			switch {
			case t.name == nil && id != t.id:
				// Named by an id whose topic was deleted, and the name
				// taken again, since the lookup.
				ot.ErrorCode = kerr.UnknownTopicID.Code
			default:
				if err := s.deleteTopic(*ot.Topic); err != nil {
					ot.ErrorCode = errorCode(err)
					ot.ErrorMessage = kmsg.StringPtr(err.Error())
				} else {
					ot.TopicID = id
					s.logger.Info("deleted topic", "topic", *ot.Topic, "id", logstore.TopicID(id))
				}
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// deleteTopic deletes a topic from the log and then every group's
// committed offsets of its partitions, holding offmu exclusively: an
// OffsetCommit checks that its topics exist and writes under offmu shared,
// so no commit checked before the deletion can leave an offset of the
// deleted topic behind. Only the unlinking (quick, whatever the topic's
// size) is under offmu: the files are removed after, so that commits do
// not wait for a large topic's removal.
func (s *Server) deleteTopic(topic string) error {
	gone, err := s.unlinkTopic(topic)
	if err != nil {
		return err
	}
	gone.Remove()
	return nil
}

// unlinkTopic is deleteTopic but the removal of the topic's files.
func (s *Server) unlinkTopic(topic string) (*logstore.DeletedTopic, error) {
	s.offmu.Lock()
	defer s.offmu.Unlock()
	gone, err := s.log.UnlinkTopic(topic)
	if err != nil {
		return nil, err
	}
	s.deleteTopicOffsets(topic)
	return gone, nil
}

// deleteTopicOffsets deletes every group's committed offsets of a deleted
// topic's partitions (durably, as Kafka does when a topic is deleted), so
// that a topic created again under the same name does not resume its
// groups at the old topic's offsets: one batch of tombstones for all the
// groups, so commits wait for one fsync, not one per group. A failure is
// logged: the topic is gone already. offmu is held exclusively.
func (s *Server) deleteTopicOffsets(topic string) {
	if _, err := s.offsets.DeleteTopicOffsets(s.ctx, topic); err != nil {
		s.logger.Warn("deleting a deleted topic's committed offsets", "topic", topic, "err", err)
	}
}
