package expr_test

import (
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

// TestAssignable checks Flink's implicit casts for INSERT over every pair
// of scalar types, and that AssignAt compiles exactly the pairs
// Assignable allows.
func TestAssignable(t *testing.T) {
	ty := map[string]types.Type{
		"NULL": types.TNull, "BOOLEAN": types.TBoolean,
		"TINYINT": {Kind: types.TinyInt}, "SMALLINT": {Kind: types.SmallInt}, "INT": types.TInt, "BIGINT": types.TBigInt,
		"FLOAT": {Kind: types.Float}, "DOUBLE": types.TDouble, "DECIMAL": types.DecimalOf(10, 2),
		"CHAR": {Kind: types.Char, Length: 3}, "VARCHAR": types.TVarchar,
		"DATE": types.TDate, "TIME": {Kind: types.Time}, "TIMESTAMP": types.TTimestamp,
		"TIMESTAMP6": {Kind: types.Timestamp, Precision: 6}, "TIMESTAMP_LTZ": {Kind: types.TimestampLTZ, Precision: 3},
	}
	// allowed[to] lists the types written to it implicitly (besides
	// itself and NULL).
	allowed := map[string][]string{
		"SMALLINT":      {"TINYINT"},
		"INT":           {"TINYINT", "SMALLINT"},
		"BIGINT":        {"TINYINT", "SMALLINT", "INT"},
		"FLOAT":         {"TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL"},
		"DOUBLE":        {"TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DECIMAL"},
		"DECIMAL":       {"TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE"},
		"CHAR":          {"VARCHAR"},
		"VARCHAR":       {"CHAR"},
		"TIMESTAMP":     {"TIMESTAMP6", "TIMESTAMP_LTZ"},
		"TIMESTAMP6":    {"TIMESTAMP", "TIMESTAMP_LTZ"},
		"TIMESTAMP_LTZ": {"TIMESTAMP", "TIMESTAMP6"},
	}
	var c expr.Compiler
	for tn, to := range ty {
		if tn == "NULL" {
			continue
		}
		ok := map[string]bool{tn: true, "NULL": true}
		for _, f := range allowed[tn] {
			ok[f] = true
		}
		for fn, from := range ty {
			got := expr.Assignable(from, to)
			if got != ok[fn] {
				t.Errorf("Assignable(%s, %s) = %v, want %v", fn, tn, got, ok[fn])
			}
			_, err := c.AssignAt(ast.Pos{Line: 1, Col: 1}, expr.Compiled{Type: from, Eval: func(v []row.Value) row.Value { return v[0] }}, to)
			if (err == nil) != got {
				t.Errorf("AssignAt(%s, %s): error %v, Assignable %v", fn, tn, err, got)
			}
		}
	}
}
