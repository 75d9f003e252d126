package kafka_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Compacted topics seen by real clients: topics created with
// cleanup.policy=compact through each client's admin API, keyed records
// and tombstones produced by each client, the log cleaner run in-process
// (with clocks far in the future, so that segments roll and tombstones
// expire without waiting), and every consumer (franz-go read_committed and
// read_uncommitted, kcat, confluent-kafka-python) reading the exact
// compacted contents: past the gaps that removed records leave inside
// batches and the empty batches that stand for batches removed whole.

// kv is one record as a consumer returned it; a nil val is a tombstone.
type kv struct {
	off int64
	key string
	val *string
}

func (r kv) String() string {
	if r.val == nil {
		return fmt.Sprintf("%d:%s=NULL", r.off, r.key)
	}
	return fmt.Sprintf("%d:%s=%s", r.off, r.key, *r.val)
}

func strp(s string) *string { return &s }

// compactRound is one producer call: keys and values (nil: tombstone).
type compactRound []kv

// The rounds every compaction test produces. Rounds 1-3 are produced,
// rolled and cleaned once (tombstones stay: the delete horizon starts at
// that pass); round 4 is produced, rolled, and a second pass an hour later
// removes the tombstones too.
func compactRounds() []compactRound {
	var r1, r2 compactRound
	for i := range 10 {
		r1 = append(r1, kv{key: fmt.Sprintf("k%d", i), val: strp(fmt.Sprintf("a%d", i))})
		r2 = append(r2, kv{key: fmt.Sprintf("k%d", i), val: strp(fmt.Sprintf("b%d", i))})
	}
	r3 := compactRound{{key: "k3"}, {key: "k7"}, {key: "k1", val: strp("c1")}}
	r4 := compactRound{{key: "k9", val: strp("d9")}}
	return []compactRound{r1, r2, r3, r4}
}

// compactModel is what a consumer reads after the cleaner cleaned every
// offset below cleanedEnd: the latest record of each key there (tombstones
// too unless dropTombstones), and everything from cleanedEnd on.
func compactModel(all []kv, cleanedEnd int64, dropTombstones bool) []kv {
	latest := map[string]int64{}
	for _, r := range all {
		if r.off < cleanedEnd {
			latest[r.key] = r.off
		}
	}
	var out []kv
	for _, r := range all {
		if r.off >= cleanedEnd {
			out = append(out, r)
			continue
		}
		if latest[r.key] != r.off || (dropTombstones && r.val == nil) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// numbered gives the rounds' records their offsets (one partition, offsets
// assigned in order from 0).
func numbered(rounds []compactRound) []kv {
	var out []kv
	for _, rd := range rounds {
		for _, r := range rd {
			r.off = int64(len(out))
			out = append(out, r)
		}
	}
	return out
}

// compactTopicConfigs are the configs of the compacted topics under test.
var compactTopicConfigs = map[string]string{
	"cleanup.policy":      "compact",
	"segment.bytes":       "1024",
	"delete.retention.ms": "1000",
}

func startCompactServer(t *testing.T) *kafkatest.Server {
	return kafkatest.Start(t, kafkatest.Options{Cleaner: logstore.CleanerOptions{Interval: -1}})
}

func createCompactedKadm(t *testing.T, s *kafkatest.Server, topic string) {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range compactTopicConfigs {
		cfg[k] = strp(v)
	}
	resp, err := kadm.NewClient(s.Client(t)).CreateTopic(testCtx(t), 1, 1, cfg, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create compacted topic %s: %v %v", topic, err, resp.Err)
	}
}

func partitionOf(t *testing.T, s *kafkatest.Server, topic string) *logstore.Partition {
	t.Helper()
	tp, err := s.Log.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.Cleanup(); got != logstore.CleanupCompact {
		t.Fatalf("topic %s: cleanup policy %v, want compact", topic, got)
	}
	p, err := tp.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rollAndCompact closes the active segment (EnforceRetention past
// segment.ms) and runs a forced cleaner pass, both at now.
func rollAndCompact(t *testing.T, s *kafkatest.Server, p *logstore.Partition, now time.Time) {
	t.Helper()
	if err := s.Log.EnforceRetention(now); err != nil {
		t.Fatalf("roll: %v", err)
	}
	before := p.CleanerStats().Passes
	if _, err := p.Compact(now, true); err != nil {
		t.Fatalf("compact: %v", err)
	}
	st := p.CleanerStats()
	if st.Passes != before+1 || st.LastError != "" {
		t.Fatalf("cleaner stats after a forced pass: %+v (passes before %d)", st, before)
	}
	_, hw, _ := p.Offsets()
	if st.FirstDirty != hw {
		t.Fatalf("first dirty offset %d after cleaning a rolled log, want the high watermark %d", st.FirstDirty, hw)
	}
}

// batchShapes counts the partition's empty batches (no records: a run of
// batches the cleaner removed whole) and batches with gaps (fewer records
// than offsets), checking that batches cover the offsets without holes.
func batchShapes(t *testing.T, p *logstore.Partition) (empty, gaps int) {
	t.Helper()
	start, hw, _ := p.Offsets()
	for next := start; next < hw; {
		res, err := p.Read(next, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", next, err)
		}
		err = record.Batches(res.Batches, func(h record.Header, _ []byte) error {
			if h.LastOffset() < next {
				return nil
			}
			if h.BaseOffset != next {
				return fmt.Errorf("batch at %d after offset %d: a hole", h.BaseOffset, next-1)
			}
			switch {
			case h.NumRecords == 0:
				empty++
			case int64(h.NumRecords) < int64(h.LastOffsetDelta)+1:
				gaps++
			}
			next = h.LastOffset() + 1
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return empty, gaps
}

// compactConsumer reads the whole partition 0 of topic from the beginning.
type compactConsumer struct {
	name string
	read func(t *testing.T, s *kafkatest.Server, topic string) []kv
}

func allConsumers() []compactConsumer {
	return []compactConsumer{
		{"franz-go read_committed", func(t *testing.T, s *kafkatest.Server, topic string) []kv {
			return franzReadAll(t, s, topic, kgo.ReadCommitted())
		}},
		{"franz-go read_uncommitted", func(t *testing.T, s *kafkatest.Server, topic string) []kv {
			return franzReadAll(t, s, topic, kgo.ReadUncommitted())
		}},
		{"kcat", func(t *testing.T, s *kafkatest.Server, topic string) []kv {
			return kcatReadAll(t, s, topic)
		}},
		{"confluent-kafka-python", func(t *testing.T, s *kafkatest.Server, topic string) []kv {
			return confluentReadAll(t, s, topic, "read_committed")
		}},
	}
}

// checkConsumers has every consumer read topic and compares with want.
func checkConsumers(t *testing.T, s *kafkatest.Server, topic string, want []kv) {
	t.Helper()
	for _, c := range allConsumers() {
		t.Run(c.name, func(t *testing.T) {
			got := c.read(t, s, topic)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// franzReadAll consumes topic/0 from the start up to the high watermark
// found first: every fetch error fails the test, and a consumer that stops
// short of the end runs into the test context's deadline.
func franzReadAll(t *testing.T, s *kafkatest.Server, topic string, iso kgo.IsolationLevel) []kv {
	t.Helper()
	ctx := testCtx(t)
	ends, err := kadm.NewClient(s.Client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	if iso == kgo.ReadCommitted() {
		lso, err := kadm.NewClient(s.Client(t, kgo.FetchIsolationLevel(kgo.ReadCommitted()))).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		end, _ = lso.Lookup(topic, 0)
	}
	cl := s.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
	var out []kv
	last := int64(-1)
	for last < end.Offset-1 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumer stalled at offset %d of %d: %v (read %v)", last+1, end.Offset, err, out)
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Errorf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			if r.Attrs.IsControl() {
				return
			}
			k := kv{off: r.Offset, key: string(r.Key)}
			if r.Value != nil {
				k.val = strp(string(r.Value))
			}
			out = append(out, k)
		})
	}
	return out
}

// kcatReadAll consumes topic from the beginning to its end with kcat -e
// (-Z: NULL values as NULL; %S is -1 for them).
func kcatReadAll(t *testing.T, s *kafkatest.Server, topic string, extra ...string) []kv {
	t.Helper()
	kcat := needKcat(t)
	args := append([]string{"-b", s.Addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-Z", "-q", "-f", "%o %k %S %s\n"}, extra...)
	out := run(t, "", kcat, args...)
	var recs []kv
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			t.Fatalf("kcat line %q", line)
		}
		off, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		r := kv{off: off, key: f[1]}
		if f[2] != "-1" {
			r.val = strp(f[3])
		}
		recs = append(recs, r)
	}
	return recs
}

const confluentReadScript = `
import sys, json
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING, KafkaError
addr, topic, iso = sys.argv[1], sys.argv[2], sys.argv[3]
c = Consumer({"bootstrap.servers": addr, "group.id": "py-compact-reader", "enable.auto.commit": False,
              "enable.partition.eof": True, "isolation.level": iso})
c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
out = []
while True:
    m = c.poll(30)
    if m is None:
        sys.exit("no message and no end of partition within 30 s: the consumer stalled at %s" % (out[-1:],))
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        sys.exit("consume error: %s" % m.error())
    v = m.value()
    out.append([m.offset(), m.key().decode(), None if v is None else v.decode()])
c.close()
print(json.dumps(out))
`

func confluentReadAll(t *testing.T, s *kafkatest.Server, topic, iso string) []kv {
	t.Helper()
	needConfluentPython(t)
	out := run(t, "", pythonPath, "-c", confluentReadScript, s.Addr, topic, iso)
	var rows [][3]*json.RawMessage
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	var recs []kv
	for _, row := range rows {
		var r kv
		var val *string
		if err := errors.Join(json.Unmarshal(*row[0], &r.off), json.Unmarshal(*row[1], &r.key)); err != nil {
			t.Fatal(err)
		}
		if row[2] != nil {
			if err := json.Unmarshal(*row[2], &val); err != nil {
				t.Fatal(err)
			}
		}
		r.val = val
		recs = append(recs, r)
	}
	return recs
}

// producer writes one round as its own request(s).
type producer func(t *testing.T, s *kafkatest.Server, topic string, rd compactRound)

func kcatProduce(t *testing.T, s *kafkatest.Server, topic string, rd compactRound) {
	t.Helper()
	var in strings.Builder
	for _, r := range rd {
		v := ""
		if r.val != nil {
			v = *r.val
		}
		fmt.Fprintf(&in, "%s:%s\n", r.key, v)
	}
	run(t, in.String(), needKcat(t), "-b", s.Addr, "-P", "-t", topic, "-p", "0", "-K:", "-Z", "-X", "enable.idempotence=true")
}

const confluentProduceScript = `
import sys, json
from confluent_kafka import Producer, KafkaException
addr, topic, recs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
errs = []
def report(err, msg):
    if err is not None:
        errs.append(str(err))
p = Producer({"bootstrap.servers": addr, "enable.idempotence": True, "linger.ms": 50})
for k, v in recs:
    p.produce(topic, key=k, value=v, partition=0, on_delivery=report)
if p.flush(30) != 0:
    sys.exit("flush timed out")
if errs:
    print("ERRORS " + json.dumps(errs))
else:
    print("OK")
`

func confluentProduce(t *testing.T, s *kafkatest.Server, topic string, rd compactRound) {
	t.Helper()
	needConfluentPython(t)
	var recs [][2]*string
	for _, r := range rd {
		recs = append(recs, [2]*string{strp(r.key), r.val})
	}
	b, _ := json.Marshal(recs)
	if out := strings.TrimSpace(run(t, "", pythonPath, "-c", confluentProduceScript, s.Addr, topic, string(b))); out != "OK" {
		t.Fatalf("confluent producer: %s", out)
	}
}

func franzProduce(t *testing.T, s *kafkatest.Server, topic string, rd compactRound) {
	t.Helper()
	cl := s.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for _, r := range rd {
		kr := &kgo.Record{Key: []byte(r.key)}
		if r.val != nil {
			kr.Value = []byte(*r.val)
		}
		recs = append(recs, kr)
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce: %v", err)
	}
}

const confluentCreateScript = `
import sys, json
from confluent_kafka.admin import AdminClient, NewTopic
addr, topic, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
a = AdminClient({"bootstrap.servers": addr})
a.create_topics([NewTopic(topic, 1, 1, config=cfg)])[topic].result(30)
print("OK")
`

func createCompactedConfluent(t *testing.T, s *kafkatest.Server, topic string) {
	t.Helper()
	needConfluentPython(t)
	b, _ := json.Marshal(compactTopicConfigs)
	run(t, "", pythonPath, "-c", confluentCreateScript, s.Addr, topic, string(b))
}

// runCompactionScenario creates topic, produces the rounds with prod and
// checks every consumer before compaction, after the first pass
// (tombstones kept) and after the second (tombstones gone).
func runCompactionScenario(t *testing.T, s *kafkatest.Server, topic string, prod producer) {
	rounds := compactRounds()
	all := numbered(rounds)
	for _, rd := range rounds[:3] {
		prod(t, s, topic, rd)
	}
	first := numbered(rounds[:3])
	p := partitionOf(t, s, topic)
	if _, hw, _ := p.Offsets(); hw != int64(len(first)) {
		t.Fatalf("high watermark %d after producing %d records", hw, len(first))
	}
	t.Run("before compaction", func(t *testing.T) { checkConsumers(t, s, topic, first) })

	t0 := time.Now().Add(30 * 24 * time.Hour)
	rollAndCompact(t, s, p, t0)
	want := compactModel(first, int64(len(first)), false)
	if len(want) == len(first) {
		t.Fatal("the scenario removes nothing")
	}
	if empty, gaps := batchShapes(t, p); empty == 0 || gaps == 0 {
		t.Fatalf("after compaction the log has %d empty batches and %d batches with gaps: the consumers would not be tested on them", empty, gaps)
	}
	t.Run("tombstones kept", func(t *testing.T) { checkConsumers(t, s, topic, want) })

	prod(t, s, topic, rounds[3])
	rollAndCompact(t, s, p, t0.Add(time.Hour))
	want = compactModel(all, int64(len(all)), true)
	t.Run("tombstones removed", func(t *testing.T) { checkConsumers(t, s, topic, want) })
	if st := p.Stats().Cleaner; st.Passes != 2 || st.RecordsRemoved != int64(len(all)-len(want)) {
		t.Errorf("cleaner stats %+v: want 2 passes that removed %d records", st, len(all)-len(want))
	}
}

func TestCompactedTopicKcatProducer(t *testing.T) {
	needKcat(t)
	s := startCompactServer(t)
	// kcat has no admin API: the topic is created with franz-go's.
	createCompactedKadm(t, s, "compact-kcat")
	runCompactionScenario(t, s, "compact-kcat", kcatProduce)
}

func TestCompactedTopicConfluentProducer(t *testing.T) {
	needConfluentPython(t)
	s := startCompactServer(t)
	createCompactedConfluent(t, s, "compact-py")
	runCompactionScenario(t, s, "compact-py", confluentProduce)
}

func TestCompactedTopicFranzProducer(t *testing.T) {
	s := startCompactServer(t)
	createCompactedKadm(t, s, "compact-franz")
	runCompactionScenario(t, s, "compact-franz", franzProduce)
}

// TestCompactedTopicAbortedTransaction: records of an aborted transaction
// are removed by the cleaner, so read_uncommitted consumers stop seeing
// them, and they never shadow the committed records of their keys.
func TestCompactedTopicAbortedTransaction(t *testing.T) {
	s := startCompactServer(t)
	const topic = "compact-txn"
	createCompactedKadm(t, s, topic)
	ctx := testCtx(t)
	cl := s.Client(t, kgo.TransactionalID("compact-tx"), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := func(commit bool, prefix string, keys ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(prefix + k)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "c-", "k0", "k1", "k2")
	txn(false, "a-", "k0", "k1", "k5")
	txn(true, "c2-", "k2")
	// Offsets: 0-2 committed, 3 marker, 4-6 aborted, 7 marker, 8 committed, 9 marker.
	committed := []kv{{0, "k0", strp("c-k0")}, {1, "k1", strp("c-k1")}, {2, "k2", strp("c-k2")}, {8, "k2", strp("c2-k2")}}
	aborted := []kv{{4, "k0", strp("a-k0")}, {5, "k1", strp("a-k1")}, {6, "k5", strp("a-k5")}}
	uncommitted := slices.Concat(committed[:3], aborted, committed[3:])
	read := func(iso kgo.IsolationLevel) string { return fmt.Sprint(franzReadAll(t, s, topic, iso)) }
	if got := read(kgo.ReadCommitted()); got != fmt.Sprint(committed) {
		t.Fatalf("read_committed before compaction: %s", got)
	}
	if got := read(kgo.ReadUncommitted()); got != fmt.Sprint(uncommitted) {
		t.Fatalf("read_uncommitted before compaction: %s", got)
	}
	p := partitionOf(t, s, topic)
	rollAndCompact(t, s, p, time.Now().Add(30*24*time.Hour))
	want := fmt.Sprint([]kv{committed[0], committed[1], committed[3]})
	for _, iso := range []kgo.IsolationLevel{kgo.ReadCommitted(), kgo.ReadUncommitted()} {
		if got := read(iso); got != want {
			t.Fatalf("isolation %v after compaction: %s, want %s", iso, got, want)
		}
	}
	t.Run("kcat read_uncommitted", func(t *testing.T) {
		got := kcatReadAll(t, s, topic, "-X", "isolation.level=read_uncommitted")
		if fmt.Sprint(got) != want {
			t.Fatalf("kcat: %v, want %s", got, want)
		}
	})
	t.Run("confluent read_uncommitted", func(t *testing.T) {
		got := confluentReadAll(t, s, topic, "read_uncommitted")
		if fmt.Sprint(got) != want {
			t.Fatalf("confluent: %v, want %s", got, want)
		}
	})
}

// TestCompactedTopicRefusesKeylessRecords: a record without a key in a
// compacted topic is refused, and nothing is written: INVALID_RECORD for
// franz-go (Produce v8+), CORRUPT_MESSAGE ("Invalid message") for
// librdkafka 2.0, whose Produce requests are v7, which has no
// INVALID_RECORD (as Kafka answers each version).
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	s := startCompactServer(t)
	const topic = "compact-keyless"
	createCompactedKadm(t, s, topic)
	end := func() int64 {
		_, hw, _ := partitionOf(t, s, topic).Offsets()
		return hw
	}
	t.Run("franz-go", func(t *testing.T) {
		cl := s.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1))
		err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("no key")}).FirstErr()
		if !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("keyless produce: %v, want INVALID_RECORD", err)
		}
	})
	t.Run("kcat", func(t *testing.T) {
		kcat := needKcat(t)
		cmd := exec.Command(kcat, "-b", s.Addr, "-P", "-t", topic, "-p", "0")
		cmd.Stdin = strings.NewReader("no key\n")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Broker: Invalid message") {
			t.Fatalf("kcat keyless produce: %v\n%s", err, out)
		}
	})
	t.Run("confluent-kafka-python", func(t *testing.T) {
		needConfluentPython(t)
		b, _ := json.Marshal([][2]*string{{nil, strp("no key")}})
		out := run(t, "", pythonPath, "-c", confluentProduceScript, s.Addr, topic, string(b))
		if !strings.Contains(out, "ERRORS") || !strings.Contains(out, "INVALID_MSG") {
			t.Fatalf("confluent keyless produce: %s", out)
		}
	})
	if n := end(); n != 0 {
		t.Fatalf("high watermark %d after refused keyless records", n)
	}
}
