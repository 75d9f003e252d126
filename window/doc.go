// Package window defines the windows of Sluice's windowed aggregations and
// the assigners that put a record's timestamp into windows: tumbling
// (fixed, non-overlapping), sliding (fixed size, advancing by a slide, so a
// record belongs to size/slide windows) and session windows (per key,
// closed by a gap of inactivity, merged as records arrive), each in event
// time or processing time.
//
// Times are int64 milliseconds since the Unix epoch. A window is the
// half-open interval [Start, End); its last instant, End-1, is the
// timestamp of its results and the watermark at which it fires.
//
// # Triggers and lateness
//
// Windows use the event-time trigger: a window fires once when the
// watermark reaches its MaxTimestamp, and again for each late record that
// arrives within the allowed lateness (each firing emits the complete,
// updated result). A window's state is dropped when the watermark passes
// MaxTimestamp + lateness (CleanupTime); a record whose every window is past
// that point is late data, sent to the late side output or dropped and
// counted. In processing time a window fires when the wall clock passes its
// end, and lateness does not apply.
//
// # Sessions
//
// Two records of one key are in the same session when their timestamps are
// less than the gap apart; a session is [first, last+gap). Windows merge
// when they overlap; windows that only touch ([a,b) and [b,c)) stay apart,
// which makes results independent of the order in which records arrive
// within the out-of-orderness bound. (Flink also merges touching windows.)
package window
