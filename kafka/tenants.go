package kafka

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
)

// Tenants on the Kafka listener (package auth has the model): a topic
// named TENANT.NAMESPACE.NAME of an existing tenant can only be created in
// an existing namespace, and gets the namespace's retention unless it sets
// its own; produce and fetch bytes of a namespace's topics are metered
// together against its rates (throttled as client quotas are: quota.go);
// a namespace over its storage quota refuses produce requests with
// POLICY_VIOLATION naming the quota, until retention or deleted records
// bring it back under, or (on-full: evict) deletes its oldest segments.

// storageRefresh bounds how old a namespace's measured storage may be.
const storageRefresh = time.Second

type tenancy struct {
	t      *auth.Tenants
	log    *logstore.Log
	logger *slog.Logger

	evictMu sync.Mutex // one eviction at a time

	mu    sync.Mutex
	usage map[string]nsUsage // by "tenant/namespace"

	produced  *prometheus.CounterVec
	fetched   *prometheus.CounterVec
	throttled *prometheus.CounterVec
	refused   *prometheus.CounterVec
	evicted   *prometheus.CounterVec
}

type nsUsage struct {
	bytes int64
	at    time.Time
}

func newTenancy(t *auth.Tenants, l *logstore.Log, logger *slog.Logger, reg prometheus.Registerer) (*tenancy, error) {
	labels := []string{"tenant", "namespace"}
	tn := &tenancy{t: t, log: l, logger: logger, usage: map[string]nsUsage{},
		produced:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tenant_produced_bytes_total", Help: "Record bytes produced to a namespace's topics."}, labels),
		fetched:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tenant_fetched_bytes_total", Help: "Record bytes fetched from a namespace's topics."}, labels),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tenant_throttle_seconds_total", Help: "Throttle time given to clients of a namespace over its produce or fetch rate."}, append(labels, "direction")),
		refused:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tenant_storage_refusals_total", Help: "Produce requests refused because the namespace was over its storage quota."}, labels),
		evicted:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_tenant_storage_evicted_bytes_total", Help: "Bytes of the oldest segments deleted because the namespace (on-full: evict) was over its storage quota."}, labels),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{tn.produced, tn.fetched, tn.throttled, tn.refused, tn.evicted, &storageCollector{tn}} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return tn, nil
}

// topicPolicy checks a topic about to be created against its tenant's
// namespaces and applies the namespace's retention.
func (tn *tenancy) topicPolicy(name string, cfg *logstore.TopicConfig) (int16, string) {
	ns, ok, tenanted := tn.t.NamespaceOf(name)
	if !tenanted {
		return 0, ""
	}
	if !ok {
		tenant, rest, _ := strings.Cut(name, ".")
		nsName, _, _ := strings.Cut(rest, ".")
		return kerr.PolicyViolation.Code, fmt.Sprintf("topic %s is in tenant %s, whose namespace %q does not exist (sluice namespace create %s/%s): tenant topics are named TENANT.NAMESPACE.NAME", name, tenant, nsName, tenant, nsName)
	}
	if cfg.Retention == 0 && ns.Retention > 0 {
		cfg.Retention = ns.Retention
	}
	return 0, ""
}

// storage returns a namespace's bytes, measured at most storageRefresh ago.
func (tn *tenancy) storage(ns auth.Namespace, now time.Time) int64 {
	key := ns.Tenant + "/" + ns.Name
	tn.mu.Lock()
	u, ok := tn.usage[key]
	tn.mu.Unlock()
	if ok && now.Sub(u.at) < storageRefresh {
		return u.bytes
	}
	var total int64
	prefix := ns.Prefix()
	for _, name := range tn.log.Topics() {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		t, err := tn.log.Topic(name)
		if err != nil {
			continue
		}
		for i := range t.NumPartitions() {
			if p, err := t.Partition(i); err == nil {
				total += p.Stats().Bytes
			}
		}
	}
	tn.mu.Lock()
	tn.usage[key] = nsUsage{bytes: total, at: now}
	tn.mu.Unlock()
	return total
}

// checkStorage applies a namespace's storage quota to a produce: under it
// nothing happens; over it the produce is refused, or (OnFullEvict) the
// namespace's oldest segments are deleted first.
// n is the produce's size: an accepted produce adds it to the measured
// storage, so that produces between two measurements count.
func (tn *tenancy) checkStorage(topic string, n int) (int16, string) {
	ns, ok, _ := tn.t.NamespaceOf(topic)
	if !ok || ns.MaxStorage <= 0 {
		return 0, ""
	}
	used := tn.storage(ns, time.Now())
	if used < ns.MaxStorage {
		tn.addUsage(ns, n)
		return 0, ""
	}
	if ns.OnFull == auth.OnFullEvict {
		if used = tn.evict(ns); used < ns.MaxStorage {
			tn.addUsage(ns, n)
			return 0, ""
		}
		tn.refused.WithLabelValues(ns.Tenant, ns.Name).Inc()
		return kerr.PolicyViolation.Code, fmt.Sprintf("namespace %s/%s is over its storage quota (%d bytes stored, quota %d) and has no sealed segment left to evict: its active segments alone exceed the quota (lower the topics' segment.bytes or raise the quota)", ns.Tenant, ns.Name, used, ns.MaxStorage)
	}
	tn.refused.WithLabelValues(ns.Tenant, ns.Name).Inc()
	return kerr.PolicyViolation.Code, fmt.Sprintf("namespace %s/%s is over its storage quota: %d bytes stored, quota %d; it accepts records again once retention or DeleteRecords frees space", ns.Tenant, ns.Name, used, ns.MaxStorage)
}

// addUsage adds n bytes about to be appended to ns's measured storage.
func (tn *tenancy) addUsage(ns auth.Namespace, n int) {
	key := ns.Tenant + "/" + ns.Name
	tn.mu.Lock()
	if u, ok := tn.usage[key]; ok {
		u.bytes += int64(n)
		tn.usage[key] = u
	}
	tn.mu.Unlock()
}

// evict deletes the oldest sealed segments of ns's partitions until ns is
// under its storage quota, or none is left, and returns the bytes it then
// stores. "Oldest" is time retention's order: by a segment's newest
// timestamp, a partition's segments always from its first; segments that
// may hold an undecided transaction (at or past the last stable offset)
// stay. One eviction runs at a time; the others then see its result.
func (tn *tenancy) evict(ns auth.Namespace) int64 {
	tn.evictMu.Lock()
	defer tn.evictMu.Unlock()
	key := ns.Tenant + "/" + ns.Name
	tn.mu.Lock()
	delete(tn.usage, key) // measure afresh: another eviction may have run
	tn.mu.Unlock()
	used := tn.storage(ns, time.Now())
	if used < ns.MaxStorage {
		return used
	}
	type queue struct {
		p    *logstore.Partition
		segs []logstore.SegmentInfo // sealed segments below the last stable offset
		next int                    // segments taken from the front
	}
	var qs []*queue
	prefix := ns.Prefix()
	for _, name := range tn.log.Topics() {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		t, err := tn.log.Topic(name)
		if err != nil {
			continue
		}
		for i := range t.NumPartitions() {
			p, err := t.Partition(i)
			if err != nil {
				continue
			}
			segs := p.Segments()
			_, _, lso := p.Offsets()
			n := 0
			for n < len(segs)-1 && segs[n+1].Base <= lso {
				n++
			}
			if n > 0 {
				qs = append(qs, &queue{p: p, segs: segs[:n+1]})
			}
		}
	}
	var freed int64
	for used-freed >= ns.MaxStorage {
		var best *queue
		for _, q := range qs {
			if q.next < len(q.segs)-1 && (best == nil || q.segs[q.next].MaxTimestamp < best.segs[best.next].MaxTimestamp) {
				best = q
			}
		}
		if best == nil {
			break
		}
		freed += best.segs[best.next].Bytes
		best.next++
	}
	for _, q := range qs {
		if q.next == 0 {
			continue
		}
		start := q.segs[q.next].Base
		if _, err := q.p.DeleteRecords(start); err != nil {
			tn.logger.Warn("namespace over its storage quota: eviction failed", "namespace", key, "partition", fmt.Sprintf("%s/%d", q.p.Topic(), q.p.ID()), "err", err)
			continue
		}
		tn.logger.Info("namespace over its storage quota: oldest records evicted", "namespace", key, "partition", fmt.Sprintf("%s/%d", q.p.Topic(), q.p.ID()), "log_start", start)
	}
	if freed > 0 {
		tn.evicted.WithLabelValues(ns.Tenant, ns.Name).Add(float64(freed))
	}
	tn.mu.Lock()
	delete(tn.usage, key)
	tn.mu.Unlock()
	return tn.storage(ns, time.Now())
}

// meterNamespaces meters bytes per namespace of a request or response
// (produce: dir "produce", fetch: "fetch") and returns the longest throttle
// any of them calls for. n < 0 takes bytes back (a throttled fetch that
// delivered nothing).
func (s *Server) meterNamespaces(dir string, bytesByTopic map[string]int, sign int) time.Duration {
	var d time.Duration
	now := time.Now()
	for topic, n := range bytesByTopic {
		ns, ok, _ := s.tenants.t.NamespaceOf(topic)
		if !ok {
			continue
		}
		limit := ns.ProduceRate
		if dir == "fetch" {
			limit = ns.FetchRate
		}
		if sign > 0 {
			c := s.tenants.produced
			if dir == "fetch" {
				c = s.tenants.fetched
			}
			c.WithLabelValues(ns.Tenant, ns.Name).Add(float64(n))
		}
		if limit <= 0 {
			continue
		}
		nd := s.quotas.meter(meterKey{kind: dir, namespace: ns.Tenant + "/" + ns.Name}, limit, sign*n, now)
		if nd > 0 {
			s.tenants.throttled.WithLabelValues(ns.Tenant, ns.Name, dir).Add(nd.Seconds())
		}
		d = max(d, nd)
	}
	return d
}

// acceptedBytesByTopic returns the record bytes per topic of the
// partitions startProduce accepted (resp answers req topic by topic and
// partition by partition, without an error yet). A namespace's produce
// rate is shared by all its clients: bytes refused (no WRITE on the topic,
// the storage quota, a bad batch) reached no topic of it, and charging
// them would let anyone, a non-member too, throttle the tenant's
// producers.
func acceptedBytesByTopic(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) map[string]int {
	out := map[string]int{}
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].ErrorCode == 0 {
				out[req.Topics[i].Topic] += len(req.Topics[i].Partitions[j].Records)
			}
		}
	}
	return out
}

func fetchBytesByTopic(resp *kmsg.FetchResponse) map[string]int {
	out := map[string]int{}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			out[resp.Topics[i].Topic] += len(resp.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return out
}

// storageCollector reports each namespace's stored bytes at scrape time.
type storageCollector struct{ tn *tenancy }

var descNamespaceStorage = prometheus.NewDesc("sluice_tenant_storage_bytes", "Bytes stored by a namespace's topics (its storage quota counts these).", []string{"tenant", "namespace"}, nil)

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descNamespaceStorage }

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	_, nss := c.tn.t.List()
	now := time.Now()
	for _, ns := range nss {
		ch <- prometheus.MustNewConstMetric(descNamespaceStorage, prometheus.GaugeValue, float64(c.tn.storage(ns, now)), ns.Tenant, ns.Name)
	}
}

// Tenants returns the server's tenant registry (tenants and namespaces
// are managed with `sluice tenant` and `sluice namespace`).
func (s *Server) Tenants() *auth.Tenants { return s.tenants.t }
