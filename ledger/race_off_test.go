//go:build !race

package ledger

// raceEnabled: the race detector slows bbolt ~10x, so the largest fixtures shrink.
const raceEnabled = false
