package scoring

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestXGBoostPredictions checks ParseTrees against XGBoost itself:
// testdata/xgboost_models.json holds models trained by xgboost_models.py
// (their get_dump JSON and save_config base_score), test rows with missing
// values, and XGBoost's predictions and margins for them. XGBoost sums
// leaves in float32, hence the tolerance. binary:logitraw once took the
// logit of its base_score; XGBoost adds base_score to the margin as it is.
func TestXGBoostPredictions(t *testing.T) {
	data, err := os.ReadFile("testdata/xgboost_models.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Features []string
		Models   []struct {
			Objective   string
			BaseScore   float64 `json:"base_score"`
			Dump        []string
			Inputs      [][]*float64
			Predictions []float64
			Margins     []float64
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, f := range doc.Features {
		col[f] = i
	}
	for _, m := range doc.Models {
		model, _ := json.Marshal(map[string]any{"base_score": m.BaseScore, "objective": m.Objective, "trees": m.Dump})
		tr, err := ParseTrees(model)
		if err != nil {
			t.Fatalf("%s: %v", m.Objective, err)
		}
		for i, in := range m.Inputs {
			x := make([]float64, len(tr.Features()))
			for j, f := range tr.Features() {
				if v := in[col[f]]; v != nil {
					x[j] = *v
				} else {
					x[j] = math.NaN()
				}
			}
			if got, want := tr.Margin(x), m.Margins[i]; math.Abs(got-want) > 1e-5*max(1, math.Abs(want)) {
				t.Errorf("%s base_score %v, row %d %v: margin %v, XGBoost %v", m.Objective, m.BaseScore, i, x, got, want)
			}
			if got, want := tr.Predict(x), m.Predictions[i]; math.Abs(got-want) > 1e-5*max(1, math.Abs(want)) {
				t.Errorf("%s base_score %v, row %d %v: prediction %v, XGBoost %v", m.Objective, m.BaseScore, i, x, got, want)
			}
		}
	}
}
