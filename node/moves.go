package node

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"redrain/gossip"
	"redrain/internal/logpace"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// Stock follows demand. A node running low on a raining rain asks the holder with the most
// unserved packets (known from gossip stock hints) to give it some (wire.Give). The donor cuts
// the unserved tail of one of its windows (shard.CutMost: a cut and a pop race on one packed
// word, so no packet is ever on two nodes), journals the move (RainMeta.MovesOut) before it
// sends it, and delivers it (wire.Moves); the receiver journals it (RainMeta.MovesIn) before it
// serves any of it, regenerating the amounts from the slice's seed. A move the donor journaled
// is the receiver's from then on: the donor keeps delivering it until the receiver acknowledges
// (a receiver dedups by move id), also after the donor restarts. A crash before the donor's
// journal leaves the range the donor's (served again after its restart); after it, the range
// is the receiver's, counted by the report as the receiver's (lost while it is dead or has not
// received it from a dead donor). Never on two nodes, never paid twice.
//
// A claim that finds its node empty waits up to Options.StockWait for a move when a live peer
// says it holds packets, and is served from it; 410 exhausted only when no peer does, or none
// arrived in time.

// Move pacing and bounds.
const (
	moveTick        = 20 * time.Millisecond  // the mover's pace
	stockEvery      = 250 * time.Millisecond // publish a stock hint at least this often while raining
	redeliverEvery  = time.Second            // retry undelivered moves
	lowHorizon      = 250 * time.Millisecond // ask for stock when less than this much demand is left
	askHorizon      = time.Second            // ask for about this much demand
	minLow          = 64                     // ask when fewer packets than this are left, whatever the rate
	minAsk          = 1024                   // ask for at least this many
	maxMovesPerRain = 512                    // moves out per rain and node; past it the node gives no more
	maxMovesPerCall = 64                     // moves in one delivery
	moveCallTimeout = 2 * time.Second        // a give or a delivery
	slowGive        = 250 * time.Millisecond // a give that took longer is logged
	gaveFresh       = 250 * time.Millisecond // how long a donor counts a receiver as holding what it gave
)

// moveState is the node's side of stock moves. Its own mutex; never held while calling out.
type moveState struct {
	client *wire.Client

	mu          sync.Mutex
	arrived     map[string]chan struct{}        // per rain: closed (and replaced) when a move arrives
	asking      map[string]bool                 // a give in flight for the rain
	rate        map[string]*demand              // per rain: claims per second here
	published   map[string]stockPub             // per rain: the last hint published
	undelivered map[string]map[string]rain.Move // per rain: moves out not yet acknowledged, by id
	gave        map[string]map[string]gaveHint  // per rain and receiver: the last move delivered
	unrecorded  map[string]bool                 // rains whose moves Redis has not been told of
	amounts     map[sliceRef]rain.Amounts       // generated slices of moves in
	genMu       sync.Mutex                      // one generation at a time (they are large)
	lateLog     logpace.Limiter                 // paces the log of exhausted answers after a late wait
}

type sliceRef struct {
	code  string
	epoch uint64
	id    uint32
}

// gaveHint is a move this node delivered: for gaveFresh after it, the node counts the receiver
// as holding that stock, whatever gossip says. The receiver's own hint reaches peers only a gossip
// round or two later, and a donor that gave its last packets would otherwise see no stock
// anywhere and answer exhausted while the receiver holds them (the tail of a rain, where every
// node has demand).
type gaveHint struct {
	at    time.Time
	count int64
}

type stockPub struct {
	at        time.Time
	remaining int64
}

// demand estimates a rain's claim rate here from its journaled count.
type demand struct {
	at    time.Time
	count int64
	rate  float64 // claims per second, smoothed
}

func newMoveState(secret string) moveState {
	return moveState{
		client:      wire.NewClient(secret, moveCallTimeout),
		arrived:     map[string]chan struct{}{},
		asking:      map[string]bool{},
		rate:        map[string]*demand{},
		published:   map[string]stockPub{},
		undelivered: map[string]map[string]rain.Move{},
		gave:        map[string]map[string]gaveHint{},
		unrecorded:  map[string]bool{},
		amounts:     map[sliceRef]rain.Amounts{},
	}
}

// arrival returns the channel closed when the next move of the rain arrives.
func (ms *moveState) arrival(code string) chan struct{} {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ch := ms.arrived[code]
	if ch == nil {
		ch = make(chan struct{})
		ms.arrived[code] = ch
	}
	return ch
}

// signal wakes the claims waiting for the rain's stock.
func (ms *moveState) signal(code string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ch := ms.arrived[code]; ch != nil {
		close(ch)
		delete(ms.arrived, code)
	}
}

// Outcomes of awaitStock.
const (
	noStockElsewhere = iota // no live peer hints it holds packets: exhausted at once
	stockArrived            // a move arrived: try again
	stockLate               // a peer holds packets but none arrived within StockWait
)

// awaitStock is the claim path's answer to an empty node: when a live peer says it holds
// packets of the rain (or a give is in flight), ask now and wait until a move arrives or the
// deadline passes. It returns noStockElsewhere without waiting, or stockArrived/stockLate.
func (n *Node) awaitStock(code string, deadline *time.Timer) int {
	if n.opts.NoStockMoves || !n.stockElsewhere(code) {
		return noStockElsewhere
	}
	ch := n.moves.arrival(code)
	n.askIfLow(n.bgCtx, code, time.Now(), true) // here, not through the mover: the give is in flight before the wait starts
	select {
	case <-ch:
		return stockArrived
	case <-deadline.C:
		return stockLate
	}
}

// logLateStock logs (paced) a claim answered exhausted after waiting for stock in vain: what the
// node knew then, so that an operator (or a failed test) can tell a slow give from stale hints.
func (n *Node) logLateStock(code string, waited time.Duration) {
	if !n.moves.lateLog.Allow(time.Now()) {
		return
	}
	hints := map[string]int64{}
	for _, d := range n.donors(code, 0) {
		hints[d.id] = d.remaining
	}
	n.log.Info("answered exhausted after waiting for stock", "rain", code, "waited", waited,
		"give_in_flight", n.giveInFlight(code), "hints", hints, "suppressed", n.moves.lateLog.Suppressed())
}

// MaxStockWait bounds a claim's wait for stock while a give it asked for is under way: the give
// call's own timeout, so a claim never answers exhausted while the give that may bring it stock
// is still being answered (a donor's and a receiver's journal writes in series can take that
// long on a machine whose disk stalls).
const MaxStockWait = moveCallTimeout

// giveInFlight reports whether this node is asking a donor for the rain's stock right now.
func (n *Node) giveInFlight(code string) bool {
	n.moves.mu.Lock()
	defer n.moves.mu.Unlock()
	return n.moves.asking[code]
}

// stockElsewhere reports whether a give is in flight or a live holder other than this node
// hints that it holds packets of the rain.
func (n *Node) stockElsewhere(code string) bool {
	n.moves.mu.Lock()
	asking := n.moves.asking[code]
	n.moves.mu.Unlock()
	if asking {
		return true
	}
	_, ok := n.bestDonor(code, 0)
	return ok
}

// donor is a peer that may give stock.
type donor struct {
	id, addr  string
	remaining int64
}

// bestDonors lists the live holders other than this node that hint they hold packets of the
// rain's epoch, most first; epoch 0 = any.
func (n *Node) donors(code string, epoch uint64) []donor {
	if n.cluster == nil {
		return nil
	}
	n.mu.Lock()
	var holders []string
	if ri := n.rains[code]; ri != nil {
		holders = ri.meta.Holders
	}
	n.mu.Unlock()
	alive := map[string]string{}
	for _, m := range n.cluster.Members() {
		if m.Role == gossip.RoleNode && m.State == gossip.StateAlive && m.ID != n.opts.ID {
			alive[m.ID] = m.HTTPAddr
		}
	}
	var out []donor
	for _, s := range n.cluster.Stock(code) {
		addr, live := alive[s.Node]
		if live && s.Remaining > 0 && (epoch == 0 || s.Epoch == epoch) && slices.Contains(holders, s.Node) {
			out = append(out, donor{id: s.Node, addr: addr, remaining: s.Remaining})
		}
	}
	now := time.Now()
	n.moves.mu.Lock()
	for to, g := range n.moves.gave[code] {
		addr, live := alive[to]
		if now.Sub(g.at) >= gaveFresh {
			delete(n.moves.gave[code], to)
		} else if live && slices.Contains(holders, to) && !slices.ContainsFunc(out, func(d donor) bool { return d.id == to }) {
			out = append(out, donor{id: to, addr: addr, remaining: g.count})
		}
	}
	if len(n.moves.gave[code]) == 0 {
		delete(n.moves.gave, code)
	}
	n.moves.mu.Unlock()
	slices.SortFunc(out, func(a, b donor) int { return cmp.Compare(b.remaining, a.remaining) })
	return out
}

func (n *Node) bestDonor(code string, epoch uint64) (donor, bool) {
	ds := n.donors(code, epoch)
	if len(ds) == 0 {
		return donor{}, false
	}
	return ds[0], true
}

// moverLoop keeps stock where demand is: it publishes this node's stock hints, asks for stock
// when a rain runs low here, and redelivers moves out. (A claim that finds the node empty asks
// itself, awaitStock.)
func (n *Node) moverLoop(ctx context.Context) {
	t := time.NewTicker(moveTick)
	defer t.Stop()
	var lastRedeliver time.Time // the first tick redelivers what recovery found undelivered
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, code := range n.store.Codes() {
				n.askIfLow(ctx, code, now, false)
			}
			if now.Sub(lastRedeliver) >= redeliverEvery {
				lastRedeliver = now
				n.redeliver(ctx)
			}
		}
	}
}

// askIfLow updates the rain's demand and stock hint and, when it is raining here with less than
// lowHorizon of demand left (or empty is true: a claim found nothing), asks a donor in the
// background (one give in flight per rain).
func (n *Node) askIfLow(ctx context.Context, code string, now time.Time, empty bool) {
	p, ok := n.rainingStock(code, now)
	if !ok {
		return
	}
	rate := n.noteDemand(code, now)
	n.publishStock(code, p, now)
	if n.opts.NoStockMoves || !n.ready.Load() {
		return // a stopping node asks for nothing: stock sent to it now would wait for its return
	}
	low := max(minLow, int64(rate*lowHorizon.Seconds()))
	if !empty && (rate == 0 || p.RemainingCount >= low) {
		return // no demand here (a donor that gave its stock away does not ask for it back), or enough
	}
	want := max(minAsk, int64(rate*askHorizon.Seconds())) - p.RemainingCount
	n.moves.mu.Lock()
	if n.moves.asking[code] || want <= 0 {
		n.moves.mu.Unlock()
		return
	}
	n.moves.asking[code] = true
	n.moves.mu.Unlock()
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		defer func() {
			n.moves.mu.Lock()
			delete(n.moves.asking, code)
			n.moves.mu.Unlock()
		}()
		n.ask(ctx, code, p.Epoch, want, p.RemainingCount, empty || p.RemainingCount == 0)
	}()
}

// noteDemand returns the rain's smoothed claim rate here (claims per second).
func (n *Node) noteDemand(code string, now time.Time) float64 {
	t, _ := n.journal.Totals(code)
	n.moves.mu.Lock()
	defer n.moves.mu.Unlock()
	d := n.moves.rate[code]
	if d == nil {
		n.moves.rate[code] = &demand{at: now, count: t.Count}
		return 0
	}
	if dt := now.Sub(d.at).Seconds(); dt >= 0.1 {
		inst := float64(t.Count-d.count) / dt
		d.rate = 0.5*d.rate + 0.5*inst
		d.at, d.count = now, t.Count
	}
	return d.rate
}

// publishStock gossips the rain's remaining count when it changed by a tenth, hit zero, or
// stockEvery passed.
func (n *Node) publishStock(code string, p shard.Progress, now time.Time) {
	n.moves.mu.Lock()
	last, ok := n.moves.published[code]
	changed := !ok || now.Sub(last.at) >= stockEvery ||
		(p.RemainingCount == 0) != (last.remaining == 0) || abs(p.RemainingCount-last.remaining)*10 > last.remaining
	if changed {
		n.moves.published[code] = stockPub{at: now, remaining: p.RemainingCount}
	}
	n.moves.mu.Unlock()
	if changed && n.cluster != nil {
		n.cluster.PublishStock(gossip.Stock{Node: n.opts.ID, Code: code, Epoch: p.Epoch, Remaining: p.RemainingCount, At: now.UnixNano()})
	}
}

// publishStockNow gossips the rain's stock hint now if it changed enough (publishStock's rule):
// after a move in, which the mover loop would publish only at its next tick, while an empty peer
// deciding whether to answer exhausted reads the hints.
func (n *Node) publishStockNow(code string) {
	now := time.Now()
	if p, ok := n.rainingStock(code, now); ok {
		n.publishStock(code, p, now)
	}
}

// rainingStock is the rain's stock here, if it is raining here (started, not finished): the
// only stock that is asked for, given, or hinted.
func (n *Node) rainingStock(code string, now time.Time) (shard.Progress, bool) {
	p, ok := n.store.Stock(code, now.UnixNano())
	return p, ok && p.Started && !p.Finished
}

func abs(v int64) int64 { return max(v, -v) }

// ask asks the two donors with the most stock, in turn, for want packets: until one gives
// some, or (empty: claims are waiting here) both. mine is what this node still holds.
func (n *Node) ask(ctx context.Context, code string, epoch uint64, want, mine int64, empty bool) {
	for i, d := range n.donors(code, epoch) {
		if i == 2 {
			return
		}
		if !empty && d.remaining <= 2*mine+minLow {
			return // no real imbalance: stock would only go back and forth (donors are sorted, most first)
		}
		var got wire.Given
		began := time.Now()
		err := n.moves.client.Do(ctx, "POST", d.addr, wire.RainPath(wire.PathGive, code),
			wire.Give{To: n.opts.ID, Epoch: epoch, Max: want, Empty: empty, Addr: n.advertised(n.HTTPAddr())}, &got)
		if took := time.Since(began); took > slowGive {
			n.log.Info("slow stock give", "rain", code, "donor", d.id, "took", took, "count", got.Count, "err", err)
		}
		if err != nil {
			n.log.Debug("ask for stock", "rain", code, "donor", d.id, "err", err)
			continue
		}
		n.metrics.movesAsked.Inc()
		if got.Count > 0 && !empty {
			return
		}
	}
}

// give is the donor's side of wire.Give: cut, journal, deliver.
func (n *Node) give(code string, g wire.Give) (wire.Given, error) {
	switch {
	case g.To == n.opts.ID || gossip.CheckID(g.To) != nil:
		return wire.Given{}, fmt.Errorf("%w: bad receiver %q", ErrBadRequest, g.To)
	case g.Max < 1 || g.Max > rain.MaxTotalCount || g.Epoch == 0:
		return wire.Given{}, fmt.Errorf("%w: max or epoch out of range", ErrBadRequest)
	case g.Addr != "" && !validAddr(g.Addr):
		return wire.Given{}, fmt.Errorf("%w: addr is not host:port", ErrBadRequest)
	}
	if n.opts.NoStockMoves || n.knownNotAlive(g.To) {
		return wire.Given{}, nil // a receiver leaving or dead would hold the stock until it returns
	}
	if giveDelay > 0 {
		time.Sleep(giveDelay) // a fault test's stalled donor (failpoint.go)
	}
	mv, ok, err := n.cutMove(code, g)
	if err != nil || !ok {
		return wire.Given{}, err
	}
	n.metrics.movesOut.Inc()
	delivered := n.deliver(context.Background(), code, g.To, g.Addr, []rain.Move{mv}) == nil
	if delivered {
		n.moves.mu.Lock()
		if n.moves.gave[code] == nil {
			n.moves.gave[code] = map[string]gaveHint{}
		}
		n.moves.gave[code][g.To] = gaveHint{at: time.Now(), count: mv.Count}
		n.moves.mu.Unlock()
	}
	return wire.Given{Count: mv.Count, Amount: mv.Amount, Delivered: delivered}, nil
}

// cutMove cuts stock for g and journals the move; ok is false when there is none to spare.
func (n *Node) cutMove(code string, g wire.Give) (rain.Move, bool, error) {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	switch {
	case ri == nil:
		return rain.Move{}, false, ErrUnknownRain
	case ri.meta.Epoch != g.Epoch:
		return rain.Move{}, false, fmt.Errorf("%w: not serving epoch %d", ErrConflict, g.Epoch)
	case !slices.Contains(ri.meta.Holders, g.To):
		return rain.Move{}, false, fmt.Errorf("%w: %s holds no slice of the rain", ErrConflict, g.To)
	case len(ri.meta.MovesOut) >= maxMovesPerRain || hotState(n, code) != rainServing:
		return rain.Move{}, false, nil
	}
	p, ok := n.rainingStock(code, now)
	if !ok {
		return rain.Move{}, false, nil
	}
	// Keep a quarter second of this node's own demand, at most half: a donor nobody taps gives
	// all it has (an asker whose claims wait would otherwise halve the tail, one give at a time).
	keep := min(p.RemainingCount/2, int64(n.demandRate(code)*lowHorizon.Seconds()))
	k := min(g.Max, p.RemainingCount-keep, 1<<31)
	if k <= 0 {
		return rain.Move{}, false, nil
	}
	cut, ok := n.store.CutMost(code, uint32(k))
	if !ok {
		return rain.Move{}, false, nil
	}
	sl, ok := ri.sliceOf(cut.Epoch, cut.Slice)
	if !ok { // cannot happen: every window served was added from a slice or a move held
		n.store.Uncut(code, cut)
		return rain.Move{}, false, fmt.Errorf("node: no descriptor of slice %d", cut.Slice)
	}
	mv := rain.Move{ID: fmt.Sprintf("%s-%016x-%d", n.opts.ID, n.journal.Incarnation(), ri.meta.MoveSeq+1),
		From: n.opts.ID, To: g.To, Slice: sl, Lo: cut.From, Hi: cut.To, Count: cut.Count, Amount: cut.Amount}
	m := ri.meta
	m.MoveSeq++
	m.MovesOut = append(slices.Clip(m.MovesOut), mv)
	if err := n.journal.PutRain(m); err != nil {
		if !n.store.Uncut(code, cut) {
			n.log.Warn("a move that could not be journaled stays off sale until restart", "rain", code, "count", cut.Count)
		}
		return rain.Move{}, false, err
	}
	ri.meta = m
	n.moves.mu.Lock()
	if n.moves.undelivered[code] == nil {
		n.moves.undelivered[code] = map[string]rain.Move{}
	}
	n.moves.undelivered[code][mv.ID] = mv
	n.moves.unrecorded[code] = true
	n.moves.mu.Unlock()
	failpoint("move-out-journaled")
	n.log.Info("stock moved out", "rain", code, "to", g.To, "count", mv.Count, "amount", mv.Amount, "move", mv.ID)
	return mv, true, nil
}

// validAddr reports whether s is a host:port of a sane length.
func validAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && host != "" && port != "" && len(s) <= 256
}

// knownNotAlive reports whether gossip knows the member id and says it is not alive.
func (n *Node) knownNotAlive(id string) bool {
	if n.cluster == nil {
		return false
	}
	for _, m := range n.cluster.Members() {
		if m.ID == id {
			return m.State != gossip.StateAlive
		}
	}
	return false
}

// inTransit reports whether the rain has a move out not yet acknowledged by a receiver that is
// alive: stock on its way, which the rain's exhaustion must wait for.
func (n *Node) inTransit(code string) bool {
	n.moves.mu.Lock()
	var to []string
	for _, mv := range n.moves.undelivered[code] {
		to = append(to, mv.To)
	}
	n.moves.mu.Unlock()
	for _, id := range to {
		if !n.knownNotAlive(id) {
			return true
		}
	}
	return false
}

func hotState(n *Node, code string) uint8 { return (*n.codes.Load())[code].state }

func (n *Node) demandRate(code string) float64 {
	n.moves.mu.Lock()
	defer n.moves.mu.Unlock()
	if d := n.moves.rate[code]; d != nil {
		return d.rate
	}
	return 0
}

// sliceOf finds the descriptor of a slice held here, assigned or moved in. The caller holds n.mu.
func (ri *rainInfo) sliceOf(epoch uint64, id uint32) (rain.Slice, bool) {
	if sl, ok := ri.slices[sliceID{epoch, id}]; ok {
		return sl, true
	}
	for _, mv := range ri.meta.MovesIn {
		if mv.Slice.Epoch == epoch && mv.Slice.ID == id {
			return mv.Slice, true
		}
	}
	return rain.Slice{}, false
}

// deliver sends moves to their receiver, at the address gossip shows it alive at (or, when
// gossip has not shown it yet, at fallback, the address it asked from), and forgets them as
// delivered once it acknowledges.
func (n *Node) deliver(ctx context.Context, code, to, fallback string, mvs []rain.Move) error {
	addr := ""
	if n.cluster != nil {
		for _, m := range n.cluster.Members() {
			if m.ID == to && m.State == gossip.StateAlive {
				addr = m.HTTPAddr
			}
		}
	}
	if addr == "" && !n.knownNotAlive(to) {
		addr = fallback
	}
	if addr == "" {
		return fmt.Errorf("node: receiver %s not alive", to) // redelivered once it is
	}
	err := n.moves.client.Do(ctx, "POST", addr, wire.RainPath(wire.PathMoves, code), wire.Moves{Moves: mvs}, nil)
	if err != nil {
		n.log.Warn("deliver stock move", "rain", code, "to", to, "err", err)
		return err
	}
	n.moves.mu.Lock()
	for _, mv := range mvs {
		delete(n.moves.undelivered[code], mv.ID)
	}
	n.moves.mu.Unlock()
	return nil
}

// redeliver retries the moves out not yet acknowledged, per rain and receiver.
func (n *Node) redeliver(ctx context.Context) {
	n.moves.mu.Lock()
	type batch struct{ code, to string }
	todo := map[batch][]rain.Move{}
	for code, byID := range n.moves.undelivered {
		for _, mv := range byID {
			b := batch{code, mv.To}
			if len(todo[b]) < maxMovesPerCall {
				todo[b] = append(todo[b], mv)
			}
		}
	}
	n.moves.mu.Unlock()
	for b, mvs := range todo {
		if ctx.Err() != nil {
			return
		}
		slices.SortFunc(mvs, func(x, y rain.Move) int { return cmp.Compare(x.ID, y.ID) })
		n.deliver(ctx, b.code, b.to, "", mvs)
	}
}

// acceptMoves is the receiver's side of wire.Moves: journal, then serve. A move already held is
// acknowledged again.
func (n *Node) acceptMoves(code string, in wire.Moves) error {
	if len(in.Moves) == 0 || len(in.Moves) > maxMovesPerCall {
		return fmt.Errorf("%w: 1..%d moves per call", ErrBadRequest, maxMovesPerCall)
	}
	gens := make([]rain.Amounts, len(in.Moves))
	for i, mv := range in.Moves {
		if err := mv.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		if mv.To != n.opts.ID || mv.Slice.Code != code {
			return fmt.Errorf("%w: move %s is for %s/%s", ErrBadRequest, mv.ID, mv.To, mv.Slice.Code)
		}
		a, err := n.amountsOf(mv.Slice)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		var sum int64
		for j := mv.Lo; j < mv.Hi; j++ {
			sum += a.At(int(j))
		}
		if sum != mv.Amount {
			return fmt.Errorf("%w: move %s is worth %d, not %d", ErrBadRequest, mv.ID, sum, mv.Amount)
		}
		gens[i] = a
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	if ri == nil {
		return ErrUnknownRain
	}
	m := ri.meta
	var fresh []int
	for i, mv := range in.Moves {
		switch {
		case m.Epoch == 0 || mv.Slice.Epoch != m.Epoch:
			return fmt.Errorf("%w: move %s of epoch %d, serving %d", ErrConflict, mv.ID, mv.Slice.Epoch, m.Epoch)
		case !slices.Contains(m.Holders, mv.From):
			return fmt.Errorf("%w: %s holds no slice of the rain", ErrConflict, mv.From)
		case slices.ContainsFunc(m.MovesIn, func(x rain.Move) bool { return x.ID == mv.ID }):
			continue
		}
		m.MovesIn = append(slices.Clip(m.MovesIn), mv)
		fresh = append(fresh, i)
	}
	if len(fresh) == 0 {
		return nil
	}
	if err := n.journal.PutRain(m); err != nil {
		return err
	}
	failpoint("move-in-journaled")
	ri.meta = m
	for _, i := range fresh {
		mv := in.Moves[i]
		if err := n.store.AddWindow(specOf(ri.rules), mv.Slice, gens[i], mv.Lo, mv.Hi, nil); err != nil {
			// Journaled but not servable (a window overlapping one held: the donor broke the
			// rule). It is the receiver's by the journal; it is reported, never paid twice.
			n.log.Error("stock move journaled but not served", "rain", code, "move", mv.ID, "err", err)
			continue
		}
		n.metrics.movesIn.Inc()
		n.log.Info("stock moved in", "rain", code, "from", mv.From, "count", mv.Count, "amount", mv.Amount, "move", mv.ID)
	}
	n.moves.mu.Lock()
	n.moves.unrecorded[code] = true
	n.moves.mu.Unlock()
	n.moves.signal(code)
	return nil
}

// amountsOf regenerates a slice's amounts, once per slice.
func (n *Node) amountsOf(sl rain.Slice) (rain.Amounts, error) {
	ref := sliceRef{sl.Code, sl.Epoch, sl.ID}
	n.moves.mu.Lock()
	a, ok := n.moves.amounts[ref]
	n.moves.mu.Unlock()
	if ok {
		return a, nil
	}
	n.moves.genMu.Lock()
	defer n.moves.genMu.Unlock()
	n.moves.mu.Lock()
	a, ok = n.moves.amounts[ref]
	n.moves.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := rain.Generate(sl)
	if err != nil {
		return rain.Amounts{}, err
	}
	n.moves.mu.Lock()
	n.moves.amounts[ref] = a
	n.moves.mu.Unlock()
	return a, nil
}

// recordMoves tells Redis the moves of the rains journaled since it last did (all started
// rains when all is true: a graceful stop), so the report knows them while this node is dead.
// A rain whose write fails is tried again next time.
func (n *Node) recordMoves(ctx context.Context, all bool) {
	n.moves.mu.Lock()
	codes := make([]string, 0, len(n.moves.unrecorded))
	for code := range n.moves.unrecorded {
		codes = append(codes, code)
	}
	clear(n.moves.unrecorded)
	n.moves.mu.Unlock()
	if all {
		codes = n.store.Codes()
	}
	for _, code := range codes {
		if err := n.recordMovesOf(ctx, code); err != nil {
			n.log.Warn("record stock moves in Redis", "rain", code, "err", err)
			n.moves.mu.Lock()
			n.moves.unrecorded[code] = true
			n.moves.mu.Unlock()
		}
	}
}

// recordMovesOf writes one rain's moves to Redis (nothing when it has none). Idempotent: the
// janitor also re-asserts a compacted rain's moves with it after a Redis loss.
func (n *Node) recordMovesOf(ctx context.Context, code string) error {
	n.mu.Lock()
	var in, out []ledger.MoveTotal
	if ri := n.rains[code]; ri != nil {
		in = moveTotals(ri.meta.MovesIn, func(m rain.Move) string { return m.From })
		out = moveTotals(ri.meta.MovesOut, func(m rain.Move) string { return m.To })
	}
	n.mu.Unlock()
	if len(in)+len(out) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, moveCallTimeout)
	defer cancel()
	return n.rdb.RecordMoves(rctx, code, n.opts.ID, in, out)
}

// moveRecorder runs recordMoves at the pace of stock hints.
func (n *Node) moveRecorder(ctx context.Context) {
	t := time.NewTicker(stockEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.recordMoves(ctx, false)
		}
	}
}

func moveTotals(mvs []rain.Move, peer func(rain.Move) string) []ledger.MoveTotal {
	var out []ledger.MoveTotal
	for _, s := range moveSums(mvs, peer) {
		out = append(out, ledger.MoveTotal{Peer: s.Peer, Count: s.Count, Amount: s.Amount})
	}
	return out
}

// moveSums adds up a rain's moves per peer (for progress). The caller holds n.mu.
func moveSums(mvs []rain.Move, peer func(rain.Move) string) []wire.MoveSum {
	var out []wire.MoveSum
	for _, mv := range mvs {
		i := slices.IndexFunc(out, func(s wire.MoveSum) bool { return s.Peer == peer(mv) })
		if i < 0 {
			out = append(out, wire.MoveSum{Peer: peer(mv)})
			i = len(out) - 1
		}
		out[i].Count += mv.Count
		out[i].Amount += mv.Amount
	}
	slices.SortFunc(out, func(a, b wire.MoveSum) int { return cmp.Compare(a.Peer, b.Peer) })
	return out
}

// recoverWindows rebuilds what the store serves from the journal: each slice assigned here and
// each move in is a window; shard.RestoreWindows ends each at its moves out and places the
// journaled claims, their amounts checked against the regenerated slices. Moves out not known to
// be delivered are delivered again (receivers dedup).
func (n *Node) recoverWindows(rec *ledger.Recovery) error {
	byRain := map[string][]*shard.Window{}
	for _, sl := range rec.Slices {
		ri := n.rains[sl.Code]
		if ri == nil || (ri.meta.Epoch != 0 && sl.Epoch != ri.meta.Epoch) || sl.Epoch <= ri.meta.MinEpoch {
			continue
		}
		a, err := n.amountsOf(sl)
		if err != nil {
			return fmt.Errorf("regenerate %s/%d/%d: %w", sl.Code, sl.Epoch, sl.ID, err)
		}
		byRain[sl.Code] = append(byRain[sl.Code], &shard.Window{Slice: sl, Amounts: a, Hi: uint32(sl.Count)})
		ri.hold(sl)
	}
	for code, ri := range n.rains {
		if ri.meta.CompactedAt != 0 {
			continue // a tombstone: nothing is served
		}
		for _, mv := range ri.meta.MovesIn {
			a, err := n.amountsOf(mv.Slice)
			if err != nil {
				return fmt.Errorf("regenerate move %s: %w", mv.ID, err)
			}
			byRain[code] = append(byRain[code], &shard.Window{Slice: mv.Slice, Amounts: a, Lo: mv.Lo, Hi: mv.Hi})
		}
		if !ri.meta.Settled && len(ri.meta.MovesOut) > 0 {
			n.moves.undelivered[code] = map[string]rain.Move{}
			for _, mv := range ri.meta.MovesOut {
				n.moves.undelivered[code][mv.ID] = mv
			}
		}
		ws := byRain[code]
		if len(ws) == 0 {
			continue // no slice held here
		}
		if err := shard.RestoreWindows(ws, ri.meta.MovesOut, journaledOf(rec, code), ri.meta.Epoch); err != nil {
			return fmt.Errorf("rain %s: %w", code, err)
		}
		for _, w := range ws { // an emptied window too (all of it moved out): the rain stays known
			if err := n.store.AddWindow(specOf(ri.rules), w.Slice, w.Amounts, w.Lo, w.Hi, w.Claimed); err != nil {
				return fmt.Errorf("restore slice %s/%d [%d, %d): %w", code, w.Slice.ID, w.Lo, w.Hi, err)
			}
		}
	}
	return nil
}

// journaledOf is the rain's journaled claims per slice, for shard.RestoreWindows.
func journaledOf(rec *ledger.Recovery, code string) []shard.Journaled {
	var out []shard.Journaled
	for k, idx := range rec.Claimed {
		if k.Code == code {
			out = append(out, shard.Journaled{Epoch: k.Epoch, Slice: k.Slice, Index: idx, Amount: rec.Amounts[k]})
		}
	}
	return out
}
