package logstore

import (
	"cmp"
	"slices"
)

// ProducerInfo describes one producer active on a partition, as Kafka's
// DescribeProducers reports it.
type ProducerInfo struct {
	ProducerID int64
	Epoch      int16
	// LastSequence is the last sequence number of the producer's most recent
	// batch still remembered, -1 when none is (it only wrote markers).
	LastSequence int32
	// LastTimestamp is the wall-clock time (ms since the epoch) of the
	// producer's last append to the partition.
	LastTimestamp int64
	// TxnStartOffset is the first offset of the producer's open transaction
	// on the partition, -1 when none is open.
	TxnStartOffset int64
}

// ActiveProducers returns the producers the partition tracks (idempotent
// and transactional producers that appended and have not expired), ordered
// by producer id. It only reads the producer state.
func (p *Partition) ActiveProducers() []ProducerInfo {
	p.mu.Lock()
	st := p.pstate
	p.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.describe()
}

// describe copies what ActiveProducers reports out of the state.
func (s *producerState) describe() []ProducerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProducerInfo, 0, len(s.producers))
	for pid, e := range s.producers {
		info := ProducerInfo{ProducerID: pid, Epoch: e.epoch, LastSequence: -1, LastTimestamp: e.lastAppendMs, TxnStartOffset: e.txnFirst}
		if n := len(e.batches); n > 0 {
			info.LastSequence = e.batches[n-1].lastSeq
		}
		if info.LastTimestamp == 0 {
			info.LastTimestamp = -1
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}
