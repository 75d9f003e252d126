// Package oracle is a naive batch evaluator of Sluice's SQL dialect, the
// brute-force reference the conformance suite (sql/conformance_test.go)
// checks the streaming engine against.
//
// It evaluates the parsed query (sql/ast) over the final contents of
// its input tables, independently of the planner and of sql/exec: joins
// are nested loops, GROUP BY is a map, windows are assigned by
// enumeration (session windows by sorting each group's rows and merging
// them), ROW_NUMBER sorts each partition, UNION and DISTINCT compare
// whole rows, ORDER BY ... LIMIT sorts everything. Only scalar
// expressions are shared with the engine: they are compiled by sql/expr
// against this package's own Scope.
//
// Time is ignored except for window assignment and lateness. Lateness
// follows the engine's per-split watermark for an input read as one
// split, one record at a time: the watermark in effect when record i
// arrives is max over the records before it of (the WATERMARK
// expression) minus 1 ms; a record is dropped from a window whose last
// millisecond (end - 1) is at or before that watermark. For a session
// window the record's own window [ts, ts + gap) is checked before
// merging. Rows produced by aggregations and joins carry no watermark
// (nothing downstream of them is late).
//
// A global aggregation (no GROUP BY) over no rows gives no row, as a
// streaming aggregation does (a batch engine would give one). ORDER BY
// sorts NULL as the smallest value (NULLS FIRST ascending, NULLS LAST
// descending, Flink's default) unless NULLS FIRST/LAST says otherwise; rows equal in
// ROW_NUMBER's order keep their arrival order (reversed when the first
// key is descending, so that keep-last deduplication keeps the latest).
// Interval joins are plain joins here: the engine drops rows behind the
// watermark, so cases with such rows cannot use the oracle.
//
// The oracle evaluates SELECT (with WHERE, GROUP BY, legacy group
// windows TUMBLE/HOP/SESSION/CUMULATE and their _START/_END/_ROWTIME,
// HAVING, DISTINCT, ORDER BY, LIMIT, aggregates COUNT [DISTINCT], SUM,
// AVG, MIN, MAX with FILTER, user-defined aggregates), the window TVFs
// TUMBLE, HOP, CUMULATE and SESSION, joins (inner, left, right, full,
// cross, comma), ROW_NUMBER() OVER, UNION [ALL], VALUES, WITH, views and
// subqueries. It does not support JOIN ... USING, INTERSECT, EXCEPT,
// OVER aggregations, or DECIMAL SUM/AVG.
package oracle
