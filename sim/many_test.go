package sim

import (
	"fmt"
	"testing"
)

func TestManyDev(t *testing.T) {
	bad := 0
	var claims, steps int
	for s := uint64(1); s <= 2000; s++ {
		r := Run(s, Config{})
		claims += r.Claims
		steps += r.Steps
		if r.Violation != nil {
			bad++
			if bad < 6 {
				fmt.Println(r.Violation)
				for _, l := range r.Violation.Tail[len(r.Violation.Tail)-8:] {
					fmt.Print("   ", l)
				}
			}
		}
	}
	t.Logf("bad %d claims %d steps %d", bad, claims, steps)
}
