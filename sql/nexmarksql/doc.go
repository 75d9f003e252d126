// Package nexmarksql runs the Nexmark benchmark from the reference
// repository's SQL text (embedded, unchanged, in queries/) on Sluice's
// SQL layer: the datagen table on the built-in 'nexmark' connector (or
// on a JSON file written by `sluice nexmark generate`), the person,
// auction and bid views, and each query's INSERT, with only the tables'
// WITH options replaced. Results are fingerprinted exactly as the
// hand-written queries of package nexmark/queries fingerprint theirs,
// so the two can be compared checksum for checksum; `sluice nexmark run
// --sql` is built on Run.
package nexmarksql
