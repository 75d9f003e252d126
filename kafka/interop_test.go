package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
)

// These tests run real non-Go clients (librdkafka through kcat and
// confluent-kafka-python) against the server when they are installed
// (scripts/install-test-deps.sh installs Debian's packages) and skip
// otherwise.

const pythonPath = "/usr/bin/python3"

func needKcat(t *testing.T) string {
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (scripts/install-test-deps.sh installs Debian's kcat): skipping")
	}
	return path
}

func needConfluentPython(t *testing.T) {
	if _, err := os.Stat(pythonPath); err != nil {
		t.Skipf("%s not found: skipping the confluent-kafka-python test", pythonPath)
	}
	if err := exec.Command(pythonPath, "-c", "import confluent_kafka").Run(); err != nil {
		t.Skip("python3-confluent-kafka is not installed (scripts/install-test-deps.sh installs it): skipping")
	}
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func TestKcat(t *testing.T) {
	kcat := needKcat(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			var in strings.Builder
			for i := range 100 {
				fmt.Fprintf(&in, "key%d:value %d %s\n", i, i, codec)
			}
			run(t, in.String(), kcat, "-b", s.Addr, "-P", "-t", topic, "-K", ":", "-z", codec, "-X", "enable.idempotence=true")
			out := run(t, "", kcat, "-b", s.Addr, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "100", "-f", "%k=%s\n")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 100 {
				t.Fatalf("kcat consumed %d lines:\n%s", len(lines), out)
			}
			for i, l := range lines {
				if want := fmt.Sprintf("key%d=value %d %s", i, i, codec); l != want {
					t.Fatalf("line %d: %q, want %q", i, l, want)
				}
			}
		})
	}
	t.Run("metadata", func(t *testing.T) {
		out := run(t, "", kcat, "-b", s.Addr, "-L")
		for _, want := range []string{"1 brokers:", "topic \"kcat-gzip\" with 1 partitions", "partition 0, leader 0"} {
			if !strings.Contains(out, want) {
				t.Fatalf("kcat -L lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("consumer group", func(t *testing.T) {
		out := run(t, "", kcat, "-b", s.Addr, "-G", "kcat-group", "kcat-none", "-o", "beginning", "-e", "-c", "100", "-X", "auto.offset.reset=earliest")
		if n := strings.Count(out, "\n"); n != 100 {
			t.Fatalf("group consumer read %d lines", n)
		}
	})
}

const confluentScript = `
import sys, json
from confluent_kafka import Producer, Consumer, KafkaException
addr, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
acked = []
def report(err, msg):
    if err is not None:
        raise KafkaException(err)
    acked.append(msg.offset())
p = Producer({"bootstrap.servers": addr, "enable.idempotence": True, "acks": "all",
              "compression.type": "lz4", "linger.ms": 5})
for i in range(n):
    p.produce(topic, key=str(i % 5), value="py-%d" % i, on_delivery=report)
    p.poll(0)
if p.flush(30) != 0:
    sys.exit("flush timed out")
c = Consumer({"bootstrap.servers": addr, "group.id": "py-group", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000})
c.subscribe([topic])
seen = []
import time
deadline = time.time() + 30
while len(seen) < n and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        sys.exit("consume error: %s" % m.error())
    seen.append(m.value().decode())
c.commit(asynchronous=False)
c.close()
print(json.dumps({"acked": len(acked), "seen": sorted(seen)}))
`

func TestConfluentKafkaPython(t *testing.T) {
	needConfluentPython(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "py", 3)
	const n = 200
	out := run(t, "", pythonPath, "-c", confluentScript, s.Addr, "py", fmt.Sprint(n))
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("%q", fmt.Sprintf("py-%d", i)))
	}
	if !strings.Contains(out, fmt.Sprintf(`"acked": %d`, n)) {
		t.Fatalf("producer acknowledgements: %s", out)
	}
	for i := range n {
		if !strings.Contains(out, fmt.Sprintf(`"py-%d"`, i)) {
			t.Fatalf("consumer did not see py-%d: %s", i, out)
		}
	}
	// Exactly n records stored (idempotence) and the group committed them.
	adm := kadm.NewClient(s.Client(t))
	ends, err := adm.ListEndOffsets(testCtx(t), "py")
	if err != nil {
		t.Fatal(err)
	}
	offs, err := adm.FetchOffsets(testCtx(t), "py-group")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		total += o.Offset
		if c, ok := offs.Lookup("py", o.Partition); o.Offset > 0 && (!ok || c.At != o.Offset) {
			t.Errorf("partition %d: committed %v, end %d", o.Partition, c.At, o.Offset)
		}
	})
	if total != n {
		t.Fatalf("%d records stored, want %d", total, n)
	}

}

const confluentTxnScript = `
import sys, time
from confluent_kafka import Producer, Consumer
addr, topic = sys.argv[1], sys.argv[2]
p = Producer({"bootstrap.servers": addr, "transactional.id": "py-tx"})
p.init_transactions(30)
p.begin_transaction()
for i in range(10):
    p.produce(topic, value="commit-%d" % i)
p.commit_transaction(30)
p.begin_transaction()
for i in range(10):
    p.produce(topic, value="abort-%d" % i)
p.flush(30)
p.abort_transaction(30)
p.begin_transaction()
p.produce(topic, value="last")
p.commit_transaction(30)
c = Consumer({"bootstrap.servers": addr, "group.id": "py-txn-reader", "auto.offset.reset": "earliest",
              "isolation.level": "read_committed"})
c.subscribe([topic])
seen = []
deadline = time.time() + 30
while (not seen or seen[-1] != "last") and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    seen.append(m.value().decode())
c.close()
print(",".join(seen))
`

func TestConfluentKafkaPythonTransactions(t *testing.T) {
	needConfluentPython(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "pytx", 1)
	out := strings.TrimSpace(run(t, "", pythonPath, "-c", confluentTxnScript, s.Addr, "pytx"))
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("commit-%d", i))
	}
	want = append(want, "last")
	if out != strings.Join(want, ",") {
		t.Fatalf("read_committed librdkafka consumer saw %q", out)
	}
}
