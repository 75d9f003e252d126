package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

// Options configure an Observer. Every field is optional.
type Options struct {
	// Log is the embedded log whose topics are shown; nil shows none.
	Log *logstore.Log
	// Offsets holds consumer groups' committed offsets; nil shows no groups.
	Offsets *logstore.OffsetStore
	// Groups reports live consumer groups with their members; nil shows
	// only committed offsets.
	Groups func() []LiveGroup
	// Interval is the sampling period of Run; 0 means one second.
	Interval time.Duration
	// History is how long samples are kept for plots; 0 means ten minutes.
	History time.Duration
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Observer samples the log and the registered jobs and keeps their latest
// figures and a short history. It is safe for concurrent use.
type Observer struct {
	opts Options

	mu      sync.Mutex
	jobs    map[string]*trackedJob
	order   []string // registration order of job ids
	topics  map[logstore.TopicPartition]partSample
	snap    *Snapshot
	subs    map[chan struct{}]struct{}
	samples int
}

// ErrUnknownJob is returned for a job id that is not registered.
var ErrUnknownJob = errors.New("unknown job")

// ErrUnknownTopic is returned for a topic name the log does not have.
var ErrUnknownTopic = errors.New("unknown topic")

// ErrDuplicateJob is returned by Register for an id already registered.
var ErrDuplicateJob = errors.New("job id already registered")

// ErrInvalidJobID is returned by Register for an id that is empty or has
// characters other than letters, digits, '.', '_' and '-'.
var ErrInvalidJobID = errors.New("invalid job id")

var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// JobID turns a name (such as a pipeline's) into a valid job id: letters,
// digits, '.', '_' and '-' are kept, any other character becomes '-', the
// result is cut at 128 bytes, and "job" stands for a name with nothing
// usable.
func JobID(name string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= 128 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if strings.Trim(b.String(), "-") == "" {
		return "job"
	}
	return b.String()
}

// New returns an Observer; call Run (or Sample) to take samples.
func New(opts Options) *Observer {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.History <= 0 {
		opts.History = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Observer{
		opts:   opts,
		jobs:   make(map[string]*trackedJob),
		topics: make(map[logstore.TopicPartition]partSample),
		subs:   make(map[chan struct{}]struct{}),
	}
}

// SetLog sets the embedded log whose topics are shown, for callers that
// open the log after the Observer.
func (o *Observer) SetLog(l *logstore.Log) {
	o.mu.Lock()
	o.opts.Log = l
	o.mu.Unlock()
}

func (o *Observer) log() *logstore.Log {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opts.Log
}

// SetOffsets sets the consumer-offset store whose groups are shown, for
// callers that open it after the Observer (the Kafka listener opens it).
func (o *Observer) SetOffsets(s *logstore.OffsetStore) {
	o.mu.Lock()
	o.opts.Offsets = s
	o.mu.Unlock()
}

// Interval returns the sampling period.
func (o *Observer) Interval() time.Duration { return o.opts.Interval }

// Register adds a running job under id (letters, digits, '.', '_', '-').
// The job stays listed after it ends, with its final status, until the
// returned function is called. Options add what the job cannot say about
// itself, such as its graph.
func (o *Observer) Register(id string, job Job, opts ...JobOption) (unregister func(), err error) {
	if !jobIDPattern.MatchString(id) {
		return nil, fmt.Errorf("register job %q: %w", id, ErrInvalidJobID)
	}
	if job == nil {
		return nil, fmt.Errorf("register job %q: nil job", id)
	}
	t := &trackedJob{id: id, job: job, started: o.opts.Now()}
	if pl, ok := job.(Planner); ok {
		p := pl.Plan()
		t.plan = &p
		g := GraphOf(p)
		t.graph = &g
	}
	for _, opt := range opts {
		opt(t)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.jobs[id]; ok {
		return nil, fmt.Errorf("register job %q: %w", id, ErrDuplicateJob)
	}
	o.jobs[id] = t
	o.order = append(o.order, id)
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			delete(o.jobs, id)
			for i, x := range o.order {
				if x == id {
					o.order = append(o.order[:i], o.order[i+1:]...)
					break
				}
			}
		})
	}, nil
}

// Run samples every Interval until ctx ends.
func (o *Observer) Run(ctx context.Context) {
	o.Sample()
	t := time.NewTicker(o.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.Sample()
		}
	}
}

// Sample reads the log and every registered job now, computes rates
// against the previous sample, appends to the history and wakes the
// subscribers. It returns the new snapshot.
func (o *Observer) Sample() *Snapshot {
	o.mu.Lock()
	now := o.opts.Now()
	snap := &Snapshot{Time: now, Seq: o.samples + 1}
	snap.Topics = o.sampleTopicsLocked(now)
	snap.Groups = o.sampleGroupsLocked(snap.Topics)
	for _, id := range o.order {
		snap.Jobs = append(snap.Jobs, o.jobs[id].sample(now, o.opts.History))
	}
	o.samples++
	o.snap = snap
	subs := make([]chan struct{}, 0, len(o.subs))
	for c := range o.subs {
		subs = append(subs, c)
	}
	o.mu.Unlock()
	for _, c := range subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	return snap
}

// Snapshot returns the latest sample, taking one if none was taken yet.
// The result is shared: do not modify it.
func (o *Observer) Snapshot() *Snapshot {
	o.mu.Lock()
	s := o.snap
	o.mu.Unlock()
	if s == nil {
		return o.Sample()
	}
	return s
}

// Subscribe returns a channel that receives a value after each new sample
// (values are dropped while the reader is behind: read Snapshot after
// each), and a function that ends the subscription.
func (o *Observer) Subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	o.mu.Lock()
	o.subs[c] = struct{}{}
	o.mu.Unlock()
	return c, func() {
		o.mu.Lock()
		delete(o.subs, c)
		o.mu.Unlock()
	}
}

// History returns the retained history of job id, oldest first.
func (o *Observer) History(id string) ([]HistoryPoint, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, ErrUnknownJob)
	}
	return append([]HistoryPoint(nil), t.history...), nil
}

// Snapshot is one sample of everything an Observer watches.
type Snapshot struct {
	Time   time.Time     `json:"time"`
	Seq    int           `json:"seq"`
	Topics []TopicStatus `json:"topics"`
	Groups []GroupStatus `json:"groups"`
	Jobs   []JobStatus   `json:"jobs"`
}

// Job returns the status of job id in the snapshot.
func (s *Snapshot) Job(id string) (JobStatus, error) {
	for _, j := range s.Jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return JobStatus{}, fmt.Errorf("job %q: %w", id, ErrUnknownJob)
}

// Topic returns the status of the named topic in the snapshot.
func (s *Snapshot) Topic(name string) (TopicStatus, error) {
	i := sort.Search(len(s.Topics), func(i int) bool { return s.Topics[i].Name >= name })
	if i < len(s.Topics) && s.Topics[i].Name == name {
		return s.Topics[i], nil
	}
	return TopicStatus{}, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
}

// Group returns the named group's status in the snapshot.
func (s *Snapshot) Group(name string) (GroupStatus, bool) {
	for _, g := range s.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return GroupStatus{}, false
}

// rate returns the per-second rate of a counter that went from prev to
// cur over dt, 0 when dt is not positive or the counter went backwards
// (a restart).
func rate(prev, cur int64, dt time.Duration) float64 {
	if dt <= 0 || cur < prev {
		return 0
	}
	return float64(cur-prev) / dt.Seconds()
}
