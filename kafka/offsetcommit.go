package kafka

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetCommit stores a group's offsets durably in the log's offset
// store after checking the member and generation against the group: for a
// consumer-protocol group (v9+), the member epoch (see
// consumerCoordinator.ValidateCommit).
func (s *Server) handleOffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	// offmu, shared, from the checks to the write: a deletion (of the
	// group, of these offsets, of a topic) lands wholly before the checks
	// or after the write.
	s.offmu.RLock()
	defer s.offmu.RUnlock()
	s.gmu.Lock()
	check, consumer := s.cgroups.ValidateCommit(req.Group, req.MemberID, generation, req.Version, false)
	if !consumer {
		check.Code = s.groups.ValidateCommit(time.Now(), req.Group, req.MemberID, req.InstanceID, generation, false)
	}
	s.gmu.Unlock()
	if req.Group == "" || len(req.Group) > logstore.MaxGroupIDBytes {
		check = commitCheck{Code: kerr.InvalidGroupID.Code}
	}
	now := time.Now().UnixMilli()
	offs := make(map[logstore.TopicPartition]logstore.CommittedOffset)
	var pending []*kmsg.OffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		t, terr := s.log.Topic(rt.Topic)
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewOffsetCommitResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case check.Partition(tp{rt.Topic, rp.Partition}) != 0:
				op.ErrorCode = check.Partition(tp{rt.Topic, rp.Partition})
			case terr != nil:
				op.ErrorCode = errorCode(terr)
			case rp.Partition < 0 || rp.Partition >= t.NumPartitions():
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > logstore.MaxOffsetMetadata:
				op.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				c := logstore.CommittedOffset{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, CommitTime: now}
				if req.Version < 6 {
					c.LeaderEpoch = -1
				}
				if rp.Metadata != nil {
					c.Metadata = *rp.Metadata
				}
				offs[logstore.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = c
				pending = append(pending, op)
			}
		}
	}
	s.hook("offsetcommit")
	if len(offs) > 0 {
		if err := s.offsets.Commit(ctx, req.Group, offs); err != nil {
			s.logger.Warn("offset commit failed", "group", req.Group, "err", err)
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
