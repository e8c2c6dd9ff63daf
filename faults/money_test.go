package faults

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/ledger"
	"redrain/rain"
)

// The audit's sequence: a rain of 6,000 cents on 3 nodes; n1 stopped with SIGTERM (it records its
// leftover), restarted with its data dir, pays 5 more claims, then is killed with kill -9. The
// report used to keep n1's old leftover and show lost -465. Now every figure is >= 0 and n1's line
// balances by construction, while the rain runs and after it settles.
func TestLeftoverOfAReturningNode(t *testing.T) {
	c := startCluster(t, 3)
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
// lost = share - claimed >= 0 (its share: its slice and the stock moved to it, the taps being
// all on n1).
func checkReturned(t *testing.T, nodes []adminapi.NodeReport, when string) {
	t.Helper()
	for _, n := range nodes {
		if n.Node != "n1" {
			continue
		}
		share, _ := n.Share()
		if n.State != "dead" || n.LeftoverAmount != 0 || n.LostAmount != share-n.ClaimedAmount || n.LostAmount < 0 {
			t.Errorf("%s: n1's line %+v", when, n)
		}
		return
	}
	t.Errorf("%s: no line for n1", when)
}

// claimOn makes n paid claims on node i for users from, from+1, ..., retrying a 503 (a node that
// came back answers 503 until it has cleared its leftover record).
func claimOn(t *testing.T, c *cluster.LocalCluster, code string, i int, from uint64, n int) []check.Answer {
	t.Helper()
	var out []check.Answer
	cl := tap.NewClaimer(1)
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

// Retention with a Redis loss: rain A's credits were all acknowledged by the wallet's consumer
// group, so after the retention the nodes compact it; rain B's stream has no such group, so its
// records stay. Then Redis is wiped: A's totals, nodes hash and leftovers come back from the
// tombstones and its report is unchanged; B's claims all come back to the credit stream from the
// journals. (The audit saw 166 paid claims vanish: compaction had dropped the only copy.)
func TestRetentionThenRedisLoss(t *testing.T) {
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 2,
		NodeArgs: []string{"--retention", "2s", "--janitor-interval", "200ms"}})
	ctx := context.Background()
	const total, count, maxPer = int64(4000), int64(40), 5
	a, b := startRain(t, c, total, count, maxPer), startRain(t, c, total, count, maxPer)
	var answersA, answersB []check.Answer
	for i := range c.Nodes {
		answersA = append(answersA, claimOn(t, c, a, i, 1, 6)...)
		answersB = append(answersB, claimOn(t, c, b, i, 1, 7)...)
	}
	for _, code := range []string{a, b} {
		if _, err := c.Admin().Act(ctx, code, "stop", anchor); err != nil {
			t.Fatal(err)
		}
		testcluster.Eventually(t, 30*time.Second, "rain settled", func() bool {
			r, err := c.Admin().Get(ctx, code)
			return err == nil && r.Status == rain.Settled
		})
	}
	verify(t, c, b, answersB, total, count, maxPer, false)
	_, before := verify(t, c, a, answersA, total, count, maxPer, false)
	walletAcksAll(t, c.Client(), a)
	testcluster.Eventually(t, 30*time.Second, "A compacted, B kept for the wallet", func() bool {
		for i := range c.Nodes {
			if _, err := progress(c, i, a); err == nil {
				return false
			}
			if _, err := progress(c, i, b); err != nil || metric(c, i, "redrain_compaction_waiting_rains") != 1 {
				return false
			}
		}
		return true
	})
	if err := c.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "A's totals back from the tombstones", func() bool {
		tot, err := ledger.ReadTotals(ctx, c.Client(), a)
		return err == nil && tot.ClaimedAmount == before.FlushedAmount && tot.ClaimedCount == before.FlushedCount
	})
	after, err := c.Admin().Report(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range check.Report(after) {
		t.Error(p)
	}
	if after.ClaimedAmount != before.ClaimedAmount || after.LeftoverAmount != before.LeftoverAmount ||
		after.LostAmount != 0 || after.MaxAmount != before.MaxAmount {
		t.Errorf("A's report after the wipe %+v, before %+v", after, before)
	}
	verify(t, c, b, answersB, total, count, maxPer, false) // every B claim credited again, once
}

// walletAcksAll plays the wallet: a consumer group "wallet" reads the rain's whole credit stream
// and acknowledges every entry.
func walletAcksAll(t *testing.T, rdb redis.UniversalClient, code string) {
	t.Helper()
	ctx := context.Background()
	key := ledger.Keys(code).Credits
	if err := rdb.XGroupCreate(ctx, key, "wallet", "0").Err(); err != nil {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "wallet", Consumer: "w1", Streams: []string{key, ">"}, Count: 1 << 20, Block: -1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res[0].Messages {
		if err := rdb.XAck(ctx, key, "wallet", m.ID).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// metric reads one unlabelled gauge from node i's /metrics; -1 if it cannot.
func metric(c *cluster.LocalCluster, i int, name string) float64 {
	resp, err := http.Get("http://" + c.Nodes[i].HTTP + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
