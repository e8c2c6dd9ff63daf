package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// Role is what a member does in the cluster.
type Role string

// Roles.
const (
	RoleNode        Role = "node"
	RoleCoordinator Role = "coordinator"
)

// State is a member's liveness as this member sees it (SPEC.md's /v1/nodes state strings).
type State string

// States.
const (
	StateAlive   State = "alive"
	StateSuspect State = "suspect" // only with Options.TrackSuspects; see there
	StateDead    State = "dead"    // failed without leaving (crash, partition)
	StateLeft    State = "left"    // left gracefully (Cluster.Leave)
)

// Meta is what a member tells the cluster about itself; it travels as memberlist node metadata,
// JSON-encoded, at most memberlist.MetaMaxSize (512) bytes.
type Meta struct {
	ID       string `json:"id"`             // memberlist node name: unique per member
	Role     Role   `json:"role"`           // RoleNode or RoleCoordinator
	HTTPAddr string `json:"http,omitempty"` // where the member serves HTTP (claims, internal API)
}

// Member is one member of the cluster as seen from here.
type Member struct {
	ID         string
	Role       Role
	HTTPAddr   string
	GossipAddr string // host:port of its memberlist
	State      State
}

// validate checks the fields of m and that it encodes within memberlist's limit.
func (m Meta) validate() error {
	bad := func(field, msg string) error { return fmt.Errorf("%w: Meta.%s: %s", ErrOptions, field, msg) }
	if err := CheckID(m.ID); err != nil {
		return bad("ID", err.Error())
	}
	if m.Role != RoleNode && m.Role != RoleCoordinator {
		return bad("Role", fmt.Sprintf("%q is neither %q nor %q", m.Role, RoleNode, RoleCoordinator))
	}
	if b := m.encode(true); len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLarge, len(b), memberlist.MetaMaxSize)
	}
	return nil
}

// CheckID reports whether id can name a member (Meta.ID): 1..MaxIDLen bytes, no spaces or
// control characters. Callers that take it from a flag check it with it before acquiring
// anything.
func CheckID(id string) error {
	switch {
	case id == "" || len(id) > MaxIDLen:
		return fmt.Errorf("required, at most %d bytes", MaxIDLen)
	case !printable(id):
		return errors.New("must not contain spaces or control characters")
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// metaWire is Meta as it travels. Leaving is set by Cluster.Leave: memberlist v0.5.4 never
// fills memberlist.Node.State (nodeState.State shadows it), so its events cannot tell a departure
// from a death, and this flag does.
type metaWire struct {
	ID       string `json:"id"`
	Role     Role   `json:"role"`
	HTTPAddr string `json:"http,omitempty"`
	Leaving  bool   `json:"leaving,omitempty"`
}

// encode returns the metadata memberlist sends for m (leaving or not).
func (m Meta) encode(leaving bool) []byte {
	b, _ := json.Marshal(metaWire{ID: m.ID, Role: m.Role, HTTPAddr: m.HTTPAddr, Leaving: leaving}) // cannot fail
	return b
}

// memberOf copies what a memberlist event says about a member; gone is true in NotifyLeave. A
// member marked leaving is StateLeft, gone or not.
// Call it only inside memberlist's event callbacks, which hold memberlist's node lock: anywhere
// else, reading the node's fields races with memberlist updating them in place.
func memberOf(n *memberlist.Node, gone bool) (Member, error) {
	m := Member{
		ID:         n.Name,
		GossipAddr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		State:      StateAlive,
	}
	var w metaWire
	err := json.Unmarshal(n.Meta, &w)
	if err != nil {
		err = fmt.Errorf("gossip: member %q: bad meta: %w", n.Name, err)
	}
	m.Role, m.HTTPAddr = w.Role, w.HTTPAddr
	switch {
	case w.Leaving:
		m.State = StateLeft
	case gone:
		m.State = StateDead
	}
	return m, err
}
