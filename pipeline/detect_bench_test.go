package pipeline

import (
	"path/filepath"
	"testing"
)

// BenchmarkDetectEWMAFileToFile: the order file of benchInput (10,000
// users) through a detect step with one EWMA model per user, in memory,
// to files, on one core: compare with BenchmarkStatelessSetFileToFile
// (the same decode and encode without the keyed step).
func BenchmarkDetectEWMAFileToFile(b *testing.B) {
	benchRun(b, 500_000, `  - detect: {key: [user_id], value: price, method: ewma, half_life: 10m}`)
}

// BenchmarkDetectEWMAPebble is the same with the models on Pebble,
// exactly-once with a checkpoint every second.
func BenchmarkDetectEWMAPebble(b *testing.B) {
	benchRunWith(b, 200_000, `  - detect: {key: [user_id], value: price, method: ewma, half_life: 10m}`,
		"state: {backend: pebble, dir: $OUT/state}\ncheckpoint: {interval: 1s}")
}

// BenchmarkDetectMADFileToFile: one sliding-window MAD model per user.
func BenchmarkDetectMADFileToFile(b *testing.B) {
	benchRun(b, 500_000, `  - detect: {key: [user_id], value: price, method: mad, window: 10m}`)
}

// BenchmarkScoreTreesFileToFile: a three-tree XGBoost ensemble per
// record (features price, qty and order_id renamed through set).
func BenchmarkScoreTreesFileToFile(b *testing.B) {
	m, _ := filepath.Abs("testdata/models/ensemble.json")
	benchRun(b, 500_000, `  - set: {temp: price, humidity: qty * 20, count: qty}
  - score: {model: `+m+`, kind: tree_ensemble, into: risk}`)
}
