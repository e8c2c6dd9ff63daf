package node

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"redrain/internal/testcluster"
	"redrain/internal/wire"
	"redrain/rain"
)

// movesRain assigns n1 slice 1 of a rain held by n1 and n2 and starts it.
func (h *harness) movesRain(code string, count, amount int64) rain.Slice {
	h.t.Helper()
	sl := rain.Slice{Code: code, ID: 1, Epoch: 1, Node: "n1", Count: count, Amount: amount, Seed: 42, Algorithm: rain.DoubleAverage}
	a := wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: 1000, Holders: []string{"n1", "n2"}}, Slice: sl}
	if err := h.internal("POST", wire.PathSlices, a); err != nil {
		h.t.Fatalf("assign: %v", err)
	}
	h.startRain(code)
	return sl
}

func (h *harness) progressOf(code string) wire.Progress {
	h.t.Helper()
	var pl wire.ProgressList
	if err := h.wire.Do(context.Background(), "GET", h.addr(), wire.PathProgress+"?code="+code, nil, &pl); err != nil || len(pl.Rains) != 1 {
		h.t.Fatalf("progress: %v %+v", err, pl)
	}
	return pl.Rains[0]
}

func statusOf(err error) int {
	var se *wire.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	if err == nil {
		return 200
	}
	return -1
}

// TestGiveAndTake: a donor cuts, journals and keeps a move it could not deliver (n2 is not a
// member here); a receiver journals a delivered move once, serves it, refuses bad ones, and
// both survive a restart.
func TestGiveAndTake(t *testing.T) {
	h := newHarness(t, false, nil)
	const code = "moves1"
	h.movesRain(code, 1000, 100_000)
	var given wire.Given
	err := h.wire.Do(context.Background(), "POST", h.addr(), wire.RainPath(wire.PathGive, code), wire.Give{To: "n2", Epoch: 1, Max: 300}, &given)
	if err != nil || given.Count != 300 || given.Delivered {
		t.Fatalf("give: %+v %v", given, err)
	}
	for _, bad := range []struct {
		g    wire.Give
		want int
	}{
		{wire.Give{To: "n1", Epoch: 1, Max: 1}, http.StatusBadRequest},  // to itself
		{wire.Give{To: "n9", Epoch: 1, Max: 1}, http.StatusConflict},    // not a holder
		{wire.Give{To: "n2", Epoch: 2, Max: 1}, http.StatusConflict},    // another epoch
		{wire.Give{To: "n2", Epoch: 1, Max: 0}, http.StatusBadRequest},  // nothing asked
		{wire.Give{To: "a b", Epoch: 1, Max: 1}, http.StatusBadRequest}, // not an id
	} {
		if got := statusOf(h.wire.Do(context.Background(), "POST", h.addr(), wire.RainPath(wire.PathGive, code), bad.g, nil)); got != bad.want {
			t.Errorf("give %+v: HTTP %d, want %d", bad.g, got, bad.want)
		}
	}
	p := h.progressOf(code)
	if p.RemainingCount != 700 || len(p.MovesOut) != 1 || p.MovesOut[0] != (wire.MoveSum{Peer: "n2", Count: 300, Amount: given.Amount}) {
		t.Fatalf("donor progress after a give: %+v", p)
	}

	// n2 delivers a move of its own slice 2 to n1.
	sl2 := rain.Slice{Code: code, ID: 2, Epoch: 1, Node: "n2", Count: 500, Amount: 50_000, Seed: 7, Algorithm: rain.DoubleAverage}
	a2, _ := rain.Generate(sl2)
	var amt int64
	for i := 400; i < 500; i++ {
		amt += a2.At(i)
	}
	mv := rain.Move{ID: "n2-00000000000000aa-1", From: "n2", To: "n1", Slice: sl2, Lo: 400, Hi: 500, Count: 100, Amount: amt}
	path := wire.RainPath(wire.PathMoves, code)
	for range 2 { // the second is a redelivery: acknowledged, not added twice
		if err := h.internal("POST", path, wire.Moves{Moves: []rain.Move{mv}}); err != nil {
			t.Fatalf("moves: %v", err)
		}
	}
	spoil := func(f func(*rain.Move)) rain.Move { m := mv; m.ID += "x"; f(&m); return m }
	for _, bad := range []struct {
		m    rain.Move
		want int
	}{
		{spoil(func(m *rain.Move) { m.Amount++ }), http.StatusBadRequest},                // not what the seed gives
		{spoil(func(m *rain.Move) { m.To = "n3" }), http.StatusBadRequest},               // for another node
		{spoil(func(m *rain.Move) { m.From = "n9" }), http.StatusConflict},               // from a non-holder
		{spoil(func(m *rain.Move) { m.Hi = 501; m.Count = 101 }), http.StatusBadRequest}, // past the slice
		{spoil(func(m *rain.Move) { m.Slice.Epoch = 2 }), http.StatusConflict},           // another epoch
	} {
		if got := statusOf(h.wire.Do(context.Background(), "POST", h.addr(), path, wire.Moves{Moves: []rain.Move{bad.m}}, nil)); got != bad.want {
			t.Errorf("move %+v: HTTP %d, want %d", bad.m, got, bad.want)
		}
	}
	p = h.progressOf(code)
	if p.RemainingCount != 800 || len(p.MovesIn) != 1 || p.MovesIn[0].Count != 100 || p.SliceCount != 1000 {
		t.Fatalf("receiver progress after a move in: %+v", p)
	}

	h.restart()
	if got := h.progressOf(code); got.RemainingCount != 800 || got.MovesIn[0] != p.MovesIn[0] || got.MovesOut[0] != p.MovesOut[0] {
		t.Fatalf("after a restart: %+v, before %+v", got, p)
	}
	paid := int64(0)
	for u := uint64(1); ; u++ {
		if rain.OwnerOf([]string{"n1", "n2"}, code, u) != "n1" {
			continue // n2, their owner, is no member here: their claims fail closed
		}
		st, body := h.claim(code, u)
		if st == 410 {
			break
		}
		if st != 200 {
			t.Fatalf("claim: %d %s", st, body)
		}
		paid++
	}
	if paid != 800 {
		t.Fatalf("paid %d packets, want 800 (700 own + 100 moved in)", paid)
	}
	if tot, _ := h.n.journal.Totals(code); tot.Amount != 100_000-given.Amount+amt {
		t.Fatalf("journaled %d cents, want %d", tot.Amount, 100_000-given.Amount+amt)
	}
}

// TestNewerPrepareHolders: a rain whose first prepare was abandoned takes the holders of the
// newer prepare that gives this node a slice (every node of that prepare then agrees on each
// user's owner), durably; an assignment of an older epoch does not bring the old ones back.
// Found by the simulator (issue 20, seed 893): n4 kept the holders of the abandoned prepare,
// owned a user n3 also owned, and the user was paid twice its cap.
func TestNewerPrepareHolders(t *testing.T) {
	h := newHarness(t, false, nil)
	const code = "holders1"
	assign := func(epoch uint64, holders ...string) {
		t.Helper()
		sl := rain.Slice{Code: code, ID: 1, Epoch: epoch, Node: "n1", Count: 10, Amount: 100, Seed: 42, Algorithm: rain.DoubleAverage}
		a := wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: 1, Holders: holders}, Slice: sl}
		if err := h.internal("POST", wire.PathSlices, a); err != nil {
			t.Fatalf("assign epoch %d: %v", epoch, err)
		}
	}
	holdersNow := func() []string {
		h.n.mu.Lock()
		defer h.n.mu.Unlock()
		return h.n.rains[code].meta.Holders
	}
	assign(1, "n1", "n2", "n4")
	assign(2, "n1", "n3", "n4")
	if got := holdersNow(); !slices.Equal(got, []string{"n1", "n3", "n4"}) {
		t.Fatalf("holders after the newer prepare: %v", got)
	}
	if ro := h.n.ownersOf([]byte(code)); !slices.Equal(ro.IDs(), []string{"n1", "n3", "n4"}) {
		t.Fatalf("owner table over %v", ro.IDs())
	}
	h.restart()
	if got := holdersNow(); !slices.Equal(got, []string{"n1", "n3", "n4"}) {
		t.Fatalf("holders after a restart: %v", got)
	}
}

// TestGiveToANodeGossipHasNotShown: a donor asked by a node its gossip does not show yet (one
// that just joined) delivers the move to the address the give came with, at once, rather than
// cutting stock it could only deliver on its next redelivery; without that address the move
// waits, undelivered, as before. A bad address is refused before anything is cut.
func TestGiveToANodeGossipHasNotShown(t *testing.T) {
	oc := newOwnerCluster(t, 2)
	const code = "newcomer"
	oc.rain(code, 1000, 1000)
	n1, n2 := oc.hs[0], oc.hs[1]
	oc.peers.forget("n2")
	give := func(g wire.Give) wire.Given {
		t.Helper()
		var got wire.Given
		if err := n2.wire.Do(context.Background(), "POST", n1.addr(), wire.RainPath(wire.PathGive, code), g, &got); err != nil {
			t.Fatalf("give %+v: %v", g, err)
		}
		return got
	}
	if got := give(wire.Give{To: "n2", Epoch: 1, Max: 100, Addr: n2.addr()}); got.Count != 100 || !got.Delivered {
		t.Fatalf("give with the asker's address: %+v", got)
	}
	if p := n2.progressOf(code); len(p.MovesIn) != 1 || p.MovesIn[0].Count != 100 || p.RemainingCount != 1100 {
		t.Fatalf("receiver after the give: %+v", p)
	}
	if got := give(wire.Give{To: "n2", Epoch: 1, Max: 100}); got.Count != 100 || got.Delivered {
		t.Fatalf("give without an address: %+v", got)
	}
	if st := statusOf(n2.wire.Do(context.Background(), "POST", n1.addr(), wire.RainPath(wire.PathGive, code),
		wire.Give{To: "n2", Epoch: 1, Max: 100, Addr: "no port"}, nil)); st != http.StatusBadRequest {
		t.Fatalf("a bad address: HTTP %d", st)
	}
	if p := n1.progressOf(code); p.RemainingCount != 800 || len(p.MovesOut) != 1 || p.MovesOut[0].Count != 200 {
		t.Fatalf("donor after two gives and a refusal: %+v", p)
	}
}

// TestClaimWaitsWhileAPeerHintsStock: a claim on an empty node whose asks for stock fail (the
// donor cannot be reached for a while) does not answer exhausted once StockWait has passed while
// the donor still hints stock: it asks again each StockWait, and is paid from the donor's stock
// once the donor answers. With no stock hinted anywhere, a claim answers exhausted.
func TestClaimWaitsWhileAPeerHintsStock(t *testing.T) {
	oc := newOwnerCluster(t, 2)
	oc.peers.shareStock = true
	const code = "hinted"
	oc.rain(code, 3, 1000)
	n1, n2 := oc.hs[0], oc.hs[1]
	hint := func(id string) int64 {
		for _, s := range oc.peers.Stock(code) {
			if s.Node == id {
				return s.Remaining
			}
		}
		return -1
	}
	testcluster.Eventually(t, 5*time.Second, "n2 hints its 3 packets", func() bool { return hint("n2") == 3 })

	// n2 cannot be reached (a closed port) until a moment after the claim starts waiting.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	oc.peers.set("n2", closed, false)
	const unreachable = 300 * time.Millisecond // 6 StockWaits
	answered := map[string]int64{}
	user := uint64(0)
	claim := func() (int, string) {
		user = oc.userOwnedBy(code, "n1", user) // n1 counts it: no owner hop
		st, body := n1.claim(code, user)
		if st == 200 {
			var a struct {
				Amount  int64  `json:"amount"`
				ClaimID string `json:"claim_id"`
			}
			if err := json.Unmarshal([]byte(body), &a); err != nil {
				t.Fatalf("claim answer %s: %v", body, err)
			}
			answered[a.ClaimID] = a.Amount
		}
		return st, body
	}
	for range 3 {
		if st, body := claim(); st != 200 {
			t.Fatalf("n1's own packets: %d %s", st, body)
		}
	}
	began := time.Now()
	time.AfterFunc(unreachable, func() { oc.peers.set("n2", n2.addr(), false) })
	st, body := claim()
	waited := time.Since(began)
	if st != 200 {
		t.Fatalf("claim while n2 hints stock but cannot be reached for %v: %d %s after %v", unreachable, st, body, waited)
	}
	if waited < unreachable {
		t.Fatalf("paid after %v, before n2 could be reached (%v)", waited, unreachable)
	}
	if p := n1.progressOf(code); len(p.MovesIn) != 1 || p.MovesIn[0].Count != 3 {
		t.Fatalf("n1 after the wait: %+v", p)
	}
	for range 2 {
		if st, body := claim(); st != 200 {
			t.Fatalf("the moved packets: %d %s", st, body)
		}
	}
	testcluster.Eventually(t, 5*time.Second, "n2 hints it is empty", func() bool { return hint("n2") == 0 })
	st, body = claim()
	wantError(t, st, body, 410, "exhausted")
	n1.checkInvariants(code, answered)
}
