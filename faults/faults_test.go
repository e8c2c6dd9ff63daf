package faults

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
)

// kill -9 a node mid-rain and restart it with the same data dir: it recovers, serves the rest of
// its slice and flushes what it had not; the whole budget is paid exactly once.
func TestNodeCrashAndRestart(t *testing.T) {
	c := startCluster(t, 3)
	const total, count, maxPer = int64(3_000_000), int64(15_000), 5
	code := startRain(t, c, total, count, maxPer)
	l := tap.StartTapper(c, code, 5000, 24)
	waitOKs(t, l, count/4)
	before, _ := progress(c, 1, code)
	okBefore := l.OKs()
	c.Nodes[1].Proc.Kill()
	began := time.Now()
	if err := c.StartNode(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	recovery := time.Since(began)
	after, err := progress(c, 1, code)
	if err != nil {
		t.Fatal(err)
	}
	if after.ClaimedCount < before.ClaimedCount {
		t.Fatalf("restarted node lost claims: %d journaled before the kill, %d after", before.ClaimedCount, after.ClaimedCount)
	}
	waitOKs(t, l, 100)
	answers := append(l.Stop(), drainAll(t, c, code, 5000)...)
	v, rep := verify(t, c, code, answers, total, count, maxPer, true)
	if rep.LostAmount != 0 || rep.ClaimedAmount != total {
		t.Errorf("after a restart nothing is lost: %+v", rep)
	}
	t.Logf("node n2 killed after %d claims cluster-wide (%d journaled on n2); back and ready in %v with %d recovered; "+
		"%d requests failed while it was down; %d answered in all, %d cents; report claimed %d lost %d",
		okBefore, before.ClaimedCount, recovery.Round(time.Millisecond), after.ClaimedCount, l.Fails(), v.Answered,
		v.AnsweredAmount, rep.ClaimedAmount, rep.LostAmount)
}

// kill -9 redis-server mid-rain and start it again empty: claims keep being served meanwhile,
// and afterwards Redis totals are whole again, rebuilt from the journals.
func TestRedisLostMidRain(t *testing.T) {
	c := startCluster(t, 3)
	const total, count, maxPer = int64(2_000_000), int64(12_000), 5
	code := startRain(t, c, total, count, maxPer)
	l := tap.StartTapper(c, code, 4000, 24)
	waitOKs(t, l, count/5)
	c.Redis.Kill()
	down := l.OKs()
	waitOKs(t, l, count/5) // served while Redis is gone
	servedWhileDown := l.OKs() - down
	if err := c.StartRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
	answers := append(l.Stop(), drainAll(t, c, code, 4000)...)
	v, rep := verify(t, c, code, answers, total, count, maxPer, true)
	if rep.FlushedAmount != total || v.Credits != int(count) {
		t.Errorf("redis not rebuilt: flushed %d of %d, %d credits", rep.FlushedAmount, total, v.Credits)
	}
	t.Logf("redis killed after %d claims; %d claims served while it was down; rebuilt: %d credits, %d cents",
		down, servedWhileDown, v.Credits, v.CreditAmount)
}

// kill -9 a node for good: the coordinator sees it dead within seconds; its slice minus what it
// flushed is lost; the report balances; the others drain. When it comes back, lost turns into
// claimed + leftover exactly.
func TestNodeLostForGood(t *testing.T) {
	c := startCluster(t, 3)
	const total, count, maxPer = int64(1_500_000), int64(9000), 5
	code := startRain(t, c, total, count, maxPer)
	l := tap.StartTapper(c, code, 3000, 16)
	waitOKs(t, l, count/4)
	c.Nodes[2].Proc.Kill()
	killed := time.Now()
	testcluster.Eventually(t, 30*time.Second, "n3 dead", func() bool { return nodeState(t, c, "n3") == "dead" })
	detect := time.Since(killed)
	answers := l.Stop()
	// The other two drain their slices.
	for _, i := range []int{0, 1} {
		for u := uint64(10_000); ; u++ {
			a := tap.NewClaimer(1).Claim(c.Nodes[i].HTTP, code, u)
			answers = append(answers, a)
			if a.Status != 200 {
				break
			}
		}
	}
	_, rep := verifyDead(t, c, code, answers, total, count, maxPer, false, "n3")
	for _, n := range rep.Nodes {
		if n.Node == "n3" && (n.State != "dead" || rep.LostAmount != n.SliceAmount-n.FlushedAmount) {
			t.Errorf("n3 line %+v, lost %d", n, rep.LostAmount)
		}
	}
	if rep.LostAmount <= 0 {
		t.Errorf("a dead holder with unclaimed packets shows no loss: %+v", rep)
	}
	lost := rep.LostAmount
	// It comes back: its journal turns the lost amount into claimed + leftover exactly.
	if err := c.StartNode(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "n3 alive", func() bool { return nodeState(t, c, "n3") == "alive" })
	vb, back := verify(t, c, code, answers, total, count, maxPer, false)
	if back.LostAmount != 0 {
		t.Errorf("n3 is back but the report still loses %d: %+v", back.LostAmount, back)
	}
	t.Logf("n3 killed; seen dead after %v; lost %d cents (upper bound) of %d; %d answered, %d cents; "+
		"after it came back: claimed %d leftover %d lost %d", detect.Round(time.Millisecond), lost, total, vb.Answered,
		vb.AnsweredAmount, back.ClaimedAmount, back.LeftoverAmount, back.LostAmount)
}

// SIGTERM a node mid-rain: in-flight claims finish, nothing is lost, it leaves the cluster
// cleanly and its remainder is leftover, not lost.
func TestNodeGracefulStop(t *testing.T) {
	c := startCluster(t, 3)
	const total, count, maxPer = int64(1_000_000), int64(9000), 5
	code := startRain(t, c, total, count, maxPer)
	l := tap.StartTapper(c, code, 3000, 24)
	waitOKs(t, l, count/4)
	began := time.Now()
	if err := c.Nodes[1].Proc.Term(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	stopTook := time.Since(began)
	testcluster.Eventually(t, 30*time.Second, "n2 left", func() bool { return nodeState(t, c, "n2") == "left" })
	answers := l.Stop()
	v, rep := verify(t, c, code, answers, total, count, maxPer, false)
	if rep.LostAmount != 0 {
		t.Errorf("a graceful stop lost %d: %+v", rep.LostAmount, rep)
	}
	for _, n := range rep.Nodes {
		if n.Node == "n2" && (n.State != "left" || n.FlushedAmount != n.ClaimedAmount) {
			t.Errorf("n2 line %+v", n)
		}
	}
	t.Logf("n2 stopped in %v; %d answered; report claimed %d leftover %d lost %d", stopTook.Round(time.Millisecond),
		v.Answered, rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount)
}

// A node re-created under the same id with an empty data dir never repeats a claim_id.
func TestNodeRecreatedEmpty(t *testing.T) {
	c := startCluster(t, 2)
	code := startRain(t, c, 100_000, 1000, 10)
	first := drainSome(c, code, 0, 300)
	// Let n1 flush first: wiping a data dir loses what it had not flushed (disk loss, not a
	// crash); this scenario is about claim_ids, not about that.
	testcluster.Eventually(t, 30*time.Second, "n1 flushed", func() bool {
		p, err := progress(c, 0, code)
		return err == nil && p.FlushedCount == p.ClaimedCount
	})
	c.Nodes[0].Proc.Kill()
	if err := os.RemoveAll(c.Nodes[0].Data); err != nil {
		t.Fatal(err)
	}
	if err := c.StartNode(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodesAlive(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	code2 := startRain(t, c, 100_000, 1000, 10)
	second := drainSome(c, code2, 0, 300)
	seen := map[string]bool{}
	inc := map[string]bool{}
	for _, a := range append(first, second...) {
		if a.Status != 200 {
			continue
		}
		if seen[a.ClaimID] {
			t.Fatalf("claim_id %s repeated by the re-created node", a.ClaimID)
		}
		seen[a.ClaimID] = true
		if !strings.HasPrefix(a.ClaimID, "n1-") {
			continue // made by n2, the owner of the user n1 forwarded it for
		}
		parts := strings.Split(a.ClaimID, "-")
		inc[parts[len(parts)-2]] = true
	}
	if len(inc) != 2 {
		t.Fatalf("node n1 used %d incarnations across its re-creation, want 2", len(inc))
	}
	// The old rain's slice died with the data dir: the report counts it lost, and balances.
	_, rep := verify(t, c, code, first, 100_000, 1000, 10, false)
	t.Logf("re-created n1: %d distinct claim_ids over 2 incarnations; old rain report claimed %d leftover %d lost %d",
		len(seen), rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount)
}

// drainSome claims n packets from node i for distinct users.
func drainSome(c *cluster.LocalCluster, code string, i, n int) []check.Answer {
	var out []check.Answer
	cl := tap.NewClaimer(1)
	for u := 1; len(out) < n; u++ {
		a := cl.Claim(c.Nodes[i].HTTP, code, uint64(u))
		out = append(out, a)
		if a.Status != 200 && a.Status != 429 {
			break
		}
	}
	return out
}

// kill -9 the coordinator mid-prepare (one node SIGSTOPped so its ack is pending) and restart
// it: the rain is not half-prepared for ever (back to waiting, its epoch abandoned), no node
// ever serves the abandoned epoch, and a new prepare works.
func TestCoordinatorKilledMidPrepare(t *testing.T) {
	c := startCluster(t, 3, "--prepare-timeout", "60s")
	ctx := context.Background()
	adm := c.Admin()
	r, err := adm.Create(ctx, cluster.RainConfig(anchor, 300_000, 3000, 3, 900))
	if err != nil {
		t.Fatal(err)
	}
	c.Nodes[1].Proc.Signal(syscall.SIGSTOP)
	go adm.Act(ctx, r.Code, "prepare", anchor) // never answered: the coordinator dies
	testcluster.Eventually(t, 30*time.Second, "slices on the running nodes", func() bool {
		_, e1 := progress(c, 0, r.Code)
		_, e3 := progress(c, 2, r.Code)
		return e1 == nil && e3 == nil
	})
	c.Coord.Kill()
	if err := c.StartCoordinator(ctx); err != nil {
		t.Fatal(err)
	}
	c.Nodes[1].Proc.Signal(syscall.SIGCONT)
	g, err := adm.Get(ctx, r.Code)
	if err != nil || g.Status != "waiting" || g.Epoch != 1 {
		t.Fatalf("after the restart: %+v %v (want waiting, epoch 1 abandoned)", g, err)
	}
	if err := c.WaitNodesAlive(ctx, 3); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 60*time.Second, "epoch 1 discarded everywhere", func() bool {
		for i := range c.Nodes {
			if p, err := progress(c, i, r.Code); err == nil && p.Epoch == 1 {
				return false
			}
		}
		return true
	})
	if _, err := adm.Act(ctx, r.Code, "prepare", anchor); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, r.Code, "start", anchor); err != nil {
		t.Fatal(err)
	}
	answers := drainAll(t, c, r.Code, 1500)
	for i := range c.Nodes {
		if p, err := progress(c, i, r.Code); err != nil || p.Epoch != 2 {
			t.Errorf("node %d serves %+v %v, want epoch 2", i, p, err)
		}
	}
	v, rep := verify(t, c, r.Code, answers, 300_000, 3000, 3, true)
	t.Logf("coordinator killed mid-prepare: rain back to waiting, epoch 1 abandoned; epoch 2 paid %d packets, %d cents; report %d/%d/%d",
		v.Answered, v.AnsweredAmount, rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount)
}
