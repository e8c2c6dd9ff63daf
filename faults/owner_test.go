package faults

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/rain"
)

// randomTapper is users tapping nodes picked at random (a balancer that does not route by
// user), every answer kept with the phase it was sent in.
type randomTapper struct {
	mu      sync.Mutex
	answers []phased
	oks     atomic.Int64
	phase   atomic.Int32
	stop    atomic.Bool
	wg      sync.WaitGroup
}

type phased struct {
	check.Answer
	phase int32
}

func startRandomTapper(c *cluster.LocalCluster, code string, users uint64, conns int) *randomTapper {
	rt := &randomTapper{}
	cl, addrs := tap.NewClaimer(conns), c.NodeAddrs()
	for w := range conns {
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 17))
			for !rt.stop.Load() {
				ph := rt.phase.Load()
				a := cl.Claim(addrs[rng.IntN(len(addrs))], code, 1+rng.Uint64N(users))
				if a.Status == 200 {
					rt.oks.Add(1)
				}
				rt.mu.Lock()
				rt.answers = append(rt.answers, phased{a, ph})
				rt.mu.Unlock()
				if a.Status == 0 {
					time.Sleep(5 * time.Millisecond) // a dead node refuses at once: don't spin
				}
			}
		}()
	}
	return rt
}

func (rt *randomTapper) count() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.answers)
}

func (rt *randomTapper) finish() []phased {
	rt.stop.Store(true)
	rt.wg.Wait()
	return rt.answers
}

// max_per_user holds cluster-wide under random routing, through a kill -9 of an owner: while it
// is down its users are refused with the fail-closed 503 by the other nodes (no packet), and once
// it is back from its journals a user it had counted to the cap stays at the cap.
func TestOwnerCapThroughKill(t *testing.T) {
	// Race-built binaries are slow: a generous owner timeout, so the answers count packets.
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 3, NodeArgs: []string{"--owner-timeout", "2s"}})
	const total, count, maxPer, users = int64(3_000_000), int64(15_000), 3, uint64(600)
	code := startRain(t, c, total, count, maxPer)
	holders := []string{c.Nodes[0].ID, c.Nodes[1].ID, c.Nodes[2].ID}
	owner := c.Nodes[1]
	rt := startRandomTapper(c, code, users, 24)
	testcluster.Eventually(t, 2*time.Minute, "most users at the cap", func() bool { return rt.oks.Load() >= int64(users*maxPer*8/10) })

	owner.Proc.Kill()
	rt.phase.Store(1) // every tap sent from here on was sent with the owner dead
	seen := rt.count()
	testcluster.Eventually(t, time.Minute, "taps while the owner is down", func() bool { return rt.count() >= seen+1500 })
	rt.phase.Store(2)
	if err := c.StartNode(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	rt.phase.Store(3)
	seen = rt.count()
	testcluster.Eventually(t, time.Minute, "taps after the restart", func() bool { return rt.count() >= seen+3000 })
	all := rt.finish()

	paid := map[uint64]int{}       // over every answer
	capBefore := map[uint64]bool{} // users of the owner at the cap before the kill
	var refusedDown, refusedAfter int
	for _, a := range all {
		own := rain.OwnerOf(holders, code, a.User) == owner.ID
		if a.Status == 200 {
			paid[a.User]++
			if a.phase == 0 && own && paid[a.User] == maxPer {
				capBefore[a.User] = true
			}
		}
		switch {
		case a.phase == 1 && own && a.Node != owner.HTTP && a.Status == 200:
			t.Errorf("user %d, owned by the dead %s, paid by %s", a.User, owner.ID, a.Node)
		case a.phase == 1 && own && a.Node != owner.HTTP && a.Status == 503 && a.Error == "journal_unavailable":
			refusedDown++
		case a.phase == 1 && own && a.Node != owner.HTTP && a.Status != 429: // 429: at the cap on the node itself
			t.Errorf("user %d of the dead owner answered %d %q, want 503 journal_unavailable", a.User, a.Status, a.Error)
		case a.phase == 3 && capBefore[a.User] && a.Status == 429:
			refusedAfter++
		}
	}
	for u, k := range paid {
		if k > maxPer {
			t.Errorf("user %d paid %d packets over every answer, max_per_user %d", u, k, maxPer)
		}
	}
	if refusedDown == 0 || len(capBefore) == 0 || refusedAfter == 0 {
		t.Fatalf("the test did not test: %d refusals while the owner was down, %d of its users at the cap before, "+
			"%d of those refused after its restart", refusedDown, len(capBefore), refusedAfter)
	}
	answers := make([]check.Answer, len(all))
	for i, a := range all {
		answers[i] = a.Answer
	}
	verify(t, c, code, answers, total, count, maxPer, false)
	t.Logf("%d answers; %d users paid; %d claims of the dead owner's users refused (503); %d of its users at the cap before "+
		"the kill, refused %d times after its restart", len(all), len(paid), refusedDown, len(capBefore), refusedAfter)
}
