package queries_test

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/nexmark/queries"
)

// Run q5 over 50,000 generated events spread over 100 s of event time. The
// checksum is the same at every parallelism.
func ExampleRun() {
	cfg := nexmark.DefaultConfig()
	cfg.EventRate = 500
	for _, p := range []int{1, 2} {
		r, err := queries.Run(context.Background(), queries.RunConfig{Query: "q5", Events: 50_000, Generator: &cfg, Parallelism: p})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Query, r.Events, r.Results, r.Checksum)
	}
	// Output:
	// q5 50000 55 755dd127288d66f0
	// q5 50000 55 755dd127288d66f0
}
