package runtime

import (
	"math/rand/v2"
	"testing"
)

func TestWatermarkTrackerTable(t *testing.T) {
	type step struct {
		op      string // wm, idle, end, active
		ch      int
		wm      int64
		want    int64
		adv     bool
		allIdle bool
	}
	tests := []struct {
		name  string
		n     int
		steps []step
	}{
		{"min of two", 2, []step{
			{op: "wm", ch: 0, wm: 10, want: MinWatermark},
			{op: "wm", ch: 1, wm: 5, want: 5, adv: true},
			{op: "wm", ch: 1, wm: 20, want: 10, adv: true},
			{op: "wm", ch: 0, wm: 8, want: 10}, // never backwards
		}},
		{"idle channel released", 2, []step{
			{op: "wm", ch: 0, wm: 10, want: MinWatermark},
			{op: "idle", ch: 1, want: 10, adv: true},
			{op: "wm", ch: 0, wm: 30, want: 30, adv: true},
			{op: "wm", ch: 1, wm: 12, want: 30}, // woke up behind: held
			{op: "wm", ch: 0, wm: 40, want: 30},
			{op: "wm", ch: 1, wm: 35, want: 35, adv: true},
		}},
		{"all idle advances to max", 3, []step{
			{op: "wm", ch: 0, wm: 10, want: MinWatermark},
			{op: "wm", ch: 1, wm: 50, want: MinWatermark},
			{op: "idle", ch: 2, want: 10, adv: true},
			{op: "idle", ch: 0, want: 50, adv: true},
			{op: "idle", ch: 1, want: 50, allIdle: true},
			{op: "active", ch: 1, want: 50},
		}},
		{"end releases and completes", 2, []step{
			{op: "wm", ch: 0, wm: 7, want: MinWatermark},
			{op: "end", ch: 1, want: 7, adv: true},
			{op: "end", ch: 0, want: MaxWatermark, adv: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewWatermarkTracker(tc.n)
			for i, s := range tc.steps {
				var got int64
				var adv bool
				switch s.op {
				case "wm":
					got, adv = tr.Watermark(s.ch, s.wm)
				case "idle":
					got, adv = tr.Idle(s.ch)
				case "end":
					got, adv = tr.End(s.ch)
				case "active":
					tr.Active(s.ch)
					got = tr.Combined()
				}
				if got != s.want || adv != s.adv || tr.AllIdle() != s.allIdle {
					t.Fatalf("step %d %+v: got %d adv %v allIdle %v", i, s, got, adv, tr.AllIdle())
				}
			}
		})
	}
}

// TestWatermarkTrackerMinOracle checks the combined watermark against the
// minimum of the per-channel maxima when no channel is idle.
func TestWatermarkTrackerMinOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + r.IntN(5)
		tr := NewWatermarkTracker(n)
		maxes := make([]int64, n)
		for i := range maxes {
			maxes[i] = MinWatermark
		}
		last := int64(MinWatermark)
		for range 50 {
			ch := r.IntN(n)
			wm := r.Int64N(1000)
			maxes[ch] = max(maxes[ch], wm)
			got, adv := tr.Watermark(ch, wm)
			want := maxes[0]
			for _, m := range maxes {
				want = min(want, m)
			}
			if got != want || adv != (want > last) {
				t.Fatalf("got %d/%v want %d", got, adv, want)
			}
			last = got
		}
	}
}

func TestAligner(t *testing.T) {
	a := NewAligner(3)
	if done, err := a.Barrier(0, 1); done || err != nil {
		t.Fatal(done, err)
	}
	if !a.Blocked(0) || a.Blocked(1) {
		t.Fatal("channel 0 must be blocked, 1 not")
	}
	if _, err := a.Barrier(0, 1); err == nil {
		t.Fatal("duplicate barrier accepted")
	}
	if _, err := a.Barrier(1, 2); err == nil {
		t.Fatal("mismatched barrier accepted")
	}
	a2 := NewAligner(3)
	a2.Barrier(0, 1)
	a2.Barrier(1, 1)
	if !a2.End(2) {
		t.Fatal("ending the last pending channel must complete the barrier")
	}
	if a2.Blocked(0) {
		t.Fatal("still blocked after completion")
	}
	done, err := a2.Barrier(0, 2)
	if err != nil || done {
		t.Fatal(done, err)
	}
	if done, _ := a2.Barrier(1, 2); !done {
		t.Fatal("barrier 2 must complete without the ended channel")
	}
}
