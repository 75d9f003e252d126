package tier_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
)

// TestReadAtLocalStartDuringRetention: a read at the local log start
// while local retention deletes that segment (already uploaded) is served
// from the remote tier, never answered ErrOffsetOutOfRange, on which a
// consumer resets its position (to the latest offset: records skipped).
// The race is narrow (between the read's look at the local start and its
// look-up of the segment): without the fix this fails in most runs, not
// all; with it, it cannot fail.
func TestReadAtLocalStartDuringRetention(t *testing.T) {
	e := openEnv(t, t.TempDir(), objstore.NewMem())
	p := e.remoteTopic("t", map[string]string{"local.retention.bytes": "4096", "sluice.fsync": "never"})
	produce(t, p, 0, 100)
	var stop atomic.Bool
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for !stop.Load() {
			off := p.LocalLogStart()
			if _, err := p.Read(off, 1000); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := 100; i < 4100; i += 40 {
		produce(t, p, i, i+40)
		e.sync()
		e.retention()
	}
	stop.Store(true)
	if err := <-errs; err != nil {
		if errors.Is(err, logstore.ErrOffsetOutOfRange) {
			t.Fatalf("read at the local start while retention deleted it: %v", err)
		}
		t.Fatal(err)
	}
}
