package runtime

// WatermarkTracker combines the watermarks of an operator's input channels:
// the combined watermark is the minimum over the channels that are neither
// idle nor ended; when every live channel is idle it is the maximum of
// their watermarks. It never goes backwards. The zero value is not usable;
// create it with NewWatermarkTracker.
type WatermarkTracker struct {
	wm       []int64
	idle     []bool
	ended    []bool
	combined int64
	allIdle  bool
	nEnded   int
}

// NewWatermarkTracker returns a tracker for n input channels.
func NewWatermarkTracker(n int) *WatermarkTracker {
	t := &WatermarkTracker{
		wm:       make([]int64, n),
		idle:     make([]bool, n),
		ended:    make([]bool, n),
		combined: MinWatermark,
	}
	for i := range t.wm {
		t.wm[i] = MinWatermark
	}
	return t
}

// Combined returns the current combined watermark.
func (t *WatermarkTracker) Combined() int64 { return t.combined }

// Channels returns the number of input channels.
func (t *WatermarkTracker) Channels() int { return len(t.wm) }

// AllEnded reports whether every channel has ended.
func (t *WatermarkTracker) AllEnded() bool { return t.nEnded == len(t.wm) }

// AllIdle reports whether every channel that has not ended is idle (and at
// least one is).
func (t *WatermarkTracker) AllIdle() bool { return t.allIdle }

// Active marks channel ch as active again (it delivered a record). It
// returns true when the operator as a whole leaves the all-idle state.
func (t *WatermarkTracker) Active(ch int) bool {
	if !t.idle[ch] {
		return false
	}
	t.idle[ch] = false
	was := t.allIdle
	t.allIdle = false
	return was
}

// Watermark records watermark wm on channel ch (which also makes it active)
// and returns the new combined watermark and whether it advanced.
func (t *WatermarkTracker) Watermark(ch int, wm int64) (int64, bool) {
	t.Active(ch)
	if wm > t.wm[ch] {
		t.wm[ch] = wm
	}
	return t.recompute()
}

// Idle marks channel ch idle. It returns the new combined watermark and
// whether it advanced (an idle channel no longer holds it back).
func (t *WatermarkTracker) Idle(ch int) (int64, bool) {
	t.idle[ch] = true
	return t.recompute()
}

// End marks channel ch ended. It returns the new combined watermark and
// whether it advanced.
func (t *WatermarkTracker) End(ch int) (int64, bool) {
	if !t.ended[ch] {
		t.ended[ch] = true
		t.nEnded++
	}
	return t.recompute()
}

func (t *WatermarkTracker) recompute() (int64, bool) {
	min := MaxWatermark
	active := 0
	idle := 0
	for i, w := range t.wm {
		if t.ended[i] {
			continue
		}
		if t.idle[i] {
			idle++
			continue
		}
		active++
		if w < min {
			min = w
		}
	}
	t.allIdle = active == 0 && idle > 0
	if active == 0 {
		if idle > 0 {
			// Every live channel is idle: nothing holds time back, so
			// advance to the highest watermark any of them reached (as
			// Flink does); the first record of a channel that wakes up
			// may then be late.
			max := MinWatermark
			for i, w := range t.wm {
				if !t.ended[i] && w > max {
					max = w
				}
			}
			min = max
		} else {
			// Every channel ended: time is complete.
			min = MaxWatermark
		}
	}
	if min > t.combined {
		t.combined = min
		return min, true
	}
	return t.combined, false
}
