package sql

import (
	"reflect"

	"github.com/sluicehq/sluice/sql/ast"
)

var (
	posType   = reflect.TypeOf(ast.Pos{})
	exprType  = reflect.TypeOf((*ast.Expr)(nil)).Elem()
	queryType = reflect.TypeOf((*ast.Query)(nil)).Elem()
)

// sameExpr reports whether a and b are the same expression, positions
// ignored (GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd') matches the same
// call in the SELECT list). Identifiers compare as written.
func sameExpr(a, b ast.Expr) bool {
	return deepEqual(reflect.ValueOf(a), reflect.ValueOf(b))
}

func deepEqual(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Interface, reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return deepEqual(a.Elem(), b.Elem())
	case reflect.Struct:
		if a.Type() == posType {
			return true
		}
		for i := 0; i < a.NumField(); i++ {
			if !deepEqual(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !deepEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int64:
		return a.Int() == b.Int()
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// rewrite returns e with every subexpression for which f returns
// (replacement, true) replaced, top-down: a replaced subtree is not
// visited further. Subqueries are not entered. e itself is not changed;
// the nodes on the path to a replacement are copied.
func rewrite(e ast.Expr, f func(ast.Expr) (ast.Expr, bool)) ast.Expr {
	if e == nil {
		return nil
	}
	if r, ok := f(e); ok {
		return r
	}
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return e
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	if rewriteValue(cp.Elem(), f) {
		return cp.Interface().(ast.Expr)
	}
	return e
}

// rewriteValue rewrites the expressions inside v in place (v is a copy
// owned by the caller) and reports whether anything changed.
func rewriteValue(v reflect.Value, f func(ast.Expr) (ast.Expr, bool)) bool {
	changed := false
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() || v.Type().Implements(queryType) && !v.Type().Implements(exprType) {
			return false
		}
		if v.Type() == exprType {
			old := v.Interface().(ast.Expr)
			n := rewrite(old, f)
			if n != old {
				v.Set(reflect.ValueOf(n))
				return true
			}
		}
		return false
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Type.Implements(queryType) && v.Type().Field(i).Type.Kind() == reflect.Interface {
				continue
			}
			if rewriteValue(v.Field(i), f) {
				changed = true
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return false
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		for i := 0; i < cp.Len(); i++ {
			if rewriteValue(cp.Index(i), f) {
				changed = true
			}
		}
		if changed {
			v.Set(cp)
		}
	case reflect.Pointer:
		if v.IsNil() {
			return false
		}
		// Pointers to non-expression structs (WindowSpec, TypeName):
		// copy when something inside changes.
		cp := reflect.New(v.Elem().Type())
		cp.Elem().Set(v.Elem())
		if rewriteValue(cp.Elem(), f) {
			v.Set(cp)
			changed = true
		}
	}
	return changed
}

// walk calls f for e and every subexpression of e (not entering
// subqueries), top-down; f returns false to skip a subtree.
func walk(e ast.Expr, f func(ast.Expr) bool) {
	rewrite(e, func(x ast.Expr) (ast.Expr, bool) {
		if !f(x) {
			return x, true
		}
		return nil, false
	})
}
