package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"
)

type tagged struct {
	Src string
	I   int64
}

type barrierLog struct {
	mu     sync.Mutex
	events map[int][]string // per sink subtask: "src/i" or "barrier/id"
	recs   map[int][]tagged
	marks  map[int][]int // index in recs where each barrier arrived
}

type barrierWriter struct {
	l   *barrierLog
	sub int
}

func (w barrierWriter) Write(_ context.Context, recs []tagged) error {
	w.l.mu.Lock()
	w.l.recs[w.sub] = append(w.l.recs[w.sub], recs...)
	w.l.mu.Unlock()
	return nil
}

func (w barrierWriter) OnBarrier(_ context.Context, id uint64) error {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if int(id) != len(w.l.marks[w.sub])+1 {
		return fmt.Errorf("barrier %d after %d barriers", id, len(w.l.marks[w.sub]))
	}
	w.l.marks[w.sub] = append(w.l.marks[w.sub], len(w.l.recs[w.sub]))
	return nil
}

func (w barrierWriter) Close(context.Context) error { return nil }

type barrierSink struct{ l *barrierLog }

func (s barrierSink) Open(_ context.Context, info SubtaskInfo) (SinkWriter[tagged], error) {
	return barrierWriter{l: s.l, sub: info.Index}, nil
}

// TestBarriersAlignedThroughExchanges injects checkpoint barriers at the
// sources of a union followed by a hash exchange and checks, at every sink
// subtask, that exactly the records each split produced before the barrier
// arrived before it (the consistent cut that checkpoints rely on).
func TestBarriersAlignedThroughExchanges(t *testing.T) {
	env := New(WithParallelism(2), WithBatchSize(8), WithQueueCapacity(2))
	type pos struct {
		op, split string
		id        uint64
	}
	var mu sync.Mutex
	positions := map[pos]int64{}
	env.sourceBarrier = func(op, split string, id uint64, p []byte) {
		mu.Lock()
		positions[pos{op, split, id}] = int64(binary.BigEndian.Uint64(p))
		mu.Unlock()
	}
	a := FromSource(env, "a", Generate(-1, 2, func(i int64) tagged { return tagged{"a", i} }), WatermarkStrategy[tagged]{})
	b := FromSource(env, "b", Generate(-1, 3, func(i int64) tagged { return tagged{"b", i} }), WatermarkStrategy[tagged]{})
	log := &barrierLog{events: map[int][]string{}, recs: map[int][]tagged{}, marks: map[int][]int{}}
	u := Union(a, b)
	To(KeyBy(u, func(v tagged) int64 { return v.I % 5 }).Stream(), Sink[tagged](barrierSink{log}), Parallelism(2))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const barriers = 3
	for id := uint64(1); id <= barriers; id++ {
		job.triggerBarrier(id)
		deadline := time.Now().Add(20 * time.Second)
		for {
			log.mu.Lock()
			done := len(log.marks[0]) >= int(id) && len(log.marks[1]) >= int(id)
			log.mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("barrier %d did not reach both sink subtasks", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	job.Cancel()
	_ = job.Wait()
	splits := map[string]int64{"a": 2, "b": 3}
	log.mu.Lock()
	defer log.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	for sub := range 2 {
		recs := log.recs[sub]
		for bi, mark := range log.marks[sub] {
			id := uint64(bi + 1)
			for k, r := range recs {
				split := fmt.Sprintf("gen-%d", r.I%splits[r.Src])
				p, ok := positions[pos{r.Src, split, id}]
				if !ok {
					t.Fatalf("no position for %s/%s barrier %d", r.Src, split, id)
				}
				before := k < mark
				if before != (r.I < p) {
					t.Fatalf("sink %d barrier %d: record %s/%d (split position %d) arrived %s the barrier",
						sub, id, r.Src, r.I, p, map[bool]string{true: "before", false: "after"}[before])
				}
			}
		}
	}
}
