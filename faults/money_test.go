package faults

import (
	"context"
	"testing"
	"time"

	"redrain/bench"
	"redrain/coordinator"
	"redrain/internal/testcluster"
	"redrain/ledger"
	"redrain/rain"
)

// The audit's sequence: a rain of 6,000 cents on 3 nodes; n1 stopped with SIGTERM (it records its
// leftover), restarted with its data dir, pays 5 more claims, then is killed with kill -9. The
// report used to keep n1's old leftover and show lost -465. Now every figure is >= 0 and n1's line
// balances by construction, while the rain runs and after it settles.
func TestLeftoverOfAReturningNode(t *testing.T) {
	c := cluster(t, 3)
	const total, count, maxPer = int64(6000), int64(60), 5
	code := startRain(t, c, total, count, maxPer)
	ctx := context.Background()
	answers := claimOn(t, c, code, 0, 1, 4)
	if err := c.Nodes[0].Proc.Term(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	nodes, err := ledger.ReadNodes(ctx, c.Client(), code)
	if _, ok := nodes["n1"].Leftover(); err != nil || !ok {
		t.Fatalf("n1 left without a current leftover record: %+v %v", nodes["n1"], err)
	}
	if err := c.StartNode(ctx, 0); err != nil {
		t.Fatal(err)
	}
	answers = append(answers, claimOn(t, c, code, 0, 100, 5)...)
	c.Nodes[0].Proc.Kill()
	testcluster.Eventually(t, 30*time.Second, "n1 dead", func() bool { return nodeState(t, c, "n1") == "dead" })
	_, rep := verifyDead(t, c, code, answers, total, count, maxPer, false, "n1")
	checkReturned(t, rep.Nodes, "raining")

	if _, err := c.Admin().Act(ctx, code, "stop", anchor); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "rain settled", func() bool {
		r, err := c.Admin().Get(ctx, code)
		return err == nil && r.Status == rain.Settled
	})
	_, rep = verifyDead(t, c, code, answers, total, count, maxPer, false, "n1")
	checkReturned(t, rep.Nodes, "settled")
	t.Logf("settled: claimed %d leftover %d lost %d of %d", rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount, rep.TotalAmount)
}

// checkReturned checks n1's line: dead, no leftover (its record was superseded when it came back),
// lost = slice - claimed >= 0.
func checkReturned(t *testing.T, nodes []coordinator.NodeReport, when string) {
	t.Helper()
	for _, n := range nodes {
		if n.Node != "n1" {
			continue
		}
		if n.State != "dead" || n.LeftoverAmount != 0 || n.LostAmount != n.SliceAmount-n.ClaimedAmount || n.LostAmount < 0 {
			t.Errorf("%s: n1's line %+v", when, n)
		}
		return
	}
	t.Errorf("%s: no line for n1", when)
}

// claimOn makes n paid claims on node i for users from, from+1, ..., retrying a 503 (a node that
// came back answers 503 until it has cleared its leftover record).
func claimOn(t *testing.T, c *bench.LocalCluster, code string, i int, from uint64, n int) []bench.Answer {
	t.Helper()
	var out []bench.Answer
	cl := bench.NewClaimer(1)
	u := from
	testcluster.Eventually(t, 30*time.Second, "claims paid", func() bool {
		a := cl.Claim(c.Nodes[i].HTTP, code, u)
		out = append(out, a)
		if a.Status == 200 {
			u++
		}
		return int(u-from) >= n
	})
	return out
}
