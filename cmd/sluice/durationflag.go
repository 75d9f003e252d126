package main

import (
	"flag"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// durationValue is a flag holding a duration written as in pipeline specs
// (pipeline.ParseDuration): Go's forms like 90s or 1h30m, or whole days
// like 7d, which the flag package's own durations refuse.
type durationValue time.Duration

// String implements flag.Value.
func (d *durationValue) String() string { return time.Duration(*d).String() }

// Set implements flag.Value.
func (d *durationValue) Set(s string) error {
	v, err := pipeline.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

// durationFlag defines a duration flag as fs.Duration does, reading what
// durationValue reads; its help says so and shows the type as duration.
func durationFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = value
	fs.Var((*durationValue)(p), name, usage+" (a `duration` like 90s, 15m, 24h or 7d)")
	return p
}
