package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/gossip"
	"redrain/internal/logpace"
	"redrain/internal/redisconn"
	"redrain/internal/usertoken"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// Node is one claim-serving process. Create it with New, serve with Run; Close (or the end of
// Run's context) stops it gracefully.
type Node struct {
	opts    Options
	log     *slog.Logger
	store   *shard.Store
	journal Journal
	rdb     Redis
	flusher *ledger.Flusher
	verify  *wire.Verifier
	metrics *metrics

	ln      net.Listener
	server  *fasthttp.Server
	gossip  *gossip.Bound // the gossip address, bound by New (nil with Options.Cluster); Start turns it into cluster
	cluster Cluster       // nil until Start

	codes atomic.Pointer[map[string]hotRain] // per rain code: what the claim path needs, lock-free

	userKey    *usertoken.Key // token mode; nil in gateway mode
	trusted    []netip.Prefix // proxies whose X-Forwarded-For is believed
	ipLimit    *ipLimiter     // nil: no per-address limit
	ready      atomic.Bool
	refusedLog logpace.Limiter // paces the log of refused internal requests

	events *eventHub // viewers' event streams (events.go)

	limbo limbo // popped packets whose journal commit failed, until the journal is reopened

	moves moveState // stock follows demand (moves.go)

	compaction compactionState // rains past retention kept for the wallet

	owner ownerState // per-user owners: max_per_user cluster-wide (owner.go)

	mu    sync.Mutex // serialises lifecycle changes of rains (internal API, gossip news)
	rains map[string]*rainInfo

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}
	bg       sync.WaitGroup
	cancelBg context.CancelFunc
	bgCtx    context.Context // the background loops' context, ended by Close (Background before Start)
}

// rainInfo is what the node knows of a rain besides the shard's packets. Guarded by Node.mu.
type rainInfo struct {
	meta   ledger.RainMeta
	rules  wire.RainRules
	epochs map[uint64]bool        // epochs of which slices are held
	slices map[sliceID]rain.Slice // the slices held, to tell a repeated assignment from a clash
}

type sliceID struct {
	epoch uint64
	id    uint32
}

// New checks the options, binds the HTTP listener and the gossip address, then opens the
// journal and recovers every rain from it. A bad option (ErrOptions) or an address it cannot
// bind (ErrListen) is reported before anything is created or opened on disk. It does not serve
// or join the cluster yet: Start does.
func New(opts Options) (*Node, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	n := &Node{opts: opts, log: opts.Logger.With("node", opts.ID), store: shard.New(),
		verify: wire.NewVerifier(opts.Secret), rains: map[string]*rainInfo{}, stopped: make(chan struct{}),
		moves: newMoveState(opts.Secret), bgCtx: context.Background()}
	n.codes.Store(&map[string]hotRain{})
	if opts.Auth == AuthToken {
		n.userKey = usertoken.NewKey([]byte(opts.UserKey))
	}
	n.trusted, _ = ParseTrustedProxies(opts.TrustedProxies)
	if opts.IPRate > 0 {
		n.ipLimit = newIPLimiter(opts.IPRate, opts.IPBurst)
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	if err := n.openJournal(); err != nil {
		n.closeGossip()
		n.closeOwnListener()
		return nil, err
	}
	if n.rdb = opts.Redis; n.rdb == nil {
		n.rdb = ledger.NewRedisClient(redisconn.Open(opts.RedisURL, opts.RedisCluster)) // validated
	}
	n.flusher = ledger.NewFlusherTo(n.journal, n.rdb, ledger.FlusherOptions{NodeID: opts.ID, Logger: n.log})
	n.metrics = newMetrics(n)
	n.server = n.newServer()
	n.events = newEventHub(hubOptions{max: opts.MaxSubscribers, perAddr: opts.MaxSubscribersPerIP,
		heartbeat: opts.Heartbeat, writeTimeout: opts.EventWriteTimeout})
	n.events.registerMetrics(n.metrics.reg)
	return n, nil
}

// listen binds HTTPAddr (unless Options.Listener is given) and then the gossip address; on
// error nothing stays bound.
func (n *Node) listen() error {
	var err error
	if n.ln = n.opts.Listener; n.ln == nil {
		if n.ln, err = net.Listen("tcp", n.opts.HTTPAddr); err != nil {
			return fmt.Errorf("%w: http %s: %v", ErrListen, n.opts.HTTPAddr, err)
		}
	}
	if n.opts.Cluster != nil {
		return nil
	}
	g := gossip.DefaultOptions()
	if n.opts.FastGossip {
		g = gossip.LocalOptions()
	}
	g.Meta = gossip.Meta{ID: n.opts.ID, Role: gossip.RoleNode, HTTPAddr: n.advertised(n.HTTPAddr())}
	g.BindAddr, g.Secret, g.Join, g.Logger = n.opts.GossipAddr, n.opts.Secret, n.opts.Join, n.log
	if n.opts.Advertise != "" {
		g.AdvertiseAddr = net.JoinHostPort(n.opts.Advertise, "0") // port 0: the one bound
	}
	g.OnNews = n.onNews // called only once Start has started gossiping, after recovery
	if n.gossip, err = gossip.Bind(g); err != nil {
		n.closeOwnListener()
		if errors.Is(err, gossip.ErrBind) {
			return fmt.Errorf("%w: gossip %s: %v", ErrListen, n.opts.GossipAddr, err)
		}
		return fmt.Errorf("%w: gossip: %v", ErrOptions, err)
	}
	return nil
}

// advertised is bound (host:port) with its host replaced by Options.Advertise, if given.
func (n *Node) advertised(bound string) string {
	_, port, err := net.SplitHostPort(bound)
	if n.opts.Advertise == "" || err != nil {
		return bound
	}
	return net.JoinHostPort(n.opts.Advertise, port)
}

// closeGossip releases the gossip address if New bound one and Start did not take it.
func (n *Node) closeGossip() {
	if n.gossip != nil {
		n.gossip.Close()
	}
}

// closeOwnListener closes the HTTP listener if New bound it (not one given in Options), when
// New fails.
func (n *Node) closeOwnListener() {
	if n.opts.Listener == nil {
		n.ln.Close()
	}
}

// openJournal opens the journal (or takes Options.Journal) and rebuilds the store from it.
func (n *Node) openJournal() error {
	j := n.opts.Journal
	if j == nil {
		jo := ledger.DefaultOptions(filepath.Join(n.opts.DataDir, "journal.db"), n.opts.ID)
		jo.Logger = n.log
		if n.opts.WALSize != 0 {
			jo.WALSize = n.opts.WALSize
		}
		jo.ApplyEvery = n.opts.ApplyEvery
		lj, err := ledger.Open(jo)
		if err != nil {
			return fmt.Errorf("node: open journal: %w", err)
		}
		j = lj
	}
	n.journal = j
	began := time.Now()
	if err := n.recover(); err != nil {
		j.Close()
		return fmt.Errorf("node: recover: %w", err)
	}
	n.log.Info("recovered journal", "rains", len(n.rains), "incarnation", fmt.Sprintf("%016x", j.Incarnation()),
		"took", time.Since(began).Round(time.Millisecond))
	return nil
}

// HTTPAddr is the bound claim API address.
func (n *Node) HTTPAddr() string { return n.ln.Addr().String() }

// GossipAddr is the bound gossip address, once Run has joined.
func (n *Node) GossipAddr() string {
	if n.cluster == nil {
		return ""
	}
	return n.cluster.GossipAddr()
}

// Incarnation is the journal's incarnation, part of every claim_id.
func (n *Node) Incarnation() uint64 { return n.journal.Incarnation() }

// Start starts gossiping on the address New bound (joining the cluster in the background),
// serving and flushing.
func (n *Node) Start() error {
	if n.gossip == nil {
		n.cluster = n.opts.Cluster
	} else {
		c, err := n.gossip.Start()
		if err != nil {
			return fmt.Errorf("node: gossip: %w", err)
		}
		n.cluster = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancelBg, n.bgCtx = cancel, ctx
	n.events.start()
	n.bg.Add(7)
	go func() { defer n.bg.Done(); n.moverLoop(ctx) }()
	go func() { defer n.bg.Done(); n.moveRecorder(ctx) }()
	go func() { defer n.bg.Done(); n.repairLoop(ctx) }()
	go func() { defer n.bg.Done(); n.clearLeftovers(ctx) }()
	go func() { defer n.bg.Done(); n.flusher.Run(ctx) }()
	go func() { defer n.bg.Done(); n.janitor(ctx) }()
	go func() {
		defer n.bg.Done()
		if err := n.server.Serve(n.ln); err != nil {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	n.ready.Store(true)
	n.log.Info("serving", "http", n.HTTPAddr(), "gossip", n.cluster.GossipAddr())
	return nil
}

// Run starts the node and blocks until ctx is done, then stops it gracefully.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(); err != nil {
		n.Close()
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// Close stops the node gracefully: not ready, stop accepting and finish in-flight claims, commit
// the journal, flush everything to Redis (bounded), record leftovers of finished rains, leave the
// cluster. Safe to call more than once and concurrently.
func (n *Node) Close() error {
	n.stopOnce.Do(func() { n.stopErr = n.shutdown(); close(n.stopped) })
	<-n.stopped
	return n.stopErr
}

// ShutdownTimeout bounds each step of the graceful stop.
const ShutdownTimeout = 10 * time.Second

func (n *Node) shutdown() error {
	n.ready.Store(false)
	n.events.close() // viewers reconnect elsewhere at once
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := n.server.ShutdownWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	n.ln.Close() // a Serve that had not reached Accept when Shutdown ran returns now
	if n.cancelBg != nil {
		n.cancelBg()
	}
	n.bg.Wait()
	if n.cluster != nil {
		n.redeliver(ctx) // moves out not yet acknowledged: the receivers' once they have them
		n.recordMoves(ctx, true)
		if err := n.flusher.FlushAll(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final flush: %w", err))
		} else {
			n.recordLeftovers(ctx)
		}
		if err := n.cluster.Leave(2 * time.Second); err != nil {
			n.log.Warn("gossip leave", "err", err)
		}
		n.cluster.Shutdown()
	}
	n.closeGossip() // releases the address if Start never ran
	n.ln.Close()
	n.rdb.Close()
	if err := n.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("journal close: %w", err))
	}
	if err := n.closeOwners(); err != nil {
		errs = append(errs, fmt.Errorf("owners journal close: %w", err))
	}
	n.log.Info("stopped")
	return errors.Join(errs...)
}

// recordLeftovers writes each started rain's unclaimed remainder to Redis, so a graceful
// departure counts as leftover, not lost, in the report. Only after everything was flushed.
// The journal learns first that a record exists, so a restarted node knows to clear it before it
// serves the rain again (see clearLeftovers).
func (n *Node) recordLeftovers(ctx context.Context) {
	now := time.Now().UnixNano()
	for _, code := range n.store.Codes() {
		p, ok := n.store.Progress(code, now)
		if !ok || !p.Started {
			continue
		}
		if err := n.noteLeftoverRecorded(code, true); err != nil {
			n.log.Warn("record leftover", "rain", code, "err", err)
			continue
		}
		if err := n.rdb.RecordLeftover(ctx, code, n.opts.ID, p.RemainingAmount); err != nil {
			n.log.Warn("record leftover", "rain", code, "err", err)
		}
	}
}

// noteLeftoverRecorded stores in the rain's metadata whether a leftover record of this node may be
// in Redis.
func (n *Node) noteLeftoverRecorded(code string, recorded bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	if ri == nil || ri.meta.LeftoverRecorded == recorded {
		return nil
	}
	m := ri.meta
	m.LeftoverRecorded = recorded
	if err := n.journal.PutRain(m); err != nil {
		return err
	}
	ri.meta = m
	return nil
}

// Rain states the claim path acts on before it touches the store.
const (
	rainServing   uint8 = iota // the store decides
	rainHeld                   // a leftover record of an earlier run is not cleared yet: 503
	rainCompacted              // retention dropped its records: 410 finished
)

// hotRain is what the claim path reads of a rain without a lock: its interned code (so the
// journal record allocates no string), its room (token mode checks it) and its state.
type hotRain struct {
	code  string
	room  int64
	state uint8
}

// intern publishes a rain's hot facts, copying the map on change. Called under n.mu, or before
// the node serves.
func (n *Node) intern(code string, room int64, state uint8) {
	old := *n.codes.Load()
	if h, ok := old[code]; ok && h.room == room && h.state == state {
		return
	}
	m := make(map[string]hotRain, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[code] = hotRain{code: code, room: room, state: state}
	n.codes.Store(&m)
}

func specOf(r wire.RainRules) shard.RainSpec {
	return shard.RainSpec{Code: r.Code, MaxPerUser: r.MaxPerUser,
		MinClaimInterval: int64(r.MinClaimIntervalMS) * int64(time.Millisecond)}
}

func rulesOf(m ledger.RainMeta) wire.RainRules {
	return wire.RainRules{Code: m.Code, MaxPerUser: m.MaxPerUser, MinClaimIntervalMS: m.MinClaimIntervalMS, RoomID: m.RoomID,
		Holders: m.Holders}
}

// ErrAmountMismatch: a journaled amount differs from the regenerated slice (generator changed
// or journal corrupted); the node refuses to start rather than pay wrong amounts.
var ErrAmountMismatch = shard.ErrAmountMismatch

// recover rebuilds the store from the journal: slices regenerated from their seeds, journaled
// indices marked claimed (their amounts checked), per-user counts, started/stopped windows.
func (n *Node) recover() error {
	rec, err := n.journal.Recover()
	if err != nil {
		return err
	}
	for _, m := range rec.Rains {
		n.rains[m.Code] = &rainInfo{meta: m, rules: rulesOf(m), epochs: map[uint64]bool{}}
		state := rainServing
		if m.CompactedAt != 0 {
			state = rainCompacted
		}
		n.intern(m.Code, m.RoomID, state)
	}
	if err := n.recoverWindows(rec); err != nil {
		return err
	}
	if err := n.openOwners(rec.Users); err != nil { // the claims' per-user counts plus the reservations granted
		return err
	}
	now := time.Now().UnixNano()
	for _, ri := range n.rains {
		if err := n.applyWindow(ri); err != nil {
			return err
		}
		if n.mustClearLeftover(ri.meta.Code, now) {
			n.intern(ri.meta.Code, ri.meta.RoomID, rainHeld)
		}
	}
	return nil
}

// mustClearLeftover reports whether the rain may still pay claims here while a leftover record
// of an earlier run of this node may be in Redis. A rain that is over keeps its record: it is
// exact, since nothing more can be paid.
func (n *Node) mustClearLeftover(code string, now int64) bool {
	ri := n.rains[code]
	if ri == nil || !ri.meta.LeftoverRecorded || ri.meta.CompactedAt != 0 {
		return false
	}
	p, ok := n.store.Progress(code, now)
	return ok && !p.Finished
}

// applyWindow pushes a rain's stored start and stop into the store.
func (n *Node) applyWindow(ri *rainInfo) error {
	m := ri.meta
	if m.Epoch != 0 && ri.epochs[m.Epoch] {
		if err := n.store.Start(m.Code, m.Epoch, m.StartsAt, m.EndsAt); err != nil {
			return fmt.Errorf("start %s: %w", m.Code, err)
		}
	}
	if m.StoppedAt != 0 {
		n.store.Stop(m.Code, m.StoppedAt)
	}
	return nil
}

// Errors of the lifecycle operations, mapped to HTTP codes by the internal API.
var (
	ErrUnknownRain = errors.New("node: unknown rain")                // 404
	ErrConflict    = errors.New("node: conflicts with rain's state") // 409
	ErrBadRequest  = errors.New("node: bad request")                 // 400
)

// assign stores a slice durably, generates it and adds it to the store; idempotent.
func (n *Node) assign(a wire.SliceAssignment) error {
	sl, r := a.Slice, a.Rules
	switch {
	case sl.Node != n.opts.ID:
		return fmt.Errorf("%w: slice is for node %q, not %q", ErrBadRequest, sl.Node, n.opts.ID)
	case r.Code != sl.Code || !rain.ValidCode(sl.Code):
		return fmt.Errorf("%w: bad rain code", ErrBadRequest)
	case r.MaxPerUser < 1 || r.MaxPerUser > rain.MaxMaxPerUser:
		return fmt.Errorf("%w: max_per_user out of range", ErrBadRequest)
	case r.MinClaimIntervalMS < 0 || r.MinClaimIntervalMS > rain.MaxMinClaimInterval:
		return fmt.Errorf("%w: min_claim_interval_ms out of range", ErrBadRequest)
	case sl.Epoch == 0:
		return fmt.Errorf("%w: epoch 0", ErrBadRequest)
	}
	if err := sl.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[sl.Code]
	if ri != nil {
		if held, ok := ri.slices[sliceID{sl.Epoch, sl.ID}]; ok {
			if held == sl {
				return nil // a repeated assignment: already durable
			}
			return fmt.Errorf("%w: slice %d of epoch %d is already held with other content", ErrConflict, sl.ID, sl.Epoch)
		}
	}
	switch {
	case ri != nil && ri.meta.CompactedAt != 0:
		return fmt.Errorf("%w: rain is over and compacted here", ErrConflict)
	case ri != nil && sl.Epoch <= ri.meta.MinEpoch:
		return fmt.Errorf("%w: epoch %d was abandoned", ErrConflict, sl.Epoch)
	case ri != nil && ri.meta.Epoch != 0 && ri.meta.Epoch != sl.Epoch:
		return fmt.Errorf("%w: rain already serves epoch %d", ErrConflict, ri.meta.Epoch)
	}
	amounts, err := rain.Generate(sl)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if ri == nil || ri.rules.MaxPerUser == 0 {
		m := ledger.RainMeta{Code: r.Code, MaxPerUser: r.MaxPerUser, MinClaimIntervalMS: r.MinClaimIntervalMS, RoomID: r.RoomID,
			Holders: r.Holders}
		if ri != nil {
			m.MinEpoch = ri.meta.MinEpoch
		}
		if err := n.journal.PutRain(m); err != nil {
			return err
		}
		ri = &rainInfo{meta: m, rules: r, epochs: map[uint64]bool{}}
		n.rains[r.Code] = ri
		n.intern(r.Code, r.RoomID, rainServing)
	} else if ri.meta.Epoch == 0 && len(r.Holders) > 0 && !slices.Equal(ri.meta.Holders, r.Holders) && newestHeld(ri) <= sl.Epoch {
		// A newer prepare of a rain not started (the earlier ones abandoned): its holders are the
		// rain's, as they are on every node it gave a slice to (owners and moves agree on them).
		m := ri.meta
		m.Holders = r.Holders
		if err := n.journal.PutRain(m); err != nil {
			return err
		}
		ri.meta, ri.rules.Holders = m, r.Holders
		n.forgetOwners(r.Code)
	}
	if err := n.journal.PutSlice(sl); err != nil {
		return err
	}
	if err := n.store.AddSlice(specOf(ri.rules), sl, amounts, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	ri.hold(sl)
	return nil
}

// newestHeld is the newest epoch of which the rain holds a slice (0: none). The caller holds n.mu.
func newestHeld(ri *rainInfo) (e uint64) {
	for k := range ri.slices {
		e = max(e, k.epoch)
	}
	return e
}

// forgetOwners drops the rain's owner table, rebuilt from its holders on next use.
func (n *Node) forgetOwners(code string) {
	n.owner.mu.Lock()
	defer n.owner.mu.Unlock()
	old := n.owner.rains.Load()
	if old == nil || (*old)[code] == nil {
		return
	}
	m := maps.Clone(*old)
	delete(m, code)
	n.owner.rains.Store(&m)
}

// hold records a slice as held.
func (ri *rainInfo) hold(sl rain.Slice) {
	ri.epochs[sl.Epoch] = true
	if ri.slices == nil {
		ri.slices = map[sliceID]rain.Slice{}
	}
	ri.slices[sliceID{sl.Epoch, sl.ID}] = sl
}

// forget drops the record of an epoch's slices (discarded, or not the one started).
func (ri *rainInfo) forget(epoch uint64) {
	delete(ri.epochs, epoch)
	for k := range ri.slices {
		if k.epoch == epoch {
			delete(ri.slices, k)
		}
	}
}

// start makes a rain's epoch servable, durably first.
func (n *Node) start(code string, s wire.Start) error {
	if s.EndsAt <= s.StartsAt || s.Epoch == 0 {
		return fmt.Errorf("%w: bad window or epoch", ErrBadRequest)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	switch {
	case ri == nil:
		return ErrUnknownRain
	case ri.meta.Epoch == s.Epoch:
		return nil // repeated (direct and by gossip)
	case ri.meta.Epoch != 0:
		return fmt.Errorf("%w: already serving epoch %d", ErrConflict, ri.meta.Epoch)
	case !ri.epochs[s.Epoch]:
		return fmt.Errorf("%w: no slice of epoch %d here", ErrUnknownRain, s.Epoch)
	}
	m := ri.meta
	m.Epoch, m.StartsAt, m.EndsAt = s.Epoch, s.StartsAt, s.EndsAt
	if err := n.journal.PutRain(m); err != nil {
		return err
	}
	ri.meta = m
	for e := range ri.epochs {
		if e != s.Epoch {
			if err := n.journal.DropSlices(code, e); err != nil {
				n.log.Warn("drop abandoned slices", "rain", code, "epoch", e, "err", err)
			}
			ri.forget(e)
		}
	}
	n.log.Info("rain started", "rain", code, "epoch", s.Epoch)
	return n.store.Start(code, s.Epoch, s.StartsAt, s.EndsAt)
}

// stop refuses claims from at on, durably first.
func (n *Node) stop(code string, at int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	if ri == nil {
		return ErrUnknownRain
	}
	if ri.meta.StoppedAt != 0 && ri.meta.StoppedAt <= at {
		return nil
	}
	m := ri.meta
	m.StoppedAt = at
	if err := n.journal.PutRain(m); err != nil {
		return err
	}
	ri.meta = m
	n.store.Stop(code, at)
	n.log.Info("rain stopped", "rain", code)
	return nil
}

// discard drops the slices of an abandoned prepare.
func (n *Node) discard(code string, epoch uint64) error {
	if epoch == 0 {
		return fmt.Errorf("%w: epoch 0", ErrBadRequest)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	if ri == nil { // the discard overtook its slice: remember it, so the slice is refused
		ri = &rainInfo{meta: ledger.RainMeta{Code: code}, epochs: map[uint64]bool{}}
	}
	if ri.meta.Epoch == epoch {
		return fmt.Errorf("%w: epoch %d is being served", ErrConflict, epoch)
	}
	if epoch > ri.meta.MinEpoch {
		m := ri.meta
		m.MinEpoch = epoch
		if err := n.journal.PutRain(m); err != nil {
			return err
		}
		ri.meta = m
		n.rains[code] = ri
	}
	if err := n.journal.DropSlices(code, epoch); err != nil {
		return err
	}
	n.store.DropEpoch(code, epoch)
	ri.forget(epoch)
	return nil
}

// settle records that the coordinator settled the rain.
func (n *Node) settle(code string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	if ri == nil {
		return ErrUnknownRain
	}
	if ri.meta.Settled {
		return nil
	}
	m := ri.meta
	m.Settled = true
	if err := n.journal.PutRain(m); err != nil {
		return err
	}
	ri.meta = m
	return nil
}

// onNews applies lifecycle news that arrived by gossip (a node that missed the direct call).
func (n *Node) onNews(ns gossip.News) {
	n.events.publish(lifecycleOf(ns))
	var err error
	switch ns.Kind {
	case gossip.KindStarted:
		err = n.start(ns.Code, wire.Start{Epoch: ns.Epoch, StartsAt: ns.StartsAt, EndsAt: ns.EndsAt})
	case gossip.KindStopped:
		err = n.stop(ns.Code, ns.StoppedAt)
	}
	if err != nil && !errors.Is(err, ErrUnknownRain) {
		n.log.Warn("gossip news not applied", "rain", ns.Code, "kind", ns.Kind, "err", err)
	}
}

// addShare sets a progress's slice figures to the slices assigned here (the store's windows
// also count stock moved in, and a restarted donor's stop where its moves out began) and adds
// the moves per peer.
func (n *Node) addShare(w *wire.Progress) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[w.Code]
	if ri == nil {
		return
	}
	w.SliceCount, w.SliceAmount = 0, 0
	for k, sl := range ri.slices {
		if k.epoch == w.Epoch {
			w.SliceCount += sl.Count
			w.SliceAmount += sl.Amount
		}
	}
	w.MovesIn = moveSums(ri.meta.MovesIn, func(m rain.Move) string { return m.From })
	w.MovesOut = moveSums(ri.meta.MovesOut, func(m rain.Move) string { return m.To })
}

// progress reports the rains held here (all, or the one named).
func (n *Node) progress(only string) wire.ProgressList {
	out := wire.ProgressList{Node: n.opts.ID, Rains: []wire.Progress{}}
	now := time.Now().UnixNano()
	for _, code := range n.store.Codes() {
		if only != "" && code != only {
			continue
		}
		p, ok := n.store.Progress(code, now)
		if !ok {
			continue
		}
		t, _ := n.journal.Totals(code)
		fc, fa, _ := n.flusher.Flushed(code)
		w := wire.Progress{Code: code, Epoch: p.Epoch, SliceCount: p.Count,
			SliceAmount: p.Amount, ClaimedCount: t.Count, ClaimedAmount: t.Amount, FlushedCount: fc,
			FlushedAmount: fa, RemainingCount: p.RemainingCount, RemainingAmount: p.RemainingAmount,
			Started: p.Started, Finished: p.Finished, Exhausted: p.Exhausted}
		n.addShare(&w)
		w.Exhausted = w.Exhausted && !n.inTransit(code) // stock on its way to a live node is not gone
		out.Rains = append(out.Rains, w)
	}
	return out
}
