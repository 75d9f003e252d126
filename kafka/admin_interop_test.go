package kafka_test

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// confluentGroupsScript joins a group with a librdkafka consumer, waits
// for its assignment and prints what AdminClient.list_groups (ListGroups
// then DescribeGroups) reports of the group, member bytes in hex.
const confluentGroupsScript = `
import sys, json, time
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
addr, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
c = Consumer({"bootstrap.servers": addr, "group.id": group, "client.id": "py-member",
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe([topic])
deadline = time.time() + 30
while not c.assignment() and time.time() < deadline:
    c.poll(0.2)
a = AdminClient({"bootstrap.servers": addr})
groups = a.list_groups(group, timeout=30)
out = []
for g in groups:
    out.append({"id": g.id, "state": g.state, "protocol_type": g.protocol_type, "protocol": g.protocol,
                "error": str(g.error) if g.error else "",
                "members": [{"id": m.id, "client_id": m.client_id, "client_host": m.client_host,
                             "metadata": m.metadata.hex(), "assignment": m.assignment.hex()} for m in g.members]})
c.close()
print(json.dumps(out))
`

func TestConfluentKafkaPythonDescribeGroups(t *testing.T) {
	needConfluentPython(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic, group = "py-members", "py-members-group"
	createTopic(t, s, topic, 2)
	out := run(t, "", pythonPath, "-c", confluentGroupsScript, s.Addr, topic, group)
	var groups []struct {
		ID, State, Protocol, Error string
		ProtocolType               string `json:"protocol_type"`
		Members                    []struct {
			ID, Metadata, Assignment string
			ClientID                 string `json:"client_id"`
			ClientHost               string `json:"client_host"`
		}
	}
	if err := json.Unmarshal([]byte(out), &groups); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	if len(groups) != 1 || groups[0].ID != group || groups[0].State != "Stable" || groups[0].ProtocolType != "consumer" ||
		groups[0].Error != "" || len(groups[0].Members) != 1 {
		t.Fatalf("list_groups: %s", out)
	}
	m := groups[0].Members[0]
	if m.ID == "" || m.ClientID != "py-member" || m.ClientHost != "/127.0.0.1" {
		t.Fatalf("member %+v", m)
	}
	metaBytes, err := hex.DecodeString(m.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(metaBytes); err != nil || !slices.Equal(meta.Topics, []string{topic}) {
		t.Fatalf("member metadata %x: %v %+v", metaBytes, err, meta)
	}
	asgBytes, err := hex.DecodeString(m.Assignment)
	if err != nil {
		t.Fatal(err)
	}
	var asg kmsg.ConsumerMemberAssignment
	if err := asg.ReadFrom(asgBytes); err != nil || len(asg.Topics) != 1 || asg.Topics[0].Topic != topic ||
		!slices.Equal(slices.Sorted(slices.Values(asg.Topics[0].Partitions)), []int32{0, 1}) {
		t.Fatalf("member assignment %x: %v %+v", asgBytes, err, asg)
	}
}
