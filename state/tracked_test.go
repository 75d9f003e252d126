package state

import (
	"fmt"
	"testing"
)

// trackedKeyed returns a memory backend of key groups r (of maxPar) that
// tracks changes for incremental snapshots, and a keyed context over
// string keys on it: the setup of the change-section tests.
func trackedKeyed(maxPar int, r KeyGroupRange) (*Memory, *Keyed[string]) {
	b := NewMemory(maxPar, r)
	b.EnableChangeTracking()
	return b, NewKeyed[string](b)
}

// forSeeds runs run as a subtest for each of the seeds 0..n-1.
func forSeeds(t *testing.T, n uint64, run func(*testing.T, uint64)) {
	for seed := range n {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { run(t, seed) })
	}
}
