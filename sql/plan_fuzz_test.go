package sql_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/parser"
)

// FuzzPlan plans (EXPLAIN, which also builds the engine's dataflow)
// mutations of the conformance queries and of the bad statements of
// testdata/errors.txt over the tables they use: a statement is planned
// or refused with an error, never a panic.
func FuzzPlan(f *testing.F) {
	dir := f.TempDir()
	for _, name := range []string{"orders.json", "customers.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	ddl := strings.Split(strings.ReplaceAll(errorsSetup, "${dir}", dir), ";\n")
	files, _ := filepath.Glob(filepath.Join("testdata", "queries", "*.sqltest"))
	for _, file := range files {
		cases, err := parseConformance(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			for _, tb := range c.tables {
				path := filepath.Join(dir, tb.name+".json")
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					f.Fatal(err)
				}
				ddl = append(ddl, strings.ReplaceAll(tb.ddl, "${"+tb.name+"}", path))
			}
			ddl = append(ddl, c.setup...)
			f.Add(c.query)
		}
	}
	if data, err := os.ReadFile(filepath.Join("testdata", "errors.txt")); err == nil {
		for _, b := range parseErrorBlocks(string(data)) {
			f.Add(b.input)
		}
	}
	var setup []ast.Statement
	for _, d := range ddl {
		if st, err := parser.ParseScript(d); err == nil {
			setup = append(setup, st.Statements...)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		script, err := parser.ParseScript(src)
		if err != nil {
			return
		}
		sess, _ := newConfSession(t, 2)
		for _, st := range setup {
			// Tables defined by several files: the first one wins.
			_ = sess.Execute(t.Context(), st)
		}
		for _, st := range script.Statements {
			planOne(t, sess, st)
		}
	})
}

// planOne plans a query, INSERT or statement set, and runs only the
// statements that change the catalog without running a job.
func planOne(t *testing.T, sess *sql.Session, st ast.Statement) {
	switch st := st.(type) {
	case *ast.QueryStatement, *ast.Insert, *ast.StatementSet:
		_, _ = sess.Explain(st)
	case *ast.Explain:
		_, _ = sess.Explain(st.Stmt)
	case *ast.CreateView, *ast.CreateFunction, *ast.Drop, *ast.Set, *ast.Reset:
		_ = sess.Execute(t.Context(), st)
	}
}
