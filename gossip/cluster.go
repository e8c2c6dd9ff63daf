package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Cluster is this process's membership in the gossip cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	opts    Options // validated
	log     *slog.Logger
	meta    []byte      // encoded opts.Meta, <= memberlist.MetaMaxSize
	bye     []byte      // the same, marked leaving
	leaving atomic.Bool // NodeMeta sends bye
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	events  *dispatcher
	addr    string       // our gossip host:port, as peers see it
	live    atomic.Int32 // members alive or suspect (us included): sizes the broadcast retransmits

	mu      sync.Mutex // guards the fields below; never held while calling memberlist
	members map[string]*memberEntry
	news    *newsStore
	stock   map[string]map[string]Stock // rain -> node -> latest hint (stock.go)
	closed  bool

	lifeMu       sync.Mutex    // serialises Leave and Shutdown
	left         bool          // under lifeMu
	update       *nodeUpdate   // under lifeMu: Leave's latest UpdateNode call
	stopJoin     chan struct{} // closed by Leave or Shutdown: the join loop stops
	selfLeft     chan struct{} // closed (selfLeftOnce) once memberlist's state of this member bears the leaving mark
	selfLeftOnce sync.Once
	stop         chan struct{} // closed by Shutdown: every loop stops
	wg           sync.WaitGroup

	joinAttempts atomic.Int64 // calls of memberlist.Join by the join loop (tests watch it)
}

// memberEntry is the member table's record of one member.
type memberEntry struct {
	m       Member
	udp     *net.UDPAddr // m.GossipAddr, for pings
	changed time.Time    // when m.State last changed
	gen     uint64       // bumped by every memberlist event: older ping results are ignored
	misses  int          // pings in a row left unanswered (TrackSuspects)
}

// suspectAfter is how many unanswered pings in a row make an alive member suspect.
const suspectAfter = 2

// pruneInterval is the pace of dropping expired news and long-dead members.
const pruneInterval = time.Minute

// New validates opts, starts memberlist on opts.BindAddr, and starts joining opts.Join in the
// background (nodes may start before the coordinator), so it returns before any join succeeds.
// It is Bind followed by Start.
func New(opts Options) (*Cluster, error) {
	b, err := Bind(opts)
	if err != nil {
		return nil, err
	}
	return b.Start()
}

// launch runs memberlist on the transport Bind made, bound to port; opts are validated.
func launch(opts Options, nt *memberlist.NetTransport, port int) (*Cluster, error) {
	c := &Cluster{
		opts:     opts,
		log:      opts.Logger.With("component", "gossip", "id", opts.Meta.ID),
		meta:     opts.Meta.encode(false),
		bye:      opts.Meta.encode(true),
		events:   newDispatcher(opts.OnMember, opts.OnNews),
		members:  make(map[string]*memberEntry),
		news:     newNewsStore(opts.MaxNews, opts.NewsRetention),
		stock:    map[string]map[string]Stock{},
		stopJoin: make(chan struct{}),
		selfLeft: make(chan struct{}),
		stop:     make(chan struct{}),
	}
	cfg := opts.memberlistConfig(nt, port)
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(c.live.Load()) },
		RetransmitMult: cfg.RetransmitMult,
	}
	d := &delegate{c: c}
	cfg.Delegate, cfg.Events = d, d
	ml, err := memberlist.Create(cfg) // calls NotifyJoin for us before it returns
	if err != nil {
		c.events.close()
		return nil, fmt.Errorf("gossip: start memberlist on %s: %w", opts.BindAddr, err)
	}
	c.ml = ml
	self, _ := c.Member(opts.Meta.ID)
	c.addr = self.GossipAddr
	c.startLoops(cfg.ProbeInterval)
	return c, nil
}

func (c *Cluster) startLoops(probeInterval time.Duration) {
	if len(c.opts.Join) > 0 {
		c.wg.Add(1)
		go c.joinLoop()
	}
	if c.opts.TrackSuspects {
		c.wg.Add(1)
		go c.suspectLoop(probeInterval)
	}
	c.wg.Add(1)
	go c.pruneLoop()
}

// GossipAddr is the host:port peers reach this member at: the bound address (with port 0 in
// BindAddr, the port picked), or AdvertiseAddr.
func (c *Cluster) GossipAddr() string { return c.addr }

// Members returns every member seen, sorted by id, including dead and left ones (until
// MemberRetention after they died) and this member.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	out := make([]Member, 0, len(c.members))
	for _, e := range c.members {
		out = append(out, e.m)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Member returns the member with this id, if it was seen.
func (c *Cluster) Member(id string) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.members[id]; ok {
		return e.m, true
	}
	return Member{}, false
}

// Joined reports whether this member is part of a cluster: another member is alive (or
// suspect), or there is nothing to join (the first member).
func (c *Cluster) Joined() bool {
	return len(c.opts.Join) == 0 || c.live.Load() > 1
}

// Publish stores n if it is newer than what this member knows and broadcasts it; push-pull
// carries it to members that miss the broadcast or join later. Publishing the same news again
// re-broadcasts it. OnNews is not called for what this member publishes.
//
// It also sends n at once, best effort (one UDP message each), to every other member it knows:
// gossip alone reaches them only at the next gossip round (200 ms apart with the LAN timings)
// and a few hops later in a large cluster, and viewers' events should not wait for that. The
// broadcast and push-pull remain the reliable routes.
func (c *Cluster) Publish(n News) error {
	if err := c.store(n); err != nil {
		return err
	}
	msg := encodeNewsMsg(n)
	for _, m := range c.livePeers(-1) {
		// Lost: the broadcast and push-pull still carry it.
		_ = c.ml.SendToAddress(memberlist.Address{Addr: m.GossipAddr, Name: m.ID}, msg)
	}
	return nil
}

// livePeers returns up to limit (all, if limit < 0) members other than this one that are alive or
// suspect, from this member's own table. It never hands out memberlist's *Node values
// (Memberlist.Members): memberlist rewrites their fields under its own lock whenever an alive
// message arrives, so reading one outside that lock is a data race.
func (c *Cluster) livePeers(limit int) []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Member
	for id, e := range c.members {
		if limit >= 0 && len(out) >= limit {
			break
		}
		if id != c.opts.Meta.ID && (e.m.State == StateAlive || e.m.State == StateSuspect) {
			out = append(out, e.m)
		}
	}
	return out
}

// store keeps n as Publish's news and queues its broadcast.
func (c *Cluster) store(n News) error {
	if err := n.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if old, ok := c.news.byCode[n.Code]; !(ok && old == n) && !c.news.offer(n, time.Now()) {
		return fmt.Errorf("%w: %s version %d (known: %d)", ErrStaleNews, n.Code, n.Version, old.Version)
	}
	c.queue.QueueBroadcast(newNewsBroadcast(n)) // under mu, so the queue holds the latest version
	return nil
}

// NewsFor returns the latest news known about a rain.
func (c *Cluster) NewsFor(code string) (News, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.news.byCode[code]
	return n, ok
}

// Leave marks this member as leaving in its gossip metadata and makes sure the mark went out:
// it pushes the mark to up to three live peers over TCP (memberlist's push-pull, as a join
// does) and returns once one of them took it, or else once memberlist's UDP broadcast of it was
// sent, waiting up to timeout (0: leaveWaitCap) for that. Peers report the member StateLeft as
// soon as the mark reaches them, and keep doing so after it stops. It stops the join loop. Keep
// running (gossip goes on, spreading the mark) while draining, then call Shutdown.
//
// memberlist's own Leave is not used: its events do not tell a departure from a death
// (memberlist v0.5.4 never fills Node.State), and its dead message can overtake the mark, so a
// peer could see a death. Without it, peers declare the member dead by failure detection after
// Shutdown, and the mark they already hold keeps it "left".
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.isClosed() {
		return ErrClosed
	}
	if !c.left {
		c.left = true
		close(c.stopJoin)
		c.leaving.Store(true)
	}
	if timeout <= 0 {
		timeout = leaveWaitCap
	}
	// UpdateNode puts the mark in memberlist's state, queues its UDP broadcast and waits for
	// the broadcast to be sent. That wait alone is not enough, and can lose its signal:
	//   - UDP gossip can miss a busy peer, and a member that shuts down right after would then
	//     be seen dead, not left;
	//   - memberlist v0.5.4 signals "sent" without blocking on an unbuffered channel, so a
	//     broadcast sent before UpdateNode starts waiting is never reported, and UpdateNode
	//     waits the whole timeout (seen under -race on a loaded machine).
	// So it runs aside, and the push-pull, which a peer acknowledges, is what Leave waits for.
	// UpdateNode must not run twice at once (it reads this member's state outside memberlist's
	// lock): a Leave while an earlier one's is still waiting only pushes again.
	u := c.update
	if u == nil || u.finished() {
		u = &nodeUpdate{done: make(chan struct{})}
		c.update = u
		go func() {
			u.err = c.ml.UpdateNode(timeout)
			close(u.done)
		}()
	}
	select {
	case <-c.selfLeft: // the mark is in memberlist's state: a push-pull carries it
	case <-u.done:
		// UpdateNode puts the mark in the state (closing selfLeft) before it returns, unless
		// memberlist refused it (a newer incarnation of this member came first): then it
		// returns only its timeout.
		if u.err != nil {
			return fmt.Errorf("gossip: leave: %w", u.err)
		}
	}
	var peers []string
	for _, m := range c.livePeers(3) {
		peers = append(peers, m.GossipAddr)
	}
	if len(peers) > 0 {
		if n, _ := c.ml.Join(peers); n > 0 {
			return nil
		}
	}
	<-u.done
	if u.err != nil {
		return fmt.Errorf("gossip: leave: %w", u.err)
	}
	return nil
}

// nodeUpdate is one memberlist.UpdateNode call of Leave, running aside.
type nodeUpdate struct {
	done chan struct{} // closed when UpdateNode returned
	err  error         // its error; read after done
}

func (u *nodeUpdate) finished() bool {
	select {
	case <-u.done:
		return true
	default:
		return false
	}
}

// leaveWaitCap bounds Leave's wait for the UDP broadcast when it is given no timeout.
const leaveWaitCap = time.Minute

// Shutdown stops gossiping and every background goroutine; pending OnMember/OnNews calls are
// dropped. Peers see the member die, or stay "left" after Leave. Safe to call twice. Must not be
// called from OnMember or OnNews (it waits for a running callback to return).
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	if !c.left {
		close(c.stopJoin)
	}
	close(c.stop)
	err := c.ml.Shutdown()
	c.wg.Wait()
	c.events.close()
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// observe records what a memberlist event says about a member. It runs inside memberlist's
// event callbacks, under memberlist's node lock: it only copies and queues.
func (c *Cluster) observe(n *memberlist.Node, gone bool) {
	m, err := memberOf(n, gone)
	if err != nil {
		c.log.Warn("member with unreadable meta", "member", n.Name, "err", err)
	}
	udp := &net.UDPAddr{IP: slices.Clone(n.Addr), Port: int(n.Port)}
	now := time.Now()
	c.mu.Lock()
	e := c.members[m.ID]
	if e == nil {
		e = &memberEntry{}
		c.members[m.ID] = e
	}
	if e.m.State != m.State {
		e.changed = now
	}
	if m.ID == c.opts.Meta.ID && m.State == StateLeft {
		c.selfLeftOnce.Do(func() { close(c.selfLeft) })
	}
	e.m, e.udp, e.misses = m, udp, 0
	e.gen++
	c.countLiveLocked()
	c.mu.Unlock()
	c.events.member(m)
}

func (c *Cluster) countLiveLocked() {
	var n int32
	for _, e := range c.members {
		if e.m.State == StateAlive || e.m.State == StateSuspect {
			n++
		}
	}
	c.live.Store(n)
}

// acceptNews stores news from a peer if it is newer and tells OnNews. News that came by broadcast
// is broadcast on (epidemic spread: the publisher alone reaches only a few members); news from
// push-pull is not, as every member push-pulls anyway.
func (c *Cluster) acceptNews(ns []News, rebroadcast bool) {
	now := time.Now()
	var fresh []News
	c.mu.Lock()
	for _, n := range ns {
		if c.news.offer(n, now) {
			fresh = append(fresh, n)
			if rebroadcast {
				c.queue.QueueBroadcast(newNewsBroadcast(n))
			}
		}
	}
	c.mu.Unlock()
	for _, n := range fresh {
		c.events.newsArrived(n)
	}
}

// prune drops expired news and members dead or left for longer than MemberRetention.
func (c *Cluster) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.news.prune(now)
	c.pruneStock(now)
	for id, e := range c.members {
		gone := e.m.State == StateDead || e.m.State == StateLeft
		if gone && id != c.opts.Meta.ID && now.Sub(e.changed) > c.opts.MemberRetention {
			delete(c.members, id)
		}
	}
}

func (c *Cluster) pruneLoop() {
	defer c.wg.Done()
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.prune(now)
		}
	}
}

// newsBroadcast is a News broadcast; a newer one for the same rain replaces it in the queue
// (memberlist.NamedBroadcast), so the queue holds at most one message per rain.
type newsBroadcast struct {
	name string
	msg  []byte
}

func newNewsBroadcast(n News) *newsBroadcast {
	return &newsBroadcast{name: "news/" + n.Code, msg: encodeNewsMsg(n)}
}

func (b *newsBroadcast) Name() string                          { return b.name }
func (b *newsBroadcast) Invalidates(memberlist.Broadcast) bool { return false } // Name does it
func (b *newsBroadcast) Message() []byte                       { return b.msg }
func (b *newsBroadcast) Finished()                             {}

// delegate implements memberlist.Delegate and memberlist.EventDelegate for a Cluster. memberlist
// calls it from its own goroutines, the events under its node lock: nothing here blocks.
type delegate struct{ c *Cluster }

func (d *delegate) NodeMeta(limit int) []byte {
	meta := d.c.meta
	if d.c.leaving.Load() {
		meta = d.c.bye
	}
	if len(meta) > limit { // New checked MetaMaxSize; memberlist would panic on more
		d.c.log.Error("node meta over memberlist's limit: sending none", "bytes", len(meta), "limit", limit)
		return nil
	}
	return meta
}

// NotifyMsg decodes the message at once: nothing keeps a reference to buf.
func (d *delegate) NotifyMsg(buf []byte) {
	if n, ok := decodeNewsMsg(buf); ok {
		d.c.acceptNews([]News{n}, true)
	} else if s, ok := decodeStockMsg(buf); ok {
		d.c.acceptStock(s, true)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	return d.c.news.encode()
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	d.c.acceptNews(decodeState(buf), false)
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.c.observe(n, false) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.c.observe(n, true) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.c.observe(n, false) }
