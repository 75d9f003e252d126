package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAddPartitionsToTxn adds partitions to the producer's open
// transaction (versions 0-3: one transaction per request).
func (s *Server) handleAddPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	var parts []tp
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, tp{t.Topic, p})
		}
	}
	codes := s.txns.AddPartitions(ctx, time.Now(), req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts)
	i := 0
	for _, t := range req.Topics {
		ot := kmsg.NewAddPartitionsToTxnResponseTopic()
		ot.Topic = t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			op.Partition, op.ErrorCode = p, fencedCompat(codes[i], req.Version >= 2)
			i++
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
