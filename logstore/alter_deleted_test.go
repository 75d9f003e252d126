package logstore

import (
	"errors"
	"testing"
	"time"
)

// TestAlterOfDeletedTopicLeavesItsSuccessorAlone: a config change or a
// partition increase that looked a topic up before it was deleted, and
// runs once a topic of the same name was created again, fails with
// ErrUnknownTopic and writes nothing into the new topic's directory: its
// configuration, id and partition count survive a restart unchanged.
func TestAlterOfDeletedTopicLeavesItsSuccessorAlone(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, RetentionCheckInterval: -1}
	l := mustOpen(t, opts)
	const name = "reborn"
	if err := l.CreateTopic(name, TopicConfig{Partitions: 1, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	stale, err := l.Topic(name) // looked up by a change still to run
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic(name); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic(name, TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	fresh, _ := l.Topic(name)
	want := fresh.Config()

	_, err = stale.alterConfig(false, func(c *TopicConfig) error {
		c.Retention = time.Minute
		return nil
	})
	if !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("config change of the deleted topic: %v, want ErrUnknownTopic", err)
	}
	if err := stale.addPartitions(3, false); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("partition increase of the deleted topic: %v, want ErrUnknownTopic", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	got, err := l.Topic(name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config() != want {
		t.Fatalf("after restart the new topic's config is %+v, want %+v", got.Config(), want)
	}
}
