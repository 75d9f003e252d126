package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Start says where a split begins; see connector.Start.
type Start = connector.Start

// The start positions, as in package connector.
const (
	StartEarliest = connector.StartEarliest
	StartLatest   = connector.StartLatest
	StartOffset   = connector.StartOffset
)

// ParseStart parses "earliest", "latest" or "offset".
func ParseStart(s string) (Start, error) { return connector.ParseStart(s) }

// Isolation says which records a source delivers; see connector.Isolation.
type Isolation = connector.Isolation

// The isolation levels, as in package connector.
const (
	ReadCommitted   = connector.ReadCommitted
	ReadUncommitted = connector.ReadUncommitted
)

// DefaultPollInterval is SourceConfig.PollInterval's default.
const DefaultPollInterval = 100 * time.Millisecond

// Errors of the source.
var (
	// ErrUnknownTopic: the topic does not exist on the cluster.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrDataLost: a split's next offset is no longer stored (retention or
	// truncation removed records the job has not read).
	ErrDataLost = errors.New("records deleted before they were read")
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// Brokers are the seed brokers, HOST:PORT.
	Brokers []string
	// Topic is the topic to read.
	Topic string
	// Partitions restricts the source to these partitions; nil means all.
	Partitions []int32
	// Group, when set, gives the start offsets (the group's committed
	// offsets) and receives offsets through CommitPosition.
	Group string
	// Start is where a split begins without a restored or group offset.
	Start Start
	// Offset is the first offset under StartOffset.
	Offset int64
	// Bounded reads up to the end offsets present when the job starts.
	Bounded bool
	// Isolation defaults to ReadCommitted.
	Isolation Isolation
	// PollInterval is the longest a Read waits for records; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// ClientOptions are added to every client (TLS, SASL, logging, ...).
	ClientOptions []kgo.Opt
}

// Source reads a Kafka topic; it implements
// stream.Source[connector.Message].
type Source struct {
	cfg SourceConfig

	mu     sync.Mutex
	splits []*split // from the last Splits call
}

var _ stream.Source[connector.Message] = (*Source)(nil)

// NewSource validates cfg and returns a source. It does not connect.
func NewSource(cfg SourceConfig) (*Source, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka source: no brokers")
	}
	if cfg.Topic == "" {
		return nil, errors.New("kafka source: no topic")
	}
	if cfg.Start < StartEarliest || cfg.Start > StartOffset {
		return nil, fmt.Errorf("kafka source %s: unknown start %d", cfg.Topic, cfg.Start)
	}
	if cfg.Start == StartOffset && cfg.Offset < 0 {
		return nil, fmt.Errorf("kafka source %s: negative start offset %d", cfg.Topic, cfg.Offset)
	}
	if cfg.Isolation != ReadCommitted && cfg.Isolation != ReadUncommitted {
		return nil, fmt.Errorf("kafka source %s: unknown isolation %d", cfg.Topic, cfg.Isolation)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	return &Source{cfg: cfg}, nil
}

func (s *Source) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...)}, s.cfg.ClientOptions...)
	return append(opts, extra...)
}

// Splits implements stream.Source: one split per partition, start and end
// offsets fixed now.
func (s *Source) Splits(ctx context.Context, _ int) ([]stream.Split[connector.Message], error) {
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", s.cfg.Topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, s.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: list start offsets: %w", s.cfg.Topic, err)
	}
	var ends kadm.ListedOffsets
	if s.cfg.Isolation == ReadCommitted {
		ends, err = adm.ListCommittedOffsets(ctx, s.cfg.Topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, s.cfg.Topic)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: list end offsets: %w", s.cfg.Topic, err)
	}
	first, last := map[int32]int64{}, map[int32]int64{}
	var listErr error
	collect := func(into map[int32]int64) func(kadm.ListedOffset) {
		return func(o kadm.ListedOffset) {
			if o.Topic != s.cfg.Topic {
				return
			}
			if o.Err != nil {
				if o.Partition < 0 {
					listErr = fmt.Errorf("kafka source: topic %s: %w (%v)", s.cfg.Topic, ErrUnknownTopic, o.Err)
				} else if listErr == nil {
					listErr = fmt.Errorf("kafka source: %s/%d: %w", s.cfg.Topic, o.Partition, o.Err)
				}
				return
			}
			into[o.Partition] = o.Offset
		}
	}
	starts.Each(collect(first))
	ends.Each(collect(last))
	if listErr != nil {
		return nil, listErr
	}
	if len(first) == 0 {
		return nil, fmt.Errorf("kafka source: topic %s: %w", s.cfg.Topic, ErrUnknownTopic)
	}
	var committed kadm.OffsetResponses
	if s.cfg.Group != "" {
		committed, err = adm.FetchOffsetsForTopics(ctx, s.cfg.Group, s.cfg.Topic)
		if errors.Is(err, kerr.GroupIDNotFound) {
			committed, err = nil, nil // a new group: nothing committed yet
		}
		if err != nil {
			return nil, fmt.Errorf("kafka source %s: group %s offsets: %w", s.cfg.Topic, s.cfg.Group, err)
		}
	}
	parts := s.cfg.Partitions
	if parts == nil {
		for p := range int32(len(first)) {
			parts = append(parts, p)
		}
	}
	out := make([]stream.Split[connector.Message], 0, len(parts))
	var made []*split
	for _, p := range parts {
		lo, ok := first[p]
		if !ok {
			return nil, fmt.Errorf("kafka source: topic %s has no partition %d", s.cfg.Topic, p)
		}
		hi := last[p]
		sp := &split{src: s, id: fmt.Sprintf("%s/%d", s.cfg.Topic, p), part: p, end: -1}
		switch s.cfg.Start {
		case StartEarliest:
			sp.next = lo
		case StartLatest:
			sp.next = hi
		case StartOffset:
			sp.next = min(max(s.cfg.Offset, lo), hi)
		}
		if o, ok := committed.Lookup(s.cfg.Topic, p); ok && o.Err == nil && o.At >= 0 {
			sp.next = o.At
		}
		if s.cfg.Bounded {
			sp.end = hi
		}
		sp.lagEnd.Store(hi)
		sp.lagPos.Store(sp.next)
		out = append(out, sp)
		made = append(made, sp)
	}
	s.mu.Lock()
	s.splits = made
	s.mu.Unlock()
	return out, nil
}

// CommitFinished commits the final position of every split of the last
// run to Group. Call it only once the job has ended successfully, when
// everything the splits read is durable downstream (a bounded run that
// finished); it is how a bounded run with a group records its progress
// without checkpoints. Without a group it does nothing.
func (s *Source) CommitFinished(ctx context.Context) error {
	if s.cfg.Group == "" {
		return nil
	}
	s.mu.Lock()
	splits := s.splits
	s.mu.Unlock()
	if len(splits) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka source %s: %w", s.cfg.Topic, err)
	}
	defer cl.Close()
	offs := kadm.Offsets{s.cfg.Topic: {}}
	for _, sp := range splits {
		offs[s.cfg.Topic][sp.part] = kadm.Offset{Topic: s.cfg.Topic, Partition: sp.part, At: sp.next, LeaderEpoch: -1}
	}
	res, err := kadm.NewClient(cl).CommitOffsets(ctx, s.cfg.Group, offs)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka source %s: commit offsets to group %s: %w", s.cfg.Topic, s.cfg.Group, err)
	}
	return nil
}

// split reads one partition through its own client, created at the first
// Read (after any Seek).
type split struct {
	src  *Source
	id   string
	part int32
	next int64 // offset after the last record delivered (or skipped)
	end  int64 // bounded: offsets below end only; -1 unbounded

	cl     *kgo.Client
	adm    *kadm.Client
	buf    []*kgo.Record
	bufOff int

	// wakeMu guards cancelPoll, the cancel of the poll in progress, and
	// woken, a Wake that came while none was.
	wakeMu     sync.Mutex
	cancelPoll context.CancelFunc
	woken      bool

	// lagEnd is the partition's end offset as last fetched (the last
	// stable offset under ReadCommitted), lagPos a copy of next; both for
	// Lag, read concurrently with Read.
	lagEnd, lagPos atomic.Int64
}

func (sp *split) ID() string { return sp.id }

// Position implements stream.Split: the next offset, 8 bytes big-endian.
func (sp *split) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(sp.next)) }

// Seek implements stream.Split; it must come before the first Read.
func (sp *split) Seek(pos []byte) error {
	v, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.id, err)
	}
	if sp.cl != nil {
		return fmt.Errorf("split %s: seek after the first read", sp.id)
	}
	sp.next = v
	sp.lagPos.Store(v)
	return nil
}

func decodePosition(pos []byte) (int64, error) {
	if len(pos) != 8 {
		return 0, fmt.Errorf("%w: %d bytes, want 8", stream.ErrBadPosition, len(pos))
	}
	v := int64(binary.BigEndian.Uint64(pos))
	if v < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", stream.ErrBadPosition, v)
	}
	return v, nil
}

func (sp *split) client() (*kgo.Client, error) {
	if sp.cl != nil {
		return sp.cl, nil
	}
	cfg := &sp.src.cfg
	iso := kgo.ReadUncommitted()
	if cfg.Isolation == ReadCommitted {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(sp.src.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: {sp.part: kgo.NewOffset().At(sp.next)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(iso),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(cfg.PollInterval),
	)...)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", sp.id, err)
	}
	sp.cl = cl
	return cl, nil
}

// Read implements stream.Split.
func (sp *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	defer func() { sp.lagPos.Store(sp.next) }()
	for {
		n := 0
		for n < len(dst) && sp.bufOff < len(sp.buf) {
			r := sp.buf[sp.bufOff]
			sp.buf[sp.bufOff] = nil
			sp.bufOff++
			if r.Offset < sp.next || sp.end >= 0 && r.Offset >= sp.end {
				continue
			}
			sp.next = r.Offset + 1
			if r.Attrs.IsControl() {
				continue // a transaction marker: it moves the position only
			}
			m := connector.Message{Key: r.Key, Value: r.Value, Origin: sp.id, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli()}
			if len(r.Headers) > 0 {
				m.Headers = make([]connector.Header, len(r.Headers))
				for i, h := range r.Headers {
					m.Headers[i] = connector.Header{Key: h.Key, Value: h.Value}
				}
			}
			dst[n] = m
			n++
		}
		if n > 0 {
			return n, nil
		}
		if sp.end >= 0 && sp.next >= sp.end {
			return 0, io.EOF
		}
		got, err := sp.poll(ctx)
		if err != nil || !got {
			return 0, err
		}
	}
}

// poll fetches the next records into buf; false when none came within the
// poll interval.
func (sp *split) poll(ctx context.Context) (bool, error) {
	cl, err := sp.client()
	if err != nil {
		return false, err
	}
	pctx, cancel := context.WithTimeout(ctx, sp.src.cfg.PollInterval)
	sp.wakeMu.Lock()
	if sp.woken && cl.BufferedFetchRecords() == 0 {
		// A barrier is waiting: let the runtime emit it.
		sp.woken = false
		sp.wakeMu.Unlock()
		cancel()
		return false, nil
	}
	sp.woken = false
	sp.cancelPoll = cancel
	sp.wakeMu.Unlock()
	defer func() {
		sp.wakeMu.Lock()
		sp.cancelPoll = nil
		sp.wakeMu.Unlock()
		cancel()
	}()
	fs := cl.PollFetches(pctx)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var ferr error
	fs.EachError(func(_ string, _ int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		if ferr == nil {
			var lost *kgo.ErrDataLoss
			if errors.As(err, &lost) || isOffsetOutOfRange(err) {
				ferr = fmt.Errorf("split %s: offset %d: %w: %v", sp.id, sp.next, ErrDataLost, err)
			} else {
				ferr = fmt.Errorf("split %s: %w", sp.id, err)
			}
		}
	})
	if ferr != nil {
		return false, ferr
	}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Partition != sp.part || p.Err != nil {
			return
		}
		end := p.HighWatermark
		if sp.src.cfg.Isolation == ReadCommitted && p.LastStableOffset >= 0 {
			end = p.LastStableOffset
		}
		if end >= 0 {
			sp.lagEnd.Store(end)
		}
	})
	sp.buf, sp.bufOff = sp.buf[:0], 0
	fs.EachRecord(func(r *kgo.Record) { sp.buf = append(sp.buf, r) })
	return len(sp.buf) > 0, nil
}

// Wake implements stream.Waker: a poll waiting for records returns at once
// (or the next one, if none is waiting), so that a checkpoint barrier
// leaves without waiting for the poll interval.
func (sp *split) Wake() {
	sp.wakeMu.Lock()
	defer sp.wakeMu.Unlock()
	if sp.cancelPoll != nil {
		sp.cancelPoll()
		return
	}
	sp.woken = true
}

// Buffered implements stream.Buffered: records fetched and not yet
// delivered, here or in the client.
func (sp *split) Buffered() bool {
	return sp.bufOff < len(sp.buf) || sp.cl != nil && sp.cl.BufferedFetchRecords() > 0
}

// Lag implements stream.Lagger: the records between the split's position
// and the end of the partition as last fetched (a bounded split: its end
// offset), never negative.
func (sp *split) Lag() int64 {
	end := sp.lagEnd.Load()
	if sp.end >= 0 {
		end = sp.end
	}
	return max(0, end-sp.lagPos.Load())
}

// CommitPosition commits pos (a Position taken at a checkpoint barrier) to
// the source's group, once the checkpoint that holds it has completed.
// Without a group it does nothing.
func (sp *split) CommitPosition(ctx context.Context, pos []byte) error {
	g := sp.src.cfg.Group
	if g == "" {
		return nil
	}
	at, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.id, err)
	}
	if sp.adm == nil {
		cl, err := kgo.NewClient(sp.src.clientOpts()...)
		if err != nil {
			return fmt.Errorf("split %s: %w", sp.id, err)
		}
		sp.adm = kadm.NewClient(cl)
	}
	topic := sp.src.cfg.Topic
	res, err := sp.adm.CommitOffsets(ctx, g, kadm.Offsets{topic: {sp.part: {Topic: topic, Partition: sp.part, At: at, LeaderEpoch: -1}}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("split %s: commit offset %d to group %s: %w", sp.id, at, g, err)
	}
	return nil
}

// Close implements io.Closer.
func (sp *split) Close() error {
	if sp.cl != nil {
		sp.cl.Close()
		sp.cl = nil
	}
	if sp.adm != nil {
		sp.adm.Close()
		sp.adm = nil
	}
	return nil
}

func isOffsetOutOfRange(err error) bool { return errors.Is(err, kerr.OffsetOutOfRange) }

var (
	_ stream.PositionCommitter = (*split)(nil)
	_ stream.Lagger            = (*split)(nil)
	_ stream.Buffered          = (*split)(nil)
	_ stream.Waker             = (*split)(nil)
)
