package nexmark

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// generateBlock is how many events one unit of GenerateJSON work encodes
// between writes and context checks.
const generateBlock = 1024

// GenerateJSON writes events 0..events-1 under cfg to w, one JSON object per
// line (see AppendJSON). Blocks of events are generated and encoded by up to
// GOMAXPROCS goroutines and written in order, so the output is the same
// whatever the number of cores. It stops early with ctx's error when ctx is
// done, and returns the first write error.
func GenerateJSON(ctx context.Context, w io.Writer, cfg Config, events int64) error {
	if events < 0 {
		return fmt.Errorf("nexmark generate: negative event count %d", events)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("nexmark generate: %w", err)
	}
	blocks := (events + generateBlock - 1) / generateBlock
	workers := int(min(int64(runtime.GOMAXPROCS(0)), max(blocks, 1)))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Worker i encodes blocks i, i+workers, ... into buffers it takes from
	// free[i] and hands them to the writer on out[i]; two buffers per
	// worker bound the memory and let it run one block ahead.
	out := make([]chan []byte, workers)
	free := make([]chan []byte, workers)
	var wg sync.WaitGroup
	for i := range workers {
		out[i] = make(chan []byte, 2)
		free[i] = make(chan []byte, 2)
		free[i] <- make([]byte, 0, 256<<10)
		free[i] <- make([]byte, 0, 256<<10)
		g, err := NewGenerator(cfg, 0, events)
		if err != nil {
			return fmt.Errorf("nexmark generate: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(out[i])
			var e Event
			for b := int64(i); b < blocks; b += int64(workers) {
				var buf []byte
				select {
				case buf = <-free[i]:
				case <-ctx.Done():
					return
				}
				buf = buf[:0]
				if err := g.SetPosition(b * generateBlock); err != nil {
					panic(err) // step 1: every position is valid
				}
				for k := 0; k < generateBlock && g.Next(&e); k++ {
					buf = AppendJSON(buf, &e)
					buf = append(buf, '\n')
				}
				select {
				case out[i] <- buf:
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	var err error
	for b := int64(0); b < blocks; b++ {
		i := b % int64(workers)
		buf, ok := <-out[i]
		if !ok {
			err = fmt.Errorf("nexmark generate: stopped at event %d: %w", b*generateBlock, context.Cause(ctx))
			break
		}
		if _, werr := w.Write(buf); werr != nil {
			err = fmt.Errorf("nexmark generate: write before event %d: %w", b*generateBlock, werr)
			break
		}
		free[i] <- buf
	}
	cancel()
	wg.Wait()
	return err
}
