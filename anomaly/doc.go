// Package anomaly holds online anomaly detectors for one numeric series
// each: a detector sees the series' observations one at a time, in event
// time, and says for each how far it is from what the series' recent
// past predicts (a score in standard deviations) and whether that is
// anomalous (|score| above a threshold, once the detector has seen
// min_samples observations).
//
// Four detectors share the Detector interface:
//
//   - EWMA: an exponentially weighted mean and variance whose weights
//     halve every half-life of event time (not every n samples), so that
//     irregular sampling does not change what "recent" means.
//   - ZScore: the mean and standard deviation over a sliding event-time
//     window.
//   - MAD: the robust (modified) z-score of Iglewicz and Hoaglin over a
//     sliding event-time window: 0.6745 (x - median) / MAD.
//   - Seasonal: an additive Holt-Winters baseline (level, trend, one
//     seasonal component per bucket of the season) with event-time
//     buckets, scoring each observation's residual against the residuals'
//     own weighted standard deviation.
//
// Every detector keeps its state in plain fields and encodes it with
// AppendBinary / UnmarshalBinary (a version byte, then fixed fields), so a
// stream processor can checkpoint it per key. The configuration
// (half-life, window, season, threshold) is not part of the encoding: the
// state is restored into a detector built from the current configuration,
// and UnmarshalBinary refuses state whose shape does not fit it (another
// method, another season length).
//
// docs/anomaly.md gives the formulas, their references and the measured
// precision and recall.
package anomaly
