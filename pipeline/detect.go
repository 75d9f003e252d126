package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicehq/sluice/anomaly"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/scoring"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// The detect and score steps (docs/pipeline-spec.md, docs/anomaly.md).

// Output fields of a detect step.
const (
	detectScoreField = "anomaly_score"
	detectFlagField  = "is_anomaly"
)

// DetectSpec is a detect step: an online anomaly detector per key over
// a numeric value, in event time.
type DetectSpec struct {
	Key []string
	// Value is an expression giving the observed number (a field name,
	// usually).
	Value    string
	ValuePos Pos
	// Config holds the method and its settings; zero fields take the
	// detector's defaults (anomaly.Config.WithDefaults).
	Config anomaly.Config
	// Emit is all (every record, with the two fields) or anomalies (only
	// anomalous records).
	Emit string
}

// ScoreSpec is a score step: a model evaluated per record.
type ScoreSpec struct {
	// Model is the model file's path as written (relative to the spec's
	// directory); Kind is linear, logistic or tree_ensemble.
	Model string
	Kind  string
	// Into is the output field (default score).
	Into string
}

func parseDetect(e *errs, o *obj) *DetectSpec {
	if o == nil {
		return nil
	}
	d := &DetectSpec{}
	d.Key = o.strList("key")
	if len(d.Key) == 0 {
		e.at(o.node, o.sub("key"), "is required: the fields that identify a series, like [sensor]; each key has its own model")
	}
	d.Value = o.reqStr("value", "the number to watch: a field or an expression, like temperature")
	d.ValuePos = o.pos("value")
	c := &d.Config
	c.Method = o.enum("method", "", anomaly.Methods...)
	if !o.has("method") {
		e.at(o.node, o.sub("method"), "is required; allowed: %s", strings.Join(anomaly.Methods, ", "))
	}
	only := func(key string, methods ...string) bool {
		if !o.has(key) {
			return false
		}
		for _, m := range methods {
			if c.Method == m {
				return true
			}
		}
		if c.Method != "" {
			e.at(o.get(key), o.sub(key), "is not a setting of method %s (it is for %s)", c.Method, strings.Join(methods, " and "))
		}
		return false
	}
	if only("half_life", anomaly.MethodEWMA, anomaly.MethodSeasonal) {
		c.HalfLife = o.duration("half_life", 0, true)
	}
	if only("window", anomaly.MethodZScore, anomaly.MethodMAD) {
		c.Window = o.duration("window", 0, true)
	}
	if only("max_samples", anomaly.MethodZScore, anomaly.MethodMAD) {
		c.MaxSamples = int(o.integer("max_samples", 0, 3, 1<<20))
	}
	if only("season", anomaly.MethodSeasonal) {
		c.Season = o.duration("season", 0, true)
	}
	if only("bucket", anomaly.MethodSeasonal) {
		c.Bucket = o.duration("bucket", 0, true)
	}
	for _, k := range []string{"alpha", "beta", "gamma"} {
		if only(k, anomaly.MethodSeasonal) {
			v := o.number(k, 0, 1e-9, 1-1e-9)
			switch k {
			case "alpha":
				c.Alpha = v
			case "beta":
				c.Beta = v
			default:
				c.Gamma = v
			}
		}
	}
	if c.Method == anomaly.MethodSeasonal && !o.has("season") {
		e.at(o.node, o.sub("season"), "is required for method seasonal: the length of the pattern, like 24h (daily) or 7d (weekly)")
	}
	c.Threshold = o.number("threshold", 0, 1e-9, 1e9)
	c.MinSamples = int(o.integer("min_samples", 0, 1, 1<<30))
	d.Emit = o.enum("emit", "all", "all", "anomalies")
	if c.Method != "" && (c.Method != anomaly.MethodSeasonal || c.Season > 0) {
		if err := c.WithDefaults().Validate(); err != nil {
			e.at(o.node, o.path, "%v", err)
		}
	}
	o.done("key", "value", "method", "half_life", "window", "max_samples", "season", "bucket", "alpha", "beta", "gamma", "threshold", "min_samples", "emit")
	return d
}

func parseScore(e *errs, o *obj) *ScoreSpec {
	if o == nil {
		return nil
	}
	s := &ScoreSpec{}
	s.Model = o.reqStr("model", "the model's JSON file, relative to the spec's directory")
	s.Kind = o.enum("kind", "", scoring.Kinds...)
	if !o.has("kind") {
		e.at(o.node, o.sub("kind"), "is required; allowed: %s", strings.Join(scoring.Kinds, ", "))
	}
	s.Into = o.str("into", "score")
	if !identRe.MatchString(s.Into) {
		e.at(o.get("into"), o.sub("into"), "%q is not a field name (letters, digits and _)", s.Into)
	}
	o.done("model", "kind", "into")
	return s
}

// detectPlan is a planned detect step.
type detectPlan struct {
	spec      *DetectSpec
	cfg       anomaly.Config
	keyIdx    []int
	value     *expression
	scoreIdx  int
	flagIdx   int
	anomalies bool
	outLen    func() int
	stage     string
}

func planDetect(e *errs, st StepSpec, path string, cur *fieldSet, hasEventTime bool) *detectPlan {
	ds := st.Detect
	if ds == nil {
		return nil
	}
	if !hasEventTime {
		e.list = append(e.list, st.Pos.errorf("needs event time: a detector's half-life, window and season are event time; give the source event_time: {field: ...}"))
	}
	d := &detectPlan{spec: ds, cfg: ds.Config.WithDefaults(), stage: path, anomalies: ds.Emit == "anomalies"}
	d.keyIdx = resolveKeys(e, st.Pos, "key", ds.Key, cur)
	if ds.Value != "" {
		d.value = compileAt(e, ds.ValuePos, ds.Value, cur)
	}
	d.scoreIdx = cur.add(detectScoreField)
	cur.kinds[d.scoreIdx] = row.KindFloat
	d.flagIdx = cur.add(detectFlagField)
	cur.kinds[d.flagIdx] = row.KindBool
	f := cur
	d.outLen = func() int { return len(f.names) }
	return d
}

// detModel is the per-key state of a detect step: the detector, or,
// right after a restore (or on Pebble, after every read), its encoded
// state, bound to a detector of the step's configuration on first use.
type detModel struct {
	d   anomaly.Detector
	raw []byte
}

// MarshalBinary encodes the detector's state (state/codec calls it).
func (m detModel) MarshalBinary() ([]byte, error) {
	if m.d != nil {
		return m.d.AppendBinary(nil), nil
	}
	return m.raw, nil
}

// UnmarshalBinary keeps the encoded state until the step binds it.
func (m *detModel) UnmarshalBinary(b []byte) error {
	m.d, m.raw = nil, bytes.Clone(b)
	return nil
}

// detector returns m's detector, built from cfg and restored from m.raw
// when m was decoded. State that does not fit cfg (the step's method or
// season changed since the checkpoint) is dropped: the key starts a new
// model.
func (m *detModel) detector(cfg anomaly.Config) anomaly.Detector {
	if m.d != nil {
		return m.d
	}
	d, err := anomaly.New(cfg)
	if err != nil {
		panic(fmt.Sprintf("detect: configuration validated at planning failed: %v", err))
	}
	if m.raw != nil {
		if err := d.UnmarshalBinary(m.raw); err != nil {
			d, _ = anomaly.New(cfg)
		}
	}
	m.d, m.raw = d, nil
	return d
}

// detKeyed is a record with its key encoded as a string (row.AppendKey):
// strings hash without boxing (state's hasher boxes other key types into
// an interface, an allocation per hash, twice per record: exchange and
// operator), which is a quarter of the step's cost per record.
type detKeyed struct {
	key string
	r   row.Row
}

func buildDetect(ctx context.Context, rows stream.Stream[row.Row], d *detectPlan, in schemaRef, dl *deadLetters) stream.Stream[row.Row] {
	kr := stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[detKeyed]) {
		var kb [64]byte
		em.Emit(detKeyed{key: string(r.AppendKey(kb[:0], d.keyIdx)), r: r})
	}, stream.Name(d.stage+".key"))
	ks := stream.KeyBy(kr, func(k detKeyed) string { return k.key })
	return stream.KeyedProcess(ks, func(kc *stream.KeyedContext[string, row.Row]) (stream.KeyedProcessFunc[string, detKeyed, row.Row], error) {
		models, err := state.NewValue[string, detModel](kc.State(), "model")
		if err != nil {
			return nil, err
		}
		return stream.KeyedProcessFuncs[string, detKeyed, row.Row]{
			Element: func(kc *stream.KeyedContext[string, row.Row], k detKeyed) {
				v, err := d.value.eval(k.r.Vals)
				if err == nil && !v.IsNull() && !v.IsNumber() {
					err = fmt.Errorf("%w: value %s: %s is a %s, not a number", ErrEval, d.value.src, v, v.Kind())
				}
				if err != nil {
					rr := k.r
					if ferr := dl.report(ctx, failure{Stage: d.stage + ".value", Origin: d.stage, Offset: -1, Err: err, Row: &rr, Schema: in()}); ferr != nil {
						panic(ferr)
					}
					return
				}
				score := math.NaN()
				anomalous := false
				if x := v.AsFloat(); !v.IsNull() && !math.IsNaN(x) && !math.IsInf(x, 0) {
					m, _ := models.Get()
					score, anomalous = m.detector(d.cfg).Update(kc.Timestamp(), x)
					models.Set(m)
				}
				if d.anomalies && !anomalous {
					return
				}
				n := max(d.outLen(), len(k.r.Vals))
				vals := make([]row.Value, n)
				copy(vals, k.r.Vals)
				if !math.IsNaN(score) {
					vals[d.scoreIdx] = row.Float(score)
				} else {
					vals[d.scoreIdx] = row.Null()
				}
				vals[d.flagIdx] = row.Bool(anomalous)
				kc.Emit(row.Row{Vals: vals, Rest: k.r.Rest})
			},
		}, nil
	}, stream.Name(d.stage))
}

// scorePlan is a planned score step.
type scorePlan struct {
	model  scoring.Model
	feat   []int // positions of the model's features
	into   int
	outLen func() int
	stage  string
}

func planScore(e *errs, st StepSpec, path string, cur *fieldSet, specFile string) *scorePlan {
	ss := st.Score
	if ss == nil || ss.Model == "" || ss.Kind == "" {
		return nil
	}
	file := ss.Model
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(specFile), file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		e.list = append(e.list, st.Pos.errorf("model: %v", err))
		return nil
	}
	m, err := scoring.Parse(ss.Kind, data)
	if err != nil {
		e.list = append(e.list, st.Pos.errorf("model %s: %v", ss.Model, err))
		return nil
	}
	sp := &scorePlan{model: m, stage: path}
	for _, f := range m.Features() {
		i, ok := cur.resolve(f)
		if !ok {
			e.list = append(e.list, st.Pos.errorf("model %s: feature %q is not a field here; fields: %s (name the model's features after the fields, or add them with set:)", ss.Model, f, strings.Join(cur.known(), ", ")))
			continue
		}
		sp.feat = append(sp.feat, i)
	}
	sp.into = cur.add(ss.Into)
	cur.kinds[sp.into] = row.KindFloat
	f := cur
	sp.outLen = func() int { return len(f.names) }
	return sp
}

func buildScore(ctx context.Context, rows stream.Stream[row.Row], sp *scorePlan, in schemaRef, dl *deadLetters) stream.Stream[row.Row] {
	return stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[row.Row]) {
		var buf [16]float64
		x := buf[:0]
		for j, p := range sp.feat {
			v := r.Get(p)
			switch v.Kind() {
			case row.KindNull:
				x = append(x, math.NaN())
			case row.KindInt, row.KindFloat, row.KindBool:
				x = append(x, v.AsFloat())
			default:
				rr := r
				err := fmt.Errorf("%w: feature %s: %s is a %s, not a number", ErrEval, sp.model.Features()[j], v, v.Kind())
				if ferr := dl.report(ctx, failure{Stage: sp.stage, Origin: sp.stage, Offset: -1, Err: err, Row: &rr, Schema: in()}); ferr != nil {
					panic(ferr)
				}
				return
			}
		}
		y := sp.model.Predict(x)
		n := max(sp.outLen(), len(r.Vals))
		vals := make([]row.Value, n)
		copy(vals, r.Vals)
		if math.IsNaN(y) || math.IsInf(y, 0) {
			vals[sp.into] = row.Null()
		} else {
			vals[sp.into] = row.Float(y)
		}
		em.Emit(row.Row{Vals: vals, Rest: r.Rest})
	}, stream.Name(sp.stage))
}
