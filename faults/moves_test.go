package faults

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/rain"
)

// Stock follows demand, with real processes: every tap goes to one node, the others' stock
// moves to it, and a crash of either side at the worst step of a move (journaled by one side
// only) loses nothing and pays nothing twice.

// oneNodeTapper taps one node only (the "one" balance), keeping every answer and how many 200s
// came before the first exhausted.
type oneNodeTapper struct {
	mu      sync.Mutex
	answers []check.Answer
	oks     atomic.Int64
	// 200s before the first exhausted (or finished: once the last packet is paid, the coordinator
	// may finish the rain before a claim on the empty node has answered exhausted); -1 until then.
	beforeExhaust atomic.Int64
	cancel        context.CancelFunc
	wg            sync.WaitGroup
}

// tapOneNode taps node i from users users it owns (rain.OwnerOf over every node of the cluster)
// over conns connections: a tap of any other user would be forwarded to that user's owner and
// paid from the owner's stock, so the demand would not be on the tapped node.
func tapOneNode(c *cluster.LocalCluster, i int, code string, users uint64, conns int) *oneNodeTapper {
	ctx, cancel := context.WithCancel(context.Background())
	t := &oneNodeTapper{cancel: cancel}
	t.beforeExhaust.Store(-1)
	cl, addr := tap.NewClaimer(conns), c.Nodes[i].HTTP
	var holders []string
	for _, n := range c.Nodes {
		holders = append(holders, n.ID)
	}
	owned := make([]uint64, 0, users)
	for u := uint64(1); uint64(len(owned)) < users; u++ {
		if rain.OwnerOf(holders, code, u) == c.Nodes[i].ID {
			owned = append(owned, u)
		}
	}
	var next atomic.Uint64
	for range conns {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for ctx.Err() == nil {
				u := owned[(next.Add(1)-1)%users]
				a := cl.Claim(addr, code, u)
				t.mu.Lock() // orders the count of 200s against the first exhausted
				switch {
				case a.Status == 200:
					t.oks.Add(1)
				case (a.Error == "exhausted" || a.Error == "finished") && t.beforeExhaust.Load() < 0:
					t.beforeExhaust.Store(t.oks.Load())
				}
				t.answers = append(t.answers, a)
				t.mu.Unlock()
				if a.Status == 0 {
					waitABit(ctx)
				}
			}
		}()
	}
	return t
}

// waitABit pauses a worker whose node did not answer (dead): 5 ms, or until the load stops.
func waitABit(ctx context.Context) {
	t := time.NewTimer(5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (t *oneNodeTapper) stop() []check.Answer {
	t.cancel()
	t.wg.Wait()
	return t.answers
}

func (t *oneNodeTapper) exhausted() bool { return t.beforeExhaust.Load() >= 0 }

// line returns a node's line of the report.
func line(rep *adminapi.Report, node string) adminapi.NodeReport {
	for _, n := range rep.Nodes {
		if n.Node == node {
			return n
		}
	}
	return adminapi.NodeReport{}
}

// TestStockFollowsDemand sends every tap to n1: it hands out (nearly) the whole rain before its
// first exhausted, from the stock n2 and n3 move to it.
func TestStockFollowsDemand(t *testing.T) {
	c := startCluster(t, 3)
	const total, count = int64(2_000_000), int64(20_000)
	rep, before := drainThroughN1(t, c, total, count, 3000, 16)
	n1 := line(rep, "n1")
	if n1.MovedInCount == 0 || line(rep, "n2").MovedOutCount == 0 && line(rep, "n3").MovedOutCount == 0 {
		t.Errorf("no stock moved: %+v", rep.Nodes)
	}
	if rep.ClaimedAmount != total || rep.LostAmount != 0 {
		t.Errorf("drained rain: claimed %d of %d, lost %d", rep.ClaimedAmount, total, rep.LostAmount)
	}
	t.Logf("n1 handed out %d of %d before its first exhausted; moved in %d packets (%d cents)", before, count, n1.MovedInCount, n1.MovedInAmount)
}

// drainThroughN1 starts a rain of count packets (max_per_user 1000) and taps n1 only, from users
// it owns over conns connections, until it answers exhausted (or finished); then drains the rest
// through every node and verifies the rain, that n1 handed out >= 99.9% of it before that answer,
// and that no journal pays a packet twice (which stops the nodes). It returns the report and the
// packets n1 handed out before its first exhausted.
func drainThroughN1(t *testing.T, c *cluster.LocalCluster, total, count int64, users uint64, conns int) (*adminapi.Report, int64) {
	t.Helper()
	const maxPer = 1000
	code := startRain(t, c, total, count, maxPer)
	l := tapOneNode(c, 0, code, users, conns)
	testcluster.Eventually(t, 2*time.Minute, "n1 answers exhausted (or finished)", l.exhausted)
	answers := l.stop()
	before := l.beforeExhaust.Load()
	answers = append(answers, drainAll(t, c, code, users)...)
	_, rep := verify(t, c, code, answers, total, count, maxPer, true)
	if float64(before) < 0.999*float64(count) {
		t.Errorf("n1 handed out %d of %d packets before its first exhausted, want >= 99.9%%", before, count)
	}
	checkNoPacketTwice(t, c, code)
	return rep, before
}

// movedIn and movedOut add up node i's moves of the rain as its progress reports them (-1 when
// it cannot be read).
func movedIn(c *cluster.LocalCluster, code string, i int) int64 {
	p, err := progress(c, i, code)
	if err != nil {
		return -1
	}
	var n int64
	for _, m := range p.MovesIn {
		n += m.Count
	}
	return n
}

func movedOut(c *cluster.LocalCluster, code string, i int) int64 {
	p, err := progress(c, i, code)
	if err != nil {
		return -1
	}
	var n int64
	for _, m := range p.MovesOut {
		n += m.Count
	}
	return n
}

// checkNoPacketTwice stops the nodes and checks their journals against each other: no packet
// journaled twice, in one journal or across them, every amount the slice's seed gives.
func checkNoPacketTwice(t *testing.T, c *cluster.LocalCluster, code string) {
	t.Helper()
	js, err := c.Journals(code)
	if err != nil {
		t.Fatal(err)
	}
	var v check.Verdict
	check.CheckJournals(&v, js)
	for _, s := range v.Violations {
		t.Error(s)
	}
}

// restartWith restarts node i (kill -9) with extra environment.
func restartWith(t *testing.T, c *cluster.LocalCluster, i int, env ...string) {
	t.Helper()
	c.Nodes[i].Proc.Kill()
	c.Nodes[i].Env = env
	if err := c.StartNode(context.Background(), i); err != nil {
		t.Fatal(err)
	}
}

// waitDead waits until node i's process is gone (a failpoint killed it).
func waitDead(t *testing.T, c *cluster.LocalCluster, i int) {
	t.Helper()
	testcluster.Eventually(t, time.Minute, c.Nodes[i].ID+" killed itself at its failpoint", c.Nodes[i].Proc.Exited)
}

// TestMoveDonorKilledAfterJournal: the donors die (kill -9) right after journaling a move out,
// before delivering it. Meanwhile the moved stock is lost in the report (an upper bound, never
// paid); once the donors are back they deliver it: nothing is lost, nothing paid twice, and the
// stock is served (or, if the rain finished meanwhile, is n1's leftover).
func TestMoveDonorKilledAfterJournal(t *testing.T) {
	c := startCluster(t, 3)
	restartWith(t, c, 1, "REDRAINTEST_CRASH_AT=move-out-journaled")
	restartWith(t, c, 2, "REDRAINTEST_CRASH_AT=move-out-journaled")
	if err := c.WaitNodesAlive(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	const total, count, maxPer = int64(300_000), int64(3_000), 1000
	code := startRain(t, c, total, count, maxPer)
	l := tapOneNode(c, 0, code, 2000, 8)
	waitDead(t, c, 1)
	waitDead(t, c, 2)
	testcluster.Eventually(t, time.Minute, "n1 answers exhausted (or finished)", l.exhausted)
	answers := l.stop()
	rep, err := c.Admin().Report(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range check.Report(rep) {
		t.Error(p)
	}
	if rep.LostAmount == 0 {
		t.Errorf("with both donors dead, their shares are lost: %+v", rep)
	}
	for i := 1; i <= 2; i++ {
		c.Nodes[i].Env = nil
		if err := c.StartNode(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	testcluster.Eventually(t, time.Minute, "the donors deliver what they journaled", func() bool {
		return movedIn(c, code, 0) > 0 && movedIn(c, code, 0) == movedOut(c, code, 1)+movedOut(c, code, 2)
	})
	// With both donors dead and n1 empty, every live holder was exhausted: the coordinator may
	// have finished the rain before they came back (a dead holder's stock is never re-issued).
	// Then what they delivered stays on n1 as leftover; otherwise it is drained.
	r, err := c.Admin().Get(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	drained := r.Status == "raining"
	if drained {
		answers = append(answers, drainAll(t, c, code, 2000)...)
	}
	_, rep = verify(t, c, code, answers, total, count, maxPer, drained)
	switch {
	case rep.LostAmount != 0:
		t.Errorf("donors back: lost %d, want 0", rep.LostAmount)
	case drained && rep.ClaimedAmount != total:
		t.Errorf("donors back and drained: claimed %d of %d", rep.ClaimedAmount, total)
	case !drained && line(rep, "n1").LeftoverAmount < line(rep, "n1").MovedInAmount:
		t.Errorf("the rain finished while the donors were dead: n1 holds the delivered stock as leftover: %+v", line(rep, "n1"))
	}
	if line(rep, "n1").MovedInCount == 0 {
		t.Errorf("the journaled moves never reached n1: %+v", rep.Nodes)
	}
	t.Logf("rain %s when the donors came back: claimed %d leftover %d lost %d", r.Status, rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount)
	checkNoPacketTwice(t, c, code)
}

// TestMoveReceiverKilledAfterJournal: the receiver dies (kill -9) right after journaling a move
// in, before serving it or answering its donor. Restarted, it serves the move from its journal;
// the donor's redelivery is acknowledged as already held; every packet is paid once.
func TestMoveReceiverKilledAfterJournal(t *testing.T) {
	c := startCluster(t, 3)
	restartWith(t, c, 0, "REDRAINTEST_CRASH_AT=move-in-journaled")
	if err := c.WaitNodesAlive(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	const total, count, maxPer = int64(300_000), int64(3_000), 1000
	code := startRain(t, c, total, count, maxPer)
	l := tapOneNode(c, 0, code, 2000, 8)
	waitDead(t, c, 0)
	answers := l.stop()
	c.Nodes[0].Env = nil
	if err := c.StartNode(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	answers = append(answers, drainAll(t, c, code, 2000)...)
	_, rep := verify(t, c, code, answers, total, count, maxPer, true)
	if rep.ClaimedAmount != total || rep.LostAmount != 0 {
		t.Errorf("receiver back and drained: claimed %d of %d, lost %d", rep.ClaimedAmount, total, rep.LostAmount)
	}
	if line(rep, "n1").MovedInCount == 0 {
		t.Errorf("n1 served no moved stock: %+v", rep.Nodes)
	}
	checkNoPacketTwice(t, c, code)
}

// TestDonorStoppedWhileMoving: a donor stopped with SIGTERM while stock moves: it delivers,
// records its moves and leftover, and leaves; the report counts its remainder as leftover,
// nothing lost, and every answer is credited once.
func TestDonorStoppedWhileMoving(t *testing.T) {
	c := startCluster(t, 3)
	const total, count, maxPer = int64(3_000_000), int64(30_000), 1000
	code := startRain(t, c, total, count, maxPer)
	l := tapOneNode(c, 0, code, 5000, 16)
	testcluster.Eventually(t, 2*time.Minute, "stock moving to n1", func() bool {
		p, err := progress(c, 0, code)
		return err == nil && len(p.MovesIn) > 0
	})
	if err := c.Nodes[1].Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[1].Proc.Wait(30 * time.Second); err != nil {
		t.Fatalf("n2 did not stop: %v", err)
	}
	testcluster.Eventually(t, 2*time.Minute, "n1 answers exhausted (or finished)", l.exhausted)
	answers := l.stop()
	_, rep := verifyDead(t, c, code, answers, total, count, maxPer, false, "")
	n2 := line(rep, "n2")
	if rep.LostAmount != 0 || n2.State != "left" {
		t.Errorf("a donor that left gracefully loses nothing: %+v", rep)
	}
	t.Logf("n2 left with leftover %d after moving out %d cents; report claimed %d leftover %d", n2.LeftoverAmount, n2.MovedOutAmount, rep.ClaimedAmount, rep.LeftoverAmount)
	checkNoPacketTwice(t, c, code)
}

// TestSlowGive: the donors stall 1.2 s before each give (REDRAINTEST_GIVE_DELAY: a disk that
// stalls their journal), longer than --stock-wait and than the 1 s bound claims once had. Every
// tap goes to n1, whose claims wait for the give they are owed instead of answering exhausted:
// n1 still hands out (nearly) the whole rain before its first exhausted.
func TestSlowGive(t *testing.T) {
	c := startCluster(t, 3)
	restartWith(t, c, 1, "REDRAINTEST_GIVE_DELAY=1200ms")
	restartWith(t, c, 2, "REDRAINTEST_GIVE_DELAY=1200ms")
	if err := c.WaitNodesAlive(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	// 4 connections: up to 3 200s popped before the first exhausted may arrive after it (their
	// journal commit), within the 6 packets 99.9% leaves.
	const count = int64(6_000)
	rep, before := drainThroughN1(t, c, 600_000, count, 2000, 4)
	if line(rep, "n1").MovedInCount == 0 {
		t.Errorf("no stock moved: %+v", rep.Nodes)
	}
	t.Logf("n1 handed out %d of %d before its first exhausted, %d moved in", before, count, line(rep, "n1").MovedInCount)
}
