package kbench

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Comparison is the produce throughput of the same benchmark under
// several security protocols, run interleaved on one machine.
type Comparison struct {
	Config    Config
	Protocols []string
	Rounds    int
	// Rates are the records/s of each round, by protocol.
	Rates map[string][]float64
}

// Compare runs cfg once per protocol per round, rotating the order each
// round so that drift on a shared machine spreads over every protocol.
// The consume phase is skipped.
func Compare(ctx context.Context, cfg Config, protocols []string, rounds int) (Comparison, error) {
	if len(protocols) == 0 || rounds < 1 {
		return Comparison{}, fmt.Errorf("compare needs protocols and at least one round")
	}
	cmp := Comparison{Config: cfg.withDefaults(), Protocols: protocols, Rounds: rounds, Rates: map[string][]float64{}}
	for r := range rounds {
		for i := range protocols {
			p := protocols[(i+r)%len(protocols)]
			c := cfg
			c.Topic, c.SkipConsume = "", true
			c.Security.Protocol = p
			res, err := Run(ctx, c)
			if err != nil {
				return cmp, fmt.Errorf("round %d, %s: %w", r+1, p, err)
			}
			cmp.Rates[p] = append(cmp.Rates[p], res.ProduceRate)
		}
	}
	return cmp, nil
}

// Median is the median records/s of protocol p.
func (c Comparison) Median(p string) float64 {
	x := slices.Clone(c.Rates[p])
	if len(x) == 0 {
		return 0
	}
	slices.Sort(x)
	if len(x)%2 == 1 {
		return x[len(x)/2]
	}
	return (x[len(x)/2-1] + x[len(x)/2]) / 2
}

// String renders one line per protocol: median records/s and MB/s, the
// ratio to the first protocol, and every round's figure.
func (c Comparison) String() string {
	cfg := c.Config
	var b strings.Builder
	fmt.Fprintf(&b, "kafka security bench: %d records of %d B per run, %d partitions, acks=-1, %d rounds interleaved, SASL mechanism %s\n",
		cfg.Records, cfg.RecordSize, cfg.Partitions, c.Rounds, cfg.Security.withDefaults().Mechanism)
	base := c.Median(c.Protocols[0])
	for _, p := range c.Protocols {
		m := c.Median(p)
		var rounds []string
		for _, r := range c.Rates[p] {
			rounds = append(rounds, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(&b, "  %-15s median %8.0f records/s %7.1f MB/s  %.2f× %s  (rounds: %s)\n",
			p, m, m*float64(cfg.RecordSize)/1e6, m/base, c.Protocols[0], strings.Join(rounds, ", "))
	}
	return b.String()
}
