package sql_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/expr"
)

// A session runs SQL statements; Go functions become SQL functions.
// The GROUP BY without a window gives an updating result, printed as its
// changelog.
func ExampleSession() {
	s := sql.NewSession(sql.Options{Out: os.Stdout, Format: "json"})
	if err := s.RegisterFunction(expr.Func1("shout", func(x string) string { return strings.ToUpper(x) + "!" })); err != nil {
		fmt.Println(err)
		return
	}
	err := s.ExecuteScript(context.Background(), `
		SET 'parallelism.default' = '1';
		SELECT shout(name) AS greeting, COUNT(*) AS n
		FROM (VALUES ('ann'), ('bob'), ('ann')) AS t(name)
		GROUP BY shout(name);
	`)
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"op":"+I","greeting":"ANN!","n":1}
	// {"op":"+I","greeting":"BOB!","n":1}
	// {"op":"-U","greeting":"ANN!","n":1}
	// {"op":"+U","greeting":"ANN!","n":2}
}

// An error names the line and column and suggests the nearest name.
func ExampleSession_error() {
	s := sql.NewSession(sql.Options{})
	err := s.ExecuteScript(context.Background(), `
		CREATE TABLE t (price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
		SELECT pirce FROM t;`)
	fmt.Println(err)
	// Output:
	// line 3, column 10: column 'pirce' not found; did you mean 'price'?
}
