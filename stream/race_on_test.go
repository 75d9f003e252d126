//go:build race

package stream

// raceOn is set when the tests run with the race detector, which slows
// the Pebble paths several times.
const raceOn = true
