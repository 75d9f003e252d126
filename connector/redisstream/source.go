package redisstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Defaults of SourceConfig.
const (
	DefaultBatch     = 500
	DefaultBlock     = 100 * time.Millisecond
	DefaultClaimIdle = 5 * time.Minute
)

// ClaimSuffix is appended to Consumer to name the consumer that holds the
// entries the source claims from dead consumers (see the package doc).
const ClaimSuffix = "~claims"

// SourceConfig configures a Source.
type SourceConfig struct {
	// Options are the client's (Addr, Password, DB, TLS, timeouts).
	Options redis.Options
	// Stream is the stream read.
	Stream string
	// Group is the consumer group, created (with the stream, MKSTREAM)
	// when missing.
	Group string
	// Consumer is the consumer's name in the group. It must be stable
	// across restarts (its pending entries are read again on restart)
	// and unique among the group's live consumers.
	Consumer string
	// Latest creates a missing group at the stream's end ($) instead of
	// its beginning (0).
	Latest bool
	// Batch is the most entries one XREADGROUP returns. Default
	// DefaultBatch.
	Batch int
	// Block is how long XREADGROUP waits for new entries. Default
	// DefaultBlock; keep it short, checkpoint barriers wait for it.
	Block time.Duration
	// ClaimIdle: entries pending on other consumers for longer than this
	// are claimed (XAUTOCLAIM) and read here. It must exceed the longest
	// time a live consumer keeps an entry unacknowledged (the checkpoint
	// interval plus a checkpoint's duration). Default DefaultClaimIdle;
	// negative disables claiming.
	ClaimIdle time.Duration
	// ValueField is the entry field whose value becomes the message
	// value; an entry without it becomes a JSON object of all its
	// fields. Default "value".
	ValueField string
	// AckOnHandover acknowledges entries as soon as they are handed to
	// the pipeline (pipelines without checkpoints).
	AckOnHandover bool
	// Logger receives outages and reconnections. Default slog.Default().
	Logger *slog.Logger
}

// Source reads a Redis stream through a consumer group; it implements
// stream.Source[connector.Message] with one split (one consumer).
type Source struct {
	cfg   SourceConfig
	cli   *redis.Client
	meter *connector.Meter
}

var _ stream.Source[connector.Message] = (*Source)(nil)

// NewSource validates cfg and returns a source. It does not connect.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.Options.Addr == "" {
		cfg.Options.Addr = "127.0.0.1:6379"
	}
	switch {
	case cfg.Stream == "":
		return nil, errors.New("redis source: no stream")
	case cfg.Group == "":
		return nil, fmt.Errorf("redis source %s: no group", cfg.Stream)
	case cfg.Consumer == "":
		return nil, fmt.Errorf("redis source %s: no consumer", cfg.Stream)
	case cfg.Batch < 0:
		return nil, fmt.Errorf("redis source %s: negative batch", cfg.Stream)
	case cfg.Block < 0:
		return nil, fmt.Errorf("redis source %s: negative block", cfg.Stream)
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Block == 0 {
		cfg.Block = DefaultBlock
	}
	if cfg.ClaimIdle == 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.ValueField == "" {
		cfg.ValueField = "value"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Source{cfg: cfg, meter: connector.NewMeter()}, nil
}

// Meter implements connector.Metered: entries and bytes
// handed over, errors, reconnections and the group's lag (XINFO GROUPS).
func (s *Source) Meter() *connector.Meter { return s.meter }

// Splits implements stream.Source: one split, one consumer.
func (s *Source) Splits(context.Context, int) ([]stream.Split[connector.Message], error) {
	opts := s.cfg.Options
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	// No transparent retries: an XREADGROUP (or XAUTOCLAIM) that Redis
	// executed but whose answer a lost connection cut off has moved
	// entries into this consumer's pending list; retried by the client,
	// it would return the next entries and those would stay pending,
	// never handed over. The split sees the error instead and reads its
	// pending list again (Read).
	opts.MaxRetries = -1
	s.cli = redis.NewClient(&opts)
	sp := &split{src: s, claimed: map[entryID]struct{}{}, covered: map[string]struct{}{}, origin: "redis/" + s.cfg.Stream}
	return []stream.Split[connector.Message]{sp}, nil
}

// The phases of a split: its own pending entries, the pending entries of
// its claims consumer (both read from id 0, as a restart finds them), then
// new entries.
const (
	phaseOwnPEL = iota
	phaseClaimsPEL
	phaseLive
)

// split is the source's consumer. Read, Position and Seek run on the
// source task; CommitPosition on a goroutine of the checkpoint
// coordinator: mu guards what they share.
type split struct {
	src    *Source
	origin string

	mu sync.Mutex
	// own are the ids handed over from the consumer's own reads, not yet
	// acknowledged, in id order; ownHigh the last one handed over.
	own     []entryID
	ownHigh entryID
	// claimed are the entries claimed from other consumers and handed
	// over, not yet acknowledged.
	claimed map[entryID]struct{}
	closed  bool

	// Read's own state.
	ready     bool
	phase     int
	cursor    string
	restored  position
	restClaim map[entryID]struct{}
	// covered are pending entries a restored checkpoint covers (or
	// deleted from the stream) still to acknowledge.
	covered   map[string]struct{}
	claimAt   time.Time
	claimCur  string
	retryAt   time.Time
	backoff   time.Duration
	down      bool
	lastInfo  time.Time
	groupWarn bool
}

func (sp *split) ID() string { return sp.origin }

func (sp *split) claimsConsumer() string { return sp.src.cfg.Consumer + ClaimSuffix }

// Position implements stream.Split.
func (sp *split) Position() []byte {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	p := position{own: sp.ownHigh}
	for id := range sp.claimed {
		p.claims = append(p.claims, id)
	}
	slices.SortFunc(p.claims, entryID.cmp)
	return p.encode()
}

// Seek implements stream.Split.
func (sp *split) Seek(pos []byte) error {
	p, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.ID(), err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.restored = p
	sp.ownHigh = p.own
	sp.restClaim = map[entryID]struct{}{}
	for _, c := range p.claims {
		sp.restClaim[c] = struct{}{}
	}
	return nil
}

// fail records a failed command: an outage is logged once, and reads
// pause for the backoff.
func (sp *split) fail(what string, err error) {
	sp.src.meter.Errors.Add(1)
	sp.backoff = nextBackoff(sp.backoff)
	sp.retryAt = time.Now().Add(sp.backoff)
	if !sp.down {
		sp.down = true
		sp.src.cfg.Logger.Warn("redis source: server unreachable; retrying with backoff (unacknowledged entries stay pending)",
			"addr", sp.src.cfg.Options.Addr, "stream", sp.src.cfg.Stream, "group", sp.src.cfg.Group, "op", what, "err", err)
	}
}

func (sp *split) ok() {
	if sp.down {
		sp.down = false
		sp.src.meter.Reconnects.Add(1)
		sp.src.cfg.Logger.Info("redis source: reconnected", "addr", sp.src.cfg.Options.Addr, "stream", sp.src.cfg.Stream)
	}
	sp.backoff = 0
}

// ensureGroup creates the group (and the stream) when missing.
func (sp *split) ensureGroup(ctx context.Context) error {
	cfg := &sp.src.cfg
	start := "0"
	if cfg.Latest {
		start = "$"
	}
	err := sp.src.cli.XGroupCreateMkStream(ctx, cfg.Stream, cfg.Group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// permanent reports an error answer that a retry gets again.
func permanent(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "WRONGTYPE") || strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH")
}

// Read implements stream.Split.
func (sp *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	if d := time.Until(sp.retryAt); d > 0 {
		wait(ctx, min(d, sp.src.cfg.Block))
		return 0, nil
	}
	cfg := &sp.src.cfg
	if !sp.ready {
		if err := sp.ensureGroup(ctx); err != nil {
			if permanent(err) {
				return 0, fmt.Errorf("redis source %s: create group %s: %w", cfg.Stream, cfg.Group, err)
			}
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			sp.fail("XGROUP CREATE", err)
			return 0, nil
		}
		sp.ready = true
		sp.cursor = "0"
	}
	sp.info(ctx)
	sp.ackCovered(ctx)
	count := int64(min(cfg.Batch, len(dst)))
	var n int
	var err error
	switch sp.phase {
	case phaseOwnPEL, phaseClaimsPEL:
		n, err = sp.readPEL(ctx, dst[:count])
	default:
		if n, err = sp.claim(ctx, dst[:count]); err == nil && n == 0 {
			n, err = sp.readNew(ctx, dst[:count])
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if isNoGroup(err) {
			// The group (or the stream) was deleted under the job.
			sp.ready = false
			if !sp.groupWarn {
				sp.groupWarn = true
				cfg.Logger.Warn("redis source: the consumer group is gone; creating it again", "stream", cfg.Stream, "group", cfg.Group)
			}
			return 0, nil
		}
		if permanent(err) {
			return 0, fmt.Errorf("redis source %s: %w", cfg.Stream, err)
		}
		sp.fail("XREADGROUP", err)
		// Redis may have delivered entries whose answer was lost: they
		// are pending on this consumer (or the claims consumer). Read the
		// pending lists again, from after the last entry handed over.
		sp.phase, sp.cursor = phaseOwnPEL, "0"
		sp.mu.Lock()
		if (sp.ownHigh != entryID{}) {
			sp.cursor = sp.ownHigh.String()
		}
		sp.mu.Unlock()
		return 0, nil
	}
	sp.ok()
	if n > 0 && cfg.AckOnHandover {
		sp.ackAll(ctx)
	}
	return n, nil
}

// readPEL reads the next entries of the consumer's (then the claims
// consumer's) pending list: those the restored checkpoint covers are
// acknowledged, the rest handed over.
func (sp *split) readPEL(ctx context.Context, dst []connector.Message) (int, error) {
	cfg := &sp.src.cfg
	consumer := cfg.Consumer
	if sp.phase == phaseClaimsPEL {
		consumer = sp.claimsConsumer()
	}
	res, err := sp.src.cli.XReadGroup(ctx, &redis.XReadGroupArgs{Group: cfg.Group, Consumer: consumer, Streams: []string{cfg.Stream, sp.cursor}, Count: int64(len(dst))}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	var msgs []redis.XMessage
	if len(res) > 0 {
		msgs = res[0].Messages
	}
	if len(msgs) == 0 {
		sp.phase++
		sp.cursor = "0"
		return 0, nil
	}
	n := 0
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, m := range msgs {
		sp.cursor = m.ID
		id, err := parseID(m.ID)
		if err != nil {
			return n, err
		}
		if m.Values == nil { // deleted from the stream (XDEL, trimming)
			sp.covered[m.ID] = struct{}{}
			continue
		}
		if sp.phase == phaseOwnPEL {
			if id.cmp(sp.restored.own) <= 0 {
				sp.covered[m.ID] = struct{}{}
				continue
			}
			sp.own = append(sp.own, id)
			sp.ownHigh = id
		} else {
			if _, ok := sp.restClaim[id]; ok {
				sp.covered[m.ID] = struct{}{}
				continue
			}
			if _, ok := sp.claimed[id]; ok {
				continue // handed over already (a pass after an outage)
			}
			sp.claimed[id] = struct{}{}
		}
		sp.fill(&dst[n], m, id)
		n++
	}
	return n, nil
}

// readNew reads new entries (">").
func (sp *split) readNew(ctx context.Context, dst []connector.Message) (int, error) {
	cfg := &sp.src.cfg
	res, err := sp.src.cli.XReadGroup(ctx, &redis.XReadGroupArgs{Group: cfg.Group, Consumer: cfg.Consumer, Streams: []string{cfg.Stream, ">"}, Count: int64(len(dst)), Block: cfg.Block}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	if len(res) == 0 {
		return 0, nil
	}
	n := 0
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, m := range res[0].Messages {
		id, err := parseID(m.ID)
		if err != nil {
			return n, err
		}
		sp.own = append(sp.own, id)
		sp.ownHigh = id
		sp.fill(&dst[n], m, id)
		n++
	}
	return n, nil
}

// claim runs one XAUTOCLAIM step when it is due: entries idle on other
// consumers for ClaimIdle move to the claims consumer and are handed
// over. An entry of this split's own that waited that long for its
// checkpoint is given back to the consumer (XCLAIM) and not handed over
// again.
func (sp *split) claim(ctx context.Context, dst []connector.Message) (int, error) {
	cfg := &sp.src.cfg
	if cfg.ClaimIdle < 0 || time.Now().Before(sp.claimAt) {
		return 0, nil
	}
	if sp.claimCur == "" {
		sp.claimCur = "0-0"
	}
	msgs, next, err := sp.src.cli.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: cfg.Stream, Group: cfg.Group, Consumer: sp.claimsConsumer(), MinIdle: cfg.ClaimIdle, Start: sp.claimCur, Count: int64(len(dst))}).Result()
	if err != nil {
		return 0, err
	}
	if next == "0-0" || next == "" {
		// A full pass: the next is due in a while.
		sp.claimCur = ""
		sp.claimAt = time.Now().Add(min(max(cfg.ClaimIdle/4, time.Second), time.Minute))
	} else {
		sp.claimCur = next
	}
	n := 0
	var giveBack []string
	sp.mu.Lock()
	for _, m := range msgs {
		id, err := parseID(m.ID)
		if err != nil {
			sp.mu.Unlock()
			return n, err
		}
		if _, ok := sp.claimed[id]; ok {
			continue
		}
		if _, ok := sp.covered[m.ID]; ok {
			continue
		}
		if _, ok := slices.BinarySearchFunc(sp.own, id, entryID.cmp); ok {
			giveBack = append(giveBack, m.ID)
			continue
		}
		if m.Values == nil {
			sp.covered[m.ID] = struct{}{}
			continue
		}
		sp.claimed[id] = struct{}{}
		sp.fill(&dst[n], m, id)
		n++
	}
	sp.mu.Unlock()
	if len(giveBack) > 0 {
		if err := sp.src.cli.XClaimJustID(ctx, &redis.XClaimArgs{Stream: cfg.Stream, Group: cfg.Group, Consumer: cfg.Consumer, Messages: giveBack}).Err(); err != nil {
			sp.src.meter.Errors.Add(1)
		}
	}
	if n > 0 {
		cfg.Logger.Info("redis source: claimed entries idle on other consumers", "stream", cfg.Stream, "group", cfg.Group, "entries", n, "min_idle", cfg.ClaimIdle)
	}
	return n, nil
}

// bytesOf is a field value's bytes (go-redis returns strings).
func bytesOf(v any) []byte {
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	return fmt.Append(nil, v)
}

// fill turns entry m (whose id is id) into a message.
func (sp *split) fill(dst *connector.Message, m redis.XMessage, id entryID) {
	cfg := &sp.src.cfg
	var value []byte
	if v, ok := m.Values[cfg.ValueField]; ok {
		value = bytesOf(v)
	} else {
		value, _ = json.Marshal(m.Values) // strings only: cannot fail
	}
	*dst = connector.Message{Value: value, Timestamp: int64(id.ms), Origin: sp.origin, Offset: -1,
		Headers: []connector.Header{{Key: "redis-id", Value: []byte(m.ID)}}}
	if k, ok := m.Values["key"]; ok && cfg.ValueField != "key" {
		dst.Key = bytesOf(k)
	}
	sp.src.meter.Records.Add(1)
	sp.src.meter.Bytes.Add(int64(len(value)))
}

// info reads the group's lag about once a second.
func (sp *split) info(ctx context.Context) {
	if time.Since(sp.lastInfo) < time.Second {
		return
	}
	sp.lastInfo = time.Now()
	groups, err := sp.src.cli.XInfoGroups(ctx, sp.src.cfg.Stream).Result()
	if err != nil {
		return
	}
	for _, g := range groups {
		if g.Name == sp.src.cfg.Group {
			if g.Lag >= 0 {
				sp.src.meter.Lag.Store(g.Lag)
			}
		}
	}
}

// ackCovered acknowledges the pending entries a restored checkpoint
// covers (kept for the next Read if the server does not answer).
func (sp *split) ackCovered(ctx context.Context) {
	if len(sp.covered) == 0 {
		return
	}
	ids := make([]string, 0, len(sp.covered))
	for id := range sp.covered {
		ids = append(ids, id)
	}
	if err := sp.xack(ctx, ids); err != nil {
		sp.src.meter.Errors.Add(1)
		return
	}
	clear(sp.covered)
}

// ackAll acknowledges everything handed over (AckOnHandover).
func (sp *split) ackAll(ctx context.Context) {
	sp.mu.Lock()
	ids := make([]string, 0, len(sp.own)+len(sp.claimed))
	for _, id := range sp.own {
		ids = append(ids, id.String())
	}
	for id := range sp.claimed {
		ids = append(ids, id.String())
	}
	sp.mu.Unlock()
	if err := sp.xack(ctx, ids); err != nil {
		sp.src.meter.Errors.Add(1)
		return
	}
	sp.mu.Lock()
	sp.own = sp.own[:0]
	clear(sp.claimed)
	sp.mu.Unlock()
}

// xack acknowledges ids in chunks, in one round trip.
func (sp *split) xack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	cfg := &sp.src.cfg
	_, err := sp.src.cli.Pipelined(ctx, func(p redis.Pipeliner) error {
		for len(ids) > 0 {
			k := min(len(ids), 1000)
			p.XAck(ctx, cfg.Stream, cfg.Group, ids[:k]...)
			ids = ids[k:]
		}
		return nil
	})
	return err
}

// Lag implements stream.Lagger: the group's lag as last read.
func (sp *split) Lag() int64 { return sp.src.meter.Lag.Load() }

// CommitPosition implements stream.PositionCommitter: once a checkpoint
// completes, it acknowledges (XACK) the entries it covers. A failure
// leaves them pending; the next completed checkpoint acknowledges them.
func (sp *split) CommitPosition(ctx context.Context, pos []byte) error {
	p, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.ID(), err)
	}
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil
	}
	k := sort.Search(len(sp.own), func(i int) bool { return sp.own[i].cmp(p.own) > 0 })
	ids := make([]string, 0, k+len(p.claims))
	for _, id := range sp.own[:k] {
		ids = append(ids, id.String())
	}
	var claims []entryID
	for _, c := range p.claims {
		if _, ok := sp.claimed[c]; ok {
			claims = append(claims, c)
			ids = append(ids, c.String())
		}
	}
	sp.mu.Unlock()
	if err := sp.xack(ctx, ids); err != nil {
		sp.src.meter.Errors.Add(1)
		return fmt.Errorf("split %s: XACK of %d entries: %w (they stay pending; the next checkpoint acknowledges them)", sp.ID(), len(ids), err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.own = append(sp.own[:0], sp.own[k:]...)
	for _, c := range claims {
		delete(sp.claimed, c)
	}
	return nil
}

// Close implements io.Closer.
func (sp *split) Close() error {
	sp.mu.Lock()
	sp.closed = true
	sp.mu.Unlock()
	return sp.src.cli.Close()
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(max(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Reconnection backoff: doubling from minBackoff up to maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

func nextBackoff(d time.Duration) time.Duration {
	if d < minBackoff {
		return minBackoff
	}
	return min(2*d, maxBackoff)
}

var (
	_ stream.PositionCommitter = (*split)(nil)
	_ stream.Lagger            = (*split)(nil)
)
