package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/memlimit"
)

// sizeVar registers a byteSize flag; its help names the forms it reads
// (and shows SIZE as the flag's type).
func sizeVar(fs *flag.FlagSet, p *byteSize, name, usage string) {
	fs.Var(p, name, usage+" (`SIZE`: bytes, or with a unit like 64MiB or 10GB; KiB, MiB, GiB, TiB are powers of 1024, KB, MB, GB, TB of 1000)")
}

// rateVar registers a byteRate flag, as sizeVar does.
func rateVar(fs *flag.FlagSet, p *byteRate, name, usage string) {
	fs.Var(p, name, usage+" (`RATE`: bytes per second, or a size with a unit like 5MiB or 5MiB/s)")
}

// byteSize is a flag holding a byte count: a plain number or a human size
// such as 64MiB, 10GiB or 1.5GB, as memlimit.ParseSize reads it (KiB, MiB,
// GiB, TiB and the short K, M, G, T are powers of 1024; KB, MB, GB, TB are
// powers of 1000; B or no unit means bytes).
type byteSize int64

// String writes the size in the largest binary unit that divides it
// exactly, so that defaults read 32MiB in --help.
func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return memlimit.FormatSize(int64(*b))
}

// Set parses s.
func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// byteRate is a flag holding bytes per second: what byteSize reads,
// optionally followed by /s (5MiB/s).
type byteRate float64

// String writes the rate as byteSize does, with /s.
func (r *byteRate) String() string {
	if *r == 0 {
		return "0"
	}
	if f := float64(*r); f == math.Trunc(f) && f < math.MaxInt64 {
		return memlimit.FormatSize(int64(f)) + "/s"
	}
	return strconv.FormatFloat(float64(*r), 'f', -1, 64) + "B/s"
}

// Set parses s.
func (r *byteRate) Set(s string) error {
	t := strings.TrimSpace(s)
	if u, ok := strings.CutSuffix(t, "/s"); ok {
		t = u
	}
	// Raw numbers keep what the float flag read (2.5e6).
	if f, err := strconv.ParseFloat(t, 64); err == nil && f >= 0 && !math.IsInf(f, 0) {
		*r = byteRate(f)
		return nil
	}
	n, err := parseByteSize(t)
	if err != nil {
		return fmt.Errorf("%w (per second, /s optional)", err)
	}
	*r = byteRate(n)
	return nil
}

// parseByteSize is memlimit.ParseSize with an error that names the forms
// accepted.
func parseByteSize(s string) (int64, error) {
	n, err := memlimit.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a byte size: want a number of bytes, or one with a unit, like 1048576, 64MiB, 10GiB or 1.5GB (KiB/MiB/GiB/TiB: powers of 1024; KB/MB/GB/TB: powers of 1000)", s)
	}
	return n, nil
}
