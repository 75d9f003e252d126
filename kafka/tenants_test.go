package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
)

// TestTenantNamespaces: tenant topics are created only in existing
// namespaces, with the namespace's retention; a namespace over its
// storage quota refuses produce requests (other topics unaffected).
func TestTenantNamespaces(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := s.Kafka.Tenants()
	if err := tn.PutTenant(ctx, auth.Tenant{Name: "acme", Members: []string{"User:alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: "acme", Name: "prod", Retention: 2 * time.Hour, MaxStorage: 8 << 10}); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(s.Client(t))
	res, err := adm.CreateTopics(ctx, 1, 1, nil, "acme.prod.orders", "acme.staging.orders", "plain")
	if err != nil {
		t.Fatal(err)
	}
	if e := res["acme.staging.orders"].Err; !errors.Is(e, kerr.PolicyViolation) || !strings.Contains(res["acme.staging.orders"].ErrMessage, "sluice namespace create acme/staging") {
		t.Fatalf("topic in a missing namespace: %v %q", e, res["acme.staging.orders"].ErrMessage)
	}
	if e := res["acme.prod.orders"].Err; e != nil {
		t.Fatal(e)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "acme.prod.orders")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfgs.On("acme.prod.orders", nil); v.Err != nil || !hasConfig(v.Configs, "retention.ms", "7200000") {
		t.Fatalf("namespace retention not applied: %+v", v)
	}
	// Auto-creation through Metadata follows the same rule.
	cl := s.Client(t, kgo.RequestRetries(0), kgo.RecordRetries(0), kgo.ProduceRequestTimeout(5*time.Second))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "acme.nowhere.x", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("auto-create in a missing namespace: %v", err)
	}
	// Fill the namespace past its storage quota: refused, with the reason.
	big := make([]byte, 2<<10)
	rand.Read(big) // incompressible: the quota counts stored bytes
	var refused error
	for i := 0; i < 20 && refused == nil; i++ {
		refused = cl.ProduceSync(ctx, &kgo.Record{Topic: "acme.prod.orders", Value: big}).FirstErr()
		time.Sleep(100 * time.Millisecond) // lets the measured storage catch up (refreshed every second)
	}
	if !errors.Is(refused, kerr.PolicyViolation) {
		t.Fatalf("over the storage quota: %v", refused)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "plain", Value: big}).FirstErr(); err != nil {
		t.Fatalf("a topic outside the tenant: %v", err)
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// TestNamespaceProduceRate: a namespace's produce rate R holds all its
// producers together to R (within 10%), while another tenant's topic
// without a rate, produced to at the same time, is not throttled.
func TestNamespaceProduceRate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures rates over several seconds")
	}
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rate = 200 << 10
	tn := s.Kafka.Tenants()
	for _, x := range []struct {
		tenant string
		rate   float64
	}{{"slow", rate}, {"fast", 0}} {
		if err := tn.PutTenant(ctx, auth.Tenant{Name: x.tenant}); err != nil {
			t.Fatal(err)
		}
		if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: x.tenant, Name: "ns", ProduceRate: x.rate}); err != nil {
			t.Fatal(err)
		}
	}
	value := make([]byte, 1000)
	rand.Read(value)
	opts := []kgo.Opt{kgo.MaxBufferedRecords(100), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression())}
	var slowBytes, fastBytes atomic.Int64 // values acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(cl *kgo.Client, topic string, acked *atomic.Int64) {
		defer wg.Done()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-stop:
				return
			default:
			}
			inflight.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(r *kgo.Record, err error) {
				defer inflight.Done()
				if err == nil {
					acked.Add(int64(len(r.Value)))
				}
			})
		}
	}
	// Clients are made here, one after the other: franz-go's option
	// values are not safe to share between concurrent NewClient calls.
	var fastThrottled throttleHook
	c1, c3 := s.Client(t, opts...), s.Client(t, append(opts, kgo.WithHooks(&fastThrottled))...)
	wg.Add(2)
	go run(c1, "slow.ns.a", &slowBytes)
	go run(c3, "fast.ns.a", &fastBytes)
	// The rate is metered over its whole history (up to 11 s): measure the
	// batch bytes appended (what the producer sent, which the quota
	// counts) from its first byte, over 9 s. The first byte may come
	// seconds after the producer starts on a loaded machine.
	start := firstAppend(t, s, "slow.ns.a")
	time.Sleep(time.Until(start.Add(9 * time.Second))) // the measurement window, not synchronisation
	elapsed := time.Since(start).Seconds()
	s1, f1 := appendedBytes(t, s, "slow.ns.a"), fastBytes.Load()
	close(stop)
	wg.Wait()
	slow, fast := float64(s1)/elapsed, float64(f1)/elapsed
	t.Logf("namespace slow/ns %.0f B/s (rate %d), fast/ns %.0f B/s (no rate)", slow, rate, fast)
	if slow < 0.9*rate || slow > 1.1*rate {
		t.Fatalf("namespace with produce rate %d B/s took %.0f B/s: not within 10%%", rate, slow)
	}
	// The other tenant is unaffected: never throttled, and not held to
	// the rate (how far above it depends on the machine's load).
	if n := fastThrottled.n.Load(); n != 0 {
		t.Fatalf("the other tenant, without a rate, was throttled %d times", n)
	}
	if fast < 1.5*rate {
		t.Fatalf("the other tenant, without a rate, produced only %.0f B/s", fast)
	}
}

// throttleHook counts the answers that throttled a client.
type throttleHook struct{ n atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		h.n.Add(1)
	}
}

// TestTenantIsolation: with the authorizer on, members of one tenant use
// its topics and groups (the tenant rule), while another tenant's member
// can neither list, read, write nor join the groups of them.
func TestTenantIsolation(t *testing.T) {
	s := aclServer(t) // users alice and bob; authorizer on
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := s.Kafka.Tenants()
	for tenant, member := range map[string]string{"acme": "User:alice", "globex": "User:bob"} {
		if err := tn.PutTenant(ctx, auth.Tenant{Name: tenant, Members: []string{member}}); err != nil {
			t.Fatal(err)
		}
		if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: tenant, Name: "prod"}); err != nil {
			t.Fatal(err)
		}
	}
	alice := userClient(t, s, "alice", kgo.AllowAutoTopicCreation())
	bob := userClient(t, s, "bob", kgo.AllowAutoTopicCreation(), kgo.RequestRetries(0), kgo.RecordRetries(0))
	if _, err := kadm.NewClient(alice).CreateTopics(ctx, 1, 1, nil, "acme.prod.orders"); err != nil {
		t.Fatal(err)
	}
	if err := produceAs(ctx, alice, "acme.prod.orders"); err != nil {
		t.Fatalf("alice in her tenant: %v", err)
	}
	if err := produceAs(ctx, bob, "globex.prod.orders"); err != nil {
		t.Fatalf("bob in his tenant (auto-created): %v", err)
	}
	// Bob cannot write, read or see acme's topic, nor join acme's groups.
	if err := produceAs(ctx, bob, "acme.prod.orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob writing acme's topic: %v", err)
	}
	if code := fetchCode(ctx, t, bob, "acme.prod.orders"); code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob reading acme's topic: code %d", code)
	}
	topics, err := kadm.NewClient(bob).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("acme.prod.orders") || !topics.Has("globex.prod.orders") {
		t.Fatalf("bob's topic list: %v", topics.Names())
	}
	g := userClient(t, s, "bob", kgo.ConsumerGroup("acme.readers"), kgo.ConsumeTopics("globex.prod.orders"))
	fs := g.PollFetches(ctx)
	var groupErr error
	fs.EachError(func(_ string, _ int32, err error) { groupErr = err })
	if !errors.Is(groupErr, kerr.GroupAuthorizationFailed) {
		t.Fatalf("bob joining acme's group: %v", groupErr)
	}
	// A DENY ACL still wins over the tenant rule.
	adm := kadm.NewClient(s.Client(t))
	deny := kadm.NewACLs().Deny("User:alice").Topics("acme.prod.orders").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := adm.CreateACLs(ctx, deny); err != nil {
		t.Fatal(err)
	}
	if err := produceAs(ctx, alice, "acme.prod.orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice after a DENY: %v", err)
	}
}

// appendedBytes sums the batch bytes appended to the topics' partitions.
// firstAppend waits (up to 30 s) until topic has had a batch appended and
// returns when it saw it.
func firstAppend(t *testing.T, s *kafkatest.Server, topic string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.Log.Topic(topic); err == nil && appendedBytes(t, s, topic) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing appended to %s in 30 s", topic)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition
	}
	return time.Now()
}

func appendedBytes(t *testing.T, s *kafkatest.Server, topics ...string) int64 {
	t.Helper()
	var n int64
	for _, name := range topics {
		tp, err := s.Log.Topic(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tp.NumPartitions() {
			p, err := tp.Partition(i)
			if err != nil {
				t.Fatal(err)
			}
			n += p.Stats().AppendedBytes
		}
	}
	return n
}

// TestNamespaceEviction: a namespace with on-full evict accepts every
// produce past its storage quota by deleting its oldest sealed segments
// (the log start offset moves up, the newest records stay readable), and
// its storage stays within the quota plus the active segments; a
// namespace that refuses is unaffected by the other's policy.
func TestNamespaceEviction(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := s.Kafka.Tenants()
	if err := tn.PutTenant(ctx, auth.Tenant{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	const quota = 16 << 10
	if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: "acme", Name: "logs", MaxStorage: quota, OnFull: auth.OnFullEvict}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: "acme", Name: "ledger", MaxStorage: quota}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: "acme", Name: "bad", OnFull: "drop"}); !errors.Is(err, auth.ErrTenant) {
		t.Fatalf("unknown on-full policy accepted: %v", err)
	}
	adm := kadm.NewClient(s.Client(t))
	segBytes := "4096"
	res, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"segment.bytes": &segBytes}, "acme.logs.app", "acme.ledger.app")
	if err != nil || res.Error() != nil {
		t.Fatalf("create topics: %v %v", err, res.Error())
	}
	cl := s.Client(t, kgo.RequestRetries(0), kgo.RecordRetries(0), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := make([]byte, 1000)
	rand.Read(value)
	const n = 120 // ~120 KB into a 16 KB namespace
	for i := range n {
		r := &kgo.Record{Topic: "acme.logs.app", Partition: int32(i % 2), Key: []byte{byte(i)}, Value: value}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d to an evicting namespace: %v", i, err)
		}
	}
	var stored int64
	for p := range int32(2) {
		tp, _ := s.Log.Topic("acme.logs.app")
		part, err := tp.Partition(p)
		if err != nil {
			t.Fatal(err)
		}
		st := part.Stats()
		stored += st.Bytes
		if st.LogStartOffset == 0 {
			t.Errorf("partition %d: nothing evicted (log start 0, %d bytes)", p, st.Bytes)
		}
		if st.HighWatermark != n/2 {
			t.Errorf("partition %d: high watermark %d, want %d", p, st.HighWatermark, n/2)
		}
	}
	// Within the quota, plus what eviction cannot touch: each partition's
	// active segment and the batch that went over.
	if limit := int64(quota + 2*4096 + 2*1100); stored > limit {
		t.Errorf("namespace stores %d bytes, more than quota + active segments (%d)", stored, limit)
	}
	// The newest records are still there.
	lo, err := adm.ListEndOffsets(ctx, "acme.logs.app")
	if err != nil {
		t.Fatal(err)
	}
	so, err := adm.ListStartOffsets(ctx, "acme.logs.app")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		end, _ := lo.Lookup("acme.logs.app", p)
		start, _ := so.Lookup("acme.logs.app", p)
		if start.Offset <= 0 || start.Offset >= end.Offset {
			t.Errorf("partition %d: offsets %d..%d after eviction", p, start.Offset, end.Offset)
		}
	}
	// The refusing namespace still refuses (once its measured storage,
	// refreshed every second, is over the quota).
	var refused error
	for deadline := time.Now().Add(20 * time.Second); refused == nil && time.Now().Before(deadline); {
		refused = cl.ProduceSync(ctx, &kgo.Record{Topic: "acme.ledger.app", Value: value}).FirstErr()
	}
	if !errors.Is(refused, kerr.PolicyViolation) {
		t.Fatalf("refusing namespace over its quota: %v", refused)
	}
}

// TestTenantMetrics: the per-namespace metrics count what each namespace's
// clients did: bytes produced and fetched, bytes stored, produce requests
// refused over the storage quota, throttle time over a produce rate; a
// namespace without a rate is never throttled.
func TestTenantMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := kafka.DefaultConfig()
	cfg.Registerer = reg
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := s.Kafka.Tenants()
	if err := tn.PutTenant(ctx, auth.Tenant{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []auth.Namespace{
		{Tenant: "acme", Name: "full", MaxStorage: 4 << 10},
		{Tenant: "acme", Name: "slow", ProduceRate: 1 << 10},
	} {
		if err := tn.PutNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(s.Client(t))
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "acme.full.t", "acme.slow.t"); err != nil {
		t.Fatal(err)
	}
	cl := s.Client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RequestRetries(0), kgo.RecordRetries(0))
	value := make([]byte, 3000)
	rand.Read(value)
	// Two records fit under the 4 KiB quota (what was accepted counts at
	// once); the third is refused.
	for i := range 2 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "acme.full.t", Value: value}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "acme.full.t", Value: value}).FirstErr(); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("produce over the storage quota: %v", err)
	}
	// 3 KB at once against 1 KiB/s: throttled.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "acme.slow.t", Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumer := s.Client(t, kgo.ConsumeTopics("acme.full.t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 2; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	full, slow := map[string]string{"tenant": "acme", "namespace": "full"}, map[string]string{"tenant": "acme", "namespace": "slow"}
	stored := appendedBytes(t, s, "acme.full.t")
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"sluice_tenant_produced_bytes_total", full, float64(stored), float64(3 * stored)},
		{"sluice_tenant_fetched_bytes_total", full, float64(stored), math.Inf(1)},
		{"sluice_tenant_storage_bytes", full, float64(stored), float64(stored)},
		{"sluice_tenant_storage_refusals_total", full, 1, 1},
		{"sluice_tenant_produced_bytes_total", slow, 3000, 4000},
		{"sluice_tenant_throttle_seconds_total", map[string]string{"tenant": "acme", "namespace": "slow", "direction": "produce"}, 0.5, 11},
		{"sluice_tenant_throttle_seconds_total", map[string]string{"tenant": "acme", "namespace": "full", "direction": "produce"}, 0, 0},
	} {
		v := metricValue(t, reg, c.name, c.labels)
		if v < c.min || v > c.max {
			t.Errorf("%s%v = %v, want %v to %v", c.name, c.labels, v, c.min, c.max)
		}
	}
}

// metricValue returns the value of the counter or gauge name whose labels
// include labels (0 when there is none).
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// TestNamespaceRateChargesOnlyAcceptedProduce: the bytes of a produce
// request refused for lack of WRITE on a tenant's topic are not charged to
// the tenant's namespace: a non-member can neither throttle the tenant's
// producers through the namespace's shared produce rate nor inflate its
// produced-bytes metric.
func TestNamespaceRateChargesOnlyAcceptedProduce(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := aclServerWithMetrics(t, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := s.Kafka.Tenants()
	if err := tn.PutTenant(ctx, auth.Tenant{Name: "acme", Members: []string{"User:alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: "acme", Name: "prod", ProduceRate: 1 << 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(s.Client(t)).CreateTopics(ctx, 1, 1, nil, "acme.prod.orders"); err != nil {
		t.Fatal(err)
	}
	produce := func(cl *kgo.Client, size int) (*kmsg.ProduceResponse, int) {
		t.Helper()
		batch, err := record.AppendBatch(nil, []record.Record{{Value: make([]byte, size), Timestamp: 1}}, record.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return produceBatch(t, cl, "acme.prod.orders", nil, batch), len(batch)
	}
	// Bob, no member, sends 64 KiB: refused, and not charged to acme/prod.
	resp, _ := produce(userClient(t, s, "bob"), 64<<10)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob producing to acme's topic: code %d", code)
	}
	labels := map[string]string{"tenant": "acme", "namespace": "prod"}
	if v := metricValue(t, reg, "sluice_tenant_produced_bytes_total", labels); v != 0 {
		t.Fatalf("a refused produce counted %v bytes as produced to acme/prod", v)
	}
	// Alice, a member, sends 100 bytes, well under 1 KiB/s: not throttled.
	resp, n := produce(userClient(t, s, "alice"), 100)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("alice producing to her tenant's topic: code %d", code)
	}
	if resp.ThrottleMillis != 0 {
		t.Fatalf("alice throttled %d ms by bytes she did not send", resp.ThrottleMillis)
	}
	if v := metricValue(t, reg, "sluice_tenant_produced_bytes_total", labels); v != float64(n) {
		t.Fatalf("acme/prod produced bytes %v, want alice's %d", v, n)
	}
}
