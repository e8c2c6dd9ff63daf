// Package adminapi owns the JSON objects of the coordinator's admin API (SPEC.md): the rain, its
// report, the node list; the coordinator serves them, its clients (cluster, bench, tests) decode them.
package adminapi

import "redrain/rain"

// Node states in a report line and in the node list.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

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
	// Stock moved to this node from others (in) and from it to others (out); its share is
	// slice + moved in - moved out (Share).
	MovedInAmount  int64 `json:"moved_in_amount"`
	MovedInCount   int64 `json:"moved_in_count"`
	MovedOutAmount int64 `json:"moved_out_amount"`
	MovedOutCount  int64 `json:"moved_out_count"`
	// LeftoverAmount and LostAmount complete the share: SliceAmount + MovedInAmount -
	// MovedOutAmount == ClaimedAmount + LeftoverAmount + LostAmount, each >= 0.
	LeftoverAmount int64 `json:"leftover_amount"` // live: unclaimed on the node; gone: its current record
	LostAmount     int64 `json:"lost_amount"`     // dead/suspect/unreachable: share - flushed - leftover
}

// Share is the cents and packets the node answers for: its slice, plus stock moved in, minus
// stock moved out.
func (n NodeReport) Share() (amount, count int64) {
	return n.SliceAmount + n.MovedInAmount - n.MovedOutAmount, n.SliceCount + n.MovedInCount - n.MovedOutCount
}

// Node is one line of GET /v1/nodes.
type Node struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`  // the node's HTTP address
	State  string `json:"state"` // alive, suspect, dead or left
	Slices int    `json:"slices"`
}
