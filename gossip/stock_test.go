package gossip

import (
	"testing"
	"time"

	"redrain/internal/testcluster"
)

// TestStockSpreads publishes a hint on one member and sees it on the others; a newer hint
// replaces it everywhere, an older one is ignored.
func TestStockSpreads(t *testing.T) {
	a := start(t, testOptions("a", RoleNode))
	b := start(t, testOptions("b", RoleNode, a.GossipAddr()))
	c := start(t, testOptions("c", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b, c)
	now := time.Now().UnixNano()
	a.PublishStock(Stock{Node: "a", Code: "rain1", Epoch: 1, Remaining: 500, At: now})
	sees := func(m *testMember, want int64) func() bool {
		return func() bool {
			hs := m.Stock("rain1")
			return len(hs) == 1 && hs[0].Node == "a" && hs[0].Remaining == want
		}
	}
	testcluster.Eventually(t, settle, "b and c hear a's stock", func() bool { return sees(b, 500)() && sees(c, 500)() })
	a.PublishStock(Stock{Node: "a", Code: "rain1", Epoch: 1, Remaining: 20, At: now + 1})
	testcluster.Eventually(t, settle, "the newer hint replaces it", func() bool { return sees(b, 20)() && sees(c, 20)() })
	b.acceptStock(Stock{Node: "a", Code: "rain1", Epoch: 1, Remaining: 999, At: now}, false)
	if !sees(b, 20)() {
		t.Fatalf("an older hint replaced a newer one: %+v", b.Stock("rain1"))
	}
	if hs := b.Stock("other"); len(hs) != 0 {
		t.Fatalf("hints of an unknown rain: %+v", hs)
	}
}

// TestStockMsgRefusesJunk decodes only valid hints.
func TestStockMsgRefusesJunk(t *testing.T) {
	good := Stock{Node: "n1", Code: "abc", Epoch: 1, Remaining: 3, At: 1}
	if s, ok := decodeStockMsg(encodeStockMsg(good)); !ok || s != good {
		t.Fatalf("round trip: %+v %v", s, ok)
	}
	for _, bad := range []Stock{
		{Node: "", Code: "abc", Remaining: 1, At: 1},
		{Node: "n1", Code: "a{b}", Remaining: 1, At: 1},
		{Node: "n1", Code: "abc", Remaining: -1, At: 1},
		{Node: "n1", Code: "abc", Remaining: 1, At: 0},
	} {
		if _, ok := decodeStockMsg(encodeStockMsg(bad)); ok {
			t.Errorf("accepted %+v", bad)
		}
	}
	for _, junk := range [][]byte{nil, {msgStock}, {msgStock, '{'}, append([]byte{msgNews}, encodeStockMsg(good)[1:]...)} {
		if _, ok := decodeStockMsg(junk); ok {
			t.Errorf("accepted %q", junk)
		}
	}
}
