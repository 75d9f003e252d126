package anomaly

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "print the measured figures of testdata/detection.txt (the minimums stay as written)")

// TestDetection runs each case of testdata/detection.txt: a detector on
// generated series with anomalies injected at known positions, its event
// precision and recall summed over five seeds, asserted above the case's
// minimums.
func TestDetection(t *testing.T) {
	f, err := os.Open("testdata/detection.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	cases := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cases++
		fields := strings.Fields(text)
		if len(fields) < 2 {
			t.Fatalf("line %d: want scenario method key=value...", line)
		}
		scenario, cfg := fields[0], Config{Method: fields[1]}
		var minP, minR float64
		for _, kv := range fields[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("line %d: %q is not key=value", line, kv)
			}
			var err error
			switch k {
			case "half_life":
				cfg.HalfLife, err = time.ParseDuration(v)
			case "window":
				cfg.Window, err = time.ParseDuration(v)
			case "season":
				cfg.Season, err = time.ParseDuration(v)
			case "bucket":
				cfg.Bucket, err = time.ParseDuration(v)
			case "threshold":
				cfg.Threshold, err = strconv.ParseFloat(v, 64)
			case "min_samples":
				cfg.MinSamples, err = strconv.Atoi(v)
			case "precision":
				minP, err = strconv.ParseFloat(v, 64)
			case "recall":
				minR, err = strconv.ParseFloat(v, 64)
			default:
				err = fmt.Errorf("unknown key")
			}
			if err != nil {
				t.Fatalf("line %d: %s: %v", line, kv, err)
			}
		}
		name := fmt.Sprintf("%s/%s/line%d", scenario, cfg.Method, line)
		t.Run(name, func(t *testing.T) {
			var tp, events, fp int
			for seed := uint64(1); seed <= 5; seed++ {
				var s series
				switch scenario {
				case "spikes":
					s = genSpikes(seed, 6000, 20)
				case "shifts":
					s = genShifts(seed, 6000, 6)
				case "seasonal_breaks":
					s = genSeasonalBreaks(seed, 21, 8)
				default:
					t.Fatalf("unknown scenario %q", scenario)
				}
				d, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, r, f := evaluate(d, s)
				tp += int(r*float64(len(s.events)) + 0.5)
				events += len(s.events)
				fp += f
			}
			p := 0.0
			if tp+fp > 0 {
				p = float64(tp) / float64(tp+fp)
			}
			r := float64(tp) / float64(events)
			t.Logf("%s %s: precision %.3f recall %.3f (%d of %d events, %d false flags)", scenario, cfg.Method, p, r, tp, events, fp)
			if *rewrite {
				fmt.Printf("%s precision=%.3f recall=%.3f\n", text, p, r)
			}
			if p < minP || r < minR {
				t.Errorf("precision %.3f recall %.3f; minimums %.2f and %.2f", p, r, minP, minR)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases == 0 {
		t.Fatal("no cases")
	}
}
