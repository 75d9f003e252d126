// Package expr type-checks SQL scalar expressions (sql/ast.Expr) and
// compiles them into evaluators over the values of a row, with Flink
// SQL's semantics.
//
// A Compiler turns an expression into a Compiled: its SQL type and an
// Eval closure specialised at compile time for the argument types (no
// type switch per row where it can be avoided). Deterministic subtrees
// over constants are folded into constants; constant patterns (LIKE,
// SIMILAR TO, REGEXP_*, DATE_FORMAT, TO_TIMESTAMP) are compiled once.
// Values are held in row.Value as package types documents (DECIMAL as
// its unscaled int64, TIMESTAMP as epoch milliseconds, DATE as days).
//
// Semantics, as Flink's:
//
//   - Three-valued logic: FALSE AND NULL is FALSE, TRUE OR NULL is TRUE,
//     other NULL operands give NULL; functions return NULL for a NULL
//     argument unless documented (COALESCE, CONCAT_WS, IS ...).
//   - Integer arithmetic is done in int64 and wraps around on overflow
//     like Java's: BIGINT at 64 bits, INT at 32, SMALLINT at 16, TINYINT
//     at 8 (the result type is the wider operand). Integer division
//     truncates toward zero.
//   - DECIMAL arithmetic is exact. Result types: + and - take scale
//     max(s1, s2) and precision max(p1-s1, p2-s2)+scale+1; * adds scales
//     and precisions; % keeps the larger scale. Division (a pragmatic
//     rule, as the unscaled value is an int64 where Flink has 38 digits)
//     has scale max(6, s1) capped at 18, rounded HALF_UP. Integers take
//     part as DECIMAL(10, 0) (INT) or DECIMAL(19, 0) (BIGINT). Precision
//     is capped at 38 as Flink; a value that does not fit 18 digits is an
//     overflow (NULL, reported).
//   - Any DOUBLE or FLOAT operand makes the arithmetic DOUBLE.
//   - Comparisons work across numeric types exactly (DECIMAL scales are
//     aligned), between strings (byte order of UTF-8), between times of
//     one kind; a string compared with a time is parsed as that time.
//     Anything else is a compile error: "cannot compare VARCHAR with
//     BIGINT; CAST one side".
//   - Literals: an integer is INT when it fits 32 bits, else BIGINT;
//     0.908 is DECIMAL(4, 3); 1e3 is DOUBLE; 'abc' is CHAR(3).
//   - The common type of CASE, IF, COALESCE and IN branches: DOUBLE if
//     any is approximate, else DECIMAL wide enough for all, else the
//     widest integer; strings of different lengths give VARCHAR (Flink
//     gives CHAR(n) padded with spaces; this package does not pad).
//
// Run-time errors. Eval cannot return an error. A failed CAST, a
// division by zero, a DECIMAL overflow or an invalid argument (a bad
// regular expression met at run time) make the value NULL and are sent
// to Compiler.OnError, where the caller decides: fail the job as Flink
// does, count, or log. TRY_CAST gives NULL without reporting. A
// constant subexpression is evaluated once at compile time, so its
// failure (CAST('x' AS INT)) is reported then. Times are kept within
// Flink's TIMESTAMP range, 0000-01-01 to 9999-12-31 23:59:59.999: a
// TIMESTAMPADD, timestamp ± INTERVAL, TO_TIMESTAMP_LTZ or FROM_UNIXTIME
// result outside it is such an error (NULL, reported), not a value
// wrapped around int64; so is a TIMESTAMPDIFF that does not fit INT.
// LPAD, RPAD and REPEAT report a result longer than 64 MiB.
//
// Strings: UPPER and LOWER map case as Java's String.toUpperCase and
// toLowerCase in a non-Turkish locale (full Unicode mapping: 'ß' is
// "SS", a final capital sigma lowers to 'ς').
//
// Regular expressions use Go's RE2 syntax, which agrees with Java's on
// the common constructs (classes, groups, alternation, lazy
// quantifiers); lookaround and backreferences are refused at compile
// time. LIKE has no escape character unless ESCAPE names one.
//
// Casts follow Flink: numbers, strings, booleans, DECIMAL with HALF_UP
// rounding (DECIMAL and DOUBLE to integer truncate, and so does a string
// with a fraction: CAST('1.9' AS INT) is 1), strings to and
// from TIMESTAMP 'yyyy-MM-dd HH:mm:ss[.SSS]', DATE and TIME. TIMESTAMP
// to or from numbers is refused as Flink refuses it (use UNIX_TIMESTAMP
// or TO_TIMESTAMP_LTZ); TIMESTAMP_LTZ to BIGINT is epoch seconds.
//
// Time zones: TIMESTAMP has no zone; its fields are read as stored.
// TIMESTAMP_LTZ is an instant shown in the session zone
// (Compiler.Location). CURRENT_TIMESTAMP and NOW() are TIMESTAMP_LTZ,
// LOCALTIMESTAMP a TIMESTAMP, PROCTIME() a TIMESTAMP(3) *PROCTIME*;
// these, UUID() and UNIX_TIMESTAMP() are not deterministic and are
// evaluated per row.
//
// Functions taking a time unit (FLOOR(ts TO HOUR), TIMESTAMPADD(HOUR,
// 1, ts), TIMESTAMPDIFF) read the unit from a one-part column reference
// or a string literal argument.
//
// Aggregates and window functions (IsAggregate, IsWindowFunc) are
// compiled by the planner, not here. User-defined scalar functions are
// registered with Registry.RegisterScalar (see ScalarFunc and Func1...).
package expr
