package kafka

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// Client quotas, enforced as Kafka enforces them.
//
// A produce request's bytes (and a fetch response's) are recorded on a
// rate meter of the connection's quota entity: the entity of the quota
// that applies by Kafka's precedence (auth.Quotas.Resolve), with
// "<default>" replaced by the connection's own user or client id, so that
// a default quota limits each user (or client) separately. The meter keeps
// quotaSamples one-second samples; when the observed rate exceeds the
// quota, the answer carries throttle_time_ms = (rate - quota) / quota ×
// the measured window, and the connection is muted for that long (its next
// request is not read until then), so a client that ignores the throttle
// time slows down all the same (KIP-219). Well-behaved clients (franz-go,
// librdkafka, the Java client) wait themselves.

const (
	quotaSamples    = 11
	quotaSampleSize = time.Second
	maxThrottle     = quotaSamples * quotaSampleSize
)

// rateMeter measures a byte rate over the last quotaSamples samples.
type rateMeter struct {
	samples [quotaSamples]struct {
		start int64 // sample start, in sample units since the epoch
		bytes float64
	}
	first int64 // when the meter was made, in nanoseconds
}

// record adds n bytes at now and returns the rate and the window it was
// measured over.
func (m *rateMeter) record(now time.Time, n int) (rate float64, window time.Duration) {
	unit := now.UnixNano() / int64(quotaSampleSize)
	s := &m.samples[unit%quotaSamples]
	if s.start != unit {
		s.start, s.bytes = unit, 0
	}
	s.bytes += float64(n)
	var total float64
	for _, x := range m.samples {
		if unit-x.start < quotaSamples {
			total += x.bytes
		}
	}
	// The window: the full span of samples, or as long as the meter has
	// existed (at least one sample), as Kafka's rate does.
	window = min(time.Duration(now.UnixNano()-m.first), maxThrottle)
	window = max(window, quotaSampleSize)
	return total / window.Seconds(), window
}

// quotaManager enforces the client quotas of a server.
type quotaManager struct {
	q *auth.Quotas

	mu     sync.Mutex
	meters map[meterKey]*rateMeter

	throttled *prometheus.CounterVec // seconds of throttle, by kind and entity
	bytes     *prometheus.CounterVec // bytes counted, by kind and entity
}

type meterKey struct {
	kind      string
	entity    auth.QuotaEntity
	namespace string // "tenant/namespace" for a namespace's rate; empty for client quotas
}

func newQuotaManager(q *auth.Quotas, reg prometheus.Registerer) (*quotaManager, error) {
	m := &quotaManager{q: q, meters: map[meterKey]*rateMeter{},
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_kafka_quota_throttle_seconds_total",
			Help: "Throttle time given to clients over a byte-rate quota, by quota key and the entity metered (user, client id).",
		}, []string{"quota", "user", "client_id"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_kafka_quota_bytes_total",
			Help: "Bytes produced or fetched by clients that have a quota, by quota key and the entity metered.",
		}, []string{"quota", "user", "client_id"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.throttled, m.bytes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// record meters n bytes of kind (auth.ProducerByteRate or
// auth.ConsumerByteRate) for the connection and returns how long it must
// be throttled (0 when within its quota or without one).
func (m *quotaManager) record(cc *clientConn, kind string, n int, now time.Time) time.Duration {
	user := strings.TrimPrefix(cc.auth.principal, "User:")
	limit, from, ok := m.q.Resolve(user, cc.clientID, kind)
	if !ok || n == 0 {
		return 0
	}
	e := from
	if e.User == auth.Default {
		e.User = user
	}
	if e.ClientID == auth.Default {
		e.ClientID = cc.clientID
	}
	d := m.meter(meterKey{kind: kind, entity: e}, limit, n, now)
	if n > 0 {
		m.bytes.WithLabelValues(kind, e.User, e.ClientID).Add(float64(n))
	}
	if d > 0 {
		m.throttled.WithLabelValues(kind, e.User, e.ClientID).Add(d.Seconds())
	}
	return d
}

// meter adds n bytes (negative: takes them back) to the meter of k and
// returns the throttle time its rate over limit calls for.
func (m *quotaManager) meter(k meterKey, limit float64, n int, now time.Time) time.Duration {
	m.mu.Lock()
	mt := m.meters[k]
	if mt == nil {
		mt = &rateMeter{first: now.UnixNano()}
		m.meters[k] = mt
	}
	rate, window := mt.record(now, n)
	m.mu.Unlock()
	if n < 0 || rate <= limit {
		return 0
	}
	return min(time.Duration((rate-limit)/limit*float64(window)), maxThrottle)
}

// throttle meters a request's bytes against the client's quota and mutes
// the connection for the longer of its throttle time and also (a
// namespace's); it returns the time in milliseconds for the answer.
func (s *Server) throttle(cc *clientConn, kind string, n int, also time.Duration) int32 {
	d := max(s.quotas.record(cc, kind, n, time.Now()), also)
	if d <= 0 {
		return 0
	}
	cc.auth.mutedUntil = time.Now().Add(d)
	return int32(min(d.Milliseconds(), math.MaxInt32))
}

// waitMuted blocks the connection's reader until its throttle time has
// passed (or ctx ends).
func waitMuted(ctx context.Context, a *connAuth) {
	d := time.Until(a.mutedUntil)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// handleDescribeClientQuotas lists the quotas whose entities match every
// component of the filter (exact name, the default, or any named one);
// with Strict, entities with other kinds too are left out.
func (s *Server) handleDescribeClientQuotas(req *kmsg.DescribeClientQuotasRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	for _, c := range req.Components {
		if c.EntityType != auth.EntityUser && c.EntityType != auth.EntityClientID {
			resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedVersion.Code, kmsg.StringPtr("unsupported entity type "+c.EntityType)
			return resp
		}
		if c.MatchType == 0 && c.Match == nil {
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("an exact match needs a name")
			return resp
		}
	}
	field := func(e auth.QuotaEntity, typ string) string {
		if typ == auth.EntityUser {
			return e.User
		}
		return e.ClientID
	}
	match := func(e auth.QuotaEntity) bool {
		named := map[string]bool{auth.EntityUser: e.User != "", auth.EntityClientID: e.ClientID != ""}
		for _, c := range req.Components {
			v := field(e, c.EntityType)
			switch c.MatchType {
			case 0: // exact
				if v != *c.Match {
					return false
				}
			case 1: // the default
				if v != auth.Default {
					return false
				}
			default: // any specified
				if v == "" {
					return false
				}
			}
			delete(named, c.EntityType)
		}
		if req.Strict {
			for _, has := range named {
				if has {
					return false
				}
			}
		}
		return true
	}
	for _, qe := range s.quotas.q.List(match) {
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, typ := range []string{auth.EntityUser, auth.EntityClientID} {
			v := field(qe.Entity, typ)
			if v == "" {
				continue
			}
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type = typ
			if v != auth.Default {
				ent.Name = kmsg.StringPtr(v)
			}
			entry.Entity = append(entry.Entity, ent)
		}
		for _, k := range auth.QuotaKeys {
			if v, ok := qe.Values[k]; ok {
				val := kmsg.NewDescribeClientQuotasResponseEntryValue()
				val.Key, val.Value = k, v
				entry.Values = append(entry.Values, val)
			}
		}
		resp.Entries = append(resp.Entries, entry)
	}
	return resp
}

// handleAlterClientQuotas sets and removes quotas (a null entity name is
// the default entity), durably; they apply at once.
func (s *Server) handleAlterClientQuotas(ctx context.Context, req *kmsg.AlterClientQuotasRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range req.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		var ent auth.QuotaEntity
		var err error
		for _, x := range e.Entity {
			oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
			oe.Type, oe.Name = x.Type, x.Name
			out.Entity = append(out.Entity, oe)
			name := auth.Default
			if x.Name != nil {
				name = *x.Name
				if name == "" || name == auth.Default {
					err = errors.Join(err, errBadEntity)
				}
			}
			switch x.Type {
			case auth.EntityUser:
				ent.User = name
			case auth.EntityClientID:
				ent.ClientID = name
			default:
				err = errors.Join(err, errBadEntity)
			}
		}
		set := map[string]float64{}
		var remove []string
		for _, op := range e.Ops {
			if op.Remove {
				remove = append(remove, op.Key)
			} else {
				set[op.Key] = op.Value
			}
		}
		if err == nil {
			err = s.quotas.q.Alter(ctx, ent, set, remove, req.ValidateOnly)
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
		} else if !req.ValidateOnly {
			s.logger.Info("client quota changed", "user", ent.User, "client_id", ent.ClientID, "set", set, "removed", remove)
		}
		resp.Entries = append(resp.Entries, out)
	}
	return resp
}

var errBadEntity = errors.New("entities are user and client-id, named (not empty) or null for the default")

// produceBytes is the record bytes of a produce request.
func produceBytes(req *kmsg.ProduceRequest) int {
	n := 0
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			n += len(req.Topics[i].Partitions[j].Records)
		}
	}
	return n
}

// fetchQuotaBytes bounds a fetch answer to what its quotas let through
// in one measured window, as Kafka does (getMaxValueInQuotaWindow): the
// rate times quotaSamples-1 samples, for the client's consumer quota and
// for the fetch rate of each namespace read. Without the bound an answer
// larger than the rate times the whole window would be over the quota
// however long the client waited: throttled, taken back and asked for
// again, for ever. It returns math.MaxInt32 when no quota applies.
func (s *Server) fetchQuotaBytes(cc *clientConn, parts []*fetchPart) int32 {
	limit := math.Inf(1)
	if cc != nil {
		user := strings.TrimPrefix(cc.auth.principal, "User:")
		if l, _, ok := s.quotas.q.Resolve(user, cc.clientID, auth.ConsumerByteRate); ok && l > 0 {
			limit = l
		}
	}
	seen := map[string]bool{}
	for _, fp := range parts {
		topic := fp.p.Topic()
		if seen[topic] {
			continue
		}
		seen[topic] = true
		if ns, ok, _ := s.tenants.t.NamespaceOf(topic); ok && ns.FetchRate > 0 {
			limit = min(limit, ns.FetchRate)
		}
	}
	window := limit * ((quotaSamples - 1) * quotaSampleSize).Seconds()
	if window >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(max(window, 1))
}

// throttleFetch meters a fetch response's record bytes. Over the quota,
// the records are taken out (offsets and watermarks stay), their bytes
// are not counted, and the answer says how long to wait, as Kafka does:
// a throttled consumer gets no data rather than more than its quota.
func (s *Server) throttleFetch(cc *clientConn, r kmsg.Response) kmsg.Response {
	resp, ok := r.(*kmsg.FetchResponse)
	if !ok {
		return r
	}
	n := 0
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			n += len(resp.Topics[i].Partitions[j].RecordBatches)
		}
	}
	now := time.Now()
	byTopic := fetchBytesByTopic(resp)
	d := max(s.quotas.record(cc, auth.ConsumerByteRate, n, now), s.meterNamespaces("fetch", byTopic, 1))
	if d <= 0 {
		return resp
	}
	s.quotas.record(cc, auth.ConsumerByteRate, -n, now) // not delivered
	s.meterNamespaces("fetch", byTopic, -1)
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			p.RecordBatches, p.AbortedTransactions = []byte{}, nil
		}
	}
	cc.auth.mutedUntil = now.Add(d)
	resp.ThrottleMillis = int32(min(d.Milliseconds(), math.MaxInt32))
	return resp
}
