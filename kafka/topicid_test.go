package kafka_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// metadataID returns the topic id Metadata reports for topic.
func metadataID(t *testing.T, s *kafkatest.Server, topic string) kadm.TopicID {
	t.Helper()
	md, err := kadm.NewClient(s.Client(t)).Metadata(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := md.Topics[topic]
	if !ok || d.Err != nil {
		t.Fatalf("metadata of %s: %v", topic, d.Err)
	}
	if d.ID == (kadm.TopicID{}) {
		t.Fatalf("topic %s has the zero id", topic)
	}
	return d.ID
}

// TestTopicIDNewOnRecreation: a topic deleted and created again under the
// same name gets a new topic id (KIP-516: clients tell the new topic from
// the old one by it), which CreateTopics and Metadata agree on; a topic's
// id is the same after a restart; and the old topic's id is unknown after
// its deletion.
func TestTopicIDNewOnRecreation(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	adm := kadm.NewClient(s.Client(t))
	ctx := testCtx(t)
	created, err := adm.CreateTopic(ctx, 1, 1, nil, "t")
	if err != nil || created.Err != nil {
		t.Fatal(err, created.Err)
	}
	first := metadataID(t, s, "t")
	if created.ID != first {
		t.Fatalf("CreateTopics said id %v, Metadata says %v", created.ID, first)
	}
	other := metadataID(t, s, "u-other")
	if other == first {
		t.Fatal("two topics have the same id")
	}
	s = s.Restart(t)
	if got := metadataID(t, s, "t"); got != first {
		t.Fatalf("id after a restart %v, was %v", got, first)
	}
	adm = kadm.NewClient(s.Client(t))
	if _, err := adm.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	created, err = adm.CreateTopic(ctx, 1, 1, nil, "t")
	if err != nil || created.Err != nil {
		t.Fatal(err, created.Err)
	}
	second := metadataID(t, s, "t")
	if second == first {
		t.Fatalf("topic created again under its name kept the deleted topic's id %v", first)
	}
	// The deleted topic's id names nothing any more: a deletion by it
	// does not delete the new topic.
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = first
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != kerr.UnknownTopicID {
		t.Fatalf("delete by the old topic's id: %v, want UNKNOWN_TOPIC_ID", err)
	}
	if got := metadataID(t, s, "t"); got != second {
		t.Fatalf("id %v, want %v", got, second)
	}
}
