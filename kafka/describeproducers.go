package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeProducers lists, per requested partition, the producers its
// log tracks: producer id, epoch, last sequence, time of the last append and
// the first offset of the open transaction (-1 when none). The coordinator
// epoch is -1: markers are written by this node's own coordinator, which
// has no epochs. A missing topic or partition answers
// UNKNOWN_TOPIC_OR_PARTITION.
func (s *Server) handleDescribeProducers(req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDescribeProducersResponseTopic()
		ot.Topic = rt.Topic
		t, terr := s.log.Topic(rt.Topic)
		for _, id := range rt.Partitions {
			op := kmsg.NewDescribeProducersResponseTopicPartition()
			op.Partition = id
			if terr != nil {
				op.ErrorCode = errorCode(terr)
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p, err := t.Partition(id)
			if err != nil {
				op.ErrorCode = errorCode(err)
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			for _, info := range p.ActiveProducers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID = info.ProducerID
				ap.ProducerEpoch = int32(info.Epoch)
				ap.LastSequence = info.LastSequence
				ap.LastTimestamp = info.LastTimestamp
				ap.CoordinatorEpoch = -1
				ap.CurrentTxnStartOffset = info.TxnStartOffset
				op.ActiveProducers = append(op.ActiveProducers, ap)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
