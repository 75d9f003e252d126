package latbench

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Live is the state of a run for a progress display; its methods are safe
// for concurrent use.
type Live struct {
	mu       sync.Mutex
	mode     Mode
	phase    string
	since    time.Time
	warmup   time.Duration
	measure  time.Duration
	sent     *atomic.Int64
	received *atomic.Int64
}

func (l *Live) set(m Mode, phase string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode, l.phase, l.since = m, phase, time.Now()
	if phase != "draining" {
		l.sent, l.received = nil, nil
	}
}

func (l *Live) start(m Mode, warmup, measure time.Duration, sent, received *atomic.Int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode, l.phase, l.since = m, "load", time.Now()
	l.warmup, l.measure, l.sent, l.received = warmup, measure, sent, received
}

// Line describes what the run is doing now, on one line.
func (l *Live) Line() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mode == "" {
		return "latency bench: starting"
	}
	el := time.Since(l.since)
	s := fmt.Sprintf("%s: %s", l.mode, l.phase)
	switch {
	case l.phase == "load" && el < l.warmup:
		s = fmt.Sprintf("%s: warming up %v/%v", l.mode, el.Round(time.Second), l.warmup)
	case l.phase == "load":
		s = fmt.Sprintf("%s: measuring %v/%v", l.mode, (el - l.warmup).Round(time.Second), l.measure)
	case l.phase != "done":
		s += fmt.Sprintf(" (%v)", el.Round(time.Second))
	}
	if l.sent != nil {
		s += fmt.Sprintf("  measured sent %d received %d", l.sent.Load(), l.received.Load())
	}
	return s
}
