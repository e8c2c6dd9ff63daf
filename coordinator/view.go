package coordinator

import "redrain/rain"

// Rain is the rain object of the admin API (SPEC.md). Timestamps are RFC 3339 in UTC with
// milliseconds; a time not (yet) set is null, never omitted. ClaimedCount, ClaimedAmount and
// MaxAmount are what the nodes have flushed to Redis so far (0 before start).
type Rain struct {
	Code               string         `json:"code"`
	AnchorID           int64          `json:"anchor_id"`
	RoomID             int64          `json:"room_id"`
	Status             rain.Status    `json:"status"`
	TotalAmount        int64          `json:"total_amount"`
	TotalCount         int64          `json:"total_count"`
	MaxPerUser         int            `json:"max_per_user"`
	DurationS          int            `json:"duration_s"`
	Algorithm          rain.Algorithm `json:"algorithm"`
	MinClaimIntervalMS int            `json:"min_claim_interval_ms"`
	Remark             string         `json:"remark"`
	CreatedAt          *string        `json:"created_at"`
	StartedAt          *string        `json:"started_at"`
	EndsAt             *string        `json:"ends_at"`
	StoppedAt          *string        `json:"stopped_at"` // finished or cancelled
	Epoch              uint64         `json:"epoch"`      // latest prepare's epoch (0: none yet)
	ClaimedCount       int64          `json:"claimed_count"`
	ClaimedAmount      int64          `json:"claimed_amount"`
	MaxAmount          int64          `json:"max_amount"`
	Slices             []SliceView    `json:"slices"` // acknowledged slices of Epoch; [] before prepared
}

// SliceView is one slice in the rain object.
type SliceView struct {
	Node   string `json:"node"`
	Count  int64  `json:"count"`
	Amount int64  `json:"amount"`
}

// Totals are a rain's cluster-wide figures as flushed to Redis.
type Totals struct {
	ClaimedCount, ClaimedAmount, MaxAmount int64
}

// Report is the reconciliation of SPEC.md: ClaimedAmount + LeftoverAmount + LostAmount ==
// TotalAmount, always.
type Report struct {
	Code           string       `json:"code"`
	Status         rain.Status  `json:"status"`
	Epoch          uint64       `json:"epoch"`
	TotalAmount    int64        `json:"total_amount"`
	TotalCount     int64        `json:"total_count"`
	ClaimedAmount  int64        `json:"claimed_amount"`  // sum of the nodes'
	ClaimedCount   int64        `json:"claimed_count"`   // sum of the nodes'
	FlushedAmount  int64        `json:"flushed_amount"`  // Redis totals
	FlushedCount   int64        `json:"flushed_count"`   // Redis totals
	MaxAmount      int64        `json:"max_amount"`      // Redis totals
	LeftoverAmount int64        `json:"leftover_amount"` // unclaimed: live nodes (exact) + departed nodes' records
	LostAmount     int64        `json:"lost_amount"`     // dead/suspect nodes: slice - flushed (upper bound)
	Nodes          []NodeReport `json:"nodes"`
}

// NodeReport is one slice holder's line of a Report.
type NodeReport struct {
	Node          string `json:"node"`
	State         string `json:"state"` // alive, suspect, dead or left
	SliceAmount   int64  `json:"slice_amount"`
	SliceCount    int64  `json:"slice_count"`
	ClaimedAmount int64  `json:"claimed_amount"` // live: journaled; otherwise: flushed
	ClaimedCount  int64  `json:"claimed_count"`
	FlushedAmount int64  `json:"flushed_amount"`
	// LeftoverAmount and LostAmount complete the slice: SliceAmount == ClaimedAmount +
	// LeftoverAmount + LostAmount, each >= 0.
	LeftoverAmount int64 `json:"leftover_amount"` // live: unclaimed on the node; gone: its current record
	LostAmount     int64 `json:"lost_amount"`     // dead/suspect/unreachable: slice - flushed - leftover
}

// Node is one line of GET /v1/nodes.
type Node struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`  // the node's HTTP address
	State  string `json:"state"` // alive, suspect, dead or left
	Slices int    `json:"slices"`
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
