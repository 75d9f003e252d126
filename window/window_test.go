package window

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAssignersAgainstDefinition checks that the assigned windows are
// exactly the windows of the family that contain the timestamp.
func TestAssignersAgainstDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		size := 1 + r.Int64N(50)
		slide := 1 + r.Int64N(size)
		ts := r.Int64N(2000) - 1000
		var brute []Window
		for start := -(2000/slide + 1) * slide; start <= ts; start += slide {
			if ts >= start && ts < start+size {
				brute = append(brute, Window{start, start + size})
			}
		}
		got := Sliding(time.Duration(size)*time.Millisecond, time.Duration(slide)*time.Millisecond).Assign(ts, nil)
		if len(got) != len(brute) {
			t.Fatalf("sliding %d/%d ts %d: got %v want %v", size, slide, ts, got, brute)
		}
		seen := map[Window]bool{}
		for _, w := range got {
			seen[w] = true
		}
		for _, w := range brute {
			if !seen[w] {
				t.Fatalf("sliding %d/%d ts %d: missing %v in %v", size, slide, ts, w, got)
			}
		}
		tw := Tumbling(time.Duration(size)*time.Millisecond).Assign(ts, nil)
		if len(tw) != 1 || ts < tw[0].Start || ts >= tw[0].End || tw[0].Start%size != 0 {
			t.Fatalf("tumbling %d ts %d: %v", size, ts, tw)
		}
	}
}

func TestWindowHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"overlap", Window{0, 10}.Overlaps(Window{9, 20}), true},
		{"touching windows do not overlap", Window{0, 10}.Overlaps(Window{10, 20}), false},
		{"late at cleanup time", IsLate(Window{0, 10}, 5, 14), true},
		{"not late before cleanup", IsLate(Window{0, 10}, 5, 13), false},
		{"zero lateness: late once fired", IsLate(Window{0, 10}, 0, 9), true},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v", tc.name, tc.got)
		}
	}
	if c := (Window{5, 10}).Cover(Window{0, 7}); c != (Window{0, 10}) {
		t.Errorf("cover %v", c)
	}
	s := Session(3 * time.Millisecond)
	if s.Gap() != 3 || s.Assign(7, nil)[0] != (Window{7, 10}) {
		t.Errorf("session assigner")
	}
	if TumblingProcessingTime(time.Second).Domain() != ProcessingTime || Tumbling(time.Second).Domain() != EventTime {
		t.Errorf("domains")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("sub-millisecond size accepted")
		}
	}()
	Tumbling(time.Microsecond)
}
