package kafka

import (
	"cmp"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transaction state names Kafka knows but that this coordinator never holds
// (it fences and expires without them): they are valid ListTransactions
// filters that match nothing.
var txnStatesNeverHeld = []string{"PrepareEpochFence", "Dead"}

// snapshot returns a copy of every initialised transactional id's state,
// sorted by transactional id.
func (c *txnCoordinator) snapshot() []txnRecord {
	c.mu.Lock()
	entries := make([]*txnEntry, 0, len(c.byID))
	for _, e := range c.byID {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	out := make([]txnRecord, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		r := e.rec
		e.mu.Unlock()
		if r.ProducerID >= 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b txnRecord) int { return cmp.Compare(a.TransactionalID, b.TransactionalID) })
	return out
}

// startMillis is the transaction start time Kafka reports: -1 for a
// transactional id with no transaction begun since its producer
// initialised.
func (r *txnRecord) startMillis() int64 {
	if r.State == txnEmpty || r.StartMillis == 0 {
		return -1
	}
	return r.StartMillis
}

// txnStateByName maps Kafka's state names to the states held here.
func txnStateByName(name string) (txnState, bool) {
	for s := txnEmpty; s <= txnCompleteAbort; s++ {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// handleListTransactions lists transactional ids with their producer id and
// state, filtered as Kafka filters: by state names (names Kafka does not
// know are returned in UnknownStateFilters and ignored), by producer ids,
// from v1 by duration (only transactions whose start is more than that many
// ms ago; a transactional id with no transaction begun counts as started
// long ago, as Kafka's -1 start time does) and from v2 by a regular
// expression the whole transactional id must match (INVALID_REGULAR_EXPRESSION
// when it does not compile, or is larger than a subscription regex may be:
// checkTopicRegex).
func (s *Server) handleListTransactions(req *kmsg.ListTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := compileTopicRegex(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}
	states := make(map[txnState]bool)
	filterStates := false
	for _, name := range req.StateFilters {
		if st, ok := txnStateByName(name); ok {
			states[st], filterStates = true, true
		} else if slices.Contains(txnStatesNeverHeld, name) {
			filterStates = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	pids := make(map[int64]bool, len(req.ProducerIDFilters))
	for _, pid := range req.ProducerIDFilters {
		pids[pid] = true
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}
	now := time.Now().UnixMilli()
	for _, r := range s.txns.snapshot() {
		switch {
		case filterStates && !states[r.State]:
		case len(pids) > 0 && !pids[r.ProducerID]:
		case duration >= 0 && now-r.startMillis() <= duration:
		case pattern != nil && !pattern.MatchString(r.TransactionalID):
		default:
			ts := kmsg.NewListTransactionsResponseTransactionState()
			ts.TransactionalID, ts.ProducerID, ts.TransactionState = r.TransactionalID, r.ProducerID, r.State.String()
			resp.TransactionStates = append(resp.TransactionStates, ts)
		}
	}
	return resp
}

// handleDescribeTransactions describes transactional ids: state, timeout,
// start time, producer id and epoch, and the partitions of the open
// transaction. An id the coordinator does not know answers
// TRANSACTIONAL_ID_NOT_FOUND.
func (s *Server) handleDescribeTransactions(req *kmsg.DescribeTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		r, ok := s.txns.describe(id)
		if !ok || r.ProducerID < 0 {
			ts.ErrorCode = kerr.TransactionalIDNotFound.Code
			ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		ts.State = r.State.String()
		ts.TimeoutMillis = r.TimeoutMillis
		ts.StartTimestamp = r.startMillis()
		ts.ProducerID, ts.ProducerEpoch = r.ProducerID, r.Epoch
		ts.Topics = txnTopics(r.Partitions)
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}

// txnTopics groups a transaction's partitions by topic, sorted.
func txnTopics(parts []tp) []kmsg.DescribeTransactionsResponseTransactionStateTopic {
	byTopic := make(map[string][]int32)
	for _, p := range parts {
		byTopic[p.Topic] = append(byTopic[p.Topic], p.Partition)
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]kmsg.DescribeTransactionsResponseTransactionStateTopic, 0, len(names))
	for _, n := range names {
		t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		t.Topic = n
		t.Partitions = byTopic[n]
		slices.Sort(t.Partitions)
		out = append(out, t)
	}
	return out
}
