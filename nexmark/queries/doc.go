// Package queries implements the Nexmark benchmark queries on Sluice's
// public stream API, like any user would, plus the runner behind
// `sluice nexmark run`.
//
// Each query reads the events of a nexmark generator (or of a file written
// by `sluice nexmark generate`) and writes typed result rows (Q0Row, ...)
// whose JSON encoding uses the column names of the reference's result
// tables. docs/nexmark.md states the reference SQL semantics next to each
// query.
//
// Results are compared by Fingerprint: the row count and the sum of the
// 64-bit hashes of the rows' canonical JSON, so the order in which parallel
// subtasks emit rows does not matter. Queries whose results update earlier
// results (q4) fingerprint only the final value per result key.
package queries
