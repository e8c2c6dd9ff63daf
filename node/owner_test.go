package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"redrain/gossip"
	"redrain/internal/testcluster"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
)

// A node's owner table is rain.Owners with itself found among the holders.
func TestRainOwnersSelf(t *testing.T) {
	ro := newRainOwners("abc", "n2", []string{"n3", "n1", "n2", "n1"})
	if !slices.Equal(ro.IDs(), []string{"n1", "n2", "n3"}) || ro.self != 1 || ro.reserve != "/internal/v1/rains/abc/reserve" {
		t.Fatalf("table: ids %v self %d reserve %s", ro.IDs(), ro.self, ro.reserve)
	}
	if ro := newRainOwners("abc", "n9", []string{"n1"}); ro.self != -1 || ro.owns(5) {
		t.Fatalf("a node not among the holders: self %d", ro.self)
	}
}

// peers is a Cluster whose members are the test's nodes, each alive unless marked down. With
// shareStock set, it is also their gossip of stock hints: what one node publishes, every node
// reads at once (otherwise nobody sees a hint, and no stock moves).
type peers struct {
	LoneCluster
	mu         sync.Mutex
	addrs      map[string]string
	down       map[string]bool
	shareStock bool
	stock      map[string]map[string]gossip.Stock // rain -> node -> latest hint
}

func newPeers() *peers {
	return &peers{addrs: map[string]string{}, down: map[string]bool{}, stock: map[string]map[string]gossip.Stock{}}
}

func (p *peers) PublishStock(s gossip.Stock) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.shareStock {
		return
	}
	if p.stock[s.Code] == nil {
		p.stock[s.Code] = map[string]gossip.Stock{}
	}
	p.stock[s.Code][s.Node] = s
}

func (p *peers) Stock(code string) []gossip.Stock {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []gossip.Stock
	for _, s := range p.stock[code] {
		out = append(out, s)
	}
	return out
}

func (p *peers) Members() []gossip.Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []gossip.Member
	for id, a := range p.addrs {
		st := gossip.StateAlive
		if p.down[id] {
			st = gossip.StateDead
		}
		out = append(out, gossip.Member{ID: id, Role: gossip.RoleNode, HTTPAddr: a, State: st})
	}
	return out
}

// forget removes member id, as if gossip had not shown it yet.
func (p *peers) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.addrs, id)
	delete(p.down, id)
}

func (p *peers) set(id, addr string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addrs[id], p.down[id] = addr, down
}

// ownerCluster is nodes n1..nN from fakes (MemRedis, the peers cluster) with real journals, on
// 127.0.0.1, all holding a slice of each rain it makes.
type ownerCluster struct {
	t     testing.TB
	peers *peers
	hs    []*harness
	ids   []string
}

func newOwnerCluster(t testing.TB, nodes int) *ownerCluster { return newOwnerClusterHop(t, nodes, "") }

// newOwnerClusterHop is newOwnerCluster with Options.OwnerHop = hop on every node.
func newOwnerClusterHop(t testing.TB, nodes int, hop string) *ownerCluster {
	oc := &ownerCluster{t: t, peers: newPeers()}
	for i := 1; i <= nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		oc.ids = append(oc.ids, id)
		// A generous owner timeout: these tests count packets, not time (the race detector is slow).
		h := newHarness(t, true, func(o *Options) {
			o.ID, o.Cluster, o.OwnerTimeout, o.OwnerHop = id, oc.peers, 5*time.Second, hop
		})
		oc.peers.set(id, h.addr(), false)
		oc.hs = append(oc.hs, h)
	}
	for _, h := range oc.hs {
		h.n.owner.linksAt.Store(0) // see the peers at once
	}
	return oc
}

// rain assigns each node a slice of the rain (count packets each) and starts it.
func (oc *ownerCluster) rain(code string, count int64, maxPerUser int) {
	oc.t.Helper()
	for i, h := range oc.hs {
		sl := rain.Slice{Code: code, ID: uint32(i), Epoch: 1, Node: oc.ids[i], Count: count, Amount: count * 100,
			Seed: uint64(i) + 5, Algorithm: rain.DoubleAverage}
		a := wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: maxPerUser, Holders: oc.ids}, Slice: sl}
		if err := h.internal("POST", wire.PathSlices, a); err != nil {
			oc.t.Fatalf("assign %s: %v", oc.ids[i], err)
		}
		h.startRain(code)
	}
}

// index returns the position of node id.
func (oc *ownerCluster) index(id string) int { return slices.Index(oc.ids, id) }

// userOwnedBy returns the first user > after whose owner in the rain is id.
func (oc *ownerCluster) userOwnedBy(code, id string, after uint64) uint64 {
	for u := after + 1; ; u++ {
		if rain.OwnerOf(oc.ids, code, u) == id {
			return u
		}
	}
}

func remaining(h *harness, code string) int64 {
	p, _ := h.n.store.Progress(code, time.Now().UnixNano())
	return p.RemainingCount
}

// hops runs f once per Options.OwnerHop.
func hops(t *testing.T, f func(t *testing.T, hop string)) {
	for _, hop := range []string{OwnerHopForward, OwnerHopReserve} {
		t.Run(hop, func(t *testing.T) { f(t, hop) })
	}
}

// Every user taps every node at random, concurrently: no user is ever paid more than
// max_per_user over all the answers, and most users reach it (the cap is not held by refusing).
func TestOwnerCapAcrossNodes(t *testing.T) { hops(t, testOwnerCapAcrossNodes) }

func testOwnerCapAcrossNodes(t *testing.T, hop string) {
	oc := newOwnerClusterHop(t, 3, hop)
	const code, users, maxPer = "capall", 150, 3
	oc.rain(code, 600, maxPer)
	var mu sync.Mutex
	paid := map[uint64]int{}
	words := map[string]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 250 {
				u := 1 + rng.Uint64N(users)
				st, body := oc.hs[rng.IntN(3)].claim(code, u)
				mu.Lock()
				switch st {
				case 200:
					paid[u]++
				case 429:
					words["user_limit"]++
				default:
					words[body]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	atCap := 0
	for u, k := range paid {
		if k > maxPer {
			t.Errorf("user %d paid %d packets, max_per_user %d", u, k, maxPer)
		}
		if k == maxPer {
			atCap++
		}
	}
	if atCap < users*9/10 || len(words) != 1 {
		t.Fatalf("%d of %d users reached the cap; other answers: %v", atCap, users, words)
	}
	call, other := "reserve", "forward"
	if hop == OwnerHopForward {
		call, other = other, call
	}
	var hopped, wrong float64
	for _, h := range oc.hs {
		hopped += ownerCalls(t, h, call, "ok")
		wrong += ownerCalls(t, h, other, "ok")
	}
	if hopped < float64(users) || wrong != 0 { // about 2/3 of the taps landed on a node not their user's owner
		t.Fatalf("only %v %s calls made to other owners (%v %s calls)", hopped, call, wrong, other)
	}
	t.Logf("%d users at the cap, %v %s calls to another node, %d user_limit answers", atCap, hopped, call, words["user_limit"])
}

// The owner's counts survive its restart: the claims it made are in its claims journal, the
// reservations it granted in owners.db.
func TestOwnerCountsSurviveRestart(t *testing.T) { hops(t, testOwnerCountsSurviveRestart) }

func testOwnerCountsSurviveRestart(t *testing.T, hop string) {
	oc := newOwnerClusterHop(t, 2, hop)
	const code = "restart"
	oc.rain(code, 50, 2)
	n1, n2 := oc.hs[0], oc.hs[1]
	full := oc.userOwnedBy(code, "n2", 0)    // two packets through n1
	half := oc.userOwnedBy(code, "n2", full) // one through n1
	for i, u := range []uint64{full, full, half} {
		if st, body := n1.claim(code, u); st != 200 {
			t.Fatalf("claim %d: %d %s", i, st, body)
		}
	}
	n2.restart()
	oc.peers.set("n2", n2.addr(), false)
	n1.n.owner.linksAt.Store(0)
	var st int
	var body string
	testcluster.Eventually(t, 10*time.Second, "n2 serving again (its leftover record cleared)", func() bool {
		st, body = n2.claim(code, full)
		return st != 503
	})
	wantError(t, st, body, 429, "user_limit")
	if st, body := n2.claim(code, half); st != 200 {
		t.Fatalf("second packet of a user with one: %d %s", st, body)
	}
	st, body = n1.claim(code, half) // n1 has paid half only once: its owner n2 refuses
	wantError(t, st, body, 429, "user_limit")
}

// An owner that cannot be reached (dead in gossip, or alive there with nothing listening): its
// users' claims on other nodes fail closed, 503 with no packet handed out; other users are paid.
func TestOwnerUnavailableFailsClosed(t *testing.T) { hops(t, testOwnerUnavailableFailsClosed) }

func testOwnerUnavailableFailsClosed(t *testing.T, hop string) {
	oc := newOwnerClusterHop(t, 2, hop)
	const code = "closed"
	oc.rain(code, 50, 3)
	n1, n2 := oc.hs[0], oc.hs[1]
	theirs, mine := oc.userOwnedBy(code, "n2", 0), oc.userOwnedBy(code, "n1", 0)
	for _, down := range []bool{true, false} {
		if down {
			oc.peers.set("n2", n2.addr(), true)
		} else {
			oc.peers.set("n2", "127.0.0.1:1", false) // nothing listens on port 1
		}
		n1.n.owner.linksAt.Store(0)
		before := remaining(n1, code)
		began := time.Now()
		st, body := n1.claim(code, theirs)
		wantError(t, st, body, 503, "journal_unavailable")
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("fail closed took %v", took)
		}
		if got := remaining(n1, code); got != before {
			t.Fatalf("owner down %v: %d packets remain, %d before: the refused claim kept one", down, got, before)
		}
		if st, body := n1.claim(code, mine); st != 200 {
			t.Fatalf("a user n1 owns: %d %s", st, body)
		}
	}
}

// The reserve and release endpoints: signed only, a strict body, only the user's owner counts,
// a release gives one count back; a claim whose journal refused it before writing releases its
// reservation (once), one whose commit failed does not.
func TestOwnerEndpoints(t *testing.T) {
	oc := newOwnerCluster(t, 2)
	const code = "endpoints"
	oc.rain(code, 50, 2)
	n1, n2 := oc.hs[0], oc.hs[1]
	u := oc.userOwnedBy(code, "n2", 0)
	other := oc.userOwnedBy(code, "n1", 0)
	batch := func(h *harness, users ...uint64) ([]int, int) {
		var a reserveAnswer
		err := h.wire.Do(context.Background(), "POST", h.addr(), "/internal/v1/rains/"+code+"/reserve", reserveBatch{Users: users}, &a)
		if se, ok := err.(*wire.StatusError); ok {
			return nil, se.Status
		} else if err != nil {
			t.Fatal(err)
		}
		return a.Results, 200
	}
	reserve := func(h *harness, user uint64) int {
		res, st := batch(h, user)
		if st != 200 || len(res) != 1 {
			t.Fatalf("reserve %d: %d %v", user, st, res)
		}
		return res[0]
	}
	if res := reserve(n1, u); res != resultRefused {
		t.Fatalf("reserve on a node that is not the owner: %d", res)
	}
	for _, bad := range [][]uint64{{0}, {}, make([]uint64, maxReserveBatch+1)} {
		if _, st := batch(n2, bad...); st != 400 {
			t.Fatalf("users %v: %d", bad, st)
		}
	}
	st, body := n2.do("POST", "/internal/v1/rains/"+code+"/reserve", nil, []byte(`{"users":[1]}`))
	wantError(t, st, body, 401, "unauthorized")
	if err := n2.internal("POST", "/internal/v1/rains/nosuchrain/reserve", reserveBatch{Users: []uint64{u}}); err == nil {
		t.Fatal("reserve in an unknown rain accepted")
	}
	if err := n2.internal("POST", "/internal/v1/rains/"+code+"/release", ownerCall{User: other}); err == nil {
		t.Fatal("release of a user this node does not own accepted")
	}
	// One batch: u twice (both counted), u a third time (at the cap), a user n2 does not own.
	if res, st := batch(n2, u, other, u, u); st != 200 || !slices.Equal(res, []int{resultReserved, resultRefused, resultReserved, resultUserLimit}) {
		t.Fatalf("batch: %d %v", st, res)
	}
	n1.n.ownerJournalFailed([]byte(code), u, fmt.Errorf("x: %w", ledger.ErrCommit))      // may be in the file: kept
	n1.n.ownerJournalFailed([]byte(code), u, fmt.Errorf("x: %w", ledger.ErrUnavailable)) // never written: released
	testcluster.Eventually(t, 10*time.Second, "the release sent", func() bool { return n1.n.owner.releases.Load() == 0 })
	if res := reserve(n2, u); res != resultReserved {
		t.Fatalf("reservation after one release: %d", res)
	}
	if res := reserve(n2, u); res != resultUserLimit {
		t.Fatalf("one release gave back more than one count: %d", res)
	}
}

// ownerCalls reads the node's redrain_owner_calls_total{call, result}.
func ownerCalls(t *testing.T, h *harness, call, result string) float64 {
	mfs, err := h.n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "redrain_owner_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["call"] == call && got["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// An owners journal of another node is refused like a claims journal of another node.
func TestOwnerJournalOfAnotherNode(t *testing.T) {
	o := LocalOptions("n1", "", "", testSecret)
	o.Redis, o.Cluster, o.Journal = ledger.NewMemRedis(), LoneCluster{}, ledger.NewMemJournal("n1", 1)
	o.OwnerJournal = ledger.NewMemJournal("n9", 2)
	if _, err := New(o); !errors.Is(err, ErrOptions) {
		t.Fatalf("owners journal of n9 given to n1: %v", err)
	}
	o.OwnerJournal, o.OwnerTimeout = nil, -time.Second
	if _, err := New(o); !errors.Is(err, ErrOptions) {
		t.Fatalf("negative owner timeout: %v", err)
	}
}

// A sender takes up to maxReserveBatch reservations of the first queued one's rain, and leaves
// the others queued in order.
func TestReserveBatchTake(t *testing.T) {
	a, b := &rainOwners{code: "a"}, &rainOwners{code: "b"}
	var l ownerLink
	for i := range 300 {
		ro := a
		if i%3 == 1 {
			ro = b
		}
		l.queue = append(l.queue, &reservation{ro: ro, user: uint64(i)})
	}
	batch := l.take(nil)
	if len(batch) != 200 || len(l.queue) != 100 {
		t.Fatalf("took %d, left %d; want 200 of rain a, 100 of b", len(batch), len(l.queue))
	}
	for i, r := range batch {
		if r.ro != a || (i > 0 && r.user <= batch[i-1].user) {
			t.Fatalf("batch[%d]: rain %s user %d", i, r.ro.code, r.user)
		}
	}
	if batch = l.take(batch[:0]); len(batch) != 100 || batch[0].ro != b || len(l.queue) != 0 {
		t.Fatalf("second take: %d of rain %s, %d left", len(batch), batch[0].ro.code, len(l.queue))
	}
	for i := range maxReserveBatch + 5 {
		l.queue = append(l.queue, &reservation{ro: a, user: uint64(i)})
	}
	if batch = l.take(batch[:0]); len(batch) != maxReserveBatch || len(l.queue) != 5 {
		t.Fatalf("a full batch: took %d, left %d", len(batch), len(l.queue))
	}
}

// A batch whose first reservation waited past the owner timeout: that one is not sent (no
// answer: its claim fails closed), the others get their own results, and the batch keeps its
// order (each waiter is answered once, with its own result).
func TestReserveBatchExpired(t *testing.T) {
	oc := newOwnerCluster(t, 2)
	const code = "expired"
	oc.rain(code, 50, 1)
	n1 := oc.hs[0]
	ro := n1.n.ownersOf([]byte(code))
	l := n1.n.linkTo("n2", time.Now().UnixNano())
	a, b := oc.userOwnedBy(code, "n2", 0), oc.userOwnedBy(code, "n2", 100)
	now := time.Now().UnixNano()
	old := now - int64(2*n1.n.opts.OwnerTimeout)
	batch := []*reservation{{ro: ro, user: a, at: old}, {ro: ro, user: b, at: now}, {ro: ro, user: b, at: now}}
	sent := n1.n.callReserve(l, batch, nil)
	if len(sent) != 2 || batch[0].user != a || batch[1].user != b {
		t.Fatalf("sent %d; batch reordered: %d %d", len(sent), batch[0].user, batch[1].user)
	}
	if got := []int{batch[0].result, batch[1].result, batch[2].result}; !slices.Equal(got, []int{resultNone, resultReserved, resultUserLimit}) {
		t.Fatalf("results %v", got)
	}
}
