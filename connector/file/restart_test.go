package file

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// heldSplit returns vals a few at a time, and from holdAt on only once
// release reports true.
type heldSplit struct {
	vals    []string
	holdAt  int
	release func() bool
	off     int
}

func (h *heldSplit) Splits(context.Context, int) ([]stream.Split[string], error) {
	return []stream.Split[string]{h}, nil
}

func (h *heldSplit) ID() string { return "held" }

func (h *heldSplit) Read(_ context.Context, dst []string) (int, error) {
	if h.off >= len(h.vals) {
		return 0, io.EOF
	}
	if h.off >= h.holdAt && !h.release() {
		time.Sleep(200 * time.Microsecond) // pacing, not synchronisation
		return 0, nil
	}
	n := copy(dst[:min(len(dst), 5)], h.vals[h.off:])
	h.off += n
	return n, nil
}

func (h *heldSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(h.off)) }

func (h *heldSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("position of %d bytes", len(pos))
	}
	h.off = int(binary.BigEndian.Uint64(pos))
	return nil
}

// TestExactlyOnceAcrossInProcessRestart runs an exactly-once file sink
// through a failure that the restart policy recovers in-process, after a
// checkpoint committed parts: the committed lines are the input, each
// once, and no staged part is left. (With one run id per Sink the
// restarted writer renamed its parts over the committed ones.)
func TestExactlyOnceAcrossInProcessRestart(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewSink(SinkConfig{Path: dir, TwoPhase: true, RollBytes: 30})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 300 {
		want = append(want, fmt.Sprintf("v%04d", i))
	}
	visible := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "part-*"))
		return m
	}
	holdUntil := time.Now().Add(30 * time.Second) // a regression fails below rather than hangs here
	var released atomic.Bool
	release := func() bool {
		if !released.Load() && (len(visible()) > 0 || time.Now().After(holdUntil)) {
			released.Store(true)
		}
		return released.Load()
	}
	var fired atomic.Bool
	env := stream.New(stream.WithParallelism(1), stream.WithBatchSize(4),
		stream.WithCheckpointing(t.TempDir(), 5*time.Millisecond), stream.WithRestartPolicy(3, time.Millisecond),
		stream.WithLogger(slog.New(slog.DiscardHandler)))
	in := stream.FromSource(env, "in", stream.Source[string](&heldSplit{vals: want, holdAt: 100, release: release}), stream.WatermarkStrategy[string]{})
	out := stream.Map(in, func(v string) connector.Message {
		if v == "v0200" && fired.CompareAndSwap(false, true) {
			panic("injected failure")
		}
		return connector.Message{Value: []byte(v)}
	})
	stream.To(out, stream.Sink[connector.Message](sink))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !fired.Load() {
		t.Fatal("the failure was not injected")
	}
	var got []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("staged part left: %s", e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Fields(string(b))...)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("committed %d lines, want %d (each input once)", len(got), len(want))
	}
}
