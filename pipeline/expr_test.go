package pipeline

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/row"
)

func fixedFields(names ...string) fieldResolver {
	return func(n string) (int, bool) {
		for i, x := range names {
			if x == n {
				return i, true
			}
		}
		return 0, false
	}
}

func TestExprCases(t *testing.T) {
	vals := []row.Value{row.String("paid"), row.Float(2.5), row.Int(4), row.Null(), row.Bool(true), row.JSON(`{"user":{"id":7},"tags":["a","b"]}`)}
	res := fixedFields("status", "price", "qty", "missing", "flag", "nested")
	for _, tc := range []struct {
		src  string
		want row.Value
		err  bool
		fast bool
	}{
		{`status == "paid"`, row.Bool(true), false, true},
		{`price * qty`, row.Float(10), false, true},
		{`qty * qty - 1`, row.Int(15), false, true},
		{`qty / 8`, row.Float(0.5), false, true},
		{`qty % 3`, row.Int(1), false, true},
		{`missing ?? qty`, row.Int(4), false, true},
		{`missing == nil`, row.Bool(true), false, true},
		{`missing > 1`, row.Value{}, true, true},
		{`flag && qty > 3 ? "big" : "small"`, row.String("big"), false, true},
		{`status + "!"`, row.String("paid!"), false, true},
		{`status startsWith "pa"`, row.Bool(true), false, false},
		{`not flag or price < 1`, row.Bool(false), false, true},
		{`qty % 0`, row.Value{}, true, true},
		{`upper(status)`, row.String("PAID"), false, false},
		{`len(status) + qty`, row.Int(8), false, false},
		{`status in ["paid", "new"]`, row.Bool(true), false, false},
		{`[1, 2]`, row.JSON(`[1,2]`), false, false},
		{`nested.user.id + 1`, row.Float(8), false, false},
		{`len(nested.tags)`, row.Int(2), false, false},
		// Builtins with typed results: a []string, a map[any][]any.
		{`split(status, "i")`, row.JSON(`["pa","d"]`), false, false},
		{`groupBy([1, 2, 3], # % 2 == 0)`, row.JSON(`{"false":[1,3],"true":[2]}`), false, false},
	} {
		x, err := compileExpr(tc.src, res)
		if err != nil {
			t.Errorf("%s: compile: %v", tc.src, err)
			continue
		}
		if (x.fast != nil) != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.src, x.fast != nil, tc.fast)
		}
		got, err := x.eval(vals)
		if tc.err {
			if err == nil || !errors.Is(err, ErrEval) && x.fast == nil {
				t.Errorf("%s: got %v, %v; want an error", tc.src, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %#v, %v; want %#v", tc.src, got, err, tc.want)
		}
	}
	if _, err := compileExpr(`a +`, res); err == nil {
		t.Error("syntax error not reported")
	}
	// The environment holds only the fields named: $env.qty would be
	// null whatever the record holds.
	for _, src := range []string{`$env.qty`, `$env["qty"] + 1`, `$env`} {
		if _, err := compileExpr(src, res); err == nil || !strings.Contains(err.Error(), "$env is not available") {
			t.Errorf("%s: compiled (%v), want an error naming $env", src, err)
		}
	}
	var uf *unknownFieldsError
	if _, err := compileExpr(`nope + qty`, res); !errors.As(err, &uf) || uf.names[0] != "nope" {
		t.Errorf("unknown field: %v", err)
	}
}

// TestExprFastMatchesVM checks the closure compiler against expr's own
// virtual machine (the oracle) on random expressions over random rows:
// both must fail, or both succeed with equal values.
func TestExprFastMatchesVM(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c"}
	res := fixedFields(names...)
	checked := 0
	for iter := 0; iter < 4000; iter++ {
		src := randExpr(rng, 3)
		fast, err := compileExpr(src, res)
		if err != nil || fast.fast == nil {
			continue
		}
		slow, err := compileExprMode(src, res, false)
		if err != nil {
			continue // expr rejects it at compile time (constant folding, types)
		}
		for range 5 {
			vals := []row.Value{randValue(rng), randValue(rng), randValue(rng)}
			fv, ferr := fast.eval(vals)
			sv, serr := slow.eval(vals)
			if (ferr != nil) != (serr != nil) {
				t.Fatalf("%s on %v: fast %v, %v; vm %v, %v", src, vals, fv, ferr, sv, serr)
			}
			if ferr == nil && !sameValue(fv, sv) {
				t.Fatalf("%s on %v: fast %#v; vm %#v", src, vals, fv, sv)
			}
			checked++
		}
	}
	if checked < 5000 {
		t.Fatalf("only %d evaluations checked", checked)
	}
}

func sameValue(a, b row.Value) bool {
	if a.Kind() == row.KindFloat && b.Kind() == row.KindFloat {
		x, y := a.AsFloat(), b.AsFloat()
		return x == y || x != x && y != y
	}
	return a == b
}

func randValue(rng *rand.Rand) row.Value {
	switch rng.IntN(6) {
	case 0:
		return row.Null()
	case 1:
		return row.Bool(rng.IntN(2) == 0)
	case 2, 3:
		return row.Int(int64(rng.IntN(7) - 3))
	case 4:
		return row.Float(float64(rng.IntN(9)-4) / 2)
	}
	return row.String([]string{"", "a", "ab", "b"}[rng.IntN(4)])
}

func randExpr(rng *rand.Rand, depth int) string {
	if depth == 0 || rng.IntN(4) == 0 {
		switch rng.IntN(8) {
		case 0:
			return fmt.Sprint(rng.IntN(5) - 1)
		case 1:
			return "1.5"
		case 2:
			return `"a"`
		case 3:
			return []string{"true", "false", "nil"}[rng.IntN(3)]
		}
		return []string{"a", "b", "c"}[rng.IntN(3)]
	}
	switch rng.IntN(10) {
	case 0:
		return "!(" + randExpr(rng, depth-1) + ")"
	case 1:
		return "-(" + randExpr(rng, depth-1) + ")"
	case 2:
		return "(" + randExpr(rng, depth-1) + " ? " + randExpr(rng, depth-1) + " : " + randExpr(rng, depth-1) + ")"
	}
	ops := []string{"==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "&&", "||", "??", "contains", "startsWith"}
	op := ops[rng.IntN(len(ops))]
	return "(" + randExpr(rng, depth-1) + " " + op + " " + randExpr(rng, depth-1) + ")"
}
