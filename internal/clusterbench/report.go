package clusterbench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// median is the middle value of xs (the mean of the middle two for an
// even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf[T any](runs []T, f func(T) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return median(xs)
}

// medianThroughput is the field-by-field median of runs; Exact only if
// every run was exact, Duplicates the most any run saw.
func medianThroughput(runs []ThroughputRun) ThroughputRun {
	if len(runs) == 0 {
		return ThroughputRun{}
	}
	m := ThroughputRun{Instances: runs[0].Instances, Exact: true}
	m.WallSec = medianOf(runs, func(r ThroughputRun) float64 { return r.WallSec })
	m.FirstOutputSec = medianOf(runs, func(r ThroughputRun) float64 { return r.FirstOutputSec })
	m.SettledSec = medianOf(runs, func(r ThroughputRun) float64 { return r.SettledSec })
	m.RecordsPerSec = medianOf(runs, func(r ThroughputRun) float64 { return r.RecordsPerSec })
	m.CPUSec = medianOf(runs, func(r ThroughputRun) float64 { return r.CPUSec })
	m.RecordsPerCPUSec = medianOf(runs, func(r ThroughputRun) float64 { return r.RecordsPerCPUSec })
	m.CPUMicrosPerRec = medianOf(runs, func(r ThroughputRun) float64 { return r.CPUMicrosPerRec })
	m.BrokerCPUSec = medianOf(runs, func(r ThroughputRun) float64 { return r.BrokerCPUSec })
	m.RecordsPerTotalCPUSec = medianOf(runs, func(r ThroughputRun) float64 { return r.RecordsPerTotalCPUSec })
	m.CoresUsed = medianOf(runs, func(r ThroughputRun) float64 { return r.CoresUsed })
	m.RepartitionOffsets = int64(medianOf(runs, func(r ThroughputRun) float64 { return float64(r.RepartitionOffsets) }))
	m.ChangelogOffsets = int64(medianOf(runs, func(r ThroughputRun) float64 { return float64(r.ChangelogOffsets) }))
	m.Windows = int64(medianOf(runs, func(r ThroughputRun) float64 { return float64(r.Windows) }))
	for _, r := range runs {
		m.Exact = m.Exact && r.Exact
		m.Duplicates = max(m.Duplicates, r.Duplicates)
	}
	return m
}

// medianFailover is the field-by-field median of runs; Exact only if
// every run was exact.
func medianFailover(runs []FailoverRun) FailoverRun {
	if len(runs) == 0 {
		return FailoverRun{}
	}
	r0 := runs[0]
	m := FailoverRun{Restart: r0.Restart, SessionTimeoutSec: r0.SessionTimeoutSec, Keys: r0.Keys, Probes: r0.Probes, Exact: true}
	m.KilledTasks = int(medianOf(runs, func(r FailoverRun) float64 { return float64(r.KilledTasks) }))
	m.KilledStatefulTasks = int(medianOf(runs, func(r FailoverRun) float64 { return float64(r.KilledStatefulTasks) }))
	m.BuildSec = medianOf(runs, func(r FailoverRun) float64 { return r.BuildSec })
	m.BuildKeysPerSec = medianOf(runs, func(r FailoverRun) float64 { return r.BuildKeysPerSec })
	m.BaselineProbeSec = medianOf(runs, func(r FailoverRun) float64 { return r.BaselineProbeSec })
	m.FailoverSec = medianOf(runs, func(r FailoverRun) float64 { return r.FailoverSec })
	m.FirstProbeSec = medianOf(runs, func(r FailoverRun) float64 { return r.FirstProbeSec })
	m.TakeoverSec = medianOf(runs, func(r FailoverRun) float64 { return r.TakeoverSec })
	m.RestoredTasks = int(medianOf(runs, func(r FailoverRun) float64 { return float64(r.RestoredTasks) }))
	m.RestoredRecords = int64(medianOf(runs, func(r FailoverRun) float64 { return float64(r.RestoredRecords) }))
	m.RestoredBytes = int64(medianOf(runs, func(r FailoverRun) float64 { return float64(r.RestoredBytes) }))
	m.RestoreMaxSec = medianOf(runs, func(r FailoverRun) float64 { return r.RestoreMaxSec })
	for _, r := range runs {
		m.Exact = m.Exact && r.Exact
		m.Duplicates = max(m.Duplicates, r.Duplicates)
	}
	return m
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func runsWord(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("median of %d runs", n)
}

// String renders the result as tables.
func (r Result) String() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "cluster bench, %s: broker %s", r.Started.Format("2006-01-02 15:04 UTC"), r.Broker)
	if r.Fsync != "" {
		fmt.Fprintf(&b, ", fsync %s", r.Fsync)
	}
	fmt.Fprintf(&b, "\n  machine: %d CPUs (%s), %s; load average before %v\n", m.CPUs, m.CPUModel, m.GoVersion, m.LoadAverage)
	if len(r.Throughput) > 0 || r.Embedded != nil {
		fmt.Fprintf(&b, "  input: %s orders of %s users in %d partitions over %s of event time (%s windows of 10 s expected), produced in %.1f s (%s records/s) before any pipeline ran\n",
			thousands(int64(r.Records)), thousands(int64(r.Keys)), r.Partitions, r.EventSpan, thousands(r.ExpectedWindows), r.ProduceSec, thousands(int64(r.ProducePerSec)))
		fmt.Fprintf(&b, "  pipeline: kafka → window {key: [user], tumbling: 10s, count(), sum(amount)} → kafka; delivery %s; commit/checkpoint interval %s\n\n", r.Delivery, r.CommitInterval)
		fmt.Fprintf(&b, "throughput (%s; wall = start of the processes until the committed output holds every window; CPU = user+system of the pipeline processes, start to exit)\n", runsWord(r.Runs))
		fmt.Fprintf(&b, "  %-11s %8s %10s %8s %9s %8s %10s %8s %9s %11s %6s %6s\n", "instances", "wall s", "records/s", "first s", "settled s", "CPU s", "rec/CPU-s", "µs/rec", "broker s", "rec/CPU-s*", "cores", "exact")
		secs := func(x float64) string {
			if x <= 0 {
				return "-"
			}
			return strconv.FormatFloat(x, 'f', 2, 64)
		}
		row := func(name string, t ThroughputRun) {
			fmt.Fprintf(&b, "  %-11s %8.2f %10s %8s %9s %8.2f %10s %8.2f %9.2f %11s %6.2f %6s\n", name, t.WallSec, thousands(int64(t.RecordsPerSec)), secs(t.FirstOutputSec), secs(t.SettledSec),
				t.CPUSec, thousands(int64(t.RecordsPerCPUSec)), t.CPUMicrosPerRec, t.BrokerCPUSec, thousands(int64(t.RecordsPerTotalCPUSec)), t.CoresUsed, yesNo(t.Exact))
		}
		for _, t := range r.Throughput {
			row(strconv.Itoa(t.Instances), t.Median)
		}
		if r.Embedded != nil {
			row("embedded", r.Embedded.Median)
		}
		fmt.Fprintf(&b, "  first = until the first window was committed; settled = until the group was first seen stable with every instance owning tasks\n")
		fmt.Fprintf(&b, "  * records per CPU-second counting the broker's CPU time over the same interval; cores = (pipeline + broker CPU) / wall\n")
		for _, t := range r.Throughput {
			if t.Median.RepartitionOffsets > 0 {
				fmt.Fprintf(&b, "  written to internal topics (end offsets: records, watermark records, transaction markers), %d instance(s): repartition %s, changelog %s\n",
					t.Instances, thousands(t.Median.RepartitionOffsets), thousands(t.Median.ChangelogOffsets))
			}
		}
		if r.CPURatio > 0 {
			fmt.Fprintf(&b, "\ncluster mode, 1 instance, CPU per record ÷ embedded: %.2fx (target ≤ 1.5x)", r.CPURatio)
			if r.CPURatioWithBroker > 0 {
				fmt.Fprintf(&b, "; counting the broker's CPU on both sides: %.2fx", r.CPURatioWithBroker)
			}
			b.WriteString("\n")
		}
	}
	if len(r.Failover) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "failover (%s): dedup over %s keys (one state entry each) on 2 instances; SIGKILL i1, then one probe record with a new key into every partition;\n", runsWord(r.Runs), thousands(int64(r.FailoverKeys)))
		fmt.Fprintf(&b, "  i1 tasks = source + dedup tasks i1 owned (the kill waits for a settled group); no-kill = the same probes' way through before the kill;\n")
		fmt.Fprintf(&b, "  failover = SIGKILL until the last probe's output is committed; first = until the first probe's;\n")
		fmt.Fprintf(&b, "  takeover = until the instance taking over logged its tasks; tasks, restored, MB, longest = changelog restores logged after the kill\n")
		fmt.Fprintf(&b, "  %-22s %8s %8s %10s %8s %9s %11s %9s %10s %6s %10s %8s %10s %6s\n", "variant", "session", "build s", "keys/s", "i1 tasks", "no-kill s", "failover s", "first s", "takeover s", "tasks", "restored", "MB", "longest s", "exact")
		for _, f := range r.Failover {
			t := f.Median
			name := "restart with same id"
			if !f.Restart {
				name = "no restart"
			}
			fmt.Fprintf(&b, "  %-22s %7.0fs %8.2f %10s %8s %9.2f %11.2f %9.2f %10.2f %6d %10s %8.1f %10.2f %6s\n", name, f.SessionTimeoutSec, t.BuildSec, thousands(int64(t.BuildKeysPerSec)),
				fmt.Sprintf("%d+%d", t.KilledTasks, t.KilledStatefulTasks), t.BaselineProbeSec,
				t.FailoverSec, t.FirstProbeSec, t.TakeoverSec, t.RestoredTasks, thousands(t.RestoredRecords), float64(t.RestoredBytes)/1e6, t.RestoreMaxSec, yesNo(t.Exact))
		}
		fmt.Fprintf(&b, "  targets: failover < 5 s with the default settings; < 1 s with a standby replica (standby replicas are not built)\n")
	}
	return b.String()
}
