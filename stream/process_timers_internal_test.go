package stream

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
)

// TestTimerChangesChainEqualsLive drives a timer service with change
// tracking through random registrations (repeats included), deletions
// and firings, takes a snapshot of its changes every few operations (a
// full one first and now and then), applies each to a restored copy
// with the chain restore's applyTimerChanges, and checks after every
// snapshot that the copy holds exactly the live timers (the oracle),
// each under its key group. Timers registered, removed and registered
// again between two snapshots, removed ones of earlier snapshots
// registered again, and deleted ones that fire no more are the cases the
// generations must get right.
func TestTimerChangesChainEqualsLive(t *testing.T) {
	const maxPar = 8
	hash := func(k int64) uint64 { return uint64(k) * 0x9e3779b97f4a7c15 }
	kgOf := func(k int64) int { return state.KeyGroup(hash(k), maxPar) }
	kc := codec.MustFor[int64]()
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(seed, 7))
		o := &keyedProcessOp[int64, int64, int64]{hash: hash, maxPar: maxPar}
		s := &timerService[int64]{}
		s.enableTracking()
		restored := map[int]map[string]struct{}{} // key group -> encoded timers
		now := int64(0)
		for step := range 4000 {
			k := r.Int64N(40)
			switch op := r.IntN(10); {
			case op < 6:
				s.register(k, kgOf(k), now+r.Int64N(30))
			case op < 8:
				s.delete(k, kgOf(k), now+r.Int64N(30))
			default:
				now += r.Int64N(6)
				for {
					if _, ok := s.pop(now); !ok {
						break
					}
				}
			}
			if r.IntN(25) != 0 && step > 0 {
				continue
			}
			full := step == 0 || r.IntN(8) == 0
			if full {
				// A restore starts from the newest base.
				restored = map[int]map[string]struct{}{}
			}
			for kg, body := range o.timerChanges(kc, s, full) {
				m := restored[kg]
				if m == nil {
					m = map[string]struct{}{}
					restored[kg] = m
				}
				if err := applyTimerChanges(m, body); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
			}
			n := 0
			for kg, m := range restored {
				for enc := range m {
					b := []byte(enc)
					k, a, err := kc.Decode(b)
					if err != nil {
						t.Fatal(err)
					}
					tm, c := binary.Varint(b[a:])
					if c <= 0 || a+c != len(b) {
						t.Fatalf("seed %d step %d: bad timer encoding %x", seed, step, b)
					}
					if kgOf(k) != kg {
						t.Fatalf("seed %d step %d: timer of key %d in key group %d, want %d", seed, step, k, kg, kgOf(k))
					}
					if _, ok := s.set[timerKey[int64]{key: k, t: tm}]; !ok {
						t.Fatalf("seed %d step %d: restored timer (%d, %d) is not live", seed, step, k, tm)
					}
					n++
				}
			}
			if n != len(s.set) {
				t.Fatalf("seed %d step %d: %d timers restored, %d live", seed, step, n, len(s.set))
			}
		}
	}
}
