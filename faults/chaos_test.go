package faults

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"redrain/internal/chaos"
	"redrain/internal/testcluster"
)

// `bench chaos`, the scenario users run, passes its own invariant check.
func TestBenchChaos(t *testing.T) {
	var out strings.Builder
	res, err := chaos.Run(context.Background(), chaos.Options{Dir: t.TempDir(),
		BinDir: filepath.Dir(testcluster.Bin(t, "node")), Count: 6000, Conns: 16, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if err := res.Verdict.Err(); err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 3 || res.Lost != 0 || res.Claimed+res.Left != 600000 {
		t.Fatalf("chaos result %+v", res)
	}
}
