package sim

import (
	"errors"
	"fmt"
	"io"

	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// Config tunes a run; the zero value is the default run.
type Config struct {
	// Steps is how many steps run with faults before the run heals and settles. 0 means 600.
	Steps int
	// Trace, if set, receives every step's line (the same bytes for the same seed).
	Trace io.Writer
	// Bugs plants known bugs, to show the simulator finds them.
	Bugs Bugs
}

// Bugs are planted bugs (test hooks). Each is a one-line change of the behaviour it names.
type Bugs struct {
	FlushIgnoresMarker bool // Redis applies a batch whatever the marker (the script's check gone)
	ReleaseReached     bool // a failed commit's packets are released at once, though the frame may have reached the file
	SkipUserRebuild    bool // recovery does not restore the per-user counts
	SkipLeftoverHold   bool // a node back from a graceful stop serves before clearing its leftover record

	DeliverBeforeJournal  bool // a donor sends a move before journaling it
	ServeBeforeJournal    bool // a receiver serves and acknowledges a move before journaling it
	ForgetMovesOut        bool // recovery does not cut the windows its moves out were cut from
	OwnerAnswersFirst     bool // an owner answers yes before its reservation is journaled
	HoldersOfFirstPrepare bool // a node keeps the holders of the first prepare it was given a slice of (main's bug before issue 20's fix)
}

// Fault kinds, counted per run.
const (
	FaultCrashIdle           = iota // node crash with nothing in flight
	FaultCrashPopped                // node crash between pop and journal
	FaultCrashCommitLost            // node crash during a commit: the unsynced frame lost
	FaultCrashCommitTorn            // ... torn
	FaultCrashCommitKept            // ... kept whole (it reached the disk, unanswered)
	FaultFsyncFailKept              // a failed commit whose frame reached the file
	FaultFsyncFailLost              // a failed commit whose frame did not
	FaultWriteFailTorn              // a failed commit that left a torn frame
	FaultCrashAfterApply            // node crash between the Redis apply and the cursor advance
	FaultRedisReplyLost             // a batch applied, its reply lost
	FaultRedisDown                  // Redis refusing every call for a while
	FaultRedisReadOnly              // Redis refusing writes (reads work) for a while
	FaultRedisWipe                  // Redis lost everything
	FaultRedisRollback              // Redis restored from an older snapshot
	FaultPartition                  // a node cut off from everyone for a while
	FaultNetDrop                    // a message dropped
	FaultNetDup                     // a message duplicated
	FaultCoordCrashPrepare          // coordinator crash mid-prepare
	FaultCoordCrashRain             // coordinator crash mid-rain
	FaultCoordCrashOther            // coordinator crash at another time
	FaultLeave                      // node stopped gracefully (flush, leftover recorded), restarted later
	FaultCrashMoveOut               // donor crash after journaling a move out, before delivering it
	FaultCrashMoveIn                // receiver crash after journaling a move in, before serving and acknowledging it
	FaultCrashOwnerJournaled        // owner crash after journaling a reservation, before answering
	FaultCrashAwaitingOwner         // node crash while a claim waits for its owner's reservation
	NumFaults
)

// FaultNames names the fault kinds.
var FaultNames = [NumFaults]string{"crash-idle", "crash-between-pop-and-journal", "crash-in-commit-lost",
	"crash-in-commit-torn", "crash-in-commit-kept", "fsync-failed-kept", "fsync-failed-lost", "write-failed-torn",
	"crash-between-apply-and-cursor", "redis-reply-lost", "redis-down", "redis-refuses-writes", "redis-wiped", "redis-rolled-back",
	"partition", "net-drop", "net-dup", "coord-crash-mid-prepare", "coord-crash-mid-rain", "coord-crash-other", "graceful-leave",
	"crash-after-move-out-journaled", "crash-after-move-in-journaled", "owner-crash-reserve-journaled",
	"crash-while-awaiting-owner"}

// Violation is a broken invariant: where and what.
type Violation struct {
	Seed      uint64
	Step      int
	Invariant string
	Detail    string
	Tail      []string // the last trace lines before it
}

func (v *Violation) Error() string {
	return fmt.Sprintf("seed %d step %d: invariant %s: %s", v.Seed, v.Step, v.Invariant, v.Detail)
}

// Result is one run's outcome.
type Result struct {
	Seed      uint64
	Steps     int
	Faults    [NumFaults]int
	Claims    int    // 200 answers sent
	Answers   int    // answers clients received
	NoAnswer  int    // taps whose request or answer was lost (a network error for the client)
	Status    string // the rain's final status
	Digest    uint64 // FNV-1a of the whole trace
	Violation *Violation
}

// rainSpec is a rain's rules as the taps and the checks need them.
type rainSpec struct {
	code          string
	total, count  int64
	maxPerUser    int
	minIntervalMS int
	users         uint64
}

// World is one seed's whole system.
type World struct {
	seed  uint64
	cfg   Config
	rng   *rain.Rand
	now   int64
	step  int
	heal  bool
	rate  uint64 // fault rate of this seed, per 1000 steps
	trace traceLog

	// the rain
	code          string
	total, count  int64
	alg           rain.Algorithm
	maxPerUser    int
	minIntervalMS int
	duration      int64
	prepTimeout   int64
	users         uint64
	routeByUser   bool
	side          *rainSpec            // a second rain, always on: its claims interleave in the journals
	sidePlan      []rain.Slice         // its slices, one per node, started when a node first boots
	specs         map[string]*rainSpec // both rains by code
	flushBatch    int
	writeBatch    int

	nodes  []*node
	coord  *coord
	redis  *redisModel
	net    network
	chk    checker
	faults [NumFaults]int
	reqs   map[uint64]reqInfo // every tap
	nextRq uint64
	result Result
	viol   *Violation

	leftCheck  bool // a node went down: check the leftover records
	rolledBack bool // Redis was restored from a snapshot (see checker.leftovers)
}

const ms = int64(1e6)

// Run plays one seed and returns its result; the same seed and config give the same result
// and trace.
func Run(seed uint64, cfg Config) Result {
	if cfg.Steps == 0 {
		cfg.Steps = 600
	}
	w := newWorld(seed, cfg)
	w.play()
	w.result.Seed, w.result.Steps, w.result.Faults = seed, w.step, w.faults
	w.result.Status, w.result.Digest, w.result.Violation = string(w.coord.status), w.trace.digest(), w.viol
	return w.result
}

func newWorld(seed uint64, cfg Config) *World {
	r := rain.NewRand(seed)
	w := &World{seed: seed, cfg: cfg, rng: r, now: sideStart, reqs: map[uint64]reqInfo{}}
	w.trace.init(cfg.Trace)
	w.code = fmt.Sprintf("sim%x", seed)
	w.count = 6 + int64(r.Uint64n(90))
	w.total = w.count + int64(r.Uint64n(uint64(w.count)*40))
	w.alg = [...]rain.Algorithm{rain.DoubleAverage, rain.LineCut, rain.Equal}[r.Uint64n(3)]
	w.maxPerUser = 1 + int(r.Uint64n(3))
	if r.Uint64n(5) == 0 {
		w.minIntervalMS = 1 + int(r.Uint64n(3))
	}
	w.duration = (150 + int64(r.Uint64n(400))) * ms
	w.prepTimeout = (30 + int64(r.Uint64n(70))) * ms
	w.users = 2 + r.Uint64n(uint64(w.count)/uint64(w.maxPerUser)+4)
	w.routeByUser = r.Uint64n(4) != 0
	w.flushBatch = 1 + int(r.Uint64n(6))
	w.writeBatch = 1 + int(r.Uint64n(6))
	w.rate = [...]uint64{0, 10, 25, 60}[r.Uint64n(4)]
	walSize := 32 + ledger.WALFrameSize(make([]ledger.Record, w.writeBatch))
	walSize += (1 + int(r.Uint64n(4))) * (1 + len(w.code) + ledger.RecordSize) * w.writeBatch
	for i := range 2 + int(r.Uint64n(3)) {
		id := fmt.Sprintf("n%d", i+1)
		n := &node{id: id, idx: i, j: newJournal(id, r.Uint64()|1, walSize)}
		w.nodes = append(w.nodes, n)
	}
	w.newSide()
	w.redis = &redisModel{mem: ledger.NewMemRedis()}
	w.coord = &coord{up: true, status: rain.Waiting, acks: map[int]bool{}, tells: map[uint64]msg{}}
	w.chk.init(w)
	w.tracef("seed %d: rain %s %d packets %d cents %s max_per_user %d interval %dms duration %dms, %d nodes, %d users, route by user %v, fault rate %d",
		seed, w.code, w.count, w.total, w.alg, w.maxPerUser, w.minIntervalMS, w.duration/ms, len(w.nodes), w.users,
		w.routeByUser, w.rate)
	for _, n := range w.nodes {
		if err := w.boot(n); err != nil {
			w.fail("recovery", "boot %s: %v", n.id, err)
		}
	}
	return w
}

// newSide draws the side rain: served by every node from its first boot until long after the
// run, so that journal sequences of the main rain have gaps and frames mix rains.
func (w *World) newSide() {
	r := w.rng
	s := &rainSpec{code: fmt.Sprintf("sid%x", w.seed), maxPerUser: 1 + int(r.Uint64n(3))}
	s.count = int64(len(w.nodes)) * (2 + int64(r.Uint64n(20)))
	s.total = s.count + int64(r.Uint64n(uint64(s.count)*20))
	s.users = 2 + r.Uint64n(uint64(s.count)/uint64(s.maxPerUser)+4)
	ids := make([]string, len(w.nodes))
	for i, n := range w.nodes {
		ids[i] = n.id
	}
	plan, err := rain.Plan(rain.PlanInput{Code: s.code, Epoch: 1, TotalAmount: s.total, TotalCount: s.count, Nodes: ids,
		Seed: rain.DeriveSeed(w.seed, 1<<32)})
	if err != nil {
		panic(err) // the inputs above are always valid
	}
	w.side, w.sidePlan = s, plan
	main := &rainSpec{code: w.code, total: w.total, count: w.count, maxPerUser: w.maxPerUser,
		minIntervalMS: w.minIntervalMS, users: w.users}
	w.specs = map[string]*rainSpec{main.code: main, s.code: s}
	w.tracef("side rain %s: %d packets %d cents max_per_user %d, %d users", s.code, s.count, s.total, s.maxPerUser, s.users)
}

// allIDs are the node ids, sorted: the side rain's holders.
func (w *World) allIDs() []string {
	ids := make([]string, len(w.nodes))
	for i, n := range w.nodes {
		ids[i] = n.id
	}
	return ids
}

// codes are the rains, main first.
func (w *World) codes() []string { return []string{w.code, w.side.code} }

// codeIdx is the index of a rain in codes.
func (w *World) codeIdx(code string) int {
	if code == w.code {
		return 0
	}
	return 1
}

// sideServe gives a node that has never held it its slice of the side rain, started: as a
// coordinator would, reliably.
func (w *World) sideServe(n *node) error {
	if ri := n.rains[w.side.code]; ri != nil && ri.meta.Epoch != 0 {
		return nil
	}
	for _, sl := range w.sidePlan {
		if sl.Node != n.id {
			continue
		}
		rules := ledger.RainMeta{Code: w.side.code, MaxPerUser: w.side.maxPerUser, Holders: w.allIDs()}
		if err := n.assign(rules, sl, w.cfg.Bugs); err != nil {
			return err
		}
	}
	return n.start(w.side.code, 1, sideStart, sideStart+int64(1e9)*3600)
}

// sideStart is when the side rain starts: the simulated clock's start.
const sideStart = 1_700_000_000 * 1e9

// fail records the first violation.
func (w *World) fail(inv, format string, args ...any) {
	if w.viol != nil {
		return
	}
	w.viol = &Violation{Seed: w.seed, Step: w.step, Invariant: inv, Detail: fmt.Sprintf(format, args...)}
	w.tracef("VIOLATION %s: %s", inv, w.viol.Detail)
	w.viol.Tail = w.trace.tail()
}

func (w *World) tracef(format string, args ...any) { w.trace.printf(w.step, w.now, format, args...) }

func (w *World) play() {
	for w.step = 1; w.step <= w.cfg.Steps && w.viol == nil; w.step++ {
		w.now += int64(w.rng.Uint64n(uint64(2 * ms)))
		w.stepOnce()
		w.ownerTimeouts(false)
		w.stockTimeouts(false)
		if w.viol == nil {
			w.chk.afterStep(w)
		}
	}
	if w.viol == nil {
		w.healAndSettle()
	}
}

// stepOnce picks and runs one event.
func (w *World) stepOnce() {
	r := w.rng.Uint64n(1000)
	switch {
	case r < w.rate:
		w.injectFault()
	case r < 220:
		w.tap()
	case r < 560:
		w.deliverOne(false)
	case r < 700:
		w.commitOne()
	case r < 790:
		w.flushOne()
	case r < 810:
		if n := w.pickNode(func(n *node) bool { return n.up }); n != nil {
			w.tracef("%s: applier", n.id)
			n.j.apply()
		}
	case r < 870:
		w.coordTick(false)
	case r < 885:
		w.resendOrGossip()
	case r < 900:
		if w.rng.Uint64n(3) == 0 {
			if n := w.pickNode(func(n *node) bool { return n.up && len(n.undelivered) > 0 }); n != nil {
				w.redeliver(n)
			}
		} else {
			w.ask()
		}
	default:
		w.mend()
	}
}

// pickNode returns a random node satisfying ok, or nil.
func (w *World) pickNode(ok func(*node) bool) *node {
	var c []*node
	for _, n := range w.nodes {
		if ok(n) {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[w.rng.Uint64n(uint64(len(c)))]
}

// tap sends one user's claim to a node (the load balancer's pick).
func (w *World) tap() {
	s := w.specs[w.code]
	if w.rng.Uint64n(3) == 0 {
		s = w.side
	}
	user := 1 + w.rng.Uint64n(s.users)
	to := int(w.rng.Uint64n(uint64(len(w.nodes))))
	if w.routeByUser {
		to = int(user % uint64(len(w.nodes)))
	}
	w.nextRq++
	w.reqs[w.nextRq] = reqInfo{node: to, user: user, code: s.code}
	w.net.send(msg{kind: mClaim, node: to, req: w.nextRq, user: user, code: s.code})
}

// deliverOne delivers a random message in flight; with faults on, it may drop or duplicate it.
func (w *World) deliverOne(reliable bool) bool {
	if len(w.net.inflight) == 0 {
		return false
	}
	i := 0 // mostly one of the oldest few (a delay), sometimes any (reordered)
	if !reliable {
		i = int(w.rng.Uint64n(uint64(min(len(w.net.inflight), 3))))
		if w.rng.Uint64n(8) == 0 {
			i = int(w.rng.Uint64n(uint64(len(w.net.inflight))))
		}
	}
	m := w.net.take(i)
	if !reliable && w.rate > 0 {
		switch w.rng.Uint64n(100) {
		case 0, 1:
			w.faults[FaultNetDrop]++
			w.tracef("net: drop %v #%d (%s)", m.kind, m.id, w.nodes[m.node].id)
			w.lost(m)
			return true
		case 2:
			if m.kind != mClaim && m.kind != mAnswer { // HTTP requests and answers are not repeated
				w.faults[FaultNetDup]++
				w.net.send(m)
			}
		}
	}
	n := w.nodes[m.node]
	if n.cut || (m.kind.nodeToNode() && w.nodes[m.peer].cut) {
		w.tracef("net: %v #%d cut off (%s)", m.kind, m.id, n.id)
		w.lost(m)
		return true
	}
	if m.kind.toNode() {
		w.atNode(n, m)
	} else if m.kind == mAnswer {
		w.chk.received(w, m)
	} else {
		w.onAck(m)
	}
	return true
}

// lost is a message that never arrives; a lost tap or answer leaves the client without one.
func (w *World) lost(m msg) {
	if m.kind == mClaim || m.kind == mAnswer {
		w.chk.noAnswer(w)
	}
}

// atNode handles a message arriving at node n.
func (w *World) atNode(n *node, m msg) {
	if !n.up {
		w.tracef("%s: down, %v #%d lost", n.id, m.kind, m.id)
		w.lost(m)
		return
	}
	code := m.code // a claim's rain; the lifecycle messages are the main rain's
	if code == "" {
		code = w.code
	}
	n.dirty[w.codeIdx(code)] = true
	var err error
	switch m.kind {
	case mClaim:
		w.claim(n, m)
		return
	case mReserve, mReserveAns, mRelease:
		w.atOwners(n, m)
		return
	case mGive, mMoves, mMovesAck:
		w.atMoves(n, m)
		return
	case mAssign:
		rules := w.rules()
		rules.Holders = m.holders
		err = n.assign(rules, m.slice, w.cfg.Bugs)
		kind := mAssignAck
		if errors.Is(err, errConflict) {
			kind = mAssignNo
		}
		w.tracef("%s: assign epoch %d slice %d (%d packets): %v", n.id, m.slice.Epoch, m.slice.ID, m.slice.Count, err)
		if err == nil || kind == mAssignNo {
			w.net.send(msg{kind: kind, node: n.idx, req: m.req, epoch: m.slice.Epoch})
		}
		return
	case mStart:
		err = n.start(w.code, m.epoch, m.a, m.b)
	case mStop:
		err = n.stop(w.code, m.a)
	case mDiscard:
		err = n.discard(w.code, m.epoch)
	case mSettle:
		err = n.settle(w.code)
	}
	w.tracef("%s: %v epoch %d: %v", n.id, m.kind, m.epoch, err)
	if err == nil || errors.Is(err, errConflict) {
		w.net.send(msg{kind: mTellAck, node: n.idx, req: m.req})
	}
}

// claim mirrors node.handleClaim up to the journal: pop, then queue for the writer (or, with
// the journal failed, release and answer 503 at once).
func (w *World) claim(n *node, m msg) {
	if n.held[m.code] {
		w.answer(n, m.req, answer{status: 503, word: "journal_unavailable"})
		return
	}
	c, err := n.store.Claim([]byte(m.code), m.user, w.now)
	if errors.Is(err, shard.ErrExhausted) && w.awaitStock(n, m) {
		return
	}
	if err != nil {
		w.answer(n, m.req, answerOf(err))
		return
	}
	w.askOwner(n, pending{code: m.code, user: m.user, claim: c, req: m.req, at: w.now, owner: -1})
}

func answerOf(err error) answer {
	switch {
	case errors.Is(err, shard.ErrUnknownRain):
		return answer{status: 404, word: "unknown_rain"}
	case errors.Is(err, shard.ErrNotStarted):
		return answer{status: 425, word: "not_started"}
	case errors.Is(err, shard.ErrFinished):
		return answer{status: 410, word: "finished"}
	case errors.Is(err, shard.ErrExhausted):
		return answer{status: 410, word: "exhausted"}
	case errors.Is(err, shard.ErrUserLimit):
		return answer{status: 429, word: "user_limit"}
	case errors.Is(err, shard.ErrRateLimited):
		return answer{status: 429, word: "rate_limited"}
	}
	return answer{status: 500, word: "internal: " + err.Error()}
}

func (w *World) answer(n *node, req uint64, a answer) {
	switch a.word {
	case "ok":
		w.chk.sent200(w, n, req, a)
	case "exhausted", "user_limit":
		w.chk.refused(w, n, req, a)
	}
	w.net.send(msg{kind: mAnswer, node: n.idx, req: req, ans: a, code: w.reqs[req].code})
}

// commitOne runs one writer commit on a node with queued claims; with faults on, the commit
// may fail or the node crash in it.
func (w *World) commitOne() {
	n := w.pickNode(func(n *node) bool { return n.up && len(n.queue) > 0 })
	if n == nil {
		w.deliverOne(false)
		return
	}
	out := commitOK
	if w.rate > 0 && w.rng.Uint64n(1000) < w.rate/2 {
		out = commitOutcome(1 + w.rng.Uint64n(6))
	}
	w.commitNode(n, out)
}

// commitNode commits up to writeBatch queued claims of n with outcome out.
func (w *World) commitNode(n *node, out commitOutcome) {
	n.ownj, n.ownLag = append(n.ownj, n.ownLag...), nil // planted OwnerAnswersFirst: its late journal write
	k := min(len(n.queue), w.writeBatch)
	batch := n.queue[:k:k]
	n.queue = n.queue[k:]
	for _, p := range batch {
		n.dirty[w.codeIdx(p.code)] = true
	}
	recs := make([]ledger.Record, k)
	for i, p := range batch {
		recs[i] = ledger.Record{Code: p.code, Slice: p.claim.Slice, Epoch: p.claim.Epoch, Index: p.claim.Index,
			User: p.user, Amount: p.claim.Amount, UnixNano: p.at}
	}
	first, err := n.j.commit(recs, out, func(l int) int { return 1 + int(w.rng.Uint64n(uint64(l-1))) })
	w.tracef("%s: commit %d records: %v first seq %d: %v", n.id, k, out, first, err)
	switch out {
	case commitOK:
	case commitFailKept:
		w.faults[FaultFsyncFailKept]++
	case commitFailLost:
		w.faults[FaultFsyncFailLost]++
	case commitFailTorn:
		w.faults[FaultWriteFailTorn]++
	default:
		w.faults[FaultCrashCommitLost+int(out-commitCrashLost)]++
		w.crashNode(n, "in commit")
		return
	}
	if err != nil {
		for _, p := range batch {
			w.journalFailed(n, p.code, p, err)
			w.ownerJournalFailed(n, p, err)
			w.answer(n, p.req, answer{status: 503, word: "journal_unavailable"})
		}
		return
	}
	w.chk.published(w, n)
	for i, p := range batch {
		w.answer(n, p.req, answer{status: 200, word: "ok", amount: p.claim.Amount, seq: first + uint64(i)})
	}
}

// flushOne runs one flusher step of a node; with faults on, Redis may lose the reply or the
// node may crash right after the apply, before its cursor moves.
func (w *World) flushOne() {
	n := w.pickNode(func(n *node) bool { return n.up })
	if n == nil {
		return
	}
	code := w.codes()[w.rng.Uint64n(2)]
	if _, ok := n.j.mem.Totals(code); !ok {
		return
	}
	crashAfter := false
	if w.rate > 0 && w.rng.Uint64n(1000) < w.rate/2 {
		w.redis.loseReply = true
		crashAfter = w.rng.Uint64n(2) == 0
	}
	recheck := w.rng.Uint64n(8) == 0
	done, err := n.flushPass(code, recheck)
	w.tracef("%s: flush pass of %s (recheck %v): done %v %v", n.id, code, recheck, done, err)
	if errors.Is(err, errReplyLost) {
		if crashAfter {
			w.faults[FaultCrashAfterApply]++
			w.crashNode(n, "between the redis apply and the cursor advance")
		} else {
			w.faults[FaultRedisReplyLost]++
		}
	}
	w.redis.loseReply = false
}

// resendOrGossip: the coordinator's retries, or a round of gossip to a node.
func (w *World) resendOrGossip() {
	if !w.coord.up {
		return
	}
	if w.rng.Uint64n(2) == 0 {
		w.resend()
		return
	}
	w.gossip(int(w.rng.Uint64n(uint64(len(w.nodes)))))
}
