package logstore

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/record"
)

// WriteTxnMarker ends producerID's transaction on this partition: it appends
// a control batch holding a commit or abort marker with the given epoch and
// returns the marker's offset once it is durable under the topic's fsync
// policy.
//
// Appending the marker closes the producer's open transaction here (the last
// stable offset moves past it) and, for an abort, records the range from the
// transaction's first offset to the marker in the aborted-transaction index
// that AbortedTransactions serves to read_committed readers. Both survive a
// restart (producer-state snapshots plus replay of the log).
//
// An epoch older than the producer's current one fails with an error matching
// ErrProducerFenced; a newer one fences the older epoch from then on (the
// coordinator aborts a timed-out transaction with a bumped epoch). A marker
// for a producer with no open transaction on the partition is still written
// (the coordinator does not know which partitions received data) and changes
// nothing but the epoch. Markers are not deduplicated: a retried marker
// writes a second, harmless, control batch.
//
// Markers are the only control batches the log accepts: Append refuses a
// control batch that does not come through WriteTxnMarker, as Kafka refuses
// them from producers.
func (p *Partition) WriteTxnMarker(ctx context.Context, producerID int64, epoch int16, commit bool) (int64, error) {
	if producerID < 0 {
		return 0, fmt.Errorf("partition %s: transaction marker for invalid producer id %d: %w", p.name, producerID, ErrInvalidTxnState)
	}
	p.mu.Lock()
	st := p.pstate
	p.mu.Unlock()
	if st == nil {
		return 0, fmt.Errorf("partition %s: transaction marker: no producer state: %w", p.name, ErrClosed)
	}
	if err := st.expectMarker(producerID, commit); err != nil {
		return 0, fmt.Errorf("partition %s: %w", p.name, err)
	}
	defer st.releaseMarker(producerID)
	batch := record.AppendControlBatch(nil, producerID, epoch, commit, time.Now().UnixMilli())
	res, err := p.Append(ctx, batch)
	if err != nil {
		kind := "abort"
		if commit {
			kind = "commit"
		}
		return 0, fmt.Errorf("write %s marker for producer %d epoch %d: %w", kind, producerID, epoch, err)
	}
	return res.BaseOffset, nil
}
