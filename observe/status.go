package observe

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// StatusOptions configure StatusLine.
type StatusOptions struct {
	// Quiet prints nothing at all (sluice run --quiet).
	Quiet bool
	// Terminal rewrites one line in place with a carriage return; otherwise
	// a plain line is printed every LogEvery. Nil means: a terminal when w
	// is an *os.File on a character device.
	Terminal *bool
	// Every is the refresh period on a terminal; 0 means one second.
	Every time.Duration
	// LogEvery is the period of plain lines; 0 means ten seconds.
	LogEvery time.Duration
}

// StatusLine prints the progress of job id of o to w until ctx ends or the
// job ends, then prints a final line. On a terminal it redraws one line:
//
//	wordcount running  in 120.5k/s  out 98.0k/s  wm 12:00:03 (lag 1.2s)  ckpt #7 ok 80ms  bp ok
//
// otherwise it writes the same figures as a plain line every LogEvery. It returns
// ErrUnknownJob if id is not registered. It samples o when the latest sample is older than
// o's interval, so it works with or without o.Run.
func StatusLine(ctx context.Context, w io.Writer, o *Observer, id string, opts StatusOptions) error {
	if _, err := o.Snapshot().Job(id); err != nil {
		if _, err2 := o.Sample().Job(id); err2 != nil {
			return err
		}
	}
	if opts.Quiet {
		return nil
	}
	var done <-chan struct{}
	o.mu.Lock()
	if t, ok := o.jobs[id]; ok {
		done = t.job.Done()
	}
	o.mu.Unlock()
	var lineErr error
	Progress(ctx, w, done, func(final bool) string {
		snap := o.Snapshot()
		if o.opts.Now().Sub(snap.Time) >= o.opts.Interval || final {
			snap = o.Sample() // nobody else samples often enough
		}
		js, err := snap.Job(id)
		if err != nil {
			lineErr = err
			return fmt.Sprintf("%s: %v", id, err)
		}
		return FormatStatus(js, o.opts.Now())
	}, opts)
	return lineErr
}

// Progress prints line() to w until ctx ends or done is closed (nil: only
// ctx), then prints line(true) a last time. On a terminal (see
// StatusOptions.Terminal) it redraws one line in place every Every;
// otherwise it prints a plain line every LogEvery. With opts.Quiet it
// prints nothing and returns at once. Long-running commands (benchmarks,
// loads) use it for their progress; StatusLine uses it for jobs.
func Progress(ctx context.Context, w io.Writer, done <-chan struct{}, line func(final bool) string, opts StatusOptions) {
	if opts.Quiet {
		return
	}
	term := isTerminal(w)
	if opts.Terminal != nil {
		term = *opts.Terminal
	}
	every := opts.Every
	if every <= 0 {
		every = time.Second
	}
	if !term {
		every = opts.LogEvery
		if every <= 0 {
			every = 10 * time.Second
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	width := 0
	for {
		final := false
		select {
		case <-ctx.Done():
			final = true
		case <-done:
			final = true
		case <-tick.C:
		}
		l := line(final)
		if term {
			pad := ""
			if n := len(l); n < width {
				pad = strings.Repeat(" ", width-n)
			}
			width = len(l)
			fmt.Fprintf(w, "\r%s%s", l, pad)
			if final {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintln(w, l)
		}
		if final {
			return
		}
	}
}

// FormatStatus renders a job's figures as one line (no newline).
func FormatStatus(js JobStatus, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s  in %s/s  out %s/s  wm %s", js.ID, js.Status,
		humanCount(js.RecordsInPerSec), humanCount(js.RecordsOutPerSec), formatWatermark(js.Watermark, now))
	switch {
	case !js.CheckpointsAvailable:
		b.WriteString("  ckpt n/a")
	case js.LastCheckpoint == nil:
		b.WriteString("  ckpt none")
	default:
		c := js.LastCheckpoint
		st := "ok"
		if c.Status == CheckpointFailed {
			st = "FAILED"
		}
		fmt.Fprintf(&b, "  ckpt #%d %s %s", c.ID, st, c.Duration.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "  bp %s", js.Backpressure)
	if js.Error != "" {
		fmt.Fprintf(&b, "  error: %s", js.Error)
	}
	return b.String()
}

func formatWatermark(w Watermark, now time.Time) string {
	switch {
	case w.Final:
		return "end"
	case w.WatermarkMs == nil:
		return "-"
	}
	t := time.UnixMilli(*w.WatermarkMs).UTC()
	lag := time.Duration(*w.WatermarkLag) * time.Millisecond
	layout := "15:04:05"
	if now.UTC().Sub(t) > 24*time.Hour || t.After(now.UTC().Add(24*time.Hour)) {
		layout = "2006-01-02 15:04:05"
	}
	return fmt.Sprintf("%s (lag %s)", t.Format(layout), lag.Round(100*time.Millisecond))
}

// humanCount renders n with a k/M/G suffix and one decimal.
func humanCount(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
