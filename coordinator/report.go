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
	LeftoverAmount              int64 // unclaimed remainder recorded at a graceful leave or a compaction
	HasLeftover                 bool  // a current record: the node has flushed nothing since
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
//   - a live node whose progress matches its slice (same epoch and size) is exact: claimed is
//     what it journaled, leftover is the rest of its slice (its remaining_amount, plus any
//     packet popped but not yet journaled, which the node serves again);
//   - any other holder (dead, suspect, left, unreachable) counts what it flushed to Redis as
//     claimed, a recorded leftover (graceful leave) as leftover, and the rest as lost.
//
// Budget not in any slice (no prepare yet) is leftover, so claimed + leftover + lost == total.
func buildReport(r *record, facts map[string]nodeFacts, t Totals) *Report {
	rep := &Report{
		Code: r.Code, Status: r.Status, Epoch: r.Epoch,
		TotalAmount: r.Config.TotalAmount, TotalCount: r.Config.TotalCount,
		FlushedAmount: t.ClaimedAmount, FlushedCount: t.ClaimedCount, MaxAmount: t.MaxAmount,
		Nodes: []NodeReport{},
	}
	assigned := int64(0)
	for _, sh := range shares(r) {
		assigned += sh.amount
		f, ok := facts[sh.node]
		if !ok {
			f.State = stateDead
		}
		nr := NodeReport{Node: sh.node, State: f.State, SliceAmount: sh.amount, SliceCount: sh.count}
		reconcileNode(r, sh, f, &nr)
		rep.LeftoverAmount += nr.LeftoverAmount
		rep.LostAmount += nr.LostAmount
		rep.ClaimedAmount += nr.ClaimedAmount
		rep.ClaimedCount += nr.ClaimedCount
		rep.Nodes = append(rep.Nodes, nr)
	}
	rep.LeftoverAmount += r.Config.TotalAmount - assigned
	return rep
}

// reconcileNode fills nr's claimed, flushed, leftover and lost figures. They are built from
// the slice down, never as a remainder that could go negative: claimed is capped by the slice,
// a recorded leftover by what the slice has left after claimed, and lost is the rest.
func reconcileNode(r *record, sh share, f nodeFacts, nr *NodeReport) {
	if !r.started() {
		nr.LeftoverAmount = sh.amount
		return
	}
	if p := f.Progress; f.State == stateAlive && exact(p, r.Epoch, sh) {
		nr.ClaimedAmount, nr.ClaimedCount, nr.FlushedAmount = p.ClaimedAmount, p.ClaimedCount, p.FlushedAmount
		nr.LeftoverAmount = sh.amount - p.ClaimedAmount
		return
	}
	nr.ClaimedAmount = clamp(f.Redis.ClaimedAmount, sh.amount)
	nr.ClaimedCount = clamp(f.Redis.ClaimedCount, sh.count)
	nr.FlushedAmount = f.Redis.ClaimedAmount // as Redis says, even past the slice (the checker flags that)
	if f.Redis.HasLeftover {
		nr.LeftoverAmount = clamp(f.Redis.LeftoverAmount, sh.amount-nr.ClaimedAmount)
	}
	nr.LostAmount = sh.amount - nr.ClaimedAmount - nr.LeftoverAmount
}

// clamp bounds v to [0, hi].
func clamp(v, hi int64) int64 { return max(0, min(v, hi)) }

// exact reports whether p is a live node's consistent account of share sh of epoch.
func exact(p *wire.Progress, epoch uint64, sh share) bool {
	return p != nil && p.Epoch == epoch && p.SliceAmount == sh.amount && p.SliceCount == sh.count &&
		p.ClaimedAmount >= 0 && p.ClaimedAmount <= sh.amount && p.ClaimedCount <= sh.count
}
