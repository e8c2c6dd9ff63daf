package sim

import (
	"fmt"
	"testing"
)

func TestBugsDev(t *testing.T) {
	for name, b := range map[string]Bugs{"marker": {FlushIgnoresMarker: true}, "release": {ReleaseReached: true}, "users": {SkipUserRebuild: true}} {
		found, first := 0, uint64(0)
		invs := map[string]int{}
		for s := uint64(1); s <= 1000; s++ {
			r := Run(s, Config{Bugs: b})
			if r.Violation != nil {
				found++
				invs[r.Violation.Invariant]++
				if first == 0 {
					first = s
					fmt.Println(name, r.Violation)
				}
			}
		}
		fmt.Println(name, "found", found, "first", first, invs)
	}
}
