package wire

import "redrain/rain"

// Internal endpoint paths on a node's HTTP address. {code} is the rain's code.
const (
	PathSlices   = "/internal/v1/slices"               // POST SliceAssignment -> Ack
	PathStart    = "/internal/v1/rains/{code}/start"   // POST Start -> Ack
	PathStop     = "/internal/v1/rains/{code}/stop"    // POST Stop -> Ack
	PathDiscard  = "/internal/v1/rains/{code}/discard" // POST Discard -> Ack
	PathSettle   = "/internal/v1/rains/{code}/settle"  // POST Settle -> Ack
	PathGive     = "/internal/v1/rains/{code}/give"    // POST Give -> Given: a node low on stock asks a donor
	PathMoves    = "/internal/v1/rains/{code}/moves"   // POST Moves -> Ack: a donor delivers journaled moves
	PathProgress = "/internal/v1/progress"             // GET (optional ?code=) -> ProgressList
	PathPrefix   = "/internal/v1/"                     // every internal path starts with exactly this, as sent
)

// RainPath fills {code} into one of the per-rain paths.
func RainPath(pattern, code string) string {
	const hole = "{code}"
	for i := 0; i+len(hole) <= len(pattern); i++ {
		if pattern[i:i+len(hole)] == hole {
			return pattern[:i] + code + pattern[i+len(hole):]
		}
	}
	return pattern
}

// RainRules are the per-rain settings a node enforces on claims.
type RainRules struct {
	Code               string `json:"code"`
	MaxPerUser         int    `json:"max_per_user"`
	MinClaimIntervalMS int    `json:"min_claim_interval_ms"`
	RoomID             int64  `json:"room_id"`
	// Holders are the ids of every node holding a slice of the prepare, sorted. A user's claims
	// are counted by one of them (its owner: rain.OwnerOf), so max_per_user holds cluster-wide,
	// and stock moves only between them.
	Holders []string `json:"holders,omitempty"`
}

// SliceAssignment asks a node to hold one slice. The node stores it durably, generates its
// amounts and only then acknowledges.
type SliceAssignment struct {
	Rules RainRules  `json:"rules"`
	Slice rain.Slice `json:"slice"`
}

// Start tells a node to serve the named epoch's slices in [StartsAt, EndsAt) (unix ns).
type Start struct {
	Epoch    uint64 `json:"epoch"`
	StartsAt int64  `json:"starts_at"`
	EndsAt   int64  `json:"ends_at"`
}

// Stop tells a node to refuse claims from At (unix ns) on.
type Stop struct {
	At int64 `json:"at"`
}

// Discard tells a node to drop the slices of an abandoned prepare.
type Discard struct {
	Epoch uint64 `json:"epoch"`
}

// Settle tells a node the rain is settled; it may compact the rain's journal once flushed.
type Settle struct{}

// Give asks a donor for up to Max unserved packets of the rain's epoch, for node To (the asker).
type Give struct {
	To    string `json:"to"`
	Epoch uint64 `json:"epoch"`
	Max   int64  `json:"max"`
	// Empty: the asker has run out and claims are waiting (it asks even a donor holding little
	// more than it does). Informational for the donor, which keeps at most half in any case.
	Empty bool `json:"empty,omitempty"`
	// Addr is where the asker serves its internal API (host:port): the donor delivers there when
	// its gossip has not shown the asker alive yet (a node that just joined), instead of cutting
	// a move it could only deliver a second later.
	Addr string `json:"addr,omitempty"`
}

// Given is a donor's answer to Give: what it moved (journaled, and delivered unless Delivered is
// false: then it keeps delivering in the background). Count 0: nothing to spare.
type Given struct {
	Count     int64 `json:"count"`
	Amount    int64 `json:"amount"`
	Delivered bool  `json:"delivered"`
}

// Moves delivers moves the donor journaled to their receiver; repeating one is harmless.
type Moves struct {
	Moves []rain.Move `json:"moves"`
}

// MoveSum adds up the moves between this node and one peer.
type MoveSum struct {
	Peer   string `json:"peer"`
	Count  int64  `json:"count"`
	Amount int64  `json:"amount"`
}

// Ack is every successful internal answer.
type Ack struct {
	OK bool `json:"ok"`
}

// Progress is one rain as one node sees it. Amounts in cents.
type Progress struct {
	Code            string `json:"code"`
	Epoch           uint64 `json:"epoch"`
	SliceCount      int64  `json:"slice_count"`      // packets assigned to this node (served epoch)
	SliceAmount     int64  `json:"slice_amount"`     // cents assigned to this node
	ClaimedCount    int64  `json:"claimed_count"`    // journaled claims
	ClaimedAmount   int64  `json:"claimed_amount"`   // journaled cents
	FlushedCount    int64  `json:"flushed_count"`    // of those, applied to Redis
	FlushedAmount   int64  `json:"flushed_amount"`   // cents applied to Redis
	RemainingCount  int64  `json:"remaining_count"`  // not handed out
	RemainingAmount int64  `json:"remaining_amount"` // cents not handed out
	Started         bool   `json:"started"`
	Finished        bool   `json:"finished"`
	Exhausted       bool   `json:"exhausted"`
	// Stock moves journaled here, per peer: received (MovesIn) and given (MovesOut). The share
	// this node answers for is SliceAmount + moved in - moved out.
	MovesIn  []MoveSum `json:"moves_in,omitempty"`
	MovesOut []MoveSum `json:"moves_out,omitempty"`
}

// ProgressList is the answer of PathProgress.
type ProgressList struct {
	Node  string     `json:"node"`
	Rains []Progress `json:"rains"`
}

// Error is the JSON error body of every API, public or internal.
type Error struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}
