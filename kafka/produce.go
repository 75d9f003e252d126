package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleProduce appends each partition's record batches, stored as received
// once their records are checked (the log assigns the base offset), and
// answers once they are durable.
// acks=1 and acks=-1 both answer once the batch is durable under the
// topic's fsync policy (there are no replicas: the leader's write is the
// only one); acks=0 gets no response.
func (s *Server) handleProduce(ctx context.Context, cc *clientConn, req *kmsg.ProduceRequest) kmsg.Response {
	return s.startProduce(ctx, cc, req).finish()
}

// produceOp is a produce request whose batches have been given offsets
// (startProduce, in the order requests arrive on the connection) and are
// waiting to be durable (finish). Between the two, the connection reads
// and assigns the requests behind it: pipelined requests share fsyncs.
type produceOp struct {
	s     *Server
	acks  int16
	resp  *kmsg.ProduceResponse
	parts []producePart
}

// producePart is one partition of a produce request in flight.
type producePart struct {
	topic    string
	out      *kmsg.ProduceResponseTopicPartition
	p        *logstore.Partition
	assigned []logstore.Assigned
	// failed is the error that stopped assignment after len(assigned)
	// batches (answered once those are durable).
	failed error
}

// startProduce validates the request and assigns every partition's
// batches their offsets, without waiting for the disk. The batches are
// assigned in place: req's record bytes must stay untouched until finish
// has returned. With an authorizer
// (authorize.go) a transactional request needs WRITE on its transactional
// id (else every partition answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
// and each topic WRITE (else TOPIC_AUTHORIZATION_FAILED).
func (s *Server) startProduce(ctx context.Context, cc *clientConn, req *kmsg.ProduceRequest) *produceOp {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	op := &produceOp{s: s, acks: req.Acks, resp: resp}
	code := int16(0)
	switch {
	case req.Version < minProduceVersion:
		code = kerr.UnsupportedVersion.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		code = kerr.InvalidRequiredAcks.Code
	}
	if code == 0 {
		code = s.produceTxnAuthz(cc, req)
	}
	writable := s.topicAllowed(cc, auth.OpWrite)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		*ot = kmsg.NewProduceResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			out := &ot.Partitions[j]
			*out = kmsg.NewProduceResponseTopicPartition()
			out.Partition = rt.Partitions[j].Partition
			out.BaseOffset = -1
			out.LogAppendTime = -1
			out.LogStartOffset = -1
			if code != 0 {
				out.ErrorCode = code
				continue
			}
			if !writable(rt.Topic) {
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			}
			if part, ok := s.assignPartition(ctx, rt.Topic, &rt.Partitions[j], out, req.TransactionID); ok {
				op.parts = append(op.parts, part)
			} else if out.ErrorCode == kerr.InvalidRecord.Code && req.Version < 8 {
				out.ErrorCode = kerr.CorruptMessage.Code // INVALID_RECORD came with Produce v8 (KIP-467)
			}
		}
	}
	return op
}

// finish waits until the assigned batches are durable (the partitions of
// one request concurrently, so that their fsyncs overlap) and returns the
// response, nil for acks=0.
func (op *produceOp) finish() kmsg.Response {
	if len(op.parts) == 1 {
		op.s.commitPartition(&op.parts[0])
	} else if len(op.parts) > 1 {
		var wg sync.WaitGroup
		for i := range op.parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				op.s.commitPartition(&op.parts[i])
			}()
		}
		wg.Wait()
	}
	if op.acks == 0 {
		return nil
	}
	return op.resp
}

// failedUnanswered reports, once finish has returned, whether an acks=0
// request failed on some partition: nothing tells the client, so the
// connection is closed, as Kafka does, for it to notice and refresh its
// metadata.
func (op *produceOp) failedUnanswered() bool {
	if op.acks != 0 {
		return false
	}
	for i := range op.resp.Topics {
		for _, p := range op.resp.Topics[i].Partitions {
			if p.ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}

// assignPartition validates one partition's batches and assigns them. ok
// is false when the answer is already decided (an error, nothing
// assigned). txnID is the request's transactional id (nil: none), which
// a transactional batch's producer must hold.
func (s *Server) assignPartition(ctx context.Context, topic string, in *kmsg.ProduceRequestTopicPartition, out *kmsg.ProduceResponseTopicPartition, txnID *string) (part producePart, ok bool) {
	fail := func(code int16, msg string) (producePart, bool) {
		out.ErrorCode = code
		if msg != "" {
			out.ErrorMessage = kmsg.StringPtr(msg)
		}
		return producePart{}, false
	}
	if isCoordinatorTopic(topic) {
		return fail(kerr.InvalidTopicException.Code, "internal topics cannot be written by clients")
	}
	t, err := s.log.Topic(topic)
	if err != nil {
		return fail(errorCode(err), "")
	}
	p, err := t.Partition(in.Partition)
	if err != nil {
		return fail(errorCode(err), "")
	}
	b := in.Records
	if len(b) == 0 {
		return fail(kerr.InvalidRecord.Code, "empty record set")
	}
	if code, msg := s.tenants.checkStorage(topic, len(b)); code != 0 {
		return fail(code, msg)
	}
	// Validate every batch before appending any, so a request is all or
	// nothing per partition as far as bad input goes.
	var headers []record.Header
	// txn is the request's transaction once a transactional batch was
	// met, locked shared until the batches are assigned: no marker of it
	// can be written between its check and the append (txncoord.go).
	var txn *txnEntry
	defer func() {
		if txn != nil {
			txn.mu.RUnlock()
		}
	}()
	for rest := b; len(rest) > 0; {
		h, err := record.ParseHeader(rest)
		if err != nil || h.Size() > len(rest) {
			if err == nil {
				err = fmt.Errorf("batch of %d bytes truncated to %d", h.Size(), len(rest))
			}
			return fail(kerr.CorruptMessage.Code, err.Error())
		}
		if h.IsControl() {
			return fail(kerr.InvalidRecord.Code, "clients may not write control batches")
		}
		// The log gives a batch LastOffsetDelta+1 offsets: they must be
		// exactly its records (as Kafka checks), or offsets would be
		// spent on nothing and sequence numbers would not line up.
		if h.NumRecords <= 0 || int64(h.LastOffsetDelta) != int64(h.NumRecords)-1 {
			return fail(kerr.InvalidRecord.Code, fmt.Sprintf("batch of %d records has last offset delta %d", h.NumRecords, h.LastOffsetDelta))
		}
		// The records must be what the header says, or every consumer
		// of the partition would stumble on them (check.go in record).
		checked, err := record.CheckRecords(rest[:h.Size()])
		if err != nil {
			var ie *record.InvalidRecordError
			switch {
			case errors.Is(err, record.ErrTooLarge):
				return fail(kerr.MessageTooLarge.Code, err.Error()) // a decompression bomb, refused at the bound
			case errors.As(err, &ie):
				if _, crcErr := record.Verify(rest[:h.Size()]); crcErr != nil {
					return fail(kerr.CorruptMessage.Code, crcErr.Error()) // damaged in transit, not built wrong
				}
				if ie.Index >= 0 {
					re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
					re.RelativeOffset, re.ErrorMessage = ie.Index, kmsg.StringPtr(ie.Reason)
					out.ErrorRecords = append(out.ErrorRecords, re)
				}
				return fail(kerr.InvalidRecord.Code, err.Error())
			}
			return fail(kerr.CorruptMessage.Code, err.Error())
		}
		if t.Cleanup().Compact() && checked.FirstKeyless >= 0 {
			return fail(kerr.InvalidRecord.Code, fmt.Sprintf("topic %s is compacted: record %d has no key; a compacted topic needs a key on every record", topic, checked.FirstKeyless))
		}
		if bad := timestampErrors(t.Config(), checked, time.Now().UnixMilli()); len(bad) > 0 {
			out.ErrorRecords = append(out.ErrorRecords, bad...)
			return fail(kerr.InvalidTimestamp.Code, *bad[0].ErrorMessage)
		}
		if h.IsTransactional() {
			if txnID == nil {
				return fail(kerr.InvalidTxnState.Code, "transactional batch in a request without a transactional id")
			}
			if txn == nil {
				if txn = s.txns.lockProduce(*txnID); txn == nil {
					return fail(kerr.InvalidProducerIDMapping.Code, "")
				}
			}
			if code := txn.checkProduce(h.ProducerID, h.ProducerEpoch, tp{topic, in.Partition}); code != 0 {
				msg := ""
				if code == kerr.InvalidTxnState.Code {
					msg = "partition was not added to the transaction"
				}
				return fail(code, msg)
			}
		}
		headers = append(headers, h)
		rest = rest[h.Size():]
	}
	if txn != nil {
		s.hook("produce") // tests: between the transaction's check and the append
	}
	part = producePart{topic: topic, out: out, p: p}
	for _, h := range headers {
		// In place: the log writes the batch from the request's own
		// buffer, which the connection keeps until the answer is
		// finished (conn.go).
		a, err := p.AssignInPlace(ctx, b[:h.Size()])
		b = b[h.Size():]
		if err != nil {
			if len(part.assigned) == 0 {
				return fail(errorCode(err), err.Error())
			}
			part.failed = err
			break
		}
		part.assigned = append(part.assigned, a)
	}
	return part, true
}

// commitPartition waits for one partition's assigned batches and fills in
// its answer.
func (s *Server) commitPartition(part *producePart) {
	out := part.out
	for i, a := range part.assigned {
		res, err := a.Commit()
		if err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = kmsg.StringPtr(err.Error())
			if i > 0 {
				s.logger.Warn("produce partially applied", "topic", part.topic, "partition", out.Partition, "err", err)
			}
			// The later batches share the failure (a failed write
			// discards everything not yet written); commit them all the
			// same, so none is left waiting.
			for _, rest := range part.assigned[i+1:] {
				_, _ = rest.Commit()
			}
			return
		}
		if i == 0 {
			out.BaseOffset = res.BaseOffset
			if res.LogAppendTime > 0 {
				out.LogAppendTime = res.LogAppendTime
			}
		}
	}
	if err := part.failed; err != nil {
		out.ErrorCode = errorCode(err)
		out.ErrorMessage = kmsg.StringPtr(err.Error())
		s.logger.Warn("produce partially applied", "topic", part.topic, "partition", out.Partition, "err", err)
	}
	logStart, _, _ := part.p.Offsets()
	out.LogStartOffset = logStart
}

// timestampErrors checks a batch's record timestamps against the topic's
// message.timestamp.before.max.ms and message.timestamp.after.max.ms
// (KIP-937), as Kafka's log validator does on a CreateTime topic, and
// returns a record error for the earliest record too far in the past and
// the latest too far in the future (none: the batch is within bounds).
// On a LogAppendTime topic the log replaces the timestamps: nothing to
// check. Records without a timestamp (-1) are not checked, as in Kafka.
func timestampErrors(cfg logstore.TopicConfig, c record.Checked, now int64) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	if cfg.LogAppendTime || (cfg.TimestampBeforeMax == nil && cfg.TimestampAfterMax == nil) {
		return nil
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if cfg.TimestampBeforeMax != nil {
		lo = now - cfg.TimestampBeforeMax.Milliseconds()
	}
	if cfg.TimestampAfterMax != nil {
		hi = now + cfg.TimestampAfterMax.Milliseconds()
	}
	var bad []kmsg.ProduceResponseTopicPartitionErrorRecord
	add := func(index int32, ts int64) {
		re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		re.RelativeOffset = index
		re.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("timestamp %d of record %d is out of range: it must be within [%d, %d] (message.timestamp.before.max.ms and message.timestamp.after.max.ms)", ts, index, lo, hi))
		bad = append(bad, re)
	}
	if c.MinIndex >= 0 && c.MinTimestamp < lo {
		add(c.MinIndex, c.MinTimestamp)
	}
	if c.MaxIndex >= 0 && c.MaxTimestamp > hi {
		add(c.MaxIndex, c.MaxTimestamp)
	}
	return bad
}
