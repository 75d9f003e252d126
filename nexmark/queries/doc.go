// Package queries implements the Nexmark benchmark queries on Sluice's
// public stream API, like any user would, plus the runner behind
// `sluice nexmark run`.
//
// Each query (q0-q5, q7, q8, q11, q12, q14-q22; see Queries) reads the
// events of a nexmark generator (GeneratorSource) or of a file written by
// `sluice nexmark generate` (FileSource), with watermarks 4 s behind the
// event time like the reference, and produces typed result rows (Q0Row,
// ...) whose JSON encoding uses the column names of the reference's result
// tables. docs/nexmark.md states the reference SQL semantics next to each
// query.
//
// Results are compared by Fingerprint: the row count and the sum of the
// 64-bit hashes of the rows' canonical JSON, so the order in which parallel
// subtasks emit rows does not matter. Queries whose results update earlier
// results (q4, q15-q19) emit a changelog of insertions and retractions
// (Change); retractions subtract from the fingerprint, which therefore
// covers the final value per result key.
//
// Run builds and runs one query and reports events, wall and CPU seconds,
// throughput, result rows and checksum (Result).
package queries
