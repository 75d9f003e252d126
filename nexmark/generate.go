package nexmark

import (
	"context"
	"fmt"
	"io"
)

// generateBlock is how many events GenerateJSON encodes between writes and
// context checks.
const generateBlock = 1024

// GenerateJSON writes events 0..events-1 under cfg to w, one JSON object per
// line (see AppendJSON). It stops early with ctx's error when ctx is done.
func GenerateJSON(ctx context.Context, w io.Writer, cfg Config, events int64) error {
	if events < 0 {
		return fmt.Errorf("nexmark generate: negative event count %d", events)
	}
	g, err := NewGenerator(cfg, 0, events)
	if err != nil {
		return fmt.Errorf("nexmark generate: %w", err)
	}
	buf := make([]byte, 0, 256<<10)
	var e Event
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("nexmark generate: stopped at event %d: %w", g.Position(), err)
		}
		buf = buf[:0]
		for i := 0; i < generateBlock && g.Next(&e); i++ {
			buf = AppendJSON(buf, &e)
			buf = append(buf, '\n')
		}
		if len(buf) == 0 {
			return nil
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("nexmark generate: write before event %d: %w", g.Position(), err)
		}
	}
}
