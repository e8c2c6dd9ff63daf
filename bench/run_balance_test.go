package bench_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"redrain/bench"
	"redrain/internal/testcluster"
	"redrain/rain"
)

// bench run on a local 3-node cluster with every tap to the first node: today a node hands out
// only its own slice, so about a third of the rain goes out before the first exhausted, and the
// other two nodes keep their slices to the end. The per-node figures say so, the journal files
// are read and checked after the nodes stop, and every invariant holds.
func TestRunBalanceOne(t *testing.T) {
	bin := testcluster.Bin(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.RunOptions{LocalNodes: 3, BinDir: filepath.Dir(bin), Dir: t.TempDir(), FastGossip: true,
		Rain: rain.Config{TotalAmount: 30_000, TotalCount: 3000, MaxPerUser: 50},
		Load: bench.LoadOptions{Users: 300, Conns: 8, Time: 30 * time.Second, Balance: bench.BalanceOne}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Load.Balance != bench.BalanceOne {
		t.Fatalf("verified %v balance %q: %v", res.Verified, res.Load.Balance, res.Violations)
	}
	if len(res.PerNode) != 3 || res.JournalFiles == nil || *res.JournalFiles != res.Redis {
		t.Fatalf("per node %+v, journal files %+v, redis %+v", res.PerNode, res.JournalFiles, res.Redis)
	}
	first, rest := res.PerNode[0], res.PerNode[1:]
	if first.ID != "n1" || first.Claims != 1000 || first.Exhausted == 0 || first.FirstExhaustedS == nil ||
		first.RemainingCount != 0 || first.State != "alive" || first.ViewError != "" {
		t.Fatalf("first node %+v", first)
	}
	// A 200 journaled before the first exhausted may arrive just after it (its fsync).
	if res.BeforeExhausted < 900 || res.BeforeExhausted > 1000 || res.BeforeExhaustedPct < 30 || res.BeforeExhaustedPct > 33.4 {
		t.Fatalf("before the first exhausted: %d (%.1f%%)", res.BeforeExhausted, res.BeforeExhaustedPct)
	}
	for _, n := range rest {
		if n.Answers != 0 || n.RemainingCount != 1000 || n.RemainingAmount != n.LeftoverAmount || n.LeftoverAmount == 0 {
			t.Fatalf("untapped node %+v", n)
		}
	}
}
