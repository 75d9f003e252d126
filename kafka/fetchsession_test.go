package kafka_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessPart is a partition named in a session fetch.
type sessPart struct {
	topic     string
	partition int32
	offset    int64
}

// sessionFetch builds a Fetch v12 that answers at once.
func sessionFetch(id, epoch int32, parts []sessPart, forget map[string][]int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
	req.SessionID, req.SessionEpoch = id, epoch
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, 1<<20
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	for topic, ps := range forget {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = topic, ps
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return req
}

// answered summarises a fetch response as sorted "topic/partition:code:hwm:batches".
func answered(resp *kmsg.FetchResponse) string {
	var out []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s/%d:%d:%d:%d", t.Topic, p.Partition, p.ErrorCode, p.HighWatermark, countBatches(p.RecordBatches)))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestFetchSessionsRaw drives one fetch session by hand through creation,
// incremental fetches that carry only what changed, forgotten and unknown
// partitions, the session error codes and closing.
func TestFetchSessionsRaw(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "fs", 3)
	prod := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	produce := func(p int32) {
		t.Helper()
		if err := prod.ProduceSync(testCtx(t), &kgo.Record{Topic: "fs", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0)
	produce(0)
	produce(1)
	rc := dialRaw(t, s.Addr)
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		t.Helper()
		return rc.request(req).(*kmsg.FetchResponse)
	}
	expect := func(step string, resp *kmsg.FetchResponse, code int16, want string) {
		t.Helper()
		if resp.ErrorCode != code || answered(resp) != want {
			t.Fatalf("%s: error %d, answered %q; want error %d, %q", step, resp.ErrorCode, answered(resp), code, want)
		}
	}

	resp := fetch(sessionFetch(0, 0, []sessPart{{"fs", 0, 0}, {"fs", 1, 0}, {"fs", 2, 0}}, nil))
	expect("full fetch opening a session", resp, 0, "fs/0:0:2:2 fs/1:0:1:1 fs/2:0:0:0")
	id := resp.SessionID
	if id == 0 {
		t.Fatal("no session was created")
	}

	resp = fetch(sessionFetch(id, 1, []sessPart{{"fs", 0, 2}, {"fs", 1, 1}}, nil))
	expect("incremental, nothing new", resp, 0, "")
	if resp.SessionID != id {
		t.Fatalf("incremental answer has session id %d, want %d", resp.SessionID, id)
	}

	produce(2)
	resp = fetch(sessionFetch(id, 2, nil, nil))
	expect("incremental, new data in a partition not named", resp, 0, "fs/2:0:1:1")

	resp = fetch(sessionFetch(id, 2, nil, nil))
	expect("epoch reused", resp, kerr.InvalidFetchSessionEpoch.Code, "")
	if resp.SessionID != 0 {
		t.Fatalf("error answer has session id %d", resp.SessionID)
	}
	resp = fetch(sessionFetch(id, 9, nil, nil))
	expect("epoch skipped", resp, kerr.InvalidFetchSessionEpoch.Code, "")
	resp = fetch(sessionFetch(id^0x5a5a, 1, nil, nil))
	expect("unknown session id", resp, kerr.FetchSessionIDNotFound.Code, "")

	// Forget partition 2 (already read up to 1), add an unknown topic.
	resp = fetch(sessionFetch(id, 3, []sessPart{{"missing", 0, 0}}, map[string][]int32{"fs": {2}}))
	expect("forget and add unknown", resp, 0, fmt.Sprintf("missing/0:%d:-1:0", kerr.UnknownTopicOrPartition.Code))
	produce(2)
	produce(0)
	resp = fetch(sessionFetch(id, 4, nil, nil))
	expect("forgotten partition not answered, errors always are", resp, 0,
		fmt.Sprintf("fs/0:0:3:1 missing/0:%d:-1:0", kerr.UnknownTopicOrPartition.Code))

	// The client moves its offset for partition 0 past the new record:
	// partition 0 has no news any more.
	resp = fetch(sessionFetch(id, 5, []sessPart{{"fs", 0, 3}}, map[string][]int32{"missing": {0}}))
	expect("caught up", resp, 0, "")

	// Epoch -1 closes the session (and is a sessionless full fetch).
	resp = fetch(sessionFetch(id, -1, []sessPart{{"fs", 1, 0}}, nil))
	expect("closing", resp, 0, "fs/1:0:1:1")
	if resp.SessionID != 0 {
		t.Fatalf("closing answer has session id %d", resp.SessionID)
	}
	resp = fetch(sessionFetch(id, 6, nil, nil))
	expect("closed session", resp, kerr.FetchSessionIDNotFound.Code, "")

	// Epoch 0 with a session id replaces that session.
	resp = fetch(sessionFetch(0, 0, []sessPart{{"fs", 1, 1}}, nil))
	first := resp.SessionID
	resp = fetch(sessionFetch(first, 0, []sessPart{{"fs", 1, 1}}, nil))
	if resp.SessionID == 0 || resp.SessionID == first {
		t.Fatalf("replacing session %d gave session %d", first, resp.SessionID)
	}
	resp = fetch(sessionFetch(first, 1, nil, nil))
	expect("replaced session", resp, kerr.FetchSessionIDNotFound.Code, "")

	st := s.Kafka.FetchSessionStats()
	want := kafka.FetchSessionStats{Open: 1, Created: 3, Incremental: 5, Closed: 2, Rejected: 5}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

// TestFetchSessionsOldVersions: before v7 there are no sessions.
func TestFetchSessionsOldVersions(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "old", 1)
	rc := dialRaw(t, s.Addr)
	req := sessionFetch(0, 0, []sessPart{{"old", 0, 0}}, nil)
	req.SetVersion(6)
	resp := rc.request(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 {
		t.Fatalf("v6 fetch: %+v", resp)
	}
	if st := s.Kafka.FetchSessionStats(); st.Created != 0 {
		t.Fatalf("a v6 fetch created a session: %+v", st)
	}
}

// TestFetchSessionsFranzGo: a franz-go consumer (sessions on by default)
// reads many partitions, most of them idle most of the time, exactly once
// and in order, over one session of incremental fetches.
func TestFetchSessionsFranzGo(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const parts = 16
	createTopic(t, s, "many", parts)
	prod := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	cons := s.Client(t, kgo.ConsumeTopics("many"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := map[int32]int64{}
	for round := range 8 {
		// Round r writes to the partitions p with p % (r+2) == 0 only.
		want := 0
		var rs []*kgo.Record
		for p := range int32(parts) {
			if int(p)%(round+2) != 0 {
				continue
			}
			for i := range 3 {
				rs = append(rs, &kgo.Record{Topic: "many", Partition: p, Value: fmt.Appendf(nil, "%d-%d", round, i)})
				want++
			}
		}
		if err := prod.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		for got := 0; got < want; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("round %d: consumed %d of %d", round, got, want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch error %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next[r.Partition] {
					t.Fatalf("round %d: partition %d offset %d, expected %d", round, r.Partition, r.Offset, next[r.Partition])
				}
				if int(r.Partition)%(round+2) != 0 || !strings.HasPrefix(string(r.Value), fmt.Sprintf("%d-", round)) {
					t.Fatalf("round %d: unexpected record %q in partition %d", round, r.Value, r.Partition)
				}
				next[r.Partition]++
				got++
			})
		}
	}
	st := s.Kafka.FetchSessionStats()
	if st.Created < 1 || st.Incremental < 8 || st.Rejected != 0 || st.Open < 1 {
		t.Fatalf("session stats %+v: want a session, at least one incremental fetch per round, no rejections", st)
	}
}

// TestKcatManyPartitions: librdkafka consumes a multi-partition topic with
// idle partitions exactly. librdkafka 2.0 (Debian 12) fetches without
// sessions (epoch -1); a version that opens them is served the same way.
func TestKcatManyPartitions(t *testing.T) {
	kcat := needKcat(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "kmany", 8)
	prod := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	var rs []*kgo.Record
	for p := int32(0); p < 8; p += 3 { // partitions 0, 3, 6; the rest idle
		for i := range 50 {
			rs = append(rs, &kgo.Record{Topic: "kmany", Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	if err := prod.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", kcat, "-b", s.Addr, "-C", "-t", "kmany", "-o", "beginning", "-e", "-f", "%p %o %s\n")
	next := map[string]int{}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var p string
		var off int
		var v string
		if _, err := fmt.Sscan(line, &p, &off, &v); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		if off != next[p] || v != fmt.Sprintf("%s-%d", p, off) {
			t.Fatalf("kcat line %q after offset %d", line, next[p]-1)
		}
		next[p]++
		n++
	}
	if n != len(rs) {
		t.Fatalf("kcat consumed %d records, want %d", n, len(rs))
	}
	t.Logf("fetch sessions after kcat: %+v", s.Kafka.FetchSessionStats())
}
