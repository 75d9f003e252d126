package kafka

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleTxnOffsetCommit records offsets inside the producer's transaction;
// they are committed to the group only if the transaction commits. From v3
// the group member, instance id and generation (member epoch for a
// consumer-protocol group) are checked like OffsetCommit's (KIP-447), so a
// zombie that lost its partitions in a rebalance cannot commit offsets: it
// gets ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID, and its
// client aborts the transaction. As OffsetCommit, an empty group id or one
// longer than the offset store takes is INVALID_GROUP_ID and a partition whose metadata is longer than the
// offset store takes OFFSET_METADATA_TOO_LARGE (kept out of the
// transaction, whose commit could otherwise never write its offsets).
func (s *Server) handleTxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	code := int16(0)
	if req.Group == "" || len(req.Group) > logstore.MaxGroupIDBytes {
		code = kerr.InvalidGroupID.Code
	}
	if code == 0 && req.Version >= 3 {
		s.gmu.Lock()
		check, consumer := s.cgroups.ValidateCommit(req.Group, req.MemberID, req.Generation, req.Version, true)
		if consumer && req.Generation >= 0 {
			code = check.Code
			for _, t := range req.Topics {
				for _, p := range t.Partitions {
					if c := check.Partition(tp{t.Topic, p.Partition}); code == 0 && c != 0 {
						code = c
					}
				}
			}
		} else if !consumer {
			code = s.groups.ValidateCommit(time.Now(), req.Group, req.MemberID, req.InstanceID, req.Generation, true)
		}
		s.gmu.Unlock()
	}
	var offs []txnOffset
	tooLarge := make(map[tp]bool)
	for _, t := range req.Topics {
		top, err := s.log.Topic(t.Topic)
		for _, p := range t.Partitions {
			if code == 0 && (err != nil || p.Partition < 0 || p.Partition >= top.NumPartitions()) {
				code = kerr.UnknownTopicOrPartition.Code
			}
			if p.Metadata != nil && len(*p.Metadata) > logstore.MaxOffsetMetadata {
				tooLarge[tp{t.Topic, p.Partition}] = true
				continue
			}
			o := txnOffset{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch}
			if req.Version < 2 {
				o.LeaderEpoch = -1
			}
			if p.Metadata != nil {
				o.Metadata = *p.Metadata
			}
			if err == nil {
				o.TopicID = top.ID()
			}
			offs = append(offs, o)
		}
	}
	if code == 0 && len(offs) > 0 {
		code = s.txns.CommitOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offs)
	}
	for _, t := range req.Topics {
		ot := kmsg.NewTxnOffsetCommitResponseTopic()
		ot.Topic = t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			op.Partition, op.ErrorCode = p.Partition, code
			if code == 0 && tooLarge[tp{t.Topic, p.Partition}] {
				op.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
