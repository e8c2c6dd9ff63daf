package sim

import (
	"os"
	"strconv"
	"testing"
)

// TestTrace prints one seed's trace: SIM_SEED=S go test -run TestTrace -v ./sim
func TestTrace(t *testing.T) {
	s, err := strconv.ParseUint(os.Getenv("SIM_SEED"), 10, 64)
	if err != nil {
		t.Skip("SIM_SEED not set")
	}
	r := Run(s, Config{Trace: os.Stdout})
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
}
