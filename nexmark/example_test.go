package nexmark_test

import (
	"fmt"

	"github.com/sluicehq/sluice/nexmark"
)

// Generate the first events of the default configuration, split in two
// interleaved parallel splits; every event is the same as in an unsplit
// run.
func ExampleNewStridedGenerator() {
	cfg := nexmark.DefaultConfig()
	for split := 0; split < 2; split++ {
		g, err := nexmark.NewStridedGenerator(cfg, 6, 2, split)
		if err != nil {
			fmt.Println(err)
			return
		}
		var e nexmark.Event
		for {
			n := g.Position()
			if !g.Next(&e) {
				break
			}
			fmt.Println(split, n, e.Type, e.DateTime())
		}
	}
	// Output:
	// 0 0 person 1436918400000
	// 0 2 auction 1436918400000
	// 0 4 bid 1436918400000
	// 1 1 auction 1436918400000
	// 1 3 auction 1436918400000
	// 1 5 bid 1436918400000
}
