package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAddOffsetsToTxn makes a group's offsets part of the producer's open
// transaction (TxnOffsetCommit follows).
func (s *Server) handleAddOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	code := s.txns.AddOffsets(ctx, time.Now(), req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
	resp.ErrorCode = fencedCompat(code, req.Version >= 2)
	return resp
}
