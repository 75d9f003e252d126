package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	listLatest        int64 = -1
	listEarliest      int64 = -2
	listEarliestLocal int64 = -4
)

// handleListOffsets answers ListOffsets: -2 is the log start offset, -1 the
// high watermark (the last stable offset for read_committed), any other
// timestamp the first offset whose record timestamp is at least that, or -1
// when there is none (Kafka's answer). Each answer carries the leader epoch
// of its offset (the current epoch for -1); from v4 a CurrentLeaderEpoch
// other than -1 must match the partition's (checkLeaderEpoch).
func (s *Server) handleListOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, terr := s.log.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset, op.LeaderEpoch = -1, -1, -1
			if terr != nil {
				op.ErrorCode = errorCode(terr)
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p, err := t.Partition(rp.Partition)
			if err != nil {
				op.ErrorCode = errorCode(err)
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			if req.Version >= 4 {
				if op.ErrorCode = checkLeaderEpoch(p, rp.CurrentLeaderEpoch); op.ErrorCode != 0 {
					ot.Partitions = append(ot.Partitions, op)
					continue
				}
			}
			logStart, hwm, lso := p.Offsets()
			switch rp.Timestamp {
			case listEarliest:
				if err := p.RemoteReady(); err != nil {
					op.ErrorCode = errorCode(err) // retriable: the start is in a tier not read yet
					break
				}
				op.Offset = logStart
				op.LeaderEpoch = p.EpochForOffset(logStart)
			case listEarliestLocal: // KIP-405: the first offset on the local disk (remote storage)
				op.Offset = p.LocalLogStart()
				op.LeaderEpoch = p.EpochForOffset(op.Offset)
			case listLatest:
				op.Offset = hwm
				if req.IsolationLevel == readCommitted {
					op.Offset = lso
				}
				op.LeaderEpoch = p.LeaderEpoch()
			default:
				off, ts, found, err := p.OffsetForTime(rp.Timestamp)
				switch {
				case err != nil:
					op.ErrorCode = errorCode(err)
				case found:
					op.Offset, op.Timestamp = off, ts
					op.LeaderEpoch = p.EpochForOffset(off)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
	}
	return resp
}
