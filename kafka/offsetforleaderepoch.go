package kafka

import (
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiKeyOffsetForLeaderEpoch is the API key of OffsetForLeaderEpoch.
const apiKeyOffsetForLeaderEpoch int16 = 23

// noLeaderEpoch is a request's CurrentLeaderEpoch when the client does not
// want it checked.
const noLeaderEpoch int32 = -1

// checkLeaderEpoch applies Kafka's rule for a client's idea of the current
// leader epoch of p: an older one is fenced (FENCED_LEADER_EPOCH: the client
// refreshes its metadata), a newer one is unknown here (UNKNOWN_LEADER_EPOCH:
// the client retries) and -1 is not checked.
func checkLeaderEpoch(p *logstore.Partition, clientEpoch int32) int16 {
	if clientEpoch == noLeaderEpoch {
		return 0
	}
	switch current := p.LeaderEpoch(); {
	case clientEpoch < current:
		return kerr.FencedLeaderEpoch.Code
	case clientEpoch > current:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// handleOffsetForLeaderEpoch answers OffsetForLeaderEpoch: for each
// partition, the largest leader epoch not above the requested one and the
// offset where it ends (the start of the next epoch, or the log end offset
// for the current one), from the partition's leader-epoch cache. Consumers
// use it after a leader change to detect a log truncated under their
// position. An epoch the cache cannot answer gets -1/-1 without an error,
// as on Kafka.
func (s *Server) handleOffsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		*ot = kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		t, terr := s.log.Topic(rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderEpoch, op.EndOffset = logstore.UndefinedEpoch, logstore.UndefinedEpochOffset
			if terr != nil {
				op.ErrorCode = errorCode(terr)
				continue
			}
			p, err := t.Partition(rp.Partition)
			if err != nil {
				op.ErrorCode = errorCode(err)
				continue
			}
			current := rp.CurrentLeaderEpoch
			if req.Version < 2 {
				current = noLeaderEpoch
			}
			if op.ErrorCode = checkLeaderEpoch(p, current); op.ErrorCode != 0 {
				continue
			}
			op.LeaderEpoch, op.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
		}
	}
	return resp
}
