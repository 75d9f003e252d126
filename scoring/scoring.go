package scoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Kinds of model.
const (
	KindLinear       = "linear"
	KindLogistic     = "logistic"
	KindTreeEnsemble = "tree_ensemble"
)

// Kinds lists the kinds Parse accepts.
var Kinds = []string{KindLinear, KindLogistic, KindTreeEnsemble}

// Model is a compiled model.
type Model interface {
	// Features returns the names of the features, in the order Predict
	// takes them.
	Features() []string
	// Predict returns the model's output for x (len(x) ==
	// len(Features()); NaN is a missing value).
	Predict(x []float64) float64
}

// ErrModel is wrapped by every error of Parse.
var ErrModel = errors.New("scoring: bad model")

// Parse decodes a model of the given kind.
func Parse(kind string, data []byte) (Model, error) {
	switch kind {
	case KindLinear, KindLogistic, KindTreeEnsemble:
	default:
		return nil, fmt.Errorf("%w: kind %q is unknown; allowed: linear, logistic, tree_ensemble", ErrModel, kind)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the model file is empty", ErrModel)
	}
	if kind == KindTreeEnsemble {
		return ParseTrees(data)
	}
	return ParseLinear(data, kind == KindLogistic)
}

// Linear is intercept + Σ wᵢxᵢ, passed through the logistic function
// 1/(1+e^-z) when Logistic. A missing feature makes the output NaN.
type Linear struct {
	Intercept float64
	Weights   []float64
	Names     []string
	Logistic  bool
}

// ParseLinear decodes {"intercept": b, "coefficients": {"feature": w,
// ...}}; the features are taken in name order.
func ParseLinear(data []byte, logistic bool) (*Linear, error) {
	var doc struct {
		Intercept    *float64           `json:"intercept"`
		Coefficients map[string]float64 `json:"coefficients"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v (want {\"intercept\": number, \"coefficients\": {\"feature\": number}})", ErrModel, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the model's JSON object", ErrModel)
	}
	if len(doc.Coefficients) == 0 {
		return nil, fmt.Errorf("%w: coefficients is missing or empty", ErrModel)
	}
	m := &Linear{Logistic: logistic}
	if doc.Intercept != nil {
		m.Intercept = *doc.Intercept
	}
	for n := range doc.Coefficients {
		if n == "" {
			return nil, fmt.Errorf("%w: a coefficient has an empty feature name", ErrModel)
		}
		m.Names = append(m.Names, n)
	}
	sort.Strings(m.Names)
	for _, n := range m.Names {
		m.Weights = append(m.Weights, doc.Coefficients[n])
	}
	return m, nil
}

// Features implements Model.
func (m *Linear) Features() []string { return m.Names }

// Predict implements Model.
func (m *Linear) Predict(x []float64) float64 {
	z := m.Intercept
	for i, w := range m.Weights {
		z += w * x[i]
	}
	if m.Logistic {
		return sigmoid(z)
	}
	return z
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
