package sql

import (
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/parser"
)

// formatExpr renders an expression as SQL, for EXPLAIN and messages.
func formatExpr(e ast.Expr) string {
	if e == nil {
		return ""
	}
	return parser.Format(e)
}
