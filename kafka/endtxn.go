package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleEndTxn commits or aborts the producer's transaction: markers on every
// partition, then (commit) the transaction's offsets; see txncoord.go.
func (s *Server) handleEndTxn(ctx context.Context, req *kmsg.EndTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if terr := s.txns.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit); terr != nil {
		s.logTxnErr("EndTxn", terr)
		resp.ErrorCode = fencedCompat(terr.code, req.Version >= 2)
	}
	return resp
}
