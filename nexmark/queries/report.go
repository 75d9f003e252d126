package queries

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText writes r as the human-readable report of `sluice nexmark run`:
// one "name: value" line per measure.
func (r Result) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "query:                  %s\nevents:                 %d\nwall seconds:           %.3f\ncpu seconds:            %.3f\nevents/s:               %.0f\nevents per core-second: %.0f\nresult rows:            %d\nchecksum:               %s\n",
		r.Query, r.Events, r.WallSeconds, r.CPUSeconds, r.EventsPerSecond, r.EventsPerCoreSecond, r.Results, r.Checksum)
	return err
}

// WriteTable writes results as an aligned table, one query per line, as
// `sluice nexmark run --query all` prints them.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\tevents\twall s\tcpu s\tevents/s\tevents/core-s\trows\tchecksum\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.0f\t%.0f\t%d\t%s\t\n",
			r.Query, r.Events, r.WallSeconds, r.CPUSeconds, r.EventsPerSecond, r.EventsPerCoreSecond, r.Results, r.Checksum)
	}
	return tw.Flush()
}
