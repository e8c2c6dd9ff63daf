//go:build race

package tap

// raceEnabled: under the race detector sync.Pool drops items at random, so pooled requests
// allocate and allocation counts mean nothing.
const raceEnabled = true
