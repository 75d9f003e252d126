package kafka

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// removeHookFS calls hook before removing a deleted topic's files.
type removeHookFS struct {
	logstore.OSFS
	mu   sync.Mutex
	hook func(path string)
}

func (f *removeHookFS) RemoveAll(path string) error {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h != nil && strings.Contains(path, "delete-") {
		h(path)
	}
	return f.OSFS.RemoveAll(path)
}

// TestOffsetCommitDoesNotWaitForTopicFiles: while a deleted topic's files
// are being removed (a large topic takes a while), an offset commit of
// another topic goes through: the deletion holds offmu (which commits
// share) only to unlink the topic and delete its offsets, not to remove
// its files. The commit is made in the removal, at once if offmu is free,
// else (the bug) in a goroutine that waits for the removal to end.
func TestOffsetCommitDoesNotWaitForTopicFiles(t *testing.T) {
	fsys := &removeHookFS{}
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), FS: fsys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s, err := New(l, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, name := range []string{"big", "other"} {
		if err := l.CreateTopic(name, logstore.TopicConfig{Partitions: 2}); err != nil {
			t.Fatal(err)
		}
	}
	commit := func() int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 8, "g", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "other"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, 0, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := s.handleOffsetCommit(context.Background(), req).(*kmsg.OffsetCommitResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	var during bool
	var code int16
	var wait func()
	fsys.mu.Lock()
	fsys.hook = func(string) {
		during = s.offmuShared()
		wait = interleave(s.offmuShared, func() { code = commit() })
	}
	fsys.mu.Unlock()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"big"}
	resp := s.handleDeleteTopics(req).(*kmsg.DeleteTopicsResponse)
	if c := resp.Topics[0].ErrorCode; c != 0 {
		t.Fatalf("delete topic: error %d", c)
	}
	if wait == nil {
		t.Fatal("the deleted topic's files were not removed")
	}
	wait()
	if code != 0 {
		t.Fatalf("offset commit: error %d", code)
	}
	if !during {
		t.Fatal("an offset commit waited for a deleted topic's files to be removed (offmu held meanwhile)")
	}
}

// offmuShared reports whether offmu can be taken shared now (what an
// offset commit takes).
func (s *Server) offmuShared() bool {
	if s.offmu.TryRLock() {
		s.offmu.RUnlock()
		return true
	}
	return false
}
