package sim

import (
	"context"
	"maps"
	"slices"

	"redrain/adminapi"
	"redrain/ledger"
	"redrain/rain"
)

// reqInfo is one tap: who and where.
type reqInfo struct {
	node int
	user uint64
	code string
}

type claimKey struct {
	node int
	seq  uint64
}

type packetKey struct {
	code         string
	epoch        uint64
	slice, index uint32
}

// checker holds what the invariants are checked against: every record any journal ever
// published, every 200 sent, every answer received.
type checker struct {
	ever        [][]ledger.Record // per node: published records, seq i+1 at i
	packets     map[packetKey]claimKey
	journalUser map[userKey]int // claims journaled per node (per rain and user)
	journalSum  map[string]int64
	journalAmt  map[userKey]int64   // cents journaled per node and rain (user 0)
	sent        map[claimKey]uint64 // 200s sent -> request
	answered    map[uint64]bool
	clientSum   map[string]int64
	clientNode  map[userKey]int // 200s received per node (per rain and user)
	clientUser  map[userKey]int // 200s received cluster-wide (node -1)
}

// userKey is a user of a rain on a node (-1: cluster-wide).
type userKey struct {
	node int
	code string
	user uint64
}

func (c *checker) init(w *World) {
	c.ever = make([][]ledger.Record, len(w.nodes))
	c.packets, c.journalUser, c.journalSum = map[packetKey]claimKey{}, map[userKey]int{}, map[string]int64{}
	c.journalAmt = map[userKey]int64{}
	c.sent, c.answered, c.clientSum = map[claimKey]uint64{}, map[uint64]bool{}, map[string]int64{}
	c.clientNode, c.clientUser = map[userKey]int{}, map[userKey]int{}
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
		k, ck := packetKey{r.Rec.Code, r.Rec.Epoch, r.Rec.Slice, r.Rec.Index}, claimKey{n.idx, r.Seq}
		if prev, dup := c.packets[k]; dup {
			w.fail("packet-once", "packet %s epoch %d slice %d index %d journaled as %s seq %d and %s seq %d",
				k.code, k.epoch, k.slice, k.index, w.nodes[prev.node].id, prev.seq, n.id, r.Seq)
			return
		}
		c.packets[k] = ck
		s := w.specs[r.Rec.Code]
		uk := userKey{n.idx, s.code, r.Rec.User}
		if c.journalUser[uk]++; c.journalUser[uk] > s.maxPerUser {
			w.fail("cap", "user %d has %d claims of %s journaled on %s, max_per_user %d", r.Rec.User, c.journalUser[uk],
				s.code, n.id, s.maxPerUser)
			return
		}
		wk := userKey{-1, s.code, r.Rec.User}
		if c.journalUser[wk]++; c.journalUser[wk] > s.maxPerUser {
			w.fail("cap", "user %d has %d claims of %s journaled cluster-wide (the last on %s), max_per_user %d", r.Rec.User,
				c.journalUser[wk], s.code, n.id, s.maxPerUser)
			return
		}
		c.journalAmt[userKey{n.idx, s.code, 0}] += r.Rec.Amount
		if c.journalSum[s.code] += r.Rec.Amount; c.journalSum[s.code] > s.total {
			w.fail("overpay", "journals hold %d cents of %s, a %d-cent rain", c.journalSum[s.code], s.code, s.total)
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

// refused checks a refusal as the node sends it: "exhausted" only when nothing is left on the
// node (SPEC invariant 5), "user_limit" only when the user holds max_per_user packets here,
// journaled or in flight (a leak in the per-user accounting would refuse users who hold fewer).
func (c *checker) refused(w *World, n *node, req uint64, a answer) {
	word := a.word
	ri := w.reqs[req]
	switch word {
	case "exhausted":
		if p, ok := n.store.Progress(ri.code, w.now); ok && p.RemainingCount != 0 {
			w.fail("exhausted-means-empty", "%s answered exhausted for %s with %d packets / %d cents left", n.id, ri.code,
				p.RemainingCount, p.RemainingAmount)
		}
	case "user_limit":
		if a.owner == 0 { // refused by its owner: checked there, when it refused (capHeld)
			c.capHeld(w, n, ri.code, ri.user)
		}
	}
}

// capHeld: a node refusing a user for the cap (its own claim, or as the user's owner) counts
// max_per_user claims of the user: journaled here, popped here and not journaled, or
// reservations it granted as the owner (a leak in the per-user accounting would refuse users
// who hold fewer).
func (c *checker) capHeld(w *World, by *node, code string, user uint64) {
	s := w.specs[code]
	held := c.journalUser[userKey{by.idx, code, user}] + by.granted(code, user)
	for _, ps := range [][]pending{by.queue, by.limbo, slices.Collect(maps.Values(by.awaiting))} {
		for _, p := range ps {
			if p.code == code && p.user == user {
				held++
			}
		}
	}
	if held < s.maxPerUser {
		w.fail("cap-accounting", "%s refused user %d of %s for the cap, who holds %d of %d", by.id, user, code, held, s.maxPerUser)
	}
}

// received is an answer reaching its client: the client's view of the caps and the budget.
func (c *checker) received(w *World, m msg) {
	if c.answered[m.req] {
		return
	}
	c.answered[m.req] = true
	w.result.Answers++
	w.tracef("client: request %d user %d of %s answered %d %s %d", m.req, w.reqs[m.req].user, m.code, m.ans.status,
		m.ans.word, m.ans.amount)
	if m.ans.status != 200 {
		return
	}
	ri := w.reqs[m.req]
	s := w.specs[ri.code]
	if c.clientSum[s.code] += m.ans.amount; c.clientSum[s.code] > s.total {
		w.fail("overpay", "clients were paid %d cents of %s, a %d-cent rain", c.clientSum[s.code], s.code, s.total)
	}
	nk := userKey{m.node, s.code, ri.user}
	if c.clientNode[nk]++; c.clientNode[nk] > s.maxPerUser {
		w.fail("cap", "user %d got %d packets of %s from %s, max_per_user %d", ri.user, c.clientNode[nk], s.code,
			w.nodes[m.node].id, s.maxPerUser)
	}
	// Cluster-wide, whatever the routing (SPEC invariant 6: the users' owners count them).
	ck := userKey{-1, s.code, ri.user}
	if c.clientUser[ck]++; c.clientUser[ck] > s.maxPerUser {
		w.fail("cap", "user %d got %d packets of %s cluster-wide, max_per_user %d", ri.user, c.clientUser[ck], s.code, s.maxPerUser)
	}
}

// noAnswer: the client's request or its answer was lost; the client sees a network error (a
// claim journaled just before a crash may be one: it still counts, and is credited).
func (c *checker) noAnswer(w *World) { w.result.NoAnswer++ }

// afterStep runs the invariants that must hold after every step.
func (c *checker) afterStep(w *World) {
	for _, n := range w.nodes { // Progress costs 256 lock pairs: only where something moved
		for i, code := range w.codes() {
			if n.up && n.dirty[i] {
				n.dirty[i] = false
				c.conserved(w, n, code)
			}
		}
	}
	if w.redis.dirty || w.leftCheck {
		c.leftovers(w)
		w.leftCheck = false
	}
	if w.redis.dirty {
		w.redis.dirty = false
		for _, code := range w.codes() {
			c.redisConsistent(w, code)
		}
	}
}

// conserved: a node's share of a rain (its slices of the epoch, plus the moves in, minus the
// moves out, as journaled) is unserved, journaled or in flight (popped, waiting for its owner
// or its commit, in limbo, or cut and off sale): none lost, none counted twice.
func (c *checker) conserved(w *World, n *node, code string) {
	p, ok := n.store.Progress(code, w.now)
	ri := n.rains[code]
	if !ok || ri == nil {
		return
	}
	var sc, sa int64
	for k, sl := range ri.slices {
		if k.epoch == p.Epoch {
			sc, sa = sc+sl.Count, sa+sl.Amount
		}
	}
	in, out := moveSums(ri.meta, p.Epoch)
	sc, sa = sc+in[0]-out[0], sa+in[1]-out[1]
	t, _ := n.j.mem.Totals(code)
	fc, fa := n.inflight(code)
	if sc != p.RemainingCount+t.Count+fc || sa != p.RemainingAmount+t.Amount+fa {
		w.fail("conservation", "%s %s: share %d packets / %d cents (moved in %d / %d, out %d / %d) != unserved %d / %d + journaled %d / %d + in flight %d / %d",
			n.id, code, sc, sa, in[0], in[1], out[0], out[1], p.RemainingCount, p.RemainingAmount, t.Count, t.Amount, fc, fa)
	}
}

// redisConsistent: every credit entry is a journaled claim, credited once; the totals and the
// nodes hash are the credits' sums.
func (c *checker) redisConsistent(w *World, code string) (perNode []int) {
	ctx := context.Background()
	credits, err := w.redis.mem.ReadCredits(ctx, code)
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
		if i < 0 || cr.Seq > uint64(len(c.ever[i])) || !isCredit(c.ever[i][cr.Seq-1], code, cr) {
			w.fail("credited-once", "credit %s (%d cents to user %d) is no journaled claim", cr.ClaimID, cr.Amount, cr.User)
			return nil
		}
		perNode[i]++
		sums[i][0]++
		sums[i][1] += cr.Amount
		count, amount = count+1, amount+cr.Amount
	}
	tot, _ := w.redis.mem.ReadTotals(ctx, code)
	if tot.ClaimedCount != count || tot.ClaimedAmount != amount {
		w.fail("redis-totals", "%s totals %d / %d cents, credits %d / %d", code, tot.ClaimedCount, tot.ClaimedAmount, count, amount)
		return nil
	}
	nodes, _ := w.redis.mem.ReadNodes(ctx, code)
	for i, n := range w.nodes {
		if nt := nodes[n.id]; nt.ClaimedCount != sums[i][0] || nt.ClaimedAmount != sums[i][1] {
			w.fail("redis-totals", "%s nodes hash has %s at %d / %d cents, its credits %d / %d", code, n.id, nt.ClaimedCount,
				nt.ClaimedAmount, sums[i][0], sums[i][1])
			return nil
		}
	}
	return perNode
}

// leftovers: a leftover record that reads as current (ledger.NodeTotals.Leftover, what the
// report counts as leftover for a node that is away) never counts a packet the node paid:
// recorded leftover + journaled <= slice. Not checked once Redis was rolled back to a
// snapshot: a restored record is stamped with the restored count, so it reads as current even
// if the node came back, cleared it and paid more since.
func (c *checker) leftovers(w *World) {
	if w.rolledBack {
		return
	}
	for _, code := range w.codes() {
		nodes, err := w.redis.mem.ReadNodes(context.Background(), code)
		if err != nil {
			w.fail("leftover", "nodes hash of %s: %v", code, err)
			return
		}
		for _, n := range w.nodes {
			l, ok := nodes[n.id].Leftover()
			if n.up || !ok {
				continue
			}
			in, out := moveSums(n.j.rains[code], n.j.rains[code].Epoch)
			s, j := w.sliceAmount(n, code)+in[1]-out[1], c.journalAmt[userKey{n.idx, code, 0}]
			if l+j > s {
				w.fail("leftover", "%s %s: recorded leftover %d + journaled %d > slice %d: paid packets counted as leftover",
					n.id, code, l, j, s)
				return
			}
		}
	}
}

// sliceAmount is the node's share of the rain's served slices.
func (w *World) sliceAmount(n *node, code string) (a int64) {
	plan := w.coord.slices
	if code == w.side.code {
		plan = w.sidePlan
	}
	for _, s := range plan {
		if s.Node == n.id {
			a += s.Amount
		}
	}
	return a
}

// isCredit reports whether credit cr of rain code is journaled record r.
func isCredit(r ledger.Record, code string, cr ledger.Credit) bool {
	return r.Code == code && r.User == cr.User && r.Amount == cr.Amount
}

// final checks the healed, settled end state: every journaled claim credited exactly once,
// every packet unserved or journaled, the report balanced, the rain settled.
func (c *checker) final(w *World) {
	for _, n := range w.nodes {
		if !n.up || len(n.queue) > 0 || len(n.limbo) > 0 || len(n.awaiting) > 0 || len(n.waiting) > 0 {
			w.fail("heal", "%s: up %v, %d queued, %d in limbo, %d awaiting their owner after healing", n.id, n.up, len(n.queue),
				len(n.limbo), len(n.awaiting))
			return
		}
		for _, code := range w.codes() {
			c.conserved(w, n, code)
		}
	}
	perNode := make([]int, len(w.nodes))
	for _, code := range w.codes() {
		got := c.redisConsistent(w, code)
		if got == nil {
			return
		}
		for i := range got {
			perNode[i] += got[i]
		}
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
		// coordinator.pairMoves: each (donor, receiver) pair moved the larger of what either
		// side journaled; what a receiver never received (a donor settled before it delivered)
		// is the receiver's, lost.
		var in, out [2]int64
		var lost int64
		for _, o := range w.coord.slices {
			peer := w.nodes[w.nodeOf(o.Node)]
			po, pi := pairSum(peer, n, w.code, w.coord.epoch), pairSum(n, peer, w.code, w.coord.epoch)
			got := pairSumIn(n, peer, w.code, w.coord.epoch)
			to := maxPair(po, pairSumIn(n, peer, w.code, w.coord.epoch))
			in = [2]int64{in[0] + to[0], in[1] + to[1]}
			lost += to[1] - got[1]
			from := maxPair(pi, pairSumIn(peer, n, w.code, w.coord.epoch))
			out = [2]int64{out[0] + from[0], out[1] + from[1]}
		}
		nr := adminapi.NodeReport{Node: n.id, State: adminapi.StateAlive, SliceAmount: s.Amount, SliceCount: s.Count,
			ClaimedAmount: t.Amount, ClaimedCount: t.Count, FlushedAmount: nodes[n.id].ClaimedAmount,
			LeftoverAmount: p.RemainingAmount, LostAmount: lost, MovedInCount: in[0], MovedInAmount: in[1], MovedOutCount: out[0],
			MovedOutAmount: out[1]}
		r.Nodes = append(r.Nodes, nr)
		r.ClaimedAmount += nr.ClaimedAmount
		r.ClaimedCount += nr.ClaimedCount
		r.LeftoverAmount += nr.LeftoverAmount
		r.LostAmount += nr.LostAmount
		sliced += s.Amount
	}
	r.LeftoverAmount += w.total - sliced
	return r
}

// pairSum is what from journaled as moved out to to (epoch's moves of the rain): count, amount.
func pairSum(from, to *node, code string, epoch uint64) (sum [2]int64) {
	for _, mv := range from.j.rains[code].MovesOut {
		if mv.To == to.id && mv.Slice.Epoch == epoch {
			sum = [2]int64{sum[0] + mv.Count, sum[1] + mv.Amount}
		}
	}
	return sum
}

// pairSumIn is what to journaled as moved in from from.
func pairSumIn(to, from *node, code string, epoch uint64) (sum [2]int64) {
	for _, mv := range to.j.rains[code].MovesIn {
		if mv.From == from.id && mv.Slice.Epoch == epoch {
			sum = [2]int64{sum[0] + mv.Count, sum[1] + mv.Amount}
		}
	}
	return sum
}

func maxPair(a, b [2]int64) [2]int64 {
	if b[1] > a[1] {
		return b
	}
	return a
}
