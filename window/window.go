package window

import (
	"fmt"
	"time"
)

// Window is the half-open time interval [Start, End), in milliseconds.
type Window struct {
	Start int64
	End   int64
}

// MaxTimestamp returns the last instant that belongs to the window.
func (w Window) MaxTimestamp() int64 { return w.End - 1 }

// Overlaps reports whether w and o share an instant.
func (w Window) Overlaps(o Window) bool { return w.Start < o.End && o.Start < w.End }

// Cover returns the smallest window containing w and o.
func (w Window) Cover(o Window) Window {
	if o.Start < w.Start {
		w.Start = o.Start
	}
	if o.End > w.End {
		w.End = o.End
	}
	return w
}

// String formats the window as [start,end) in UTC.
func (w Window) String() string {
	return fmt.Sprintf("[%s,%s)", time.UnixMilli(w.Start).UTC().Format("15:04:05.000"),
		time.UnixMilli(w.End).UTC().Format("15:04:05.000"))
}

// Domain is the notion of time windows are based on.
type Domain uint8

const (
	// EventTime windows use the records' timestamps and fire on watermarks.
	EventTime Domain = iota
	// ProcessingTime windows use the wall clock when a record is processed.
	ProcessingTime
)

// Assigner puts a timestamp into windows.
type Assigner interface {
	// Assign appends the windows that contain ts to dst and returns it.
	Assign(ts int64, dst []Window) []Window
	// Domain returns event or processing time.
	Domain() Domain
	// Gap returns the session gap for merging (session) assigners and 0 for
	// the others.
	Gap() int64
}

// Fixed is implemented by the assigners of windows of one fixed size (the
// tumbling and sliding ones): windows of size ms starting every slide ms,
// shifted by offset ms from the epoch. Operators use it to compute a
// record's windows without a call per record.
type Fixed interface {
	Span() (size, slide, offset int64)
}

// CleanupTime returns the watermark at which the state of w is dropped.
func CleanupTime(w Window, lateness int64) int64 {
	t := w.MaxTimestamp() + lateness
	if t < w.MaxTimestamp() { // overflow
		return w.MaxTimestamp()
	}
	return t
}

// IsLate reports whether a record can no longer update w: the watermark has
// passed w's cleanup time.
func IsLate(w Window, lateness, watermark int64) bool {
	return CleanupTime(w, lateness) <= watermark
}

// floorMod returns x mod m in [0, m).
func floorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

type tumbling struct {
	size, offset int64
	domain       Domain
}

func (t tumbling) Assign(ts int64, dst []Window) []Window {
	start := ts - floorMod(ts-t.offset, t.size)
	return append(dst, Window{Start: start, End: start + t.size})
}
func (t tumbling) Domain() Domain                    { return t.domain }
func (t tumbling) Span() (size, slide, offset int64) { return t.size, t.size, t.offset }
func (t tumbling) Gap() int64                        { return 0 }

// Tumbling returns event-time tumbling windows of the given size, aligned
// to the epoch: [k*size, (k+1)*size). size must be at least 1 ms.
func Tumbling(size time.Duration) Assigner {
	return tumbling{size: mustMillis(size, "tumbling window size")}
}

// TumblingProcessingTime is Tumbling in processing time.
func TumblingProcessingTime(size time.Duration) Assigner {
	return tumbling{size: mustMillis(size, "tumbling window size"), domain: ProcessingTime}
}

type sliding struct {
	size, slide int64
	domain      Domain
}

func (s sliding) Assign(ts int64, dst []Window) []Window {
	last := ts - floorMod(ts, s.slide)
	for start := last; start > ts-s.size; start -= s.slide {
		dst = append(dst, Window{Start: start, End: start + s.size})
	}
	return dst
}
func (s sliding) Domain() Domain                    { return s.domain }
func (s sliding) Span() (size, slide, offset int64) { return s.size, s.slide, 0 }
func (s sliding) Gap() int64                        { return 0 }

// Sliding returns event-time sliding (hopping) windows of the given size
// starting every slide: [k*slide, k*slide+size). A record belongs to
// ceil(size/slide) windows. size and slide must be at least 1 ms.
func Sliding(size, slide time.Duration) Assigner {
	return sliding{size: mustMillis(size, "sliding window size"), slide: mustMillis(slide, "sliding window slide")}
}

// SlidingProcessingTime is Sliding in processing time.
func SlidingProcessingTime(size, slide time.Duration) Assigner {
	return sliding{size: mustMillis(size, "sliding window size"), slide: mustMillis(slide, "sliding window slide"), domain: ProcessingTime}
}

type session struct {
	gap    int64
	domain Domain
}

func (s session) Assign(ts int64, dst []Window) []Window {
	return append(dst, Window{Start: ts, End: ts + s.gap})
}
func (s session) Domain() Domain { return s.domain }
func (s session) Gap() int64     { return s.gap }

// Session returns event-time session windows: a key's session ends after a
// gap of inactivity; sessions merge as records arrive.
func Session(gap time.Duration) Assigner {
	return session{gap: mustMillis(gap, "session gap")}
}

// SessionProcessingTime is Session in processing time.
func SessionProcessingTime(gap time.Duration) Assigner {
	return session{gap: mustMillis(gap, "session gap"), domain: ProcessingTime}
}

// mustMillis converts d to milliseconds; durations under 1 ms are a
// programming error in the pipeline's construction, like a negative slice
// length, so it panics with a message saying which parameter.
func mustMillis(d time.Duration, what string) int64 {
	ms := d.Milliseconds()
	if ms < 1 {
		panic(fmt.Sprintf("window: %s %v is below 1ms", what, d))
	}
	return ms
}
