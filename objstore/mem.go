package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mem is a Store in memory, for tests and for trying things out.
type Mem struct {
	mu   sync.Mutex
	objs map[string]memObject
}

type memObject struct {
	data     []byte
	modified time.Time
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{objs: map[string]memObject{}} }

func (m *Mem) String() string { return "mem://" }

func (m *Mem) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && int64(len(data)) != size {
		return fmt.Errorf("put %s: read %d bytes, want %d", key, len(data), size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	m.mu.Lock()
	m.objs[key] = memObject{data: data, modified: time.Now()}
	m.mu.Unlock()
	return nil
}

func (m *Mem) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, off)
	}
	m.mu.Lock()
	o, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotExist)
	}
	d := o.data
	if off >= int64(len(d)) {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	d = d[off:]
	if n >= 0 && n < int64(len(d)) {
		d = d[:n]
	}
	return io.NopCloser(bytes.NewReader(d)), nil
}

func (m *Mem) Stat(ctx context.Context, key string) (Info, error) {
	m.mu.Lock()
	o, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return Info{}, fmt.Errorf("stat %s: %w", key, ErrNotExist)
	}
	return Info{Key: key, Size: int64(len(o.data)), Modified: o.modified}, nil
}

func (m *Mem) List(ctx context.Context, prefix string) ([]Info, error) {
	m.mu.Lock()
	var out []Info
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Info{Key: k, Size: int64(len(o.data)), Modified: o.modified})
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *Mem) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}
