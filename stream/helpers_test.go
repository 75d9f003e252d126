package stream_test

import (
	"math/rand/v2"
	"testing"
	"time"
)

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 11))
}
