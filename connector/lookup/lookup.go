package lookup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/ttlcache"
	"github.com/sluicehq/sluice/row"
)

// Key is the values of one lookup key, in the order of the Lookuper's key
// parameters.
type Key []row.Value

// Row is one row of a lookup table, one value per column of Columns.
type Row []row.Value

// Lookuper finds the rows of a batch of keys in an external table.
// Implementations are safe for concurrent use.
type Lookuper interface {
	// Columns names the columns of the rows Lookup returns.
	Columns() []string
	// Lookup returns, for each key, its rows (nil when it has none), in
	// the order of keys. A *KeyErrors error comes with the answers of
	// the keys it does not list; any other error means no answer for any
	// key of the batch, and the Client retries it.
	Lookup(ctx context.Context, keys []Key) ([][]Row, error)
	// Close releases the connections.
	Close() error
}

// Config configures a Client.
type Config struct {
	// CacheSize bounds the number of keys cached; 0 turns the cache off
	// (every Get asks the Lookuper for every distinct key).
	CacheSize int
	// CacheTTL is how long an entry (rows or "no rows") is served after
	// it was fetched; with a cache it must be positive.
	CacheTTL time.Duration
	// Retries is how many times a failed Lookup is retried before Get
	// fails; default 3 (negative: none).
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to 5 s; default 100 ms.
	Backoff time.Duration
	// Timeout bounds each Lookup call; default 10 s.
	Timeout time.Duration
	// Now is the clock of cache expiry; nil means time.Now.
	Now func() time.Time
	// Sleep waits between retries; nil waits on a timer (or until ctx
	// is done). Tests replace it to retry without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Metrics counts a Client's work. All fields are updated atomically and
// may be read at any time.
type Metrics struct {
	// Lookups is the number of keys asked for (before deduplication).
	Lookups atomic.Int64
	// Hits counts keys answered from the cache; Misses the distinct keys
	// of each Get that were fetched (without a cache, every distinct key).
	Hits   atomic.Int64
	Misses atomic.Int64
	// Queries is the number of Lookup calls (one per Get with misses,
	// plus retries); Errors the number that failed.
	Queries atomic.Int64
	Errors  atomic.Int64
	// QueryNanos is the total time spent in Lookup calls; QueryBuckets
	// counts them by duration: up to 1 ms, 10 ms, 100 ms, 1 s, longer.
	QueryNanos   atomic.Int64
	QueryBuckets [5]atomic.Int64
}

// QueryBounds are the upper bounds of Metrics.QueryBuckets but the last.
var QueryBounds = [4]time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}

func (m *Metrics) observe(d time.Duration) {
	m.QueryNanos.Add(int64(d))
	for i, b := range QueryBounds {
		if d <= b {
			m.QueryBuckets[i].Add(1)
			return
		}
	}
	m.QueryBuckets[len(QueryBounds)].Add(1)
}

// Client looks keys up through a Lookuper with a cache, batching and
// retries. It is safe for concurrent use.
type Client struct {
	l       Lookuper
	cfg     Config
	cache   *ttlcache.Cache[[]Row]
	metrics Metrics
}

// ErrLookup wraps the error of a lookup that failed after its retries.
var ErrLookup = errors.New("lookup failed")

// KeyErrors lists the keys of a call that cannot be looked up at all,
// whatever the table holds: a value the key's type cannot take, like
// "abc" for a bigint column. Errs has an entry per key of the call, nil
// for the keys answered. It comes with the answers of the other keys,
// from a Lookuper and from Client.Get, and is not retried: one bad key
// does not fail the others of its batch.
type KeyErrors struct {
	Errs []error
}

func (e *KeyErrors) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	if n == 1 {
		return first.Error()
	}
	return fmt.Sprintf("%d keys cannot be looked up; the first: %v", n, first)
}

// NewClient returns a Client over l.
func NewClient(l Lookuper, cfg Config) (*Client, error) {
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("lookup cache size %d: must be 0 (no cache) or more", cfg.CacheSize)
	}
	if cfg.CacheSize > 0 && cfg.CacheTTL <= 0 {
		return nil, fmt.Errorf("lookup cache ttl %v: must be positive (the longest a value may be stale), like 1m", cfg.CacheTTL)
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	c := &Client{l: l, cfg: cfg}
	if cfg.CacheSize > 0 {
		cache, err := ttlcache.New[[]Row](cfg.CacheSize, cfg.CacheTTL, cfg.Now)
		if err != nil {
			return nil, fmt.Errorf("lookup %w", err)
		}
		c.cache = cache
	}
	return c, nil
}

// Columns returns the Lookuper's columns.
func (c *Client) Columns() []string { return c.l.Columns() }

// Metrics returns the Client's counters.
func (c *Client) Metrics() *Metrics { return &c.metrics }

// Close closes the Lookuper.
func (c *Client) Close() error { return c.l.Close() }

// Get returns the rows of each key (nil: none), in the order of keys.
// Keys with a null value have no rows and are not looked up. Keys the
// cache holds (unexpired) are answered from it; all the others go to the
// Lookuper in one call, retried with backoff; if every try fails, Get
// returns an error wrapping ErrLookup. Keys that cannot be looked up at
// all fail alone: Get returns the rows of the others with a *KeyErrors.
func (c *Client) Get(ctx context.Context, keys []Key) ([][]Row, error) {
	c.metrics.Lookups.Add(int64(len(keys)))
	out := make([][]Row, len(keys))
	var (
		missKeys []Key
		missIDs  []string
		// where[id] lists the positions in keys of a missing key.
		where map[string][]int
		hits  int64
		buf   []byte
	)
	for i, k := range keys {
		if hasNull(k) {
			continue
		}
		var id string
		if len(k) == 1 && k[0].Kind() == row.KindString {
			id = k[0].AsString() // its own identity: no copy
		} else {
			buf = AppendKeyID(buf[:0], k)
			id = string(buf)
		}
		if c.cache != nil {
			if rows, ok := c.cache.Get(id); ok {
				hits++
				out[i] = rows
				continue
			}
		}
		if where == nil {
			where = map[string][]int{}
		}
		if w, ok := where[id]; ok {
			where[id] = append(w, i) // asked for again in this batch
			continue
		}
		where[id] = []int{i}
		missKeys = append(missKeys, k)
		missIDs = append(missIDs, id)
	}
	c.metrics.Hits.Add(hits)
	c.metrics.Misses.Add(int64(len(missKeys)))
	if len(missKeys) == 0 {
		return out, nil
	}
	res, read, err := c.fetch(ctx, missKeys)
	var bad *KeyErrors
	if err != nil && !errors.As(err, &bad) {
		return nil, err
	}
	var errs []error
	for j, id := range missIDs {
		if bad != nil && bad.Errs[j] != nil {
			if errs == nil {
				errs = make([]error, len(keys))
			}
			for _, i := range where[id] {
				errs[i] = bad.Errs[j]
			}
			continue // not cached: the same key fails the same way
		}
		rows := res[j]
		for _, i := range where[id] {
			out[i] = rows
		}
		if c.cache != nil {
			// A single string key's id is the key's own bytes, which may
			// sit in a decoder's arena block: keep a copy, not the block.
			c.cache.AddAt(strings.Clone(id), rows, read)
		}
	}
	if errs != nil {
		return out, &KeyErrors{Errs: errs}
	}
	return out, nil
}

// fetch calls the Lookuper, retrying with backoff. read is when the call
// that answered started (on the Client's clock): the answers are no
// older than that.
func (c *Client) fetch(ctx context.Context, keys []Key) ([][]Row, time.Time, error) {
	wait := c.cfg.Backoff
	var (
		last  error
		read  time.Time
		tries int
	)
	for try := 0; try <= c.cfg.Retries; try++ {
		tries = try + 1
		if try > 0 {
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return nil, read, fmt.Errorf("%w: %w (after %d tries; last error: %w)", ErrLookup, err, try, last)
			}
			wait = min(2*wait, 5*time.Second)
		}
		c.metrics.Queries.Add(1)
		read = c.cfg.Now()
		start := time.Now()
		qctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		res, err := c.l.Lookup(qctx, keys)
		cancel()
		c.metrics.observe(time.Since(start))
		var bad *KeyErrors
		if err == nil || errors.As(err, &bad) {
			if len(res) != len(keys) || (bad != nil && len(bad.Errs) != len(keys)) {
				return nil, read, fmt.Errorf("%w: the lookup answered %d keys of %d", ErrLookup, len(res), len(keys))
			}
			return res, read, err
		}
		c.metrics.Errors.Add(1)
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, read, fmt.Errorf("%w after %d tries: %w", ErrLookup, tries, last)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func hasNull(k Key) bool {
	for _, v := range k {
		if v.IsNull() {
			return true
		}
	}
	return false
}

// AppendKeyID appends an identity of k to dst: keys with equal text in
// every position (the integer 42 and the string "42" alike, as the
// external systems compare them once converted) have equal identities.
func AppendKeyID(dst []byte, k Key) []byte {
	if len(k) == 1 {
		return appendText(dst, k[0])
	}
	for _, v := range k {
		// Each part after its length: parts cannot run into each other.
		start := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = appendText(dst, v)
		binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	}
	return dst
}

// appendText appends v as text: strings as they are, numbers in their
// shortest form, timestamps in RFC 3339.
func appendText(dst []byte, v row.Value) []byte {
	switch v.Kind() {
	case row.KindString, row.KindJSON:
		return append(dst, v.AsString()...)
	case row.KindInt:
		return strconv.AppendInt(dst, v.AsInt(), 10)
	case row.KindFloat:
		f := v.AsFloat()
		if f == float64(int64(f)) && f < 1e15 && f > -1e15 {
			return strconv.AppendInt(dst, int64(f), 10)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case row.KindBool:
		return strconv.AppendBool(dst, v.AsBool())
	case row.KindTimestamp:
		return time.UnixMilli(v.AsInt()).UTC().AppendFormat(dst, time.RFC3339Nano)
	}
	return dst
}

// Text returns v as the text a lookup sends for it (see AppendKeyID).
func Text(v row.Value) string { return string(appendText(nil, v)) }

// keyError names the key of a failure in messages.
func keyString(k Key) string {
	parts := make([]string, len(k))
	for i, v := range k {
		parts[i] = Text(v)
	}
	return strings.Join(parts, ", ")
}
