package queries

import "github.com/sluicehq/sluice/internal/memlimit"

// Usage is a reading of the process's resource counters; two readings
// around a run fill a Result's memory and GC figures (SetUsage).
type Usage struct {
	// GCCPU and GoCPU are the runtime's estimates of the CPU seconds the
	// garbage collector used and of all the CPU seconds it used
	// (runtime/metrics /cpu/classes/gc/total over total minus idle).
	GCCPU, GoCPU float64
}

// MeasureUsage reads the counters now.
func MeasureUsage() Usage {
	gc, used := memlimit.CPU()
	return Usage{GCCPU: gc, GoCPU: used}
}

// SetUsage sets r.GCCPUShare from two readings around the run and
// r.MaxRSSBytes to the process's peak RSS so far.
func (r *Result) SetUsage(start, end Usage) {
	if d := end.GoCPU - start.GoCPU; d > 0 {
		r.GCCPUShare = (end.GCCPU - start.GCCPU) / d
	}
	r.MaxRSSBytes = maxRSSBytes()
}
