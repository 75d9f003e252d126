package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// signalCause is the cause of the context main cancels on SIGINT or
// SIGTERM: which signal ended the command.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string { return "interrupted by signal: " + s.sig.String() }

// Is makes a signal a cancellation: code that treats context.Canceled as
// a normal stop treats a signal alike.
func (s signalCause) Is(target error) bool { return target == context.Canceled }

// signalContext returns a context cancelled, with a signalCause, on the
// first SIGINT or SIGTERM. After that first signal the default action is
// restored, so that a second Ctrl-C ends the process at once even while a
// command still flushes what it had accepted.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			sig, _ := s.(syscall.Signal)
			cancel(signalCause{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// errInterrupted is returned by produce and consume when their context
// ended (Ctrl-C): run exits quietly with 128 plus the signal's number,
// 130 for SIGINT, as Unix tools interrupted by a signal do.
var errInterrupted = errors.New("interrupted")

// interruptStatus is the exit status of a command interrupted through
// ctx: 128 plus the number of the signal that cancelled it, SIGINT's when
// the cause is not a signal.
func interruptStatus(ctx context.Context) int {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) && sc.sig != 0 {
		return 128 + int(sc.sig)
	}
	return 128 + int(syscall.SIGINT)
}

// interrupted is errInterrupted when err is the cancellation of ctx by
// a signal (Ctrl-C while connecting), else err.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return errInterrupted
	}
	return err
}
