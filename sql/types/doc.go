// Package types is the SQL type system: the types of columns and
// expressions (BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p, s), VARCHAR,
// TIMESTAMP(3), ROW<...>, ARRAY<...>, intervals), their time attributes
// (event time and processing time), and how a value of each type is held
// in a row.Value at run time.
//
// Storage, decided once here and relied on by every other sql package:
//
//	BOOLEAN                         row.KindBool
//	TINYINT, SMALLINT, INT, BIGINT  row.KindInt
//	FLOAT, DOUBLE                   row.KindFloat
//	DECIMAL(p, s)                   row.KindInt, the unscaled value (value × 10^s);
//	                                the scale lives in the type, so p ≤ 18
//	CHAR, VARCHAR, STRING           row.KindString
//	TIMESTAMP(p), TIMESTAMP_LTZ(p)  row.KindTimestamp, epoch milliseconds (UTC)
//	DATE                            row.KindInt, days since 1970-01-01
//	TIME(p)                         row.KindInt, milliseconds of the day
//	INTERVAL day-time               row.KindInt, milliseconds
//	INTERVAL year-month             row.KindInt, months
//	ROW, ARRAY, MAP                 row.KindJSON, the value as JSON text
//
// NULL of any type is the null row.Value. A ROW column of a table is
// flattened into one physical column per field by the planner, so
// `person.id` reads a position, not JSON.
package types
