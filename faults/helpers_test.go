package faults

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/internal/wire"
	"redrain/rain"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

const anchor = 77

// startCluster starts redis, a coordinator and n nodes as processes for the test.
func startCluster(t *testing.T, n int, coordArgs ...string) *cluster.LocalCluster {
	t.Helper()
	return testlocal.Cluster(t, cluster.ClusterOptions{Nodes: n, CoordArgs: coordArgs})
}

// startRain creates, prepares and starts a rain.
func startRain(t *testing.T, c *cluster.LocalCluster, total, count int64, maxPer int) string {
	t.Helper()
	ctx := context.Background()
	adm := c.Admin()
	r, err := adm.Create(ctx, rain.Config{AnchorID: anchor, TotalAmount: total, TotalCount: count, MaxPerUser: maxPer, DurationS: 900})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, r.Code, "prepare", anchor); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, r.Code, "start", anchor); err != nil {
		t.Fatal(err)
	}
	return r.Code
}

// waitOKs waits until the load has had n more successful claims.
func waitOKs(t *testing.T, l *tap.Tapper, n int64) {
	t.Helper()
	target := l.OKs() + n
	testcluster.Eventually(t, 60*time.Second, "claims flowing", func() bool { return l.OKs() >= target })
}

// drainAll taps for every user until no node has a packet left.
func drainAll(t *testing.T, c *cluster.LocalCluster, code string, users uint64) []check.Answer {
	t.Helper()
	l := tap.StartTapper(c, code, users, 16)
	testcluster.Eventually(t, 2*time.Minute, "every node exhausted", func() bool {
		for i := range c.Nodes { // exhausted: nothing left, and no stock move on its way from it
			if p, err := progress(c, i, code); err != nil || p.RemainingCount != 0 || !p.Exhausted {
				return false
			}
		}
		return true
	})
	return l.Stop()
}

// progress reads a node's internal progress for the rain.
func progress(c *cluster.LocalCluster, i int, code string) (wire.Progress, error) {
	var pl wire.ProgressList
	wc := wire.NewClient(c.Opts.Secret, 5*time.Second)
	if err := wc.Do(context.Background(), "GET", c.Nodes[i].HTTP, wire.PathProgress+"?code="+code, nil, &pl); err != nil {
		return wire.Progress{}, err
	}
	if len(pl.Rains) != 1 {
		return wire.Progress{}, errors.New("rain not held")
	}
	return pl.Rains[0], nil
}

// waitFlushed waits until Redis holds everything the live nodes journaled.
func waitFlushed(t *testing.T, c *cluster.LocalCluster, code string) *adminapi.Report {
	t.Helper()
	var rep *adminapi.Report
	testcluster.Eventually(t, 60*time.Second, "redis == journals", func() bool {
		r, err := c.Admin().Report(context.Background(), code)
		if err != nil || !r.CaughtUp() {
			return false
		}
		rep = r
		return true
	})
	return rep
}

// verify checks SPEC's invariants against the clients' answers, and the report's own
// (check.Report).
func verify(t *testing.T, c *cluster.LocalCluster, code string, answers []check.Answer, total, count int64, maxPer int, drained bool) (*check.Verdict, *adminapi.Report) {
	t.Helper()
	return verifyDead(t, c, code, answers, total, count, maxPer, drained, "")
}

// verifyDead is verify while node dead is down: the claims it answered but had not flushed
// when it died are in its journal only, so they may be missing from Redis; they must then fit
// in the report's lost amount (an upper bound of the dead node's unflushed share) and are left
// out of the other checks. Without a dead node every answered claim must be credited.
func verifyDead(t *testing.T, c *cluster.LocalCluster, code string, answers []check.Answer, total, count int64, maxPer int, drained bool, dead string) (*check.Verdict, *adminapi.Report) {
	t.Helper()
	rep := waitFlushed(t, c, code)
	credits, totals, nodes, err := check.ReadRedis(context.Background(), c.Client(), code)
	if err != nil {
		t.Fatal(err)
	}
	var unflushed int64
	if dead != "" {
		credited := make(map[string]bool, len(credits))
		for _, cr := range credits {
			credited[cr.ClaimID] = true
		}
		kept := answers[:0:0]
		for _, a := range answers {
			if a.Status == 200 && strings.HasPrefix(a.ClaimID, dead+"-") && !credited[a.ClaimID] {
				unflushed += a.Amount
				continue
			}
			kept = append(kept, a)
		}
		answers = kept
		if unflushed > rep.LostAmount {
			t.Errorf("dead %s answered %d cents it never flushed, more than the report's lost %d", dead, unflushed, rep.LostAmount)
		}
		t.Logf("dead %s: %d cents answered and not yet flushed (covered by lost %d)", dead, unflushed, rep.LostAmount)
	}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: code, TotalAmount: total,
		TotalCount: count, MaxPerUser: maxPer, Drained: drained})
	for _, s := range v.Violations {
		t.Error(s)
	}
	for _, p := range check.Report(rep) {
		t.Error(p)
	}
	if rep.ClaimedAmount < v.AnsweredAmount {
		t.Errorf("report claims %d cents, clients were paid %d (and %d unflushed on a dead node)", rep.ClaimedAmount, v.AnsweredAmount, unflushed)
	}
	return v, rep
}

func nodeState(t *testing.T, c *cluster.LocalCluster, id string) string {
	nodes, err := c.Admin().Nodes(context.Background())
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if n.ID == id {
			return n.State
		}
	}
	return ""
}
