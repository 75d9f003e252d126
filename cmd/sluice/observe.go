package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/observe"
	"github.com/sluicehq/sluice/web"
)

// newObserver makes the process's Observer (topics of the embedded log,
// consumer groups, registered jobs) and registers its Prometheus
// collector on reg. Give it to web.Config.Observer for the JSON API and the
// dashboard; set the log and the offset store with SetLog and SetOffsets
// once they are open; start its sampling loop with `go obs.Run(ctx)`.
func newObserver(reg prometheus.Registerer, logger *slog.Logger) (*observe.Observer, error) {
	o := observe.New(observe.Options{Logger: logger})
	if err := reg.Register(o.Collector()); err != nil {
		return nil, fmt.Errorf("register observer metrics: %w", err)
	}
	return o, nil
}

// startProgress prints the progress of job id of o on w (sluice run): a
// status line redrawn in place on a terminal, a plain line every ten
// seconds otherwise, nothing when quiet. It stops when the job or ctx
// ends; the returned function waits for its final line.
func startProgress(ctx context.Context, w io.Writer, o *observe.Observer, id string, quiet bool, logger *slog.Logger) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := observe.StatusLine(ctx, w, o, id, observe.StatusOptions{Quiet: quiet}); err != nil {
			logger.Warn("progress display", "err", err)
		}
	}()
	return func() { <-done }
}

// serveHTTP starts the HTTP listener of cfg (dashboard, /metrics, the
// API) serving until ctx ends, and logs its URL (what it serves, and the
// page to open after the address). A bad configuration is a usage error.
func serveHTTP(ctx context.Context, cfg web.Config, logger *slog.Logger, what, page string) error {
	w, err := web.New(cfg, logger)
	if err != nil {
		return usagef("%v", err)
	}
	ln, err := w.Listen()
	if err != nil {
		return err
	}
	go func() {
		if err := w.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("http server", "err", err)
		}
	}()
	logger.Info(what+" served", "url", "http://"+ln.Addr().String()+page)
	return nil
}
