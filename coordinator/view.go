package coordinator

import (
	"redrain/adminapi"
	"redrain/rain"
)

// The admin API's JSON objects live in package adminapi, which the coordinator's clients import
// too; these aliases keep the coordinator's own code reading as before.
type (
	Rain       = adminapi.Rain
	SliceView  = adminapi.SliceView
	Report     = adminapi.Report
	NodeReport = adminapi.NodeReport
	Node       = adminapi.Node
)

// Totals are a rain's cluster-wide figures as flushed to Redis.
type Totals struct {
	ClaimedCount, ClaimedAmount, MaxAmount int64
}

func stamp(ns int64) *string {
	if ns == 0 {
		return nil
	}
	s := rain.FormatTime(ns)
	return &s
}

// view renders a record with its Redis totals.
func view(r *record, t Totals) *Rain {
	c := r.Config
	out := &Rain{
		Code: r.Code, AnchorID: c.AnchorID, RoomID: c.RoomID, Status: r.Status,
		TotalAmount: c.TotalAmount, TotalCount: c.TotalCount, MaxPerUser: c.MaxPerUser,
		DurationS: c.DurationS, Algorithm: c.Algorithm, MinClaimIntervalMS: c.MinClaimIntervalMS,
		Remark: c.Remark, CreatedAt: stamp(r.CreatedAt), StartedAt: stamp(r.StartedAt),
		EndsAt: stamp(r.EndsAt), StoppedAt: stamp(r.StoppedAt), Epoch: r.Epoch,
		ClaimedCount: t.ClaimedCount, ClaimedAmount: t.ClaimedAmount, MaxAmount: t.MaxAmount,
		Slices: make([]SliceView, 0, len(r.Slices)),
	}
	for _, s := range r.Slices {
		out.Slices = append(out.Slices, SliceView{Node: s.Node, Count: s.Count, Amount: s.Amount})
	}
	return out
}
