package kafka_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs, IncrementalAlterConfigs, CreatePartitions and DeleteRecords
// through franz-go's kadm and confluent-kafka-python's AdminClient: the
// changes take effect without a restart and survive one.

// plainClient is a franz-go client that does not ask Metadata to create
// topics (the server auto-creates topics by default).
func plainClient(t *testing.T, s *kafkatest.Server) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// describedConfig returns a topic config's value and whether it is the
// default, as DescribeConfigs tells.
func describedConfig(t *testing.T, adm *kadm.Client, topic, name string) (string, bool) {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c.MaybeValue(), c.Source == kmsg.ConfigSourceDefaultConfig
		}
	}
	t.Fatalf("topic %s: config %s not described", topic, name)
	return "", false
}

// alterResult returns the single resource's error of an alter call.
func alterResult(t *testing.T, resps kadm.AlterConfigsResponses, err error) (error, string) {
	t.Helper()
	if err != nil {
		t.Fatalf("alter configs: %v", err)
	}
	if len(resps) != 1 {
		t.Fatalf("alter configs: %d responses", len(resps))
	}
	return resps[0].Err, resps[0].ErrMessage
}

func produceOne(t *testing.T, cl *kgo.Client, topic string, key []byte, partition int32) (*kgo.Record, error) {
	t.Helper()
	r := &kgo.Record{Topic: topic, Key: key, Value: []byte("v"), Partition: partition}
	res := cl.ProduceSync(testCtx(t), r)
	return r, res.FirstErr()
}

func TestIncrementalAlterConfigsCleanupPolicy(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "alter-inc"
	createTopic(t, s, topic, 1)
	adm := kadm.NewClient(s.Client(t))
	cl := s.Client(t, kgo.RecordRetries(1), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	inc := func(op kadm.IncrementalOp, name string, value *string) (error, string) {
		t.Helper()
		resps, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: op, Name: name, Value: value}}, topic)
		return alterResult(t, resps, err)
	}
	mustInc := func(op kadm.IncrementalOp, name string, value *string, want string) {
		t.Helper()
		if err, msg := inc(op, name, value); err != nil {
			t.Fatalf("%v %s: %v %s", op, name, err, msg)
		}
		if got, _ := describedConfig(t, adm, topic, name); got != want {
			t.Fatalf("after %v %s: %s = %q, want %q", op, name, name, got, want)
		}
	}
	if v, def := describedConfig(t, adm, topic, "cleanup.policy"); v != "delete" || !def {
		t.Fatalf("new topic's cleanup.policy %q (default %v)", v, def)
	}
	if _, err := produceOne(t, cl, topic, nil, 0); err != nil {
		t.Fatalf("keyless record to a delete topic: %v", err)
	}

	// Validate-only changes nothing.
	resps, err := adm.ValidateAlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: strp("compact")}}, topic)
	if err, _ := alterResult(t, resps, err); err != nil {
		t.Fatal(err)
	}
	if v, _ := describedConfig(t, adm, topic, "cleanup.policy"); v != "delete" {
		t.Fatalf("validate-only changed cleanup.policy to %q", v)
	}

	// SET compact: keyless records are refused from the next produce on.
	mustInc(kadm.SetConfig, "cleanup.policy", strp("compact"), "compact")
	if _, err := produceOne(t, cl, topic, nil, 0); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record after switching to compact: %v, want INVALID_RECORD", err)
	}
	if _, err := produceOne(t, cl, topic, []byte("k"), 0); err != nil {
		t.Fatalf("keyed record to a compacted topic: %v", err)
	}
	mustInc(kadm.AppendConfig, "cleanup.policy", strp("delete"), "compact,delete")
	mustInc(kadm.AppendConfig, "cleanup.policy", strp("compact"), "compact,delete") // already there
	mustInc(kadm.SubtractConfig, "cleanup.policy", strp("compact"), "delete")
	if _, err := produceOne(t, cl, topic, nil, 0); err != nil {
		t.Fatalf("keyless record after subtracting compact: %v", err)
	}
	mustInc(kadm.SetConfig, "cleanup.policy", strp("compact"), "compact")
	mustInc(kadm.DeleteConfig, "cleanup.policy", nil, "delete")
	if _, def := describedConfig(t, adm, topic, "cleanup.policy"); !def {
		t.Fatal("DELETE did not return cleanup.policy to its default")
	}

	for _, c := range []struct {
		op    kadm.IncrementalOp
		name  string
		value *string
	}{
		{kadm.SetConfig, "cleanup.policy", strp("shred")},
		{kadm.AppendConfig, "cleanup.policy", strp("shred")},
		{kadm.SetConfig, "segment.bytes", strp("12")},
		{kadm.SetConfig, "retention.ms", strp("soon")},
		{kadm.SetConfig, "min.cleanable.dirty.ratio", strp("1.5")},
		{kadm.SetConfig, "sluice.fsync", strp("sometimes")},
		{kadm.AppendConfig, "retention.ms", strp("1000")}, // not a list
		{kadm.SetConfig, "no.such.config", strp("1")},
		{kadm.SetConfig, "min.insync.replicas", strp("2")}, // read-only
	} {
		err, msg := inc(c.op, c.name, c.value)
		if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(msg, c.name) {
			t.Errorf("%v %s=%v: %v %q, want INVALID_CONFIG naming the config", c.op, c.name, *c.value, err, msg)
		}
	}
	if v, def := describedConfig(t, adm, topic, "cleanup.policy"); v != "delete" || !def {
		t.Fatalf("a refused alter changed cleanup.policy to %q", v)
	}

	// Persisted: a restart keeps what was set.
	mustInc(kadm.SetConfig, "cleanup.policy", strp("compact,delete"), "compact,delete")
	mustInc(kadm.SetConfig, "delete.retention.ms", strp("5000"), "5000")
	s = s.Restart(t)
	adm = kadm.NewClient(s.Client(t))
	for name, want := range map[string]string{"cleanup.policy": "compact,delete", "delete.retention.ms": "5000"} {
		if v, def := describedConfig(t, adm, topic, name); v != want || def {
			t.Fatalf("after restart %s = %q (default %v), want %q", name, v, def, want)
		}
	}
	cl = s.Client(t, kgo.RecordRetries(1))
	if _, err := produceOne(t, cl, topic, nil, 0); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record after restart: %v, want INVALID_RECORD", err)
	}
}

func TestAlterConfigsReplacesWholeState(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "alter-state"
	createTopic(t, s, topic, 1)
	adm := kadm.NewClient(s.Client(t))
	state := func(cfgs ...kadm.AlterConfig) (error, string) {
		t.Helper()
		resps, err := adm.AlterTopicConfigsState(testCtx(t), cfgs, topic)
		return alterResult(t, resps, err)
	}
	if err, msg := state(kadm.AlterConfig{Name: "cleanup.policy", Value: strp("compact")}, kadm.AlterConfig{Name: "segment.bytes", Value: strp("2048")}); err != nil {
		t.Fatalf("%v %s", err, msg)
	}
	if v, _ := describedConfig(t, adm, topic, "segment.bytes"); v != "2048" {
		t.Fatalf("segment.bytes %q", v)
	}
	// The legacy API sets the whole state: what is not named returns to
	// its default.
	if err, msg := state(kadm.AlterConfig{Name: "retention.ms", Value: strp("60000")}); err != nil {
		t.Fatalf("%v %s", err, msg)
	}
	for name, want := range map[string]string{"cleanup.policy": "delete", "retention.ms": "60000"} {
		v, def := describedConfig(t, adm, topic, name)
		if v != want || def != (name != "retention.ms") {
			t.Fatalf("%s = %q (default %v), want %q", name, v, def, want)
		}
	}
	if _, def := describedConfig(t, adm, topic, "segment.bytes"); !def {
		t.Fatal("segment.bytes not back to its default")
	}
	for _, bad := range []kadm.AlterConfig{
		{Name: "no.such.config", Value: strp("1")},
		{Name: "retention.ms", Value: strp("-5")},
		{Name: "message.timestamp.type", Value: strp("Tomorrow")},
	} {
		err, msg := state(bad)
		if !errors.Is(err, kerr.InvalidConfig) || msg == "" {
			t.Errorf("%s=%s: %v %q, want INVALID_CONFIG with a message", bad.Name, *bad.Value, err, msg)
		}
	}
	// A refused request changed nothing; the last good state survives a
	// restart.
	s = s.Restart(t)
	adm = kadm.NewClient(s.Client(t))
	if v, def := describedConfig(t, adm, topic, "retention.ms"); v != "60000" || def {
		t.Fatalf("retention.ms after restart %q (default %v)", v, def)
	}
	// Broker configs are static.
	resps, err := adm.AlterBrokerConfigsState(testCtx(t), []kadm.AlterConfig{{Name: "log.retention.ms", Value: strp("1")}}, 0)
	if err, _ := alterResult(t, resps, err); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("altering a broker config: %v, want INVALID_REQUEST", err)
	}
}

// TestAlteredConfigsTakeEffect: fsync policy and retention changed on a
// live topic apply to the next write and the next retention run.
func TestAlteredConfigsTakeEffect(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "alter-live"
	adm := kadm.NewClient(s.Client(t))
	resp, err := adm.CreateTopic(testCtx(t), 1, 1, map[string]*string{"sluice.fsync": strp("never")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	tp, err := s.Log.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	cl := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	syncsOver := func(n int) int64 {
		before := p.Stats().Syncs
		for range n {
			if _, err := produceOne(t, cl, topic, []byte("k"), 0); err != nil {
				t.Fatal(err)
			}
		}
		return p.Stats().Syncs - before
	}
	if d := syncsOver(3); d != 0 {
		t.Fatalf("fsync never: %d syncs for 3 produces", d)
	}
	set := func(name, value string) {
		t.Helper()
		resps, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &value}}, topic)
		if err, msg := alterResult(t, resps, err); err != nil {
			t.Fatalf("set %s=%s: %v %s", name, value, err, msg)
		}
	}
	set("sluice.fsync", "always")
	if d := syncsOver(3); d < 3 {
		t.Fatalf("fsync always: %d syncs for 3 acknowledged produces", d)
	}

	// Retention: nothing is old enough under the default (forever); after
	// retention.ms=1000 and segment.ms=1 (so the active segment rolls), a
	// retention run an hour from now deletes everything.
	now := time.Now().Add(time.Hour)
	if err := s.Log.EnforceRetention(now); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.LogStartOffset != 0 || st.HighWatermark != 6 {
		t.Fatalf("before retention.ms: %+v", st)
	}
	set("retention.ms", "1000")
	set("segment.ms", "1")
	if err := s.Log.EnforceRetention(now); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 6 {
		t.Fatalf("log start offset %d after retention.ms=1000 and a run an hour later, want 6", o.Offset)
	}
	s = s.Restart(t)
	adm = kadm.NewClient(s.Client(t))
	for name, want := range map[string]string{"sluice.fsync": "always", "retention.ms": "1000", "segment.ms": "1"} {
		if v, _ := describedConfig(t, adm, topic, name); v != want {
			t.Fatalf("after restart %s = %q, want %q", name, v, want)
		}
	}
}

func TestCreatePartitionsKadm(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "grow"
	createTopic(t, s, topic, 1)
	adm := kadm.NewClient(s.Client(t))
	update := func(n int) (error, string) {
		t.Helper()
		resps, err := adm.UpdatePartitions(testCtx(t), n, topic)
		if err != nil {
			t.Fatal(err)
		}
		r := resps[topic]
		return r.Err, r.ErrMessage
	}
	partitions := func(adm *kadm.Client) int {
		t.Helper()
		md, err := adm.Metadata(testCtx(t), topic)
		if err != nil {
			t.Fatal(err)
		}
		return len(md.Topics[topic].Partitions)
	}
	resps, err := adm.ValidateCreatePartitions(testCtx(t), 2, topic)
	if err != nil || resps[topic].Err != nil {
		t.Fatalf("validate: %v %v", err, resps[topic].Err)
	}
	if n := partitions(adm); n != 1 {
		t.Fatalf("validate-only grew the topic to %d partitions", n)
	}
	if err, msg := update(3); err != nil {
		t.Fatalf("grow to 3: %v %s", err, msg)
	}
	if n := partitions(adm); n != 3 {
		t.Fatalf("metadata: %d partitions after growing to 3", n)
	}
	for _, n := range []int{3, 2} {
		if err, msg := update(n); !errors.Is(err, kerr.InvalidPartitions) || msg == "" {
			t.Fatalf("set to %d of 3: %v %q, want INVALID_PARTITIONS", n, err, msg)
		}
	}
	// (A client that does not auto-create the topic through Metadata.)
	resps, err = kadm.NewClient(plainClient(t, s)).UpdatePartitions(testCtx(t), 2, "no-such-topic")
	if err != nil || !errors.Is(resps["no-such-topic"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("grow an unknown topic: %v %v", err, resps["no-such-topic"].Err)
	}
	// The new partitions take records.
	cl := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 3; p++ {
		r, err := produceOne(t, cl, topic, []byte(fmt.Sprint(p)), p)
		if err != nil || r.Partition != p || r.Offset != 0 {
			t.Fatalf("produce to partition %d: %v (%d/%d)", p, err, r.Partition, r.Offset)
		}
	}
	// A restart keeps the count and the records.
	s = s.Restart(t)
	adm = kadm.NewClient(s.Client(t))
	if n := partitions(adm); n != 3 {
		t.Fatalf("after restart: %d partitions", n)
	}
	ends, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if o, _ := ends.Lookup(topic, p); o.Offset != 1 {
			t.Fatalf("after restart partition %d ends at %d, want 1", p, o.Offset)
		}
	}
	if err, msg := update(4); err != nil {
		t.Fatalf("grow to 4 after restart: %v %s", err, msg)
	}
}

// fetchErr fetches topic/0 at offset with a raw Fetch request and returns
// the partition's error.
func fetchErr(t *testing.T, cl *kgo.Client, topic string, offset int64) error {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis, req.MaxBytes = 10, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, offset, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func TestDeleteRecordsKadm(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "trim"
	createTopic(t, s, topic, 1)
	cl := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 10 {
		if _, err := produceOne(t, cl, topic, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	del := func(adm *kadm.Client, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: at})
		resps, err := adm.DeleteRecords(testCtx(t), os)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := resps.Lookup(topic, 0)
		if !ok {
			t.Fatalf("no response for %s/0", topic)
		}
		return r
	}
	start := func(adm *kadm.Client) int64 {
		t.Helper()
		starts, err := adm.ListStartOffsets(testCtx(t), topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := starts.Lookup(topic, 0)
		return o.Offset
	}
	if r := del(adm, 4); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete below 4: %+v", r)
	}
	if r := del(adm, 2); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete below 2 after 4: %+v (the start never moves back)", r)
	}
	if r := del(adm, 11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete below 11 of 10: %+v, want OFFSET_OUT_OF_RANGE", r)
	}
	if got := start(adm); got != 4 {
		t.Fatalf("log start offset %d, want 4", got)
	}
	if err := fetchErr(t, cl, topic, 2); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch below the start: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	if err := fetchErr(t, cl, topic, 4); err != nil {
		t.Fatalf("fetch at the start: %v", err)
	}
	got := consumeN(t, s, topic, 6)
	if got[0].Offset != 4 {
		t.Fatalf("a consumer from the start begins at %d, want 4", got[0].Offset)
	}

	s = s.Restart(t)
	cl = s.Client(t)
	adm = kadm.NewClient(cl)
	if got := start(adm); got != 4 {
		t.Fatalf("log start offset after restart %d, want 4", got)
	}
	if err := fetchErr(t, cl, topic, 3); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch below the start after restart: %v", err)
	}
	if r := del(adm, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete below the high watermark (-1): %+v", r)
	}
	if got := start(adm); got != 10 {
		t.Fatalf("log start offset %d after -1, want 10", got)
	}
	// The server's own answer for an unknown topic (kadm stops at the
	// Metadata answer before sending).
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "no-such-topic"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), plainClient(t, s).Broker(0))
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.LowWatermark != -1 {
		t.Fatalf("delete records of an unknown topic: %+v", p)
	}
}

const confluentAdminScript = `
import sys, json
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
from confluent_kafka import KafkaException
addr, topic = sys.argv[1], sys.argv[2]
a = AdminClient({"bootstrap.servers": addr})
out = {}
def err_of(f):
    try:
        f.result(30)
        return "OK"
    except KafkaException as e:
        return e.args[0].name()
a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"cleanup.policy": "compact", "segment.bytes": "4096"})
out["alter"] = err_of(a.alter_configs([res])[res])
d = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
cfg = list(d.values())[0].result(30)
out["described"] = {k: [v.value, v.is_default] for k, v in cfg.items() if k in ("cleanup.policy", "segment.bytes", "retention.ms")}
bad = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"segment.bytes": "tiny"})
out["alter_bad"] = err_of(a.alter_configs([bad])[bad])
unknown = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"no.such.config": "1"})
out["alter_unknown"] = err_of(a.alter_configs([unknown])[unknown])
out["grow"] = err_of(a.create_partitions([NewPartitions(topic, 3)])[topic])
out["shrink"] = err_of(a.create_partitions([NewPartitions(topic, 2)])[topic])
out["partitions"] = len(a.list_topics(topic, timeout=30).topics[topic].partitions)
print(json.dumps(out, sort_keys=True))
`

// TestConfluentAdminClientAlter: confluent-kafka-python 1.7's AdminClient
// has alter_configs (the legacy, whole-state API), describe_configs and
// create_partitions (it has no incremental alter and no delete_records).
func TestConfluentAdminClientAlter(t *testing.T) {
	needConfluentPython(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	out := strings.TrimSpace(run(t, "", pythonPath, "-c", confluentAdminScript, s.Addr, "py-admin"))
	want := `{"alter": "OK", "alter_bad": "INVALID_CONFIG", "alter_unknown": "INVALID_CONFIG", ` +
		`"described": {"cleanup.policy": ["compact", false], "retention.ms": ["-1", true], "segment.bytes": ["4096", false]}, ` +
		`"grow": "OK", "partitions": 3, "shrink": "INVALID_PARTITIONS"}`
	if out != want {
		t.Fatalf("confluent AdminClient:\n got %s\nwant %s", out, want)
	}
	tp, err := s.Log.Topic("py-admin")
	if err != nil {
		t.Fatal(err)
	}
	if c := tp.Config(); !c.Cleanup.Compact() || c.SegmentBytes != 4096 || c.Partitions != 3 {
		t.Fatalf("the log's config after the AdminClient's changes: %+v", c)
	}
}

// TestDeleteRecordsCompactedTopicRefused: DeleteRecords on a topic whose
// cleanup.policy is compact alone answers POLICY_VIOLATION and keeps every
// record, as Kafka ("can not be deleted due to the configured policy"): a
// compacted topic (a changelog, a table) keeps each key's latest record,
// which a trim would lose. compact,delete topics may be trimmed.
func TestDeleteRecordsCompactedTopicRefused(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	cl := s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	for topic, policy := range map[string]string{"table": "compact", "both": "compact,delete"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": strp(policy)}, topic); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if _, err := produceOne(t, cl, topic, fmt.Appendf(nil, "k%d", i), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "table", Partition: 0, At: 2})
	os.Add(kadm.Offset{Topic: "both", Partition: 0, At: 2})
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps.Lookup("table", 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("delete records of a compacted topic: %+v, want POLICY_VIOLATION", r)
	}
	if r, _ := resps.Lookup("both", 0); r.Err != nil || r.LowWatermark != 2 {
		t.Fatalf("delete records of a compact,delete topic: %+v, want low watermark 2", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "table")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("table", 0); o.Offset != 0 {
		t.Fatalf("compacted topic's log start %d after a refused DeleteRecords, want 0", o.Offset)
	}
}
