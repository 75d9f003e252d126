package kafka

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Isolation levels of Fetch and ListOffsets.
const readCommitted int8 = 1

// fetchPart is one partition of a Fetch being assembled.
type fetchPart struct {
	p      *logstore.Partition
	offset int64
	max    int32
	out    *kmsg.FetchResponseTopicPartition
	// lsoBlocked: data exists past offset but read_committed may not see it.
	lsoBlocked bool
}

// handleFetch answers Fetch: whole batches from each requested offset, as
// stored, up to the partition and response byte limits (the first batch is
// always returned whole, as Kafka does, so a large batch cannot stall a
// consumer). It waits up to MaxWaitMillis for MinBytes to be available.
// read_committed readers get data only below the last stable offset, with the
// aborted transactions of the returned range. From v7 it keeps incremental
// fetch sessions (KIP-227, see fetchsession.go); from v9 a CurrentLeaderEpoch
// is checked and from v12 a LastFetchedEpoch that the log does not have up
// to the fetch offset is answered with the diverging epoch.
func (s *Server) handleFetch(ctx context.Context, req *kmsg.FetchRequest) kmsg.Response {
	return s.handleFetchFor(ctx, nil, req)
}

// handleFetchFor is handleFetch for the principal of cc: with an
// authorizer each partition, those held in the fetch session included,
// needs READ on its topic (else TOPIC_AUTHORIZATION_FAILED, answered in
// incremental responses too, so an ACL change applies mid-session).
func (s *Server) handleFetchFor(ctx context.Context, cc *clientConn, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	fc, code := s.sessions.begin(req)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	outs := make([]kmsg.FetchResponseTopicPartition, len(fc.wants))
	parts := s.fetchParts(cc, fc.wants, outs)
	s.fetchLoop(ctx, req, parts, s.fetchQuotaBytes(cc, parts), len(parts) < len(outs))
	var include []bool
	resp.SessionID, include = s.sessions.end(fc, outs)
	resp.Topics = fetchTopics(fc.wants, outs, include)
	return emptyNotNull(resp)
}

// fetchParts resolves the partitions of a fetch, answering at once those
// that cannot be read (unknown, fenced epoch, diverging log), and returns
// the ones to read.
func (s *Server) fetchParts(cc *clientConn, wants []fetchWant, outs []kmsg.FetchResponseTopicPartition) []*fetchPart {
	var parts []*fetchPart
	readable := s.topicAllowed(cc, auth.OpRead)
	for i, w := range wants {
		op := &outs[i]
		*op = kmsg.NewFetchResponseTopicPartition()
		op.Partition = w.partition
		op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
		if isSecurityTopic(w.topic) && !s.readsSecurityTopics(cc) || !readable(w.topic) {
			op.ErrorCode = kerr.TopicAuthorizationFailed.Code
			continue
		}
		t, err := s.log.Topic(w.topic)
		if err != nil {
			op.ErrorCode = errorCode(err)
			continue
		}
		p, err := t.Partition(w.partition)
		if err != nil {
			op.ErrorCode = errorCode(err)
			continue
		}
		if op.ErrorCode = checkLeaderEpoch(p, w.currentEpoch); op.ErrorCode != 0 {
			continue
		}
		if diverged(p, w, op) {
			continue
		}
		parts = append(parts, &fetchPart{p: p, offset: w.offset, max: w.maxBytes, out: op})
	}
	return parts
}

// diverged checks a fetch's LastFetchedEpoch against the leader-epoch
// cache, as Kafka does: when the log's end of that epoch is below the
// fetch offset, or the log never had that epoch, the answer is the
// diverging epoch and its end offset (the client truncates there) and no
// records. An epoch past the current one is OFFSET_OUT_OF_RANGE.
func diverged(p *logstore.Partition, w fetchWant, op *kmsg.FetchResponseTopicPartition) bool {
	if w.lastFetchedEpoch < 0 {
		return false
	}
	epoch, end := p.EndOffsetForEpoch(w.lastFetchedEpoch)
	if epoch == logstore.UndefinedEpoch || end == logstore.UndefinedEpochOffset {
		op.ErrorCode = kerr.OffsetOutOfRange.Code
		return true
	}
	if epoch >= w.lastFetchedEpoch && end >= w.offset {
		return false
	}
	op.DivergingEpoch.Epoch, op.DivergingEpoch.EndOffset = epoch, end
	op.LogStartOffset, op.HighWatermark, op.LastStableOffset = p.Offsets()
	return true
}

// fetchLoop reads parts until the request's MinBytes are gathered, an
// error is met or MaxWaitMillis has passed; answered (some partition was
// answered already: an error or a diverging epoch) reads them once, without
// waiting, as Kafka answers errors at once. The answer holds at most the
// request's MaxBytes, the server's FetchMaxBytes and quotaBytes
// (fetchQuotaBytes), besides the first batch, which is always whole.
func (s *Server) fetchLoop(ctx context.Context, req *kmsg.FetchRequest, parts []*fetchPart, quotaBytes int32, answered bool) {
	maxBytes := req.MaxBytes
	if maxBytes <= 0 || maxBytes > s.cfg.FetchMaxBytes {
		maxBytes = s.cfg.FetchMaxBytes
	}
	strict := quotaBytes < maxBytes
	maxBytes = min(maxBytes, quotaBytes)
	deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	for {
		total := s.fetchOnce(parts, maxBytes, req.IsolationLevel, strict)
		if answered || total >= int(req.MinBytes) || total > 0 && req.MinBytes <= 0 || !time.Now().Before(deadline) || len(parts) == 0 {
			return
		}
		for _, fp := range parts {
			if fp.out.ErrorCode != 0 {
				return // errors are answered at once
			}
		}
		if !s.waitAny(ctx, parts, deadline) {
			return
		}
	}
}

// fetchTopics groups the answered partitions (those include selects; nil
// means all) into response topics, consecutive partitions of one topic
// sharing an entry.
func fetchTopics(wants []fetchWant, outs []kmsg.FetchResponseTopicPartition, include []bool) []kmsg.FetchResponseTopic {
	var topics []kmsg.FetchResponseTopic
	for i := range outs {
		if include != nil && !include[i] {
			continue
		}
		if n := len(topics); n == 0 || topics[n-1].Topic != wants[i].topic {
			t := kmsg.NewFetchResponseTopic()
			t.Topic = wants[i].topic
			topics = append(topics, t)
		}
		t := &topics[len(topics)-1]
		t.Partitions = append(t.Partitions, outs[i])
	}
	return topics
}

// emptyNotNull gives every partition without data an empty record set rather
// than a null one, as Kafka does: librdkafka rejects a null record set in
// non-flexible Fetch versions ("invalid MessageSetSize -1").
func emptyNotNull(resp *kmsg.FetchResponse) *kmsg.FetchResponse {
	for i := range resp.Topics {
		ps := resp.Topics[i].Partitions
		for j := range ps {
			if ps[j].RecordBatches == nil {
				ps[j].RecordBatches = []byte{}
			}
		}
	}
	return resp
}

// fetchOnce fills every partition's answer and returns the bytes gathered.
// Each partition's first batch is returned whole even past the limits;
// with strict (maxBytes is a quota's bound, fetchQuotaBytes) only the
// first partition's may be, as Kafka's minOneMessage: a partition after it
// whose first batch does not fit answers offsets only, and is read by the
// next fetch.
func (s *Server) fetchOnce(parts []*fetchPart, maxBytes int32, isolation int8, strict bool) int {
	total := 0
	for _, fp := range parts {
		out := fp.out
		out.ErrorCode = 0
		out.RecordBatches = nil
		out.AbortedTransactions = nil
		fp.lsoBlocked = false
		limit := int(fp.max)
		if remaining := int(maxBytes) - total; remaining < limit {
			limit = remaining
		}
		if limit <= 0 && total > 0 {
			// Response full: report offsets only.
			out.LogStartOffset, out.HighWatermark, out.LastStableOffset = fp.p.Offsets()
			continue
		}
		limit = max(limit, 1)
		res, err := fp.p.Read(fp.offset, limit)
		if err != nil {
			out.ErrorCode = errorCode(err)
			out.LogStartOffset, out.HighWatermark, out.LastStableOffset = fp.p.Offsets()
			continue
		}
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = res.HighWatermark, res.LastStable, res.LogStartOffset
		batches := res.Batches
		upTo := res.HighWatermark
		if isolation == readCommitted {
			upTo = res.LastStable
			batches = batchesBelow(batches, res.LastStable)
			if len(batches) == 0 && res.HighWatermark > fp.offset {
				fp.lsoBlocked = true
			}
		}
		if len(batches) == 0 || strict && total > 0 && len(batches) > int(maxBytes)-total {
			continue
		}
		out.RecordBatches = batches
		total += len(batches)
		if isolation == readCommitted {
			end := min(upTo, lastOffsetOf(batches)+1)
			for _, a := range fp.p.AbortedTransactions(fp.offset, end) {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				out.AbortedTransactions = append(out.AbortedTransactions, at)
			}
		}
	}
	return total
}

// batchesBelow returns the prefix of whole batches whose base offset is
// below limit.
func batchesBelow(b []byte, limit int64) []byte {
	n := 0
	for n+record.HeaderSize <= len(b) {
		h, err := record.ParseHeader(b[n:])
		if err != nil || n+h.Size() > len(b) || h.BaseOffset >= limit {
			break
		}
		n += h.Size()
	}
	return b[:n]
}

// lastOffsetOf returns the last offset of the last whole batch in b.
func lastOffsetOf(b []byte) int64 {
	last := int64(-1)
	for n := 0; n+record.HeaderSize <= len(b); {
		h, err := record.ParseHeader(b[n:])
		if err != nil || n+h.Size() > len(b) {
			break
		}
		last = h.LastOffset()
		n += h.Size()
	}
	return last
}

// waitAny blocks until one partition may have new data, the deadline passes
// or ctx ends. It returns false when the fetch should answer now. The
// partitions' committers wake it directly (logstore.Partition.Watch): no
// goroutine per partition stands between an append and the fetch.
func (s *Server) waitAny(ctx context.Context, parts []*fetchPart, deadline time.Time) bool {
	woke := make(chan struct{}, 1)
	for _, fp := range parts {
		// A partition whose new data an open transaction holds back
		// (lsoBlocked) wakes when a marker moves its last stable
		// offset, not on appends.
		stop := fp.p.Watch(fp.offset, fp.lsoBlocked, woke)
		defer stop()
	}
	if s.fetchWaiting != nil {
		s.fetchWaiting()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-woke:
		return true
	case <-timer.C:
		return ctx.Err() == nil // deadline: one last pass
	case <-ctx.Done():
		return false
	}
}
