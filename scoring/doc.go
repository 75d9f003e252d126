// Package scoring evaluates small models per record in pure Go: linear
// and logistic regressions from a small JSON document, and gradient-
// boosted tree ensembles in XGBoost's JSON dump format
// (booster.get_dump(dump_format="json")).
//
// A model names its features; the caller resolves them once (Features)
// and then calls Predict with a feature vector in that order, NaN marking
// a missing value. Tree ensembles are compiled into flat arrays (one
// slice of nodes, children by index), so that a prediction is a few
// array reads per tree and allocates nothing.
//
// docs/pipeline-spec.md (the score step) documents the file formats.
package scoring
