package sim

import "redrain/rain"

// msgKind is what a message carries.
type msgKind uint8

const (
	mClaim     msgKind = iota // client -> node: a tap
	mAnswer                   // node -> client
	mAssign                   // coordinator -> node: a slice
	mAssignAck                // node -> coordinator
	mAssignNo                 // node -> coordinator: refused (4xx)
	mStart                    // coordinator -> node
	mStop                     // coordinator -> node
	mDiscard                  // coordinator -> node
	mSettle                   // coordinator -> node
	mTellAck                  // node -> coordinator: a start/stop/discard/settle applied
)

var msgNames = [...]string{"claim", "answer", "assign", "assign-ack", "assign-refused", "start", "stop", "discard",
	"settle", "tell-ack"}

func (k msgKind) String() string { return msgNames[k] }

// toNode reports whether the message goes to a node (else from one).
func (k msgKind) toNode() bool {
	switch k {
	case mClaim, mAssign, mStart, mStop, mDiscard, mSettle:
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
	a, b  int64 // start: window; stop: at
}

// answer is a node's answer to a tap.
type answer struct {
	status int
	word   string
	amount int64
	seq    uint64 // 200: the claim's journal sequence (claim_id node-incarnation-seq)
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
