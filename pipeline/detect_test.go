package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/anomaly"
	"github.com/sluicehq/sluice/stream"
)

// sensorReadings are n readings per sensor, one a minute, with spikes,
// a few nulls and, when bad, one reading that is not a number.
func sensorReadings(seed uint64, sensors, n int, bad bool) []map[string]any {
	r := rand.New(rand.NewPCG(seed, 9))
	var recs []map[string]any
	seq := 0
	for i := range n {
		for s := range sensors {
			var v any = 20 + float64(s) + r.NormFloat64() + 5*math.Sin(float64(i)/48)
			switch {
			case r.IntN(60) == 0:
				v = v.(float64) + 12
			case r.IntN(80) == 0:
				v = nil
			case bad && i == n/2 && s == 0:
				v = "hot"
			}
			recs = append(recs, map[string]any{"seq": seq, "sensor": fmt.Sprintf("s%d", s), "ts": int64(1_700_000_000_000) + int64(i)*60_000 + int64(s), "temperature": v})
			seq++
		}
	}
	return recs
}

type detectOut struct {
	score     float64 // NaN: null
	anomalous bool
}

// detectOracle runs one detector of cfg per sensor over the readings in
// input order: what the step must output for each seq.
func detectOracle(t *testing.T, recs []map[string]any, cfg anomaly.Config) map[int]detectOut {
	dets := map[string]anomaly.Detector{}
	out := map[int]detectOut{}
	for _, r := range recs {
		x, ok := r["temperature"].(float64)
		seq := r["seq"].(int)
		if !ok {
			if r["temperature"] == nil {
				out[seq] = detectOut{score: math.NaN()}
			}
			continue
		}
		s := r["sensor"].(string)
		d := dets[s]
		if d == nil {
			var err error
			if d, err = anomaly.New(cfg); err != nil {
				t.Fatal(err)
			}
			dets[s] = d
		}
		sc, a := d.Update(r["ts"].(int64), x)
		out[seq] = detectOut{sc, a}
	}
	return out
}

func parseDetectRow(t *testing.T, m map[string]any) (int, detectOut) {
	t.Helper()
	seq, err := m["seq"].(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	o := detectOut{score: math.NaN()}
	if n, ok := m["anomaly_score"].(json.Number); ok {
		if o.score, err = n.Float64(); err != nil {
			t.Fatal(err)
		}
	} else if m["anomaly_score"] != nil {
		t.Fatalf("anomaly_score %v", m["anomaly_score"])
	}
	o.anomalous = m["is_anomaly"] == true
	return int(seq), o
}

func sameOut(a, b detectOut) bool {
	if a.anomalous != b.anomalous || math.IsNaN(a.score) != math.IsNaN(b.score) {
		return false
	}
	return math.IsNaN(a.score) || math.Abs(a.score-b.score) <= 1e-12*max(1, math.Abs(b.score))
}

const detectSpec = `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts}
steps:
  - detect: {key: [sensor], value: temperature, method: %s, emit: %s}
sink: {stdout: {}}
errors: {tolerance: all}
parallelism: 2
`

// TestDetectMatchesDetectors: the step's anomaly_score and is_anomaly
// equal, record by record, those of a detector per sensor run directly
// (nulls pass with a null score and do not update the model; a value
// that is not a number is dead-lettered), for every method, with emit
// all and anomalies.
func TestDetectMatchesDetectors(t *testing.T) {
	recs := sensorReadings(1, 3, 800, true)
	input := jsonLines(recs)
	for _, m := range []struct {
		spec string
		cfg  anomaly.Config
	}{
		{"ewma, half_life: 30m", anomaly.Config{Method: anomaly.MethodEWMA, HalfLife: 30 * time.Minute}},
		{"zscore, window: 1h", anomaly.Config{Method: anomaly.MethodZScore, Window: time.Hour}},
		{"mad, window: 2h, threshold: 4", anomaly.Config{Method: anomaly.MethodMAD, Window: 2 * time.Hour, Threshold: 4}},
		{"seasonal, season: 4h, bucket: 10m, min_samples: 10", anomaly.Config{Method: anomaly.MethodSeasonal, Season: 4 * time.Hour, Bucket: 10 * time.Minute, MinSamples: 10}},
	} {
		want := detectOracle(t, recs, m.cfg)
		flagged := 0
		for _, o := range want {
			if o.anomalous {
				flagged++
			}
		}
		if flagged == 0 {
			t.Fatalf("%s: the oracle flags nothing: a test that cannot fail", m.spec)
		}
		for _, emit := range []string{"all", "anomalies"} {
			t.Run(strings.TrimSuffix(strings.Fields(m.spec)[0], ",")+"-"+emit, func(t *testing.T) {
				rows, j, err := runSpec(t, fmt.Sprintf(detectSpec, m.spec, emit), map[string]string{"in.jsonl": input})
				if err != nil {
					t.Fatal(err)
				}
				if j.DeadLetters() != 1 {
					t.Errorf("%d dead letters, want 1 (the reading \"hot\")", j.DeadLetters())
				}
				seen := map[int]bool{}
				for _, r := range rows {
					seq, got := parseDetectRow(t, r)
					if seen[seq] {
						t.Fatalf("seq %d twice", seq)
					}
					seen[seq] = true
					if w, ok := want[seq]; !ok || !sameOut(got, w) {
						t.Fatalf("seq %d: got %+v, want %+v", seq, got, w)
					}
				}
				n := len(want)
				if emit == "anomalies" {
					n = flagged
				}
				if len(rows) != n {
					t.Fatalf("%d rows, want %d", len(rows), n)
				}
			})
		}
	}
}

// TestDetectRestore: a job stopped with a savepoint after the first half
// of the readings and restored for the second half outputs the scores of
// an uninterrupted run: the per-key models are in the checkpoint, in
// memory and on Pebble.
func TestDetectRestore(t *testing.T) {
	recs := sensorReadings(2, 4, 400, false)
	half := len(recs) / 2
	for _, backend := range []string{"memory", "pebble"} {
		for _, method := range []string{"ewma, half_life: 20m", "mad, window: 1h", "seasonal, season: 2h, bucket: 10m, min_samples: 5"} {
			t.Run(backend+"-"+strings.TrimSuffix(strings.Fields(method)[0], ","), func(t *testing.T) {
				cfgFor := map[string]anomaly.Config{
					"ewma,":     {Method: anomaly.MethodEWMA, HalfLife: 20 * time.Minute},
					"mad,":      {Method: anomaly.MethodMAD, Window: time.Hour},
					"seasonal,": {Method: anomaly.MethodSeasonal, Season: 2 * time.Hour, Bucket: 10 * time.Minute, MinSamples: 5},
				}
				want := detectOracle(t, recs, cfgFor[strings.Fields(method)[0]])
				dir := t.TempDir()
				in := filepath.Join(dir, "in")
				if err := os.MkdirAll(in, 0o755); err != nil {
					t.Fatal(err)
				}
				stateSpec := ""
				if backend == "pebble" {
					stateSpec = fmt.Sprintf("state: {backend: pebble, dir: %s}\n", filepath.Join(dir, "state"))
				}
				spec := fmt.Sprintf(`
name: detect-restore
source:
  file: {path: %s, follow: true, poll_interval: 10ms}
  event_time: {field: ts}
steps:
  - detect: {key: [sensor], value: temperature, method: %s}
sink: {stdout: {}}
checkpoint: {interval: 20ms, dir: %s}
parallelism: 2
%s`, in, method, filepath.Join(dir, "chk"), stateSpec)
				got := map[int]detectOut{}
				run := func(file string, part []map[string]any, restore string) string {
					// Input files appear complete (renamed into place).
					tmp := filepath.Join(dir, "."+file)
					if err := os.WriteFile(tmp, []byte(jsonLines(part)), 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(tmp, filepath.Join(in, file)); err != nil {
						t.Fatal(err)
					}
					s, err := Parse("detect-restore.yaml", []byte(spec))
					if err != nil {
						t.Fatal(err)
					}
					p, err := Compile(s)
					if err != nil {
						t.Fatal(err)
					}
					var out syncBuf
					opts := []StartOption{WithStreamOptions(stream.WithCheckpointTimeout(60 * time.Second))}
					if restore != "" {
						opts = append(opts, RestoreFrom(restore))
					}
					j, err := p.Start(context.Background(), &Host{Stdout: &out, DataDir: dir}, opts...)
					if err != nil {
						t.Fatal(err)
					}
					// Wait (with a deadline) until the part's readings are
					// out, then stop with a savepoint.
					wantSeq := map[int]bool{}
					for _, r := range part {
						wantSeq[r["seq"].(int)] = true
					}
					deadline := time.Now().Add(60 * time.Second)
					for {
						n := 0
						sc := bufio.NewScanner(strings.NewReader(out.String()))
						for sc.Scan() {
							if i := strings.Index(sc.Text(), `"seq":`); i >= 0 {
								v := sc.Text()[i+6:]
								v = v[:strings.IndexAny(v, ",}")]
								if k, err := strconv.Atoi(v); err == nil && wantSeq[k] {
									n++
								}
							}
						}
						if n >= len(part) {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("only %d of %d readings out within 60s", n, len(part))
						}
						time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
					}
					sp, err := j.StopWithSavepoint(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if err := j.Wait(); err != nil {
						t.Fatal(err)
					}
					for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
						var m map[string]any
						dec := json.NewDecoder(strings.NewReader(line))
						dec.UseNumber()
						if err := dec.Decode(&m); err != nil {
							t.Fatalf("output %q: %v", line, err)
						}
						seq, o := parseDetectRow(t, m)
						if prev, dup := got[seq]; dup && !sameOut(prev, o) {
							t.Fatalf("seq %d output twice, differently: %+v and %+v", seq, prev, o)
						}
						got[seq] = o
					}
					return sp
				}
				sp := run("a.jsonl", recs[:half], "")
				run("b.jsonl", recs[half:], sp)
				if len(got) != len(want) {
					t.Fatalf("%d readings out, want %d", len(got), len(want))
				}
				for seq, w := range want {
					if g := got[seq]; !sameOut(g, w) {
						t.Fatalf("seq %d (after the restore: %v): got %+v, want %+v", seq, seq >= half, g, w)
					}
				}
			})
		}
	}
}

// TestScoreStep: the score step's outputs equal the reference evaluation
// of package scoring's test models (scoring/testdata/expected.txt).
func TestScoreStep(t *testing.T) {
	inputs, err := os.ReadFile("../scoring/testdata/inputs.txt")
	if err != nil {
		t.Fatal(err)
	}
	expected, err := os.ReadFile("../scoring/testdata/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, line := range strings.Split(string(inputs), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasPrefix(line, "#") {
			continue
		}
		r := map[string]any{"id": len(recs)}
		for i, name := range []string{"temp", "humidity", "count"} {
			if f[i] == "NA" {
				r[name] = nil
				continue
			}
			v, _ := strconv.ParseFloat(f[i], 64)
			r[name] = v
		}
		recs = append(recs, r)
	}
	var want [][2]string
	for _, line := range strings.Split(string(expected), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && !strings.HasPrefix(line, "#") {
			want = append(want, [2]string{f[0], f[1]})
		}
	}
	model, _ := filepath.Abs("testdata/models")
	rows, _, err := runSpec(t, fmt.Sprintf(`
source: {file: {path: $DIR/in.jsonl}}
steps:
  - score: {model: %s/ensemble.json, kind: tree_ensemble, into: risk}
  - score: {model: %s/logistic.json, kind: logistic, into: p}
sink: {stdout: {}}
`, model, model), map[string]string{"in.jsonl": jsonLines(recs)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) || len(rows) == 0 {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		id, _ := r["id"].(json.Number).Int64()
		for k, field := range []string{"risk", "p"} {
			w := want[id][k]
			if w == "NaN" {
				if r[field] != nil {
					t.Errorf("row %d %s: %v, want null (a missing feature)", id, field, r[field])
				}
				continue
			}
			wf, _ := strconv.ParseFloat(w, 64)
			n, ok := r[field].(json.Number)
			if !ok {
				t.Fatalf("row %d %s: %v", id, field, r[field])
			}
			g, _ := n.Float64()
			if math.Abs(g-wf) > 1e-12 {
				t.Errorf("row %d %s: %v, want %v", id, field, g, wf)
			}
		}
	}
}
