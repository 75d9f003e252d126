package kafka

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// TestSinkOpenFailsOnMissingTopic: a sink whose topic does not exist
// fails at Open, saying how to create it, for both writers; before, the
// job ran until its first checkpoint with records and then stopped with
// UNKNOWN_TOPIC_OR_PARTITION. A topic that exists opens.
func TestSinkOpenFailsOnMissingTopic(t *testing.T) {
	brokers := cluster(t, 1, "present")
	for _, transactional := range []bool{false, true} {
		s, err := NewSink(SinkConfig{Brokers: brokers, Topic: "absent", Transactional: transactional})
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Open(ctxT(t), stream.SubtaskInfo{Parallelism: 1})
		if err == nil {
			_ = w.Close(ctxT(t))
			t.Fatalf("transactional %v: a sink of a topic that does not exist opened", transactional)
		}
		if !strings.Contains(err.Error(), "topic absent does not exist") || !strings.Contains(err.Error(), "sluice topic create absent --broker "+brokers[0]) {
			t.Errorf("transactional %v: %v", transactional, err)
		}
		s, err = NewSink(SinkConfig{Brokers: brokers, Topic: "present", Transactional: transactional})
		if err != nil {
			t.Fatal(err)
		}
		w, err = s.Open(ctxT(t), stream.SubtaskInfo{Parallelism: 1})
		if err != nil {
			t.Fatalf("transactional %v: open of an existing topic: %v", transactional, err)
		}
		if err := w.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}
