package coordinator

import (
	"redrain/adminapi"
	"redrain/internal/wire"
)

// Member states as gossip reports them (and the report and /v1/nodes show them).
const (
	stateAlive   = adminapi.StateAlive
	stateSuspect = adminapi.StateSuspect
	stateDead    = adminapi.StateDead
	stateLeft    = adminapi.StateLeft
)

// flushed is what Redis knows of one node's share of a rain (its nodes hash).
type flushed struct {
	ClaimedCount, ClaimedAmount int64
	LeftoverAmount              int64          // unclaimed remainder recorded at a graceful leave or a compaction
	HasLeftover                 bool           // a current record: the node has flushed nothing since
	MovesIn, MovesOut           []wire.MoveSum // stock moves the node recorded, per peer
}

// nodeFacts is everything the report knows about one slice holder.
type nodeFacts struct {
	State    string         // membership state; a holder that is no member at all is "dead"
	Progress *wire.Progress // the node's own figures for the rain, nil if not reachable
	Redis    flushed
}

// share is one holder's slices of a rain, added up.
type share struct {
	node          string
	amount, count int64
}

// shares adds up r's slices per node, in slice order.
func shares(r *record) []share {
	idx := make(map[string]int)
	var out []share
	for _, s := range r.Slices {
		i, ok := idx[s.Node]
		if !ok {
			i = len(out)
			idx[s.Node] = i
			out = append(out, share{node: s.Node})
		}
		out[i].amount += s.Amount
		out[i].count += s.Count
	}
	return out
}

// buildReport reconciles a rain. Per holder:
//   - before the rain ever started, nothing can be claimed: the whole slice is leftover;
//   - its share is its slice, plus stock moved in, minus stock moved out; a move counts once
//     either side reports it (pairMoves), so a move a donor journaled but has not delivered
//     yet is in the receiver's share, "in transit";
//   - a live node whose progress matches its slice (same epoch and size) is exact: claimed is
//     what it journaled, leftover is the rest of its share (its remaining_amount, any packet
//     popped but not yet journaled, which the node serves again, and stock in transit to it
//     from a live donor); stock in transit from a donor that is not alive is lost until the
//     donor returns and delivers it;
//   - any other holder (dead, suspect, left, unreachable) counts what it flushed to Redis as
//     claimed, a recorded leftover (graceful leave) as leftover, and the rest of its share as
//     lost.
//
// Budget not in any slice (no prepare yet) is leftover, so claimed + leftover + lost == total.
func buildReport(r *record, facts map[string]nodeFacts, t Totals) *Report {
	rep := &Report{
		Code: r.Code, Status: r.Status, Epoch: r.Epoch,
		TotalAmount: r.Config.TotalAmount, TotalCount: r.Config.TotalCount,
		FlushedAmount: t.ClaimedAmount, FlushedCount: t.ClaimedCount, MaxAmount: t.MaxAmount,
		Nodes: []NodeReport{},
	}
	moved := pairMoves(r, facts)
	assigned := int64(0)
	for _, sh := range shares(r) {
		assigned += sh.amount
		f, ok := facts[sh.node]
		if !ok {
			f.State = stateDead
		}
		nr := NodeReport{Node: sh.node, State: f.State, SliceAmount: sh.amount, SliceCount: sh.count}
		lostInTransit := int64(0)
		for p, m := range moved {
			switch sh.node {
			case p.to:
				nr.MovedInAmount += m.Amount
				nr.MovedInCount += m.Count
				if facts[p.from].State != stateAlive {
					lostInTransit += m.Amount - reportedIn(f.Progress, p.from).Amount
				}
			case p.from:
				nr.MovedOutAmount += m.Amount
				nr.MovedOutCount += m.Count
			}
		}
		reconcileNode(r, f, &nr, lostInTransit)
		rep.LeftoverAmount += nr.LeftoverAmount
		rep.LostAmount += nr.LostAmount
		rep.ClaimedAmount += nr.ClaimedAmount
		rep.ClaimedCount += nr.ClaimedCount
		rep.Nodes = append(rep.Nodes, nr)
	}
	rep.LeftoverAmount += r.Config.TotalAmount - assigned
	return rep
}

// movePair is stock moved from one holder to another.
type movePair struct{ from, to string }

// pairMoves adds up the stock moved between each pair of holders: the larger of what the donor
// and the receiver report (a receiver journals only what its donor journaled first, so the
// donor's figure is the whole unless the donor's report is older: dead, or gone from progress).
func pairMoves(r *record, facts map[string]nodeFacts) map[movePair]wire.MoveSum {
	out := map[movePair]wire.MoveSum{}
	note := func(p movePair, m wire.MoveSum) {
		if m.Amount > out[p].Amount {
			out[p] = wire.MoveSum{Peer: p.to, Count: m.Count, Amount: m.Amount}
		}
	}
	for node, f := range facts {
		for _, m := range f.Redis.MovesOut {
			note(movePair{node, m.Peer}, m)
		}
		for _, m := range f.Redis.MovesIn {
			note(movePair{m.Peer, node}, m)
		}
		if p := f.Progress; p != nil && p.Epoch == r.Epoch {
			for _, m := range p.MovesOut {
				note(movePair{node, m.Peer}, m)
			}
			for _, m := range p.MovesIn {
				note(movePair{m.Peer, node}, m)
			}
		}
	}
	holders := map[string]bool{}
	for _, n := range r.holders() {
		holders[n] = true
	}
	for p := range out {
		if !holders[p.from] || !holders[p.to] {
			delete(out, p) // only holders move stock; anything else is not this rain's
		}
	}
	return out
}

// reportedIn is what a node's own progress says it received from peer.
func reportedIn(p *wire.Progress, peer string) wire.MoveSum {
	if p != nil {
		for _, m := range p.MovesIn {
			if m.Peer == peer {
				return m
			}
		}
	}
	return wire.MoveSum{}
}

// reconcileNode fills nr's claimed, flushed, leftover and lost figures. They are built from
// the share down, never as a remainder that could go negative: claimed is capped by the share,
// a recorded leftover by what the share has left after claimed, and lost is the rest.
func reconcileNode(r *record, f nodeFacts, nr *NodeReport, lostInTransit int64) {
	share, shareCount := nr.Share()
	if !r.started() {
		nr.LeftoverAmount = share
		return
	}
	if p := f.Progress; f.State == stateAlive && exact(p, r.Epoch, *nr, share, shareCount) {
		nr.ClaimedAmount, nr.ClaimedCount, nr.FlushedAmount = p.ClaimedAmount, p.ClaimedCount, p.FlushedAmount
		nr.LostAmount = clamp(lostInTransit, share-p.ClaimedAmount)
		nr.LeftoverAmount = share - p.ClaimedAmount - nr.LostAmount
		return
	}
	nr.ClaimedAmount = clamp(f.Redis.ClaimedAmount, share)
	nr.ClaimedCount = clamp(f.Redis.ClaimedCount, shareCount)
	nr.FlushedAmount = f.Redis.ClaimedAmount // as Redis says, even past the share (the checker flags that)
	if f.Redis.HasLeftover {
		nr.LeftoverAmount = clamp(f.Redis.LeftoverAmount, share-nr.ClaimedAmount)
	}
	nr.LostAmount = share - nr.ClaimedAmount - nr.LeftoverAmount
}

// clamp bounds v to [0, hi].
func clamp(v, hi int64) int64 { return max(0, min(v, hi)) }

// exact reports whether p is a live node's consistent account of its line nr of epoch.
func exact(p *wire.Progress, epoch uint64, nr NodeReport, share, shareCount int64) bool {
	return p != nil && p.Epoch == epoch && p.SliceAmount == nr.SliceAmount && p.SliceCount == nr.SliceCount &&
		p.ClaimedAmount >= 0 && p.ClaimedAmount <= share && p.ClaimedCount <= shareCount
}
