package lookup

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
)

// fakeTable is an in-memory Lookuper that counts its calls: a map from
// key text to one value, which tests change between calls.
type fakeTable struct {
	mu    sync.Mutex
	vals  map[string]string
	calls [][]string // the keys of each Lookup call
	fail  int        // fail this many next calls
}

func newFakeTable() *fakeTable { return &fakeTable{vals: map[string]string{}} }

func (f *fakeTable) Columns() []string { return []string{"v"} }
func (f *fakeTable) Close() error      { return nil }
func (f *fakeTable) set(k, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v == "" {
		delete(f.vals, k)
	} else {
		f.vals[k] = v
	}
}
func (f *fakeTable) Lookup(_ context.Context, keys []Key) ([][]Row, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, k := range keys {
		names = append(names, keyString(k))
	}
	f.calls = append(f.calls, names)
	if f.fail > 0 {
		f.fail--
		return nil, errors.New("connection refused")
	}
	out := make([][]Row, len(keys))
	var bad *KeyErrors
	for i, n := range names {
		if strings.HasPrefix(n, "bad") {
			if bad == nil {
				bad = &KeyErrors{Errs: make([]error, len(keys))}
			}
			bad.Errs[i] = errors.New(n + " cannot be a key")
			continue
		}
		if v, ok := f.vals[n]; ok {
			out[i] = []Row{{row.String(v)}}
		}
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

// clock is a fake clock for cache expiry.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func values(t *testing.T, res [][]Row) []string {
	t.Helper()
	out := make([]string, len(res))
	for i, rows := range res {
		switch len(rows) {
		case 0:
			out[i] = "-"
		case 1:
			out[i] = rows[0][0].AsString()
		default:
			t.Fatalf("key %d: %d rows", i, len(rows))
		}
	}
	return out
}

func keys(ks ...any) []Key {
	out := make([]Key, len(ks))
	for i, k := range ks {
		switch k := k.(type) {
		case int:
			out[i] = Key{row.Int(int64(k))}
		case string:
			out[i] = Key{row.String(k)}
		case nil:
			out[i] = Key{row.Null()}
		}
	}
	return out
}

// TestClientBatches: the distinct missing keys of one Get go out in one
// Lookup call; duplicates and null keys are not sent.
func TestClientBatches(t *testing.T) {
	f := newFakeTable()
	f.set("1", "a")
	f.set("2", "b")
	c, err := NewClient(f, Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(context.Background(), keys(1, 2, 1, "1", 3, nil, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := values(t, res), []string{"a", "b", "a", "a", "-", "-", "b"}; !slices.Equal(got, want) {
		t.Errorf("values %q, want %q", got, want)
	}
	if len(f.calls) != 1 || !slices.Equal(f.calls[0], []string{"1", "2", "3"}) {
		t.Errorf("calls %q, want one call with keys 1, 2, 3", f.calls)
	}
	m := c.Metrics()
	if m.Lookups.Load() != 7 || m.Misses.Load() != 3 || m.Hits.Load() != 0 || m.Queries.Load() != 1 {
		t.Errorf("metrics: lookups %d misses %d hits %d queries %d", m.Lookups.Load(), m.Misses.Load(), m.Hits.Load(), m.Queries.Load())
	}
}

// TestClientTTL: with a cache, a value (or its absence) is served for
// exactly TTL after it was fetched, then fetched again; without one,
// every Get sees the table's current value.
func TestClientTTL(t *testing.T) {
	f := newFakeTable()
	ck := &clock{t: time.Unix(1000, 0)}
	const ttl = time.Minute
	c, err := NewClient(f, Config{CacheSize: 10, CacheTTL: ttl, Now: ck.now})
	if err != nil {
		t.Fatal(err)
	}
	none, _ := NewClient(f, Config{})
	get := func(c *Client, k any) string {
		t.Helper()
		res, err := c.Get(context.Background(), keys(k))
		if err != nil {
			t.Fatal(err)
		}
		return values(t, res)[0]
	}
	f.set("1", "v0")
	if v := get(c, 1); v != "v0" {
		t.Fatalf("first get %q", v)
	}
	f.set("1", "v1")
	if v := get(none, 1); v != "v1" {
		t.Errorf("uncached get after an update: %q, want v1", v)
	}
	ck.advance(ttl - time.Nanosecond)
	if v := get(c, 1); v != "v0" {
		t.Errorf("cached get within the ttl: %q, want v0 (the cached value)", v)
	}
	ck.advance(time.Nanosecond)
	if v := get(c, 1); v != "v1" {
		t.Errorf("cached get at the ttl: %q, want v1 (refetched)", v)
	}
	// Negative results are cached too.
	if v := get(c, 2); v != "-" {
		t.Fatalf("missing key: %q", v)
	}
	f.set("2", "w")
	ck.advance(ttl / 2)
	if v := get(c, 2); v != "-" {
		t.Errorf("missing key within the ttl: %q, want - (cached absence)", v)
	}
	ck.advance(ttl / 2)
	if v := get(c, 2); v != "w" {
		t.Errorf("missing key after the ttl: %q, want w", v)
	}
	if n := len(f.calls); n != 5 { // c: 1, 1, 2, 2; none: 1
		t.Errorf("%d lookup calls, want 5: %q", n, f.calls)
	}
}

// TestClientCacheSize: the cache holds at most CacheSize keys, the least
// recently used evicted first.
func TestClientCacheSize(t *testing.T) {
	f := newFakeTable()
	ck := &clock{t: time.Unix(0, 0)}
	c, _ := NewClient(f, Config{CacheSize: 2, CacheTTL: time.Hour, Now: ck.now})
	ctx := context.Background()
	for _, k := range []int{1, 2, 1, 3, 1, 2} { // 3 evicts 2; 2 evicts ... 3
		if _, err := c.Get(ctx, keys(k)); err != nil {
			t.Fatal(err)
		}
	}
	var fetched []string
	for _, call := range f.calls {
		fetched = append(fetched, call...)
	}
	if want := []string{"1", "2", "3", "2"}; !slices.Equal(fetched, want) {
		t.Errorf("fetched %q, want %q", fetched, want)
	}
}

// TestClientRetries: a failing Lookup is retried with doubling backoff;
// when every try fails, Get fails with ErrLookup.
func TestClientRetries(t *testing.T) {
	f := newFakeTable()
	f.set("1", "a")
	var waits []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	c, _ := NewClient(f, Config{Retries: 3, Backoff: 10 * time.Millisecond, Sleep: sleep})
	f.fail = 2
	res, err := c.Get(context.Background(), keys(1))
	if err != nil || values(t, res)[0] != "a" {
		t.Fatalf("after 2 failures: %v %v", res, err)
	}
	if !slices.Equal(waits, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}) {
		t.Errorf("waits %v", waits)
	}
	f.fail = 10
	_, err = c.Get(context.Background(), keys(1))
	if !errors.Is(err, ErrLookup) {
		t.Fatalf("after 4 failures: %v, want ErrLookup", err)
	}
	if m := c.Metrics(); m.Errors.Load() != 6 || m.Queries.Load() != 7 {
		t.Errorf("errors %d queries %d, want 6 and 7", m.Errors.Load(), m.Queries.Load())
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not name the last failure", err)
	}
}

func TestClientConfig(t *testing.T) {
	if _, err := NewClient(newFakeTable(), Config{CacheSize: 10}); err == nil {
		t.Error("a cache without ttl was accepted")
	}
	if _, err := NewClient(newFakeTable(), Config{CacheSize: -1}); err == nil {
		t.Error("a negative cache size was accepted")
	}
}

// TestClientBadKeys: keys the Lookuper cannot look up at all (a
// *KeyErrors) fail alone, repeated ones included: the others are
// answered and cached, the bad ones neither cached nor retried.
func TestClientBadKeys(t *testing.T) {
	f := newFakeTable()
	f.set("1", "a")
	f.set("2", "b")
	c, err := NewClient(f, Config{CacheSize: 10, CacheTTL: time.Minute, Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := range 2 {
		res, err := c.Get(ctx, keys(1, "bad1", 2, "bad1", 3, "bad2"))
		var bad *KeyErrors
		if !errors.As(err, &bad) || len(bad.Errs) != 6 {
			t.Fatalf("round %d: err %v, want KeyErrors for 6 keys", round, err)
		}
		for i, want := range []bool{false, true, false, true, false, true} {
			if (bad.Errs[i] != nil) != want {
				t.Errorf("round %d: key %d: error %v", round, i, bad.Errs[i])
			}
		}
		if got := strings.Join(values(t, res), " "); got != "a - b - - -" {
			t.Errorf("round %d: values %s", round, got)
		}
	}
	// One call per round: the first sends every distinct key once, the
	// second only the bad ones (the others are cached).
	if got := len(f.calls); got != 2 || len(f.calls[1]) != 2 {
		t.Errorf("calls %v", f.calls)
	}
	if c.Metrics().Errors.Load() != 0 {
		t.Errorf("%d failed calls, want none", c.Metrics().Errors.Load())
	}
}

// slowTable is a fakeTable whose calls take took on the test's clock:
// the table is read when the call starts.
type slowTable struct {
	*fakeTable
	ck   *clock
	took time.Duration
}

func (s slowTable) Lookup(ctx context.Context, keys []Key) ([][]Row, error) {
	res, err := s.fakeTable.Lookup(ctx, keys)
	s.ck.advance(s.took)
	return res, err
}

// TestClientTTLFromRead: a cached answer is served for TTL after the
// call that read it started, not after it returned: however long the
// query took, no record gets a value read more than TTL ago. Before, the
// entry was stamped when the answer arrived, and a query of 30s made a
// 1m cache serve values read 89s earlier.
func TestClientTTLFromRead(t *testing.T) {
	f := newFakeTable()
	ck := &clock{t: time.Unix(1000, 0)}
	const ttl = time.Minute
	c, err := NewClient(slowTable{f, ck, 30 * time.Second}, Config{CacheSize: 10, CacheTTL: ttl, Now: ck.now})
	if err != nil {
		t.Fatal(err)
	}
	f.set("1", "v0")
	read := ck.now()
	if _, err := c.Get(context.Background(), keys(1)); err != nil {
		t.Fatal(err)
	}
	f.set("1", "v1")
	ck.advance(ttl - ck.now().Sub(read)) // TTL after the read
	res, err := c.Get(context.Background(), keys(1))
	if err != nil {
		t.Fatal(err)
	}
	if v := values(t, res)[0]; v != "v1" {
		t.Errorf("TTL after the read: %q, want v1 (refetched)", v)
	}
}

// cancelTable fails every call and cancels the Get's context in it, as
// a job stopping during a failing query does.
type cancelTable struct {
	*fakeTable
	cancel context.CancelFunc
}

func (c cancelTable) Lookup(context.Context, []Key) ([][]Row, error) {
	c.cancel()
	return nil, errors.New("connection reset")
}

// TestClientCancelledTries: a Get whose context ends during a failing
// try stops there and says how many tries it made, not the configured
// number.
func TestClientCancelledTries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := NewClient(cancelTable{newFakeTable(), cancel}, Config{Retries: 3, Sleep: func(context.Context, time.Duration) error { return nil }})
	_, err := c.Get(ctx, keys(1))
	if !errors.Is(err, ErrLookup) || !strings.Contains(err.Error(), "after 1 tries") {
		t.Errorf("err %v, want ErrLookup after 1 tries", err)
	}
	if q := c.Metrics().Queries.Load(); q != 1 {
		t.Errorf("%d queries, want 1", q)
	}
}
