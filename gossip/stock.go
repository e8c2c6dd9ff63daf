package gossip

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/memberlist"

	"redrain/rain"
)

// Stock is a node's hint of how many packets of a rain it still holds unserved, spread by
// broadcast so that a node running low knows whom to ask (stock follows demand). It is a hint:
// it can arrive late or not at all, and the donor decides what it really gives.
type Stock struct {
	Node      string `json:"node"`
	Code      string `json:"code"`
	Epoch     uint64 `json:"epoch"`
	Remaining int64  `json:"remaining"`
	At        int64  `json:"at"` // unix ns at the publisher: a newer hint replaces an older one
}

const (
	msgStock byte = 2

	maxStockRains = 4096            // rains with hints kept; beyond it new rains' hints are dropped
	stockMaxAge   = 2 * time.Minute // hints older than this are pruned
	stockFresh    = 2 * time.Second // Stock returns only hints at most this old
)

func (s Stock) valid() bool {
	return rain.ValidCode(s.Code) && CheckID(s.Node) == nil && s.Remaining >= 0 && s.At > 0
}

type stockBroadcast struct {
	name string
	msg  []byte
}

func (b *stockBroadcast) Name() string                          { return b.name }
func (b *stockBroadcast) Invalidates(memberlist.Broadcast) bool { return false } // Name does it
func (b *stockBroadcast) Message() []byte                       { return b.msg }
func (b *stockBroadcast) Finished()                             {}

func encodeStockMsg(s Stock) []byte {
	b, _ := json.Marshal(s) // plain struct: cannot fail
	return append([]byte{msgStock}, b...)
}

func decodeStockMsg(buf []byte) (Stock, bool) {
	var s Stock
	if len(buf) < 2 || len(buf) > maxMsgLen || buf[0] != msgStock {
		return s, false
	}
	if err := json.Unmarshal(buf[1:], &s); err != nil || !s.valid() {
		return Stock{}, false
	}
	return s, true
}

// PublishStock records this member's hint and broadcasts it (a newer hint of the same rain
// replaces the queued one).
func (c *Cluster) PublishStock(s Stock) {
	if !s.valid() {
		return
	}
	c.acceptStock(s, true)
}

// acceptStock keeps s if it is newer than the hint held for its node and rain, and passes it on.
func (c *Cluster) acceptStock(s Stock, rebroadcast bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byNode := c.stock[s.Code]
	if byNode == nil {
		if len(c.stock) >= maxStockRains {
			return
		}
		byNode = map[string]Stock{}
		c.stock[s.Code] = byNode
	}
	if old, ok := byNode[s.Node]; ok && old.At >= s.At {
		return
	}
	byNode[s.Node] = s
	if rebroadcast {
		c.queue.QueueBroadcast(&stockBroadcast{name: "stock/" + s.Code + "/" + s.Node, msg: encodeStockMsg(s)})
	}
}

// Stock returns the fresh hints held for a rain (this member's own included), any order.
func (c *Cluster) Stock(code string) []Stock {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Stock
	since := time.Now().Add(-stockFresh).UnixNano()
	for _, s := range c.stock[code] {
		if s.At >= since {
			out = append(out, s)
		}
	}
	return out
}

// pruneStock drops hints older than stockMaxAge. The caller holds c.mu.
func (c *Cluster) pruneStock(now time.Time) {
	old := now.Add(-stockMaxAge).UnixNano()
	for code, byNode := range c.stock {
		for node, s := range byNode {
			if s.At < old {
				delete(byNode, node)
			}
		}
		if len(byNode) == 0 {
			delete(c.stock, code)
		}
	}
}
