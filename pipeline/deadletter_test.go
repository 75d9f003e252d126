package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector/file"
)

// TestDeadLettersPublishedWhileRunning: a dead letter reaches a committed
// part file of the dead-letter directory while the job still runs, not
// only when it ends.
func TestDeadLettersPublishedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	sink, err := file.NewSink(file.SinkConfig{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := &deadLetters{tolerance: ToleranceAll, logger: slog.New(slog.DiscardHandler), sink: sink}
	ctx := context.Background()
	if err := d.report(ctx, failure{Stage: "source.decode", Origin: "in.jsonl", Offset: 7, Err: errors.New("bad"), Raw: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		var lines []string
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				b, _ := os.ReadFile(dir + "/" + e.Name())
				lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
			}
		}
		if len(lines) == 1 && strings.Contains(lines[0], `"offset":7`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letter not published while running: %v", lines)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	if err := d.close(ctx); err != nil {
		t.Fatal(err)
	}
}
