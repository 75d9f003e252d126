package auth

import (
	"context"
	"errors"
	"testing"
)

// storeAgreesWithLog checks that what s lets log in is what a store
// reopened from the same log (after a restart) lets log in.
func storeAgreesWithLog(t *testing.T, s *Store, reopen func() *Store, user string, passwords ...string) {
	t.Helper()
	again := reopen()
	for _, pw := range passwords {
		if mem, log := s.CheckPassword(user, pw), again.CheckPassword(user, pw); mem != log {
			t.Errorf("password %q of %s: logs in now: %v, after a restart (from the log): %v", pw, user, mem, log)
		}
	}
}

// TestStoreFailedWriteLeavesNoPassword: a Set or Delete whose write
// fails (injected) changes nothing: the old password still logs in, the
// new one does not, now and after a restart.
func TestStoreFailedWriteLeavesNoPassword(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir)
	defer l.Close()
	s, err := OpenStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := NewCredential(ScramSHA256, "old-password", MinIterations)
	if err := s.Set(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("injected: disk full")
	s.write = func(context.Context, []byte, []byte) error { return errDisk }
	c, _ := NewCredential(ScramSHA256, "new-password", MinIterations)
	if err := s.Set(ctx, "alice", c); !errors.Is(err, errDisk) {
		t.Fatalf("set with a failing write: %v", err)
	}
	if err := s.Delete(ctx, "alice", ScramSHA256); !errors.Is(err, errDisk) {
		t.Fatalf("delete with a failing write: %v", err)
	}
	if !s.CheckPassword("alice", "old-password") || s.CheckPassword("alice", "new-password") {
		t.Fatal("a failed write changed the passwords in effect")
	}
	storeAgreesWithLog(t, s, func() *Store {
		again, err := OpenStore(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		return again
	}, "alice", "old-password", "new-password")
}

// TestStoreConcurrentWritesApplyInLogOrder: a Delete that comes while a
// Set of the same user has written its record but not yet applied it
// must not leave the Set's password in effect after the log's tombstone:
// the writes apply to memory in the log's order. (The Set is paused
// after its write; the Delete either completes meanwhile, the bug, or
// waits for the Set, and the Set resumes when one of the two shows.)
func TestStoreConcurrentWritesApplyInLogOrder(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir())
	defer l.Close()
	s, err := OpenStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := NewCredential(ScramSHA256, "first", MinIterations)
	if err := s.Set(ctx, "bob", first); err != nil {
		t.Fatal(err)
	}
	written, release := make(chan struct{}), make(chan struct{})
	real := s.write
	s.write = func(ctx context.Context, k, v []byte) error {
		err := real(ctx, k, v)
		if v != nil { // the Set: pause between its write and its apply
			close(written)
			<-release
		}
		return err
	}
	waiting := make(chan struct{})
	s.onWait = func() { close(waiting) }
	second, _ := NewCredential(ScramSHA256, "second", MinIterations)
	setDone := make(chan error, 1)
	go func() { setDone <- s.Set(ctx, "bob", second) }()
	<-written
	delDone := make(chan error, 1)
	go func() { delDone <- s.Delete(ctx, "bob", ScramSHA256) }()
	select {
	case <-waiting:
	case err := <-delDone:
		delDone <- err
	}
	close(release)
	if err := <-setDone; err != nil {
		t.Fatal(err)
	}
	if err := <-delDone; err != nil {
		t.Fatal(err)
	}
	storeAgreesWithLog(t, s, func() *Store {
		again, err := OpenStore(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		return again
	}, "bob", "first", "second")
}
