package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID allocates an idempotent producer id, or for a
// transactional id, bumps its epoch (fencing the previous producer and
// aborting its open transaction).
func (s *Server) handleInitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	pid, epoch, terr := s.txns.InitProducerID(ctx, time.Now(), req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
	if terr != nil {
		s.logTxnErr("InitProducerId", terr)
		resp.ErrorCode = fencedCompat(terr.code, req.Version >= 4)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = pid, epoch
	return resp
}

func (s *Server) logTxnErr(api string, terr *txnErr) {
	if terr.err != nil {
		s.logger.Warn("transaction coordinator", "api", api, "code", terr.code, "err", terr.err)
	}
}
