package queries

// CPUSeconds returns the user and system CPU time of the whole process
// so far, in seconds (0 where the platform does not tell): what the
// runner divides events by for events per core-second.
func CPUSeconds() float64 { return cpuSeconds() }
