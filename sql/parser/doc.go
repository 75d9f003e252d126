// Package parser reads Sluice's SQL dialect — Flink SQL's — into the
// syntax tree of package sql/ast: a hand-written lexer (no regular
// expressions) and a recursive-descent parser with one token of
// lookahead (a few more where the grammar needs them).
//
// It is hand-written because no Go SQL parser accepts Flink's dialect:
// windowing table-valued functions
// (`TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))`,
// with named arguments `DATA => TABLE t`), `backquoted` identifiers,
// WATERMARK FOR and METADATA columns in CREATE TABLE, FILTER (WHERE ...)
// on aggregates, FOR SYSTEM_TIME AS OF lookup joins, EXECUTE STATEMENT
// SET, ROW<...>/ARRAY<...> types.
//
// Entry points: ParseScript (statements separated by ';'), ParseStatement,
// ParseQuery (a YAML `sql:` step) and ParseExpr. Errors are *Error values
// naming the line and column, what was expected and what was found, with
// a "did you mean" suggestion for misspelled keywords.
//
// Format prints any node back as canonical SQL (used by EXPLAIN); parsing
// Format's output gives the same tree, positions aside.
//
// Normalisations, since the tree has one spelling for several forms:
//   - keywords are case-insensitive; identifiers and function names keep
//     their text; a doubled backquote inside backquotes is one backquote; `!=` is "<>"; MINUS is EXCEPT.
//   - type names are canonical upper case as sql/types.FromAST expects:
//     INTEGER→INT, DEC/NUMERIC→DECIMAL, BOOL→BOOLEAN, REAL→FLOAT,
//     DOUBLE PRECISION→DOUBLE, CHARACTER→CHAR, CHARACTER VARYING→VARCHAR,
//     TIMESTAMP WITHOUT TIME ZONE→TIMESTAMP, TIMESTAMP WITH LOCAL TIME
//     ZONE→TIMESTAMP_LTZ. MAP<K, V> is TypeName{Name: "MAP", Fields:
//     [{Name: "key", Type: K}, {Name: "value", Type: V}]}; MULTISET<T> is
//     like ARRAY<T>. sql/types rejects MAP, MULTISET and BINARY types today.
//   - SUBSTRING(s FROM a FOR b) is SUBSTRING(s, a, b); POSITION(a IN b) is
//     POSITION(a, b); OVERLAY(s PLACING r FROM a FOR n) is
//     OVERLAY(s, r, a, n); TRIM([BOTH|LEADING|TRAILING] [c] FROM s) and
//     TRIM(s) are TRIM(s, 'MODE', c) with c ' ' when absent.
//   - CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, LOCALTIMESTAMP,
//     LOCALTIME (no parentheses) are Calls without arguments.
//   - a frame with one bound (ROWS 2 PRECEDING) has End CURRENT ROW.
//   - ORDER BY/LIMIT/OFFSET/FETCH after a SELECT block are the Select's;
//     after a set operation the SetOp's (OFFSET there is an error).
//   - FETCH FIRST n ROWS ONLY is Limit.
//   - `(query)` in a query is the inner query itself; `(a JOIN b)` in FROM
//     is the join itself.
//
// Parsed and dropped, because the tree has no place for them: TEMPORARY
// and SYSTEM in CREATE/DROP, a table's COMMENT, CONSTRAINT names, a
// computed column's COMMENT.
//
// Positions: every node's Pos is where its text starts (a Binary's is its
// left operand's, a Join's its left table's), 1-based line and byte
// column.
//
// Not supported (a clear error, or, for hints, ignored): /*+ hints */
// (read as comments), MATCH_RECOGNIZE, named WINDOW clauses, GROUPING
// SETS, ROLLUP and CUBE, NATURAL JOIN, UNNEST, CREATE TABLE ... LIKE /
// AS SELECT, INSERT ... PARTITION, '::' casts, the SESSION table
// function's `TABLE t PARTITION BY k` argument (ast.TableArg has no
// place for it).
//
// Words that are keywords elsewhere (DAY, HOUR, VALUE, KEY, USER, DATE,
// TIMESTAMP, ...) are identifiers where an identifier is expected; only
// the words that structure a query (SELECT, FROM, WHERE, JOIN, AS, AND,
// ... see reserved) must be `backquoted` to be names.
package parser
