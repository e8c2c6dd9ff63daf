package sim

import "redrain/rain"

// msgKind is what a message carries.
type msgKind uint8

const (
	mClaim      msgKind = iota // client -> node: a tap
	mAnswer                    // node -> client
	mAssign                    // coordinator -> node: a slice
	mAssignAck                 // node -> coordinator
	mAssignNo                  // node -> coordinator: refused (4xx)
	mStart                     // coordinator -> node
	mStop                      // coordinator -> node
	mDiscard                   // coordinator -> node
	mSettle                    // coordinator -> node
	mTellAck                   // node -> coordinator: a start/stop/discard/settle applied
	mReserve                   // node -> node: count a claim of a user (to its owner)
	mReserveAns                // owner -> node: reserved, user_limit or refused
	mRelease                   // node -> owner: take back a reservation whose claim was never written
	mGive                      // receiver -> donor: give me stock (wire.Give)
	mMoves                     // donor -> receiver: moves (wire.Moves)
	mMovesAck                  // receiver -> donor: moves journaled (the 200 of wire.Moves)
)

var msgNames = [...]string{"claim", "answer", "assign", "assign-ack", "assign-refused", "start", "stop", "discard",
	"settle", "tell-ack", "reserve", "reserve-answer", "release", "give", "moves", "moves-ack"}

func (k msgKind) String() string { return msgNames[k] }

// toNode reports whether the message goes to a node (else from one).
func (k msgKind) toNode() bool {
	switch k {
	case mClaim, mAssign, mStart, mStop, mDiscard, mSettle, mReserve, mReserveAns, mRelease, mGive, mMoves, mMovesAck:
		return true
	}
	return false
}

// msg is one message in flight; node is its node end.
type msg struct {
	id    uint64
	kind  msgKind
	node  int
	req   uint64 // claim, answer: the client's request; tells: the tell id
	code  string // claim, answer: the rain
	user  uint64
	ans   answer
	slice rain.Slice
	epoch uint64
	a, b  int64 // start: window; stop: at; give: max, empty (1)

	peer    int         // node-to-node messages: the sending node
	inc     uint64      // reserve, reserve answer: the claimant's boot (an answer to an earlier process is dropped)
	result  int         // reserve answer
	moves   []rain.Move // moves; moves-ack: the ids acknowledged (ID only)
	holders []string    // assign: the prepare's holders (wire.RainRules.Holders)
}

// nodeToNode reports whether the message goes between two nodes (both ends must be reachable).
func (k msgKind) nodeToNode() bool { return k >= mReserve }

// answer is a node's answer to a tap.
type answer struct {
	status int
	word   string
	amount int64
	seq    uint64 // 200: the claim's journal sequence (claim_id node-incarnation-seq)
	owner  int    // user_limit: 1 + the owner that refused it (0: the answering node)
}

// network holds the messages in flight: delivered in any order, some dropped or duplicated,
// none across a partition.
type network struct {
	inflight []msg
	nextID   uint64
}

func (n *network) send(m msg) {
	n.nextID++
	m.id = n.nextID
	n.inflight = append(n.inflight, m)
}

// take removes and returns message i.
func (n *network) take(i int) msg {
	m := n.inflight[i]
	n.inflight = append(n.inflight[:i], n.inflight[i+1:]...)
	return m
}
