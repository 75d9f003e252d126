package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sluicehq/sluice/window"
)

// cutSplit reads its records one at a time; at index cut it closes
// reached and waits (returning nothing, so that barriers still flow)
// until the job stops.
type cutSplit struct {
	data    []cev
	pos     int
	cut     int
	reached chan struct{}
}

func (s *cutSplit) ID() string { return "cut" }

func (s *cutSplit) Read(ctx context.Context, dst []cev) (int, error) {
	if s.pos >= len(s.data) {
		return 0, io.EOF
	}
	if s.cut >= 0 && s.pos >= s.cut {
		if s.reached != nil {
			close(s.reached)
			s.reached = nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Microsecond): // pacing, not synchronisation
		}
		return 0, nil
	}
	dst[0] = s.data[s.pos]
	s.pos++
	return 1, nil
}

func (s *cutSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(s.pos)) }

func (s *cutSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("%w: %d bytes", ErrBadPosition, len(pos))
	}
	s.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

type cutSource struct{ split *cutSplit }

func (c cutSource) Splits(context.Context, int) ([]Split[cev], error) {
	return []Split[cev]{c.split}, nil
}

// TestKeyedProcessRestoresWatermark: a keyed process function (here the
// interval join) drops records at or behind its watermark. Stopped with
// a savepoint after the watermark passed some records' time and restored,
// it must still drop the late records that follow (as the run without a
// stop does), not take them as on time until the restarted sources bring
// the watermark back: the restored job joined two late records into a
// pair the uninterrupted job never emits.
func TestKeyedProcessRestoresWatermark(t *testing.T) {
	// V 0: left, 1: right. Record 2 takes the watermark to 999; records
	// 3 and 4 are late (and would pair); record 5 pairs with record 2.
	data := []cev{
		{I: 0, Key: "a", Ts: 10, V: 0},
		{I: 1, Key: "a", Ts: 15, V: 1},
		{I: 2, Key: "a", Ts: 1000, V: 0},
		{I: 3, Key: "a", Ts: 100, V: 0},
		{I: 4, Key: "a", Ts: 105, V: 1},
		{I: 5, Key: "a", Ts: 1005, V: 1},
	}
	want := []cres{{Key: "a", Start: 0, Sum: 1}, {Key: "a", Start: 2, Sum: 5}}
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) {
			build := func(env *Env, split *cutSplit, st *txStore) {
				s := FromSource(env, "events", cutSource{split}, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
				key := func(e cev) string { return e.Key }
				left := KeyBy(Filter(s, func(e cev) bool { return e.V == 0 }), key)
				right := KeyBy(Filter(s, func(e cev) bool { return e.V == 1 }), key)
				j := IntervalJoin(left, right, 0, 10*time.Millisecond, func(l, r cev) cres { return cres{Key: l.Key, Start: l.I, Sum: r.I} }, Name("join"))
				To(Map(j, func(c cres) Windowed[string, int64] {
					return Windowed[string, int64]{Key: c.Key, Window: window.Window{Start: c.Start}, Value: c.Sum}
				}), txSink{st}, Name("sink"))
			}
			opts := func() []Option {
				o := []Option{WithParallelism(1), WithBatchSize(1), WithCheckpointing(t.TempDir(), time.Hour), WithLogger(quietLog())}
				if backend == "pebble" {
					o = append(o, pebbleOpt(t))
				}
				return o
			}
			// Without a stop.
			st := newTxStore()
			env := New(opts()...)
			build(env, &cutSplit{data: data, cut: -1}, st)
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameResults(t, st.results(), want)

			// Stopped after record 2, restored.
			st = newTxStore()
			env = New(opts()...)
			reached := make(chan struct{})
			build(env, &cutSplit{data: data, cut: 3, reached: reached}, st)
			job, err := env.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			<-reached
			from, err := job.StopWithSavepoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Wait(); err != nil {
				t.Fatal(err)
			}
			env = New(append(opts(), WithRestoreFrom(from))...)
			build(env, &cutSplit{data: data, cut: -1}, st)
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameResults(t, st.results(), want)
		})
	}
}
