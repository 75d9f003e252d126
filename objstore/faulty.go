package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Op names a Store operation, for fault injection.
type Op string

// The operations of a Store.
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpStat   Op = "stat"
	OpList   Op = "list"
	OpDelete Op = "delete"
)

// ErrInjected is the error a Faulty store returns for an injected fault.
var ErrInjected = errors.New("injected object store fault")

// Faulty wraps a Store and injects faults: the whole store down for a
// while, the next n calls of an operation failing, added latency, or any
// rule given as a function. Tests of tiering and checkpoints use it to
// prove that nothing is lost or deleted early when the store misbehaves.
type Faulty struct {
	Store
	mu      sync.Mutex
	down    bool
	fail    map[Op]int
	latency time.Duration
	hook    func(op Op, key string) error
	calls   map[Op]int
}

// NewFaulty wraps s.
func NewFaulty(s Store) *Faulty {
	return &Faulty{Store: s, fail: map[Op]int{}, calls: map[Op]int{}}
}

// SetDown makes every call fail (true) or pass (false).
func (f *Faulty) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// FailNext makes the next n calls of op fail.
func (f *Faulty) FailNext(op Op, n int) {
	f.mu.Lock()
	f.fail[op] += n
	f.mu.Unlock()
}

// SetLatency delays every call by d.
func (f *Faulty) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// SetHook installs a function consulted before every call; a non-nil
// error fails the call.
func (f *Faulty) SetHook(h func(op Op, key string) error) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// Calls returns how many times op was called (failed calls included).
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *Faulty) check(ctx context.Context, op Op, key string) error {
	f.mu.Lock()
	f.calls[op]++
	down, lat, hook := f.down, f.latency, f.hook
	failing := f.fail[op] > 0
	if failing {
		f.fail[op]--
	}
	f.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s: %w", op, key, ctx.Err())
		}
	}
	if down || failing {
		return fmt.Errorf("%s %s: %w", op, key, ErrInjected)
	}
	if hook != nil {
		if err := hook(op, key); err != nil {
			return fmt.Errorf("%s %s: %w", op, key, err)
		}
	}
	return nil
}

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.check(ctx, OpPut, key); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, r, size)
}

func (f *Faulty) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := f.check(ctx, OpGet, key); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key, off, n)
}

func (f *Faulty) Stat(ctx context.Context, key string) (Info, error) {
	if err := f.check(ctx, OpStat, key); err != nil {
		return Info{}, err
	}
	return f.Store.Stat(ctx, key)
}

func (f *Faulty) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := f.check(ctx, OpList, prefix); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.check(ctx, OpDelete, key); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *Faulty) String() string { return f.Store.String() + " (fault injection)" }
