package sim

import (
	"context"

	"redrain/adminapi"
	"redrain/ledger"
	"redrain/rain"
)

// reqInfo is one tap: who and where.
type reqInfo struct {
	node int
	user uint64
}

type claimKey struct {
	node int
	seq  uint64
}

type packetKey struct {
	epoch        uint64
	slice, index uint32
}

// checker holds what the invariants are checked against: every record any journal ever
// published, every 200 sent, every answer received.
type checker struct {
	ever        [][]ledger.Record // per node: published records, seq i+1 at i
	packets     map[packetKey]claimKey
	journalUser map[[2]uint64]int // (node, user) -> claims journaled
	journalSum  int64
	sent        map[claimKey]uint64 // 200s sent -> request
	answered    map[uint64]bool
	clientSum   int64
	clientNode  map[[2]uint64]int // (node, user) -> 200s received
	clientUser  map[uint64]int
}

func (c *checker) init(w *World) {
	c.ever = make([][]ledger.Record, len(w.nodes))
	c.packets, c.journalUser = map[packetKey]claimKey{}, map[[2]uint64]int{}
	c.sent, c.answered = map[claimKey]uint64{}, map[uint64]bool{}
	c.clientNode, c.clientUser = map[[2]uint64]int{}, map[uint64]int{}
}

// published checks a node's journal after records were published (a commit, a restart, a
// reopen): what was published before is all still there, unchanged (durable); what is new
// takes no packet twice, no user past the cap, no cent past the budget.
func (c *checker) published(w *World, n *node) {
	ever, pub := c.ever[n.idx], n.j.pub
	if len(pub) < len(ever) {
		w.fail("durable", "%s journal holds %d records after %d were journaled", n.id, len(pub), len(ever))
		return
	}
	for i := range ever {
		if pub[i].Rec != ever[i] {
			w.fail("durable", "%s seq %d changed: %+v, was %+v", n.id, i+1, pub[i].Rec, ever[i])
			return
		}
	}
	for _, r := range pub[len(ever):] {
		k, ck := packetKey{r.Rec.Epoch, r.Rec.Slice, r.Rec.Index}, claimKey{n.idx, r.Seq}
		if prev, dup := c.packets[k]; dup {
			w.fail("packet-once", "packet epoch %d slice %d index %d journaled as %s seq %d and %s seq %d",
				k.epoch, k.slice, k.index, w.nodes[prev.node].id, prev.seq, n.id, r.Seq)
			return
		}
		c.packets[k] = ck
		uk := [2]uint64{uint64(n.idx), r.Rec.User}
		if c.journalUser[uk]++; c.journalUser[uk] > w.maxPerUser {
			w.fail("cap", "user %d has %d claims journaled on %s, max_per_user %d", r.Rec.User, c.journalUser[uk], n.id, w.maxPerUser)
			return
		}
		if c.journalSum += r.Rec.Amount; c.journalSum > w.total {
			w.fail("overpay", "journals hold %d cents of a %d-cent rain", c.journalSum, w.total)
			return
		}
		ever = append(ever, r.Rec)
	}
	c.ever[n.idx] = ever
}

// sent200 checks a 200 as the node sends it: a new claim_id, for the claim just journaled.
func (c *checker) sent200(w *World, n *node, req uint64, a answer) {
	k := claimKey{n.idx, a.seq}
	if _, dup := c.sent[k]; dup {
		w.fail("claim-id-once", "claim_id %s answered twice", claimID(w, k))
		return
	}
	c.sent[k] = req
	ri := w.reqs[req]
	ever := c.ever[n.idx]
	if a.seq == 0 || a.seq > uint64(len(ever)) || ever[a.seq-1].User != ri.user || ever[a.seq-1].Amount != a.amount {
		w.fail("durable", "200 %s (%d cents to user %d) is not the journaled claim", claimID(w, k), a.amount, ri.user)
	}
	w.result.Claims++
}

func claimID(w *World, k claimKey) string {
	n := w.nodes[k.node]
	return string(ledger.AppendClaimID(nil, n.id, n.j.inc, k.seq))
}

// received is an answer reaching its client: the client's view of the caps and the budget.
func (c *checker) received(w *World, m msg) {
	if c.answered[m.req] {
		return
	}
	c.answered[m.req] = true
	w.result.Answers++
	w.tracef("client: request %d user %d answered %d %s %d", m.req, w.reqs[m.req].user, m.ans.status, m.ans.word, m.ans.amount)
	if m.ans.status != 200 {
		return
	}
	ri := w.reqs[m.req]
	if c.clientSum += m.ans.amount; c.clientSum > w.total {
		w.fail("overpay", "clients were paid %d cents of a %d-cent rain", c.clientSum, w.total)
	}
	nk := [2]uint64{uint64(m.node), ri.user}
	if c.clientNode[nk]++; c.clientNode[nk] > w.maxPerUser {
		w.fail("cap", "user %d got %d packets from %s, max_per_user %d", ri.user, c.clientNode[nk], w.nodes[m.node].id, w.maxPerUser)
	}
	if c.clientUser[ri.user]++; w.routeByUser && c.clientUser[ri.user] > w.maxPerUser {
		w.fail("cap", "user %d got %d packets cluster-wide, max_per_user %d", ri.user, c.clientUser[ri.user], w.maxPerUser)
	}
}

// noAnswer: the client's request or its answer was lost (the client sees a network error).
func (c *checker) noAnswer(req uint64) {}

// afterStep runs the invariants that must hold after every step.
func (c *checker) afterStep(w *World) {
	for _, n := range w.nodes { // Progress costs 256 lock pairs: only where something moved
		if n.up && n.dirty {
			n.dirty = false
			c.conserved(w, n)
		}
	}
	if w.redis.dirty {
		w.redis.dirty = false
		c.redisConsistent(w)
	}
}

// conserved: every packet of a node's served slices is unserved, journaled or in flight (popped,
// waiting for its commit or in limbo): none lost, none counted twice.
func (c *checker) conserved(w *World, n *node) {
	p, ok := n.store.Progress(w.code, w.now)
	if !ok {
		return
	}
	t, _ := n.j.mem.Totals(w.code)
	fc, fa := n.inflight()
	if p.Count != p.RemainingCount+t.Count+fc || p.Amount != p.RemainingAmount+t.Amount+fa {
		w.fail("conservation", "%s: slices %d packets / %d cents != unserved %d / %d + journaled %d / %d + in flight %d / %d",
			n.id, p.Count, p.Amount, p.RemainingCount, p.RemainingAmount, t.Count, t.Amount, fc, fa)
	}
}

// redisConsistent: every credit entry is a journaled claim, credited once; the totals and the
// nodes hash are the credits' sums.
func (c *checker) redisConsistent(w *World) (perNode []int) {
	ctx := context.Background()
	credits, err := w.redis.mem.ReadCredits(ctx, w.code)
	if err != nil {
		w.fail("credits", "credit stream does not decode: %v", err)
		return nil
	}
	perNode = make([]int, len(w.nodes))
	sums := make([][2]int64, len(w.nodes))
	seen := map[string]bool{}
	var count, amount int64
	for _, cr := range credits {
		if seen[cr.ClaimID] {
			w.fail("credited-once", "claim %s credited twice", cr.ClaimID)
			return nil
		}
		seen[cr.ClaimID] = true
		i := -1
		for k, n := range w.nodes {
			if n.id == cr.Node && n.j.inc == cr.Incarnation {
				i = k
			}
		}
		if i < 0 || cr.Seq > uint64(len(c.ever[i])) || c.ever[i][cr.Seq-1].User != cr.User || c.ever[i][cr.Seq-1].Amount != cr.Amount {
			w.fail("credited-once", "credit %s (%d cents to user %d) is no journaled claim", cr.ClaimID, cr.Amount, cr.User)
			return nil
		}
		perNode[i]++
		sums[i][0]++
		sums[i][1] += cr.Amount
		count, amount = count+1, amount+cr.Amount
	}
	tot, _ := w.redis.mem.ReadTotals(ctx, w.code)
	if tot.ClaimedCount != count || tot.ClaimedAmount != amount {
		w.fail("redis-totals", "totals %d / %d cents, credits %d / %d", tot.ClaimedCount, tot.ClaimedAmount, count, amount)
		return nil
	}
	nodes, _ := w.redis.mem.ReadNodes(ctx, w.code)
	for i, n := range w.nodes {
		if nt := nodes[n.id]; nt.ClaimedCount != sums[i][0] || nt.ClaimedAmount != sums[i][1] {
			w.fail("redis-totals", "nodes hash has %s at %d / %d cents, its credits %d / %d", n.id, nt.ClaimedCount,
				nt.ClaimedAmount, sums[i][0], sums[i][1])
			return nil
		}
	}
	return perNode
}

// final checks the healed, settled end state: every journaled claim credited exactly once,
// every packet unserved or journaled, the report balanced, the rain settled.
func (c *checker) final(w *World) {
	for _, n := range w.nodes {
		if !n.up || len(n.queue) > 0 || len(n.limbo) > 0 {
			w.fail("heal", "%s: up %v, %d queued, %d in limbo after healing", n.id, n.up, len(n.queue), len(n.limbo))
			return
		}
		c.conserved(w, n)
	}
	perNode := c.redisConsistent(w)
	if perNode == nil {
		return
	}
	for i, n := range w.nodes {
		if perNode[i] != len(c.ever[i]) {
			w.fail("credited-once", "%s journaled %d claims, %d are credited", n.id, len(c.ever[i]), perNode[i])
			return
		}
	}
	if len(w.coord.slices) > 0 && w.coord.status != rain.Settled {
		w.fail("lifecycle", "rain %s after healing, want settled", w.coord.status)
		return
	}
	if probs := c.report(w).Problems(); len(probs) > 0 {
		w.fail("report", "%v", probs)
	}
}

// report builds the coordinator's report of the healed run (every holder alive).
func (c *checker) report(w *World) *adminapi.Report {
	ctx := context.Background()
	tot, _ := w.redis.mem.ReadTotals(ctx, w.code)
	nodes, _ := w.redis.mem.ReadNodes(ctx, w.code)
	r := &adminapi.Report{Code: w.code, Status: w.coord.status, Epoch: w.coord.epoch, TotalAmount: w.total,
		TotalCount: w.count, FlushedAmount: tot.ClaimedAmount, FlushedCount: tot.ClaimedCount, MaxAmount: tot.MaxAmount}
	var sliced int64
	for _, s := range w.coord.slices {
		n := w.nodes[w.nodeOf(s.Node)]
		t, _ := n.j.mem.Totals(w.code)
		p, _ := n.store.Progress(w.code, w.now)
		nr := adminapi.NodeReport{Node: n.id, State: adminapi.StateAlive, SliceAmount: s.Amount, SliceCount: s.Count,
			ClaimedAmount: t.Amount, ClaimedCount: t.Count, FlushedAmount: nodes[n.id].ClaimedAmount,
			LeftoverAmount: p.RemainingAmount}
		r.Nodes = append(r.Nodes, nr)
		r.ClaimedAmount += nr.ClaimedAmount
		r.ClaimedCount += nr.ClaimedCount
		r.LeftoverAmount += nr.LeftoverAmount
		sliced += s.Amount
	}
	r.LeftoverAmount += w.total - sliced
	return r
}
