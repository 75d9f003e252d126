package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleProduce appends each partition's record batches, stored as received
// (the log assigns the base offset). Partitions of one request are appended
// concurrently so that they share fsyncs. acks=1 and acks=-1 both answer once
// the batch is durable under the topic's fsync policy (there are no
// replicas: the leader's write is the only one); acks=0 gets no response.
func (s *Server) handleProduce(ctx context.Context, req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	code := int16(0)
	switch {
	case req.Version < minProduceVersion:
		code = kerr.UnsupportedVersion.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		code = kerr.InvalidRequiredAcks.Code
	}
	type job struct {
		topic string
		out   *kmsg.ProduceResponseTopicPartition
		in    *kmsg.ProduceRequestTopicPartition
	}
	var jobs []job
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		*ot = kmsg.NewProduceResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewProduceResponseTopicPartition()
			op.Partition = rt.Partitions[j].Partition
			op.BaseOffset = -1
			op.LogAppendTime = -1
			op.LogStartOffset = -1
			if code != 0 {
				op.ErrorCode = code
				continue
			}
			jobs = append(jobs, job{topic: rt.Topic, out: op, in: &rt.Partitions[j]})
		}
	}
	txnal := req.TransactionID != nil
	if len(jobs) == 1 {
		s.producePartition(ctx, jobs[0].topic, jobs[0].in, jobs[0].out, txnal)
	} else {
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.producePartition(ctx, j.topic, j.in, j.out, txnal)
			}()
		}
		wg.Wait()
	}
	if req.Acks == 0 {
		return nil
	}
	return resp
}

func (s *Server) producePartition(ctx context.Context, topic string, in *kmsg.ProduceRequestTopicPartition, out *kmsg.ProduceResponseTopicPartition, txnal bool) {
	fail := func(code int16, msg string) {
		out.ErrorCode = code
		if msg != "" {
			out.ErrorMessage = kmsg.StringPtr(msg)
		}
	}
	if isCoordinatorTopic(topic) {
		fail(kerr.InvalidTopicException.Code, "internal topics cannot be written by clients")
		return
	}
	t, err := s.log.Topic(topic)
	if err != nil {
		fail(errorCode(err), "")
		return
	}
	p, err := t.Partition(in.Partition)
	if err != nil {
		fail(errorCode(err), "")
		return
	}
	b := in.Records
	if len(b) == 0 {
		fail(kerr.InvalidRecord.Code, "empty record set")
		return
	}
	// Validate every batch before appending any, so a request is all or
	// nothing per partition as far as bad input goes.
	var headers []record.Header
	for rest := b; len(rest) > 0; {
		h, err := record.ParseHeader(rest)
		if err != nil || h.Size() > len(rest) {
			if err == nil {
				err = fmt.Errorf("batch of %d bytes truncated to %d", h.Size(), len(rest))
			}
			fail(kerr.CorruptMessage.Code, err.Error())
			return
		}
		if h.IsControl() {
			fail(kerr.InvalidRecord.Code, "clients may not write control batches")
			return
		}
		// The log gives a batch LastOffsetDelta+1 offsets: they must be
		// exactly its records (as Kafka checks), or offsets would be
		// spent on nothing and sequence numbers would not line up.
		if h.NumRecords <= 0 || int64(h.LastOffsetDelta) != int64(h.NumRecords)-1 {
			fail(kerr.InvalidRecord.Code, fmt.Sprintf("batch of %d records has last offset delta %d", h.NumRecords, h.LastOffsetDelta))
			return
		}
		if h.IsTransactional() {
			if !txnal {
				fail(kerr.InvalidTxnState.Code, "transactional batch in a request without a transactional id")
				return
			}
			if code := s.txns.CheckProduce(h.ProducerID, h.ProducerEpoch, tp{topic, in.Partition}); code != 0 {
				fail(code, "")
				return
			}
		}
		headers = append(headers, h)
		rest = rest[h.Size():]
	}
	first := true
	for _, h := range headers {
		res, err := p.Append(ctx, b[:h.Size()])
		b = b[h.Size():]
		if err != nil {
			fail(errorCode(err), err.Error())
			if !first {
				s.logger.Warn("produce partially applied", "topic", topic, "partition", in.Partition, "err", err)
			}
			return
		}
		if first {
			out.BaseOffset = res.BaseOffset
			if res.LogAppendTime > 0 {
				out.LogAppendTime = res.LogAppendTime
			}
			first = false
		}
	}
	logStart, _, _ := p.Offsets()
	out.LogStartOffset = logStart
}
