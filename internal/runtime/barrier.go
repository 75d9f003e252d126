package runtime

import "fmt"

// Aligner aligns checkpoint barriers over an operator's input channels, as
// in asynchronous barrier snapshotting (Carbone et al. 2015): once a channel
// has delivered barrier n, the operator holds back that channel's later
// events until every other live channel has delivered barrier n too. Only
// then does the operator snapshot its state and forward the barrier.
//
// Aligner is a plain state machine; the caller owns the queues of held-back
// events. Barriers are injected at the sources by the job's checkpoint
// coordinator (stream.WithCheckpointing).
type Aligner struct {
	seen    []bool
	ended   []bool
	id      uint64
	active  bool
	pending int
}

// NewAligner returns an aligner for n input channels.
func NewAligner(n int) *Aligner {
	return &Aligner{seen: make([]bool, n), ended: make([]bool, n)}
}

// Blocked reports whether events of channel ch must be held back because
// the channel already delivered the barrier being aligned.
func (a *Aligner) Blocked(ch int) bool { return a.active && a.seen[ch] }

// Aligning reports whether an alignment is in progress.
func (a *Aligner) Aligning() bool { return a.active }

// Barrier records barrier id arriving on channel ch. It returns true when
// the barrier is complete (every live channel delivered it); the caller then
// snapshots, forwards the barrier and replays the events it held back.
func (a *Aligner) Barrier(ch int, id uint64) (bool, error) {
	if !a.active {
		a.active = true
		a.id = id
		a.pending = 0
		for i := range a.seen {
			a.seen[i] = false
			if !a.ended[i] {
				a.pending++
			}
		}
	} else if id != a.id {
		return false, fmt.Errorf("barrier %d on channel %d while aligning barrier %d", id, ch, a.id)
	}
	if a.seen[ch] {
		return false, fmt.Errorf("barrier %d delivered twice on channel %d", id, ch)
	}
	a.seen[ch] = true
	a.pending--
	return a.finish(), nil
}

// End records that channel ch ended; an ended channel no longer takes part
// in alignment. It returns true when that completes a pending alignment.
func (a *Aligner) End(ch int) bool {
	if a.ended[ch] {
		return false
	}
	a.ended[ch] = true
	if a.active && !a.seen[ch] {
		a.pending--
		return a.finish()
	}
	return false
}

// Abandon gives up the alignment in progress: a later barrier overtook it
// (its checkpoint was aborted before every source emitted it). The caller
// replays the events it held back and then handles the later barrier.
func (a *Aligner) Abandon() { a.active = false }

// ID returns the barrier being aligned or last aligned.
func (a *Aligner) ID() uint64 { return a.id }

func (a *Aligner) finish() bool {
	if a.pending > 0 {
		return false
	}
	a.active = false
	return true
}

// Pending returns the number of channels the current alignment waits for.
func (a *Aligner) Pending() int { return a.pending }
