package bench

import (
	"context"
	"testing"
	"time"

	"redrain/internal/tap"
)

// pick spreads taps as each balance says: uniform, or 80% to the first fifth (at least one node).
func TestPickShares(t *testing.T) {
	for _, c := range []struct {
		b     Balance
		n     int
		share []float64 // expected share per node
	}{
		{BalanceRandom, 3, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}},
		{BalanceRandom, 1, []float64{1}},
		{BalanceSkew, 3, []float64{0.8, 0.1, 0.1}},
		{BalanceSkew, 10, []float64{0.4, 0.4, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025}},
		{BalanceSkew, 1, []float64{1}},
		{BalanceSkew, 2, []float64{0.8, 0.2}},
	} {
		w := &worker{rng: 7}
		const taps = 200_000
		got := make([]int, c.n)
		for range taps {
			got[w.pick(c.b, c.n)]++
		}
		for i, want := range c.share {
			if s := float64(got[i]) / taps; s < want-0.01 || s > want+0.01 {
				t.Errorf("%s over %d nodes: node %d got %.3f of the taps, want %.3f", c.b, c.n, i, s, want)
			}
		}
	}
}

func TestParseBalance(t *testing.T) {
	for _, b := range Balances {
		if got, err := ParseBalance(string(b)); err != nil || got != b {
			t.Errorf("ParseBalance(%q) = %q, %v", b, got, err)
		}
	}
	for _, s := range []string{"", "Sticky", "round-robin", "one "} {
		if _, err := ParseBalance(s); err == nil {
			t.Errorf("ParseBalance(%q) accepted", s)
		}
	}
	if msg := loadProblem(LoadOptions{Balance: "fair"}, ""); msg == "" {
		t.Error("loadProblem accepts balance fair")
	}
}

// The load driver sends each tap where its balance says, against three fake nodes that hold
// more than the users may take (their caps are per node, as today's nodes'): under sticky every
// user stays on its routed node, under one everything goes to the first node, under random
// every node gets about a third of the taps and users see several nodes, under skew the first
// node gets about 80%.
func TestLoadBalances(t *testing.T) {
	for _, b := range Balances {
		t.Run(string(b), func(t *testing.T) {
			fs := []*fakeNode{startFake(t, "a", -1, 6, 0), startFake(t, "b", -1, 6, 0), startFake(t, "c", -1, 6, 0)}
			nodes := fakeAddrs(fs...)
			res := Load(context.Background(), LoadOptions{Nodes: nodes, Code: "r", Users: 300, Conns: 8, Balance: b,
				Time: 30 * time.Second})
			if res.Stop != StopUsersDone {
				t.Fatalf("stop %q", res.Stop)
			}
			per := map[string]int{}
			seen := map[uint64]map[string]bool{}
			for _, a := range res.Answers {
				per[a.Node]++
				if seen[a.User] == nil {
					seen[a.User] = map[string]bool{}
				}
				seen[a.User][a.Node] = true
				if b == BalanceSticky && a.Node != nodes[tap.Route(a.User, 3)] {
					t.Fatalf("user %d tapped %s, routed to %s", a.User, a.Node, nodes[tap.Route(a.User, 3)])
				}
			}
			n := float64(len(res.Answers))
			share := func(i int) float64 { return float64(per[nodes[i]]) / n }
			multi := 0
			for _, ns := range seen {
				if len(ns) > 1 {
					multi++
				}
			}
			switch b {
			case BalanceOne:
				if share(0) != 1 {
					t.Fatalf("one: shares %v", per)
				}
			case BalanceRandom:
				for i := range nodes {
					if s := share(i); s < 0.25 || s > 0.42 {
						t.Fatalf("random: node %d got %.2f of %v answers", i, s, n)
					}
				}
				if multi < 250 {
					t.Fatalf("random: only %d of 300 users saw more than one node", multi)
				}
			case BalanceSkew:
				if s := share(0); s < 0.72 || s > 0.88 {
					t.Fatalf("skew: node 0 got %.2f of %v answers", s, n)
				}
			case BalanceSticky:
				if multi != 0 {
					t.Fatalf("sticky: %d users saw more than one node", multi)
				}
			}
		})
	}
}

// Under random, an exhausted node ends only the user it answered: the others keep claiming from
// the nodes that have packets, and every answer carries its arrival time within the load.
func TestLoadRandomExhaustedNode(t *testing.T) {
	a, b := startFake(t, "a", 20, 1000, 0), startFake(t, "b", 2000, 1000, 0)
	res := Load(context.Background(), LoadOptions{Nodes: fakeAddrs(a, b), Code: "r", Users: 400, Conns: 4,
		Balance: BalanceRandom, Time: 30 * time.Second})
	if !res.Exhausted[0] {
		t.Fatalf("node a never answered exhausted: %v", res.Exhausted)
	}
	ok := map[string]int{}
	exhausted := map[uint64]int{}
	for i, an := range res.Answers {
		if an.Status == 200 {
			ok[an.Node]++
		}
		if an.Error == "exhausted" {
			exhausted[an.User]++
		}
		if an.At <= 0 || an.At > res.Elapsed {
			t.Fatalf("answer %d at %v, load took %v", i, an.At, res.Elapsed)
		}
	}
	if ok[a.addr] != 20 || ok[b.addr] < 200 {
		t.Fatalf("claims per node %v: want all 20 of a and most users claiming on b after a ran dry", ok)
	}
	for u, n := range exhausted {
		if n != 1 {
			t.Fatalf("user %d was told exhausted %d times: it should stop at the first", u, n)
		}
	}
}

// The per-tap node choice of the hot loop: a few multiplications, no allocation.
func BenchmarkPick(b *testing.B) {
	w := &worker{rng: 1}
	b.ReportAllocs()
	s := 0
	for b.Loop() {
		s += w.pick(BalanceSkew, 3)
	}
	if s < 0 {
		b.Fatal(s)
	}
}
