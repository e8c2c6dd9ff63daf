//go:build race

package rain

// raceEnabled reports whether the race detector is on (it slows big-slice tests ~15x).
const raceEnabled = true
