package stream_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// heldSource has one split that returns a record, then holds its next
// Read until release is closed (or gives up after a long while).
type heldSource struct {
	release chan struct{}
	gaveUp  *bool
}

func (h heldSource) Splits(context.Context, int) ([]stream.Split[int], error) {
	return []stream.Split[int]{&heldSplit{h: h}}, nil
}

type heldSplit struct {
	h heldSource
	n int
}

func (s *heldSplit) ID() string { return "held" }
func (s *heldSplit) Read(ctx context.Context, dst []int) (int, error) {
	s.n++
	switch s.n {
	case 1:
		dst[0] = 7
		return 1, nil
	case 2:
		select {
		case <-s.h.release:
		case <-time.After(20 * time.Second):
			*s.h.gaveUp = true
		case <-ctx.Done():
		}
	}
	return 0, io.EOF
}
func (s *heldSplit) Position() []byte  { return nil }
func (s *heldSplit) Seek([]byte) error { return nil }

// TestProcessingTimeWindowFiresWhileSourceWaits: at parallelism 1 a keyed
// processing-time window must fire on the wall clock while its source is
// blocked in Read (the window keeps its own goroutine rather than joining
// the source's chain, where timers are checked only between reads). The
// source waits for the window's result before it ends.
func TestProcessingTimeWindowFiresWhileSourceWaits(t *testing.T) {
	release := make(chan struct{})
	gaveUp := false
	env := stream.New(stream.WithParallelism(1))
	src := stream.FromSource[int](env, "held", heldSource{release: release, gaveUp: &gaveUp}, stream.WatermarkStrategy[int]{})
	w := stream.Window(stream.KeyBy(src, func(v int) int { return v }), window.TumblingProcessingTime(10*time.Millisecond))
	counts := stream.Aggregate(w, stream.Count[int]())
	fired := false
	stream.To(counts, stream.SinkFunc[stream.Windowed[int, int64]](func(_ context.Context, recs []stream.Windowed[int, int64]) error {
		if !fired && len(recs) > 0 {
			fired = true
			close(release)
		}
		return nil
	}))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gaveUp || !fired {
		t.Fatalf("the processing-time window did not fire while the source was waiting (fired %v)", fired)
	}
}
