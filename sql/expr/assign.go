package expr

import (
	"fmt"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// Assignable reports whether a value of type from may be written to a
// table column of type to without an explicit CAST, by Flink's rule for
// INSERT (its implicit casts, LogicalTypeCasts.supportsImplicitCast):
//
//   - NULL to any type;
//   - an integer to an integer at least as wide (TINYINT, SMALLINT, INT,
//     BIGINT);
//   - an integer, DECIMAL or FLOAT to FLOAT; any number to DOUBLE or to
//     DECIMAL (of any precision: a value that does not fit is NULL);
//   - CHAR and VARCHAR among themselves;
//   - TIMESTAMP and TIMESTAMP_LTZ of any precision among themselves;
//   - otherwise only the same type (DATE to DATE, ROW to the same ROW...).
//
// So a number is not written to a string column, a string not to a number
// or a time, a DATE not to a TIMESTAMP, a DOUBLE not to a BIGINT: those
// need CAST. Nullability is not part of the rule. Coerce is wider (it
// also parses strings as times, as comparisons do).
func Assignable(from, to types.Type) bool {
	if from.Kind == types.Null {
		return true
	}
	switch to.Kind {
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt:
		return from.IsInteger() && intRank(from.Kind) <= intRank(to.Kind)
	case types.Float:
		return from.IsInteger() || from.Kind == types.Decimal || from.Kind == types.Float
	case types.Double, types.Decimal:
		return from.IsNumeric()
	case types.Char, types.Varchar:
		return from.IsString()
	case types.Timestamp, types.TimestampLTZ:
		return from.IsTimestamp()
	}
	return from.Kind == to.Kind
}

// AssignAt converts x to the type of the column it is written to, when
// Assignable (as the equivalent CAST would; constructed types must match
// exactly); otherwise the error says to CAST explicitly. Compile errors
// are positioned at pos when it is set.
func (c *Compiler) AssignAt(pos ast.Pos, x Compiled, to types.Type) (Compiled, error) {
	refuse := func() (Compiled, error) {
		err := fmt.Errorf("%s is not written to %s implicitly; CAST it explicitly (CAST(x AS %s))", typeName(x.Type), typeName(to), to.Plain().WithNull(false))
		if pos.Line > 0 {
			err = fmt.Errorf("%s: %w", pos, err)
		}
		return Compiled{}, err
	}
	if !Assignable(x.Type, to) {
		return refuse()
	}
	out, err := c.convert(pos, x, to, false)
	if err != nil {
		return refuse()
	}
	return out, nil
}
