// Package ast is the syntax tree of Sluice's SQL dialect (Flink SQL's):
// statements (CREATE TABLE/VIEW/FUNCTION, SET, INSERT, SELECT, EXPLAIN),
// queries (SELECT blocks, joins, table-valued functions, UNION ALL) and
// scalar expressions. Every node records where it starts in the source
// text (Pos) so that planning errors can name a line and column.
//
// The tree is what the parser (package sql/parser) produces and the
// planner (package sql) consumes; it holds no types or resolved names.
package ast
