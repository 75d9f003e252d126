// Package exec holds the run-time operators of SQL plans, built on the
// public stream API like any user program: changelog rows (Change),
// aggregations (windowed and updating, with retractions, DISTINCT and
// FILTER), joins (regular with updates, interval, window), ranking
// (ROW_NUMBER deduplication and top-N). Each operator is a function from
// streams of Change to a stream of Change, configured with column
// positions decided by the planner; none of them sees SQL text.
//
// Ranking is deterministic: rows equal on every ORDER BY key of a
// ROW_NUMBER are ordered by their whole row (columns in column order,
// row.Compare, NULL first; the smaller row ranks first), and only
// identical rows keep arrival order. Unlike Flink, which ranks ties by
// arrival order, results do not depend on parallelism or on how splits
// interleave (see Rank).
package exec
