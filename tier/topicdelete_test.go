package tier_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/tier"
)

// afterStore calls after once a List, Put or Delete has returned.
type afterStore struct {
	objstore.Store
	after func(op objstore.Op, key string)
}

func (s *afterStore) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	objs, err := s.Store.List(ctx, prefix)
	s.after(objstore.OpList, prefix)
	return objs, err
}

func (s *afterStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	err := s.Store.Put(ctx, key, r, size)
	s.after(objstore.OpPut, key)
	return err
}

func (s *afterStore) Delete(ctx context.Context, key string) error {
	err := s.Store.Delete(ctx, key)
	s.after(objstore.OpDelete, key)
	return err
}

// TestDeletedTopicFolderNotWrittenAfterDeletion: a topic deleted (and
// created again under its name) while the uploader is in the middle of
// uploading one of its segments: once the deletion has emptied the
// topic's folder, the upload under way must not leave its objects and a
// manifest there (before, they stayed until a restart, and the pass went
// on uploading the deleted partition's other segments).
func TestDeletedTopicFolderNotWrittenAfterDeletion(t *testing.T) {
	mem := objstore.NewMem()
	// The test waits for the deletion's listing of the old folder, and
	// then for the blocked upload's end: its manifest written there (the
	// bug), or its object removed again.
	var mu sync.Mutex
	oldDir, blockedKey := "", ""
	listed, ended := make(chan struct{}), make(chan struct{})
	var onceListed, onceEnded sync.Once
	f := objstore.NewFaulty(&afterStore{Store: mem, after: func(op objstore.Op, key string) {
		mu.Lock()
		dir, blocked := oldDir, blockedKey
		mu.Unlock()
		switch {
		case dir == "":
		case op == objstore.OpList && key == dir+"/":
			onceListed.Do(func() { close(listed) })
		case op == objstore.OpPut && strings.HasPrefix(key, dir+"/") && strings.Contains(key, "/manifest-"),
			op == objstore.OpDelete && key == blocked:
			onceEnded.Do(func() { close(ended) })
		}
	}})
	e := openEnv(t, t.TempDir(), f)
	entered := make(chan string, 1)
	gate := make(chan struct{})
	var once sync.Once
	f.SetHook(func(op objstore.Op, key string) error {
		if op == objstore.OpList && key == "" {
			// The sweep of deleted topics' folders that the uploader makes
			// once after its first good pass would hide what is left.
			return objstore.ErrInjected
		}
		if op == objstore.OpPut && strings.HasSuffix(key, ".log") {
			blocked := false
			once.Do(func() { blocked = true })
			if blocked {
				entered <- key
				<-gate
			}
		}
		return nil
	})
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "8192"})
	produce(t, p, 0, 300)
	synced := make(chan error, 1)
	go func() { synced <- e.tier.Sync() }()
	key := <-entered // an upload of t's first segment is under way
	mu.Lock()
	oldDir, _, _ = strings.Cut(key, "/")
	blockedKey = key
	mu.Unlock()
	if err := e.log.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	<-listed // the deletion listed the folder (empty: the upload is blocked)
	p2 := e.remoteTopic("t", map[string]string{"local.retention.bytes": "8192"})
	produce(t, p2, 0, 300)
	close(gate)
	<-ended
	<-synced
	tier.WaitBackground(e.tier)
	objs, err := mem.List(context.Background(), oldDir+"/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		t.Fatalf("the deleted topic's folder %s holds %d objects after its deletion: %v", oldDir, len(objs), keys)
	}
	e.sync()
	e.retention()
	readAll(t, p2, 0, 300)
}
