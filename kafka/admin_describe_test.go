package kafka_test

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestDescribeCluster(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	cl := s.Client(t)
	describe := func(cl *kgo.Client, req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
		t.Helper()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("describe cluster: %v", err)
		}
		return resp
	}
	resp := describe(cl, kmsg.NewPtrDescribeClusterRequest())
	if resp.ErrorCode != 0 || resp.Version != 2 {
		t.Fatalf("error %d at version %d", resp.ErrorCode, resp.Version)
	}
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ClusterID) != 22 || resp.ClusterID != meta.Cluster {
		t.Fatalf("cluster id %q, Metadata says %q", resp.ClusterID, meta.Cluster)
	}
	host, port := hostPort(t, s.Addr)
	if resp.ControllerID != 0 || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 0 ||
		resp.Brokers[0].Host != host || resp.Brokers[0].Port != port || resp.Brokers[0].Rack != nil {
		t.Fatalf("controller %d, brokers %+v; want node 0 at %s", resp.ControllerID, resp.Brokers, s.Addr)
	}
	if resp.ClusterAuthorizedOperations != math.MinInt32 {
		t.Fatalf("authorized operations %d when not asked for", resp.ClusterAuthorizedOperations)
	}

	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeClusterAuthorizedOperations = true
	ops := describe(cl, req).ClusterAuthorizedOperations
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe} {
		if ops&(1<<op) == 0 {
			t.Fatalf("authorized operations %b lack %v", ops, op)
		}
	}
	if ops&(1<<kmsg.ACLOperationRead) != 0 {
		t.Fatalf("authorized operations %b include READ, not a cluster operation", ops)
	}

	req = kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2 // controllers
	if code := describe(cl, req).ErrorCode; code != kerr.MismatchedEndpointType.Code {
		t.Fatalf("controller endpoints: error %d, want MISMATCHED_ENDPOINT_TYPE", code)
	}

	v0 := s.Client(t, kgo.MaxVersions(kversionsWith(60, 0)))
	if r := describe(v0, kmsg.NewPtrDescribeClusterRequest()); r.Version != 0 || r.ErrorCode != 0 || r.ClusterID != resp.ClusterID {
		t.Fatalf("v0: version %d, error %d, cluster %q", r.Version, r.ErrorCode, r.ClusterID)
	}

	// The id is the data directory's: the same after a restart.
	s = s.Restart(t)
	if again := describe(s.Client(t), kmsg.NewPtrDescribeClusterRequest()).ClusterID; again != resp.ClusterID {
		t.Fatalf("cluster id after restart %q, before %q", again, resp.ClusterID)
	}
}

func TestDescribeLogDirs(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "dirs"
	createTopic(t, s, topic, 2)
	adm := kadm.NewClient(s.Client(t))
	sizes := func(set kadm.TopicsSet) (kadm.DescribedLogDir, map[string]map[int32]int64) {
		t.Helper()
		all, err := adm.DescribeAllLogDirs(ctx, set)
		if err != nil {
			t.Fatal(err)
		}
		dirs, ok := all[0]
		if !ok || len(all) != 1 || len(dirs) != 1 {
			t.Fatalf("log dirs %+v, want one broker with one dir", all)
		}
		for _, d := range dirs {
			if d.Err != nil {
				t.Fatal(d.Err)
			}
			out := make(map[string]map[int32]int64)
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.OffsetLag != 0 || p.IsFuture {
					t.Errorf("%s/%d: lag %d, future %v", p.Topic, p.Partition, p.OffsetLag, p.IsFuture)
				}
				if out[p.Topic] == nil {
					out[p.Topic] = make(map[int32]int64)
				}
				out[p.Topic][p.Partition] = p.Size
			})
			return d, out
		}
		panic("unreachable")
	}
	dir, got := sizes(nil)
	abs, _ := filepath.Abs(s.Dir)
	if dir.Dir != abs {
		t.Fatalf("dir %q, want %q", dir.Dir, abs)
	}
	if dir.TotalBytes <= 0 || dir.UsableBytes <= 0 || dir.UsableBytes > dir.TotalBytes {
		t.Fatalf("total %d usable %d", dir.TotalBytes, dir.UsableBytes)
	}
	if got[topic][0] != 0 || got[topic][1] != 0 || len(got[topic]) != 2 {
		t.Fatalf("new topic sizes %v", got[topic])
	}
	if _, ok := got["__consumer_offsets"]; !ok {
		t.Fatalf("all topics lack __consumer_offsets: %v", got)
	}

	cl := s.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 50 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("value %d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tp, _ := s.Log.Topic(topic)
	p0, _ := tp.Partition(0)
	_, got = sizes(kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if want := p0.Stats().Bytes; want == 0 || got[topic][0] != want || got[topic][1] != 0 || len(got) != 1 {
		t.Fatalf("sizes after producing %v, partition 0 holds %d bytes", got, want)
	}

	// Unknown topics and partitions are absent (kadm refuses to send them:
	// they have no leader).
	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.Version = 4
	for _, rt := range []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{1, 7}}, {Topic: "no-such-topic", Partitions: []int32{0}}} {
		req.Topics = append(req.Topics, rt)
	}
	resp := dialRaw(t, s.Addr).request(req).(*kmsg.DescribeLogDirsResponse)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || resp.Dirs[0].Topics[0].Topic != topic ||
		len(resp.Dirs[0].Topics[0].Partitions) != 1 || resp.Dirs[0].Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("filtered log dirs %+v", resp.Dirs)
	}

	one, err := adm.DescribeBrokerLogDirs(ctx, 0, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := one[abs]; !ok || d.Size() != p0.Stats().Bytes {
		t.Fatalf("broker 0 log dirs %+v", one)
	}
}

func TestDescribeProducers(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "producers"
	createTopic(t, s, topic, 1)
	idem := s.Client(t, kgo.DefaultProduceTopic(topic))
	for i := range 3 {
		if err := idem.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txn := s.Client(t, kgo.TransactionalID("describe-producers"), kgo.DefaultProduceTopic(topic))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("t0")}, &kgo.Record{Value: []byte("t1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(s.Client(t))
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	part := described[topic].Partitions[0]
	if part.Err != nil || len(part.ActiveProducers) != 2 {
		t.Fatalf("partition: err %v, producers %+v", part.Err, part.ActiveProducers)
	}
	ps := part.ActiveProducers.Sorted()
	start := time.Now().Add(-time.Minute).UnixMilli()
	for _, p := range ps {
		if p.ProducerEpoch != 0 || p.CoordinatorEpoch != -1 || p.LastTimestamp < start {
			t.Fatalf("producer %+v", p)
		}
	}
	// The idempotent producer wrote sequences 0..2 at offsets 0..2, the
	// transactional one 0..1 from offset 3 (its transaction is open).
	byTxn := map[bool]kadm.DescribedProducer{ps[0].CurrentTxnStartOffset >= 0: ps[0], ps[1].CurrentTxnStartOffset >= 0: ps[1]}
	if p := byTxn[false]; p.LastSequence != 2 || p.CurrentTxnStartOffset != -1 {
		t.Fatalf("idempotent producer %+v", p)
	}
	if p := byTxn[true]; p.LastSequence != 1 || p.CurrentTxnStartOffset != 3 {
		t.Fatalf("transactional producer %+v", p)
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	described, err = adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range described[topic].Partitions[0].ActiveProducers {
		if p.CurrentTxnStartOffset != -1 {
			t.Fatalf("after commit: %+v", p)
		}
	}

	req := kmsg.NewPtrDescribeProducersRequest()
	for _, rt := range []struct {
		topic string
		parts []int32
	}{{topic, []int32{0, 5}}, {"no-such-topic", []int32{0}}} {
		r := kmsg.NewDescribeProducersRequestTopic()
		r.Topic, r.Partitions = rt.topic, rt.parts
		req.Topics = append(req.Topics, r)
	}
	resp := dialRaw(t, s.Addr).request(req).(*kmsg.DescribeProducersResponse)
	codes := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes[fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)] = rp.ErrorCode
		}
	}
	unknown := kerr.UnknownTopicOrPartition.Code
	if codes[topic+"/0"] != 0 || codes[topic+"/5"] != unknown || codes["no-such-topic/0"] != unknown {
		t.Fatalf("error codes %v", codes)
	}
}

func TestListAndDescribeTransactions(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "txn-admin"
	createTopic(t, s, topic, 2)
	begin := time.Now().UnixMilli()
	producer := func(id string) *kgo.Client {
		cl := s.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(time.Minute),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte(id)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	producer("tx-open")
	for id, end := range map[string]kgo.TransactionEndTry{"tx-done": kgo.TryCommit, "tx-dropped": kgo.TryAbort} {
		if err := producer(id).EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	init := kmsg.NewPtrInitProducerIDRequest() // only initialised
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("tx-idle"), 60000
	if r, err := init.RequestWith(ctx, s.Client(t)); err != nil || r.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %+v", err, r)
	}

	adm := kadm.NewClient(s.Client(t))
	desc, err := adm.DescribeTransactions(ctx, "tx-open", "tx-done", "tx-dropped", "tx-idle", "tx-unknown")
	if err != nil {
		t.Fatal(err)
	}
	open := desc["tx-open"]
	if open.Err != nil || open.State != "Ongoing" || open.TimeoutMillis != 60000 || open.StartTimestamp < begin ||
		open.ProducerID < 0 || open.ProducerEpoch < 0 || !slices.Equal(open.Topics.Sorted()[0].Partitions, []int32{1}) {
		t.Fatalf("open transaction %+v", open)
	}
	if d := desc["tx-done"]; d.Err != nil || d.State != "CompleteCommit" || d.StartTimestamp < begin || len(d.Topics) != 0 {
		t.Fatalf("committed transaction %+v", d)
	}
	if d := desc["tx-dropped"]; d.Err != nil || d.State != "CompleteAbort" {
		t.Fatalf("aborted transaction %+v", d)
	}
	if d := desc["tx-idle"]; d.Err != nil || d.State != "Empty" || d.StartTimestamp != -1 {
		t.Fatalf("initialised transactional id %+v", d)
	}
	if d := desc["tx-unknown"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("unknown transactional id: %v", d.Err)
	}

	list := func(pids []int64, states []string) []string {
		t.Helper()
		l, err := adm.ListTransactions(ctx, pids, states)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tx := range l.Sorted() {
			if want := desc[tx.TxnID]; tx.ProducerID != want.ProducerID || tx.State != want.State {
				t.Fatalf("listed %+v, described %+v", tx, want)
			}
			ids = append(ids, tx.TxnID)
		}
		return ids
	}
	if got := list(nil, nil); !slices.Equal(got, []string{"tx-done", "tx-dropped", "tx-idle", "tx-open"}) {
		t.Fatalf("all transactions %v", got)
	}
	if got := list(nil, []string{"Ongoing", "CompleteAbort"}); !slices.Equal(got, []string{"tx-dropped", "tx-open"}) {
		t.Fatalf("by state %v", got)
	}
	if got := list([]int64{desc["tx-done"].ProducerID}, nil); !slices.Equal(got, []string{"tx-done"}) {
		t.Fatalf("by producer id %v", got)
	}
	byPattern, err := adm.ListTransactionsByTxPattern(ctx, nil, nil, "tx-d.*")
	if err != nil {
		t.Fatal(err)
	}
	if got := byPattern.TransactionalIDs(); !slices.Equal(got, []string{"tx-done", "tx-dropped"}) {
		t.Fatalf("by pattern %v", got)
	}

	raw := func(states []string, duration int64, pattern *string) *kmsg.ListTransactionsResponse {
		t.Helper()
		req := kmsg.NewPtrListTransactionsRequest()
		req.StateFilters, req.DurationFilterMillis, req.TransactionalIDPattern = states, duration, pattern
		resp, err := req.RequestWith(ctx, s.Client(t))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := raw([]string{"Ongoing", "Bogus", "Dead"}, -1, nil)
	if !slices.Equal(resp.UnknownStateFilters, []string{"Bogus"}) || len(resp.TransactionStates) != 1 || resp.TransactionStates[0].TransactionalID != "tx-open" {
		t.Fatalf("unknown state filter: %+v", resp)
	}
	// Transactions that began within the last hour are not older than it;
	// an id with no transaction begun counts as started long ago.
	if resp := raw(nil, time.Hour.Milliseconds(), nil); len(resp.TransactionStates) != 1 || resp.TransactionStates[0].TransactionalID != "tx-idle" {
		t.Fatalf("duration filter: %+v", resp.TransactionStates)
	}
	// Invalid, and too large to compile cheaply (bounded as subscription
	// regexes are: the request would otherwise cost seconds of CPU).
	for _, bad := range []string{"(", strings.Repeat("a{1000}", 30), strings.Repeat("(a|b)", 2000)} {
		if resp := raw(nil, -1, &bad); resp.ErrorCode != kerr.InvalidRegularExpression.Code {
			t.Fatalf("bad pattern %.20q...: error %d", bad, resp.ErrorCode)
		}
	}
}

func TestOffsetDelete(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const consumed, other, group = "od-consumed", "od-other", "od-group"
	createTopic(t, s, consumed, 2)
	createTopic(t, s, other, 2)
	adm := kadm.NewClient(s.Client(t))
	var offs kadm.Offsets
	for _, topic := range []string{consumed, other} {
		for p := range int32(2) {
			offs.Add(kadm.Offset{Topic: topic, Partition: p, At: 10 + int64(p), LeaderEpoch: -1})
		}
	}
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	committed := func(s *kafkatest.Server) map[string][]int32 {
		t.Helper()
		f, err := kadm.NewClient(s.Client(t)).FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]int32{}
		f.Each(func(o kadm.OffsetResponse) { out[o.Topic] = append(out[o.Topic], o.Partition) })
		for _, ps := range out {
			slices.Sort(ps)
		}
		return out
	}

	// An empty group: any of its offsets may go.
	res, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{other: {0: {}}, "no-such-topic": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := res.Lookup(other, 0); e != nil {
		t.Fatalf("delete %s/0: %v", other, e)
	}
	if e, _ := res.Lookup("no-such-topic", 0); !errors.Is(e, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete of an unknown topic: %v", e)
	}
	if got := committed(s); !slices.Equal(got[other], []int32{1}) || !slices.Equal(got[consumed], []int32{0, 1}) {
		t.Fatalf("after delete: %v", got)
	}

	// An active consumer keeps the offsets of the topics it subscribes to.
	m := startMember(t, s, group, consumed)
	waitFor(t, "the member owns both partitions", func() bool { return m.ownedCount() == 2 })
	res, err = adm.DeleteOffsets(ctx, group, kadm.TopicsSet{consumed: {0: {}}, other: {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := res.Lookup(consumed, 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete of a subscribed topic's offset: %v", e)
	}
	if e, _ := res.Lookup(other, 1); e != nil {
		t.Fatalf("delete of an unsubscribed topic's offset: %v", e)
	}
	if got := committed(s); len(got[other]) != 0 || len(got[consumed]) != 2 {
		t.Fatalf("after delete with a member: %v", got)
	}
	m.stop()

	if _, err := adm.DeleteOffsets(ctx, "no-such-group", kadm.TopicsSet{other: {0: {}}}); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("unknown group: %v", err)
	}

	// Deleted offsets stay deleted after a restart.
	s = s.Restart(t)
	if got := committed(s); len(got[other]) != 0 || len(got[consumed]) != 2 {
		t.Fatalf("after restart: %v", got)
	}
}

func TestGroupMembersDescribed(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic, group = "members", "members-group"
	createTopic(t, s, topic, 3)
	m := startMember(t, s, group, topic)
	defer m.stop()
	waitFor(t, "the member owns every partition", func() bool { return m.ownedCount() == 3 })

	described, err := kadm.NewClient(s.Client(t)).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	g := described[group]
	if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || len(g.Members) != 1 {
		t.Fatalf("group %+v", g)
	}
	mem := g.Members[0]
	meta, ok := mem.Join.AsConsumer()
	if !ok || !slices.Equal(meta.Topics, []string{topic}) {
		t.Fatalf("member metadata %+v", mem.Join)
	}
	asg, ok := mem.Assigned.AsConsumer()
	if !ok || len(asg.Topics) != 1 || asg.Topics[0].Topic != topic || len(asg.Topics[0].Partitions) != 3 {
		t.Fatalf("member assignment %+v", mem.Assigned)
	}
	if mem.ClientID != "kgo" || mem.ClientHost != "/127.0.0.1" {
		t.Fatalf("client %q host %q", mem.ClientID, mem.ClientHost)
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups, dg.IncludeAuthorizedOperations = []string{group}, true
	dgr, err := dg.RequestWith(ctx, s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if ops := dgr.Groups[0].AuthorizedOperations; ops != 1<<kmsg.ACLOperationRead|1<<kmsg.ACLOperationDescribe|1<<kmsg.ACLOperationDelete {
		t.Fatalf("group authorized operations %b", ops)
	}

	var info *kafka.GroupInfo
	for _, gi := range s.Kafka.Groups() {
		if gi.Group == group {
			info = &gi
		}
	}
	if info == nil || len(info.Members) != 1 {
		t.Fatalf("Groups() %+v", s.Kafka.Groups())
	}
	im := info.Members[0]
	if im.MemberID != mem.MemberID || im.ClientHost != "/127.0.0.1" || im.DecodeError != "" ||
		!slices.Equal(im.Subscription, []string{topic}) || len(im.Assignment) != 1 ||
		im.Assignment[0].Topic != topic || !slices.Equal(im.Assignment[0].Partitions, []int32{0, 1, 2}) {
		t.Fatalf("Groups() member %+v", im)
	}
}

// hostPort splits addr into the host and port a broker entry carries.
func hostPort(t *testing.T, addr string) (string, int32) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, int32(n)
}

// kversionsWith returns franz-go's versions with one API capped.
func kversionsWith(key int16, max int16) *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(key, max)
	return v
}
