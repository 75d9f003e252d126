package nexmarksql

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/ast"
)

// explain plans query's INSERT over the reference's views and returns
// its EXPLAIN text.
func explain(t *testing.T, query string) string {
	t.Helper()
	stmts, err := Script(Config{Query: query, Events: 10}, "blackhole")
	if err != nil {
		t.Fatal(err)
	}
	sess := sql.NewSession(sql.Options{})
	if err := sess.RegisterFunction(CountChar, CountCharClass); err != nil {
		t.Fatal(err)
	}
	for _, st := range stmts {
		if _, ok := st.(*ast.Insert); ok {
			s, err := sess.Explain(st)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		if err := sess.Execute(t.Context(), st); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: no INSERT", query)
	return ""
}

// TestViewColumnsPruned: the views' columns a query never reads are
// left out of the plan (q4 reads 4 of auction's 10 columns and 3 of
// bid's 7), and an aggregation's pre-projection is fused with the
// view's projection below it (q5: one Calc under each HOP aggregation).
func TestViewColumnsPruned(t *testing.T) {
	q4 := explain(t, "q4")
	for _, want := range []string{
		"Calc(select=[id, dateTime, expires, category], where=[event_type = 1])",
		"Calc(select=[auction, price, dateTime], where=[event_type = 2])",
	} {
		if !strings.Contains(q4, want) {
			t.Errorf("q4 plan lacks %s:\n%s", want, q4)
		}
	}
	q5 := explain(t, "q5")
	if n := strings.Count(q5, "Calc(select=[auction], where=[event_type = 2 AND dateTime IS NOT NULL])"); n != 2 {
		t.Errorf("q5 plan: %d fused pre-projections, want 2:\n%s", n, q5)
	}
}
