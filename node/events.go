package node

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"redrain/gossip"
	"redrain/internal/roomevents"
)

// Viewers' events: GET /v1/rooms/{room_id}/events answers text/event-stream and tells the room's
// viewers when a rain of the room is prepared, starts (raining), finishes or is cancelled.
//
// Where events come from: gossip news only (gossip.News carries the room, the count and the
// times of every stage), so every node — one holding no slice of the rain included — hears the
// same transitions and renders them to the same bytes under the same ids (internal/roomevents).
// The direct start/stop messages a slice holder also gets carry neither the room's count nor the
// prepare time, so they are not a second source: an event must not differ by route.
//
// No goroutine per subscriber: the handler checks the request and the limits, then hijacks the
// connection (Server.KeepHijackedConns) and hands the bare net.Conn to one of a fixed set of hub
// shards. Each shard has one goroutine that writes the response head and the resumed events,
// then every event of the room and a heartbeat comment, each write under a write deadline: a
// subscriber that does not read (its socket buffer full past the deadline) is dropped. What an
// idle subscriber costs is its socket (the kernel's buffers, outside the heap), Go's netFD and
// poller entry, and a subscriber struct in two maps.

// Limits of the event stream.
const (
	DefaultMaxSubscribers      = 10000
	DefaultMaxSubscribersPerIP = 100
	DefaultHeartbeat           = 15 * time.Second
	DefaultEventWriteTimeout   = 500 * time.Millisecond
	EventWindow                = 5 * time.Minute // Last-Event-ID resume reaches this far back
	EventsPerRoom              = 64              // and at most this many events of a room
	eventShards                = 8
	maxShardBacklog            = 1 << 16 // joins and events waiting for one shard
	MaxSubscribersLimit        = 1 << 20 // the largest --max-subscribers
)

// fillEventDefaults gives the event stream's zero options their defaults.
func (o *Options) fillEventDefaults() {
	if o.MaxSubscribers == 0 {
		o.MaxSubscribers = DefaultMaxSubscribers
	}
	if o.MaxSubscribersPerIP == 0 {
		o.MaxSubscribersPerIP = DefaultMaxSubscribersPerIP
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.EventWriteTimeout == 0 {
		o.EventWriteTimeout = DefaultEventWriteTimeout
	}
}

var (
	errBadRoom        = newAPIError(400, "bad_room", "room_id must be a decimal integer >= 0")
	errBadLastEventID = newAPIError(400, "bad_last_event_id", "Last-Event-ID is not an id of this stream")
	errSubscribersAll = newAPIError(503, "too_many_subscribers", "this node has as many event subscribers as it serves; try another node or later")
	errSubscribersIP  = newAPIError(429, "too_many_subscribers", "too many event subscribers from this address")
)

var (
	pathRooms     = []byte("/v1/rooms/")
	suffixEvents  = []byte("/events")
	headerLastID  = "Last-Event-ID"
	eventHead     = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n")
	heartbeatLine = []byte(": heartbeat\n\n")
)

// parseEventsPath reports whether path is /v1/rooms/{room_id}/events, and its raw room id.
func parseEventsPath(path []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(path, pathRooms)
	if !ok {
		return nil, false
	}
	return bytes.CutSuffix(rest, suffixEvents)
}

// handleEvents checks a subscription and hands the connection to the hub.
func (n *Node) handleEvents(ctx *fasthttp.RequestCtx, rawRoom []byte) {
	room, err := roomevents.ParseRoom(rawRoom)
	if err != nil {
		errBadRoom.write(ctx)
		return
	}
	if n.userKey != nil && !n.viewerOf(ctx, room) {
		return
	}
	last, resume, ok := lastEventID(ctx)
	if !ok {
		errBadLastEventID.write(ctx)
		return
	}
	if !n.ready.Load() {
		errShutdown.write(ctx)
		return
	}
	var scratch [16]byte
	addr := string(n.clientAddr(ctx, scratch[:0]))
	// The place is taken in the hijack handler, not here: fasthttp may drop a connection between
	// this handler and its hijack handler, and a place taken here would then never be given back.
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
			c = u.UnsafeConn() // the bare conn: the wrapper would keep the request's read buffer alive
		}
		switch err := n.events.reserve(addr); {
		case errors.Is(err, errHubAddr):
			refuse(c, errSubscribersIP)
		case errors.Is(err, errHubClosed):
			refuse(c, errShutdown)
		case err != nil:
			refuse(c, errSubscribersAll)
		default:
			n.events.join(&subscriber{conn: c, room: room, addr: addr}, last, resume)
		}
	})
}

// refuse answers a hijacked connection with e (written by hand: fasthttp no longer owns it) and
// closes it.
func refuse(c net.Conn, e apiError) {
	var b []byte
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = append(b, fasthttp.StatusMessage(e.status)...)
	b = append(b, "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(e.body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, e.body...)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(b)
	c.Close()
}

// viewerOf checks a token mode subscriber's token (as the claim path takes it, or from the
// access_token query parameter, which is all a browser's EventSource can send) and its room.
// It writes the refusal itself.
func (n *Node) viewerOf(ctx *fasthttp.RequestCtx, room int64) bool {
	h, once := onlyValue(&ctx.Request.Header, headerAuth)
	if !once {
		errBadUser.write(ctx)
		return false
	}
	tok, ok := bearerToken(h)
	if h == nil {
		tok, ok = ctx.QueryArgs().Peek("access_token"), true
	}
	if !ok || len(tok) == 0 {
		errBadToken.write(ctx)
		return false
	}
	c, err := n.userKey.Verify(tok, time.Now().Unix())
	if err != nil {
		errBadToken.write(ctx)
		return false
	}
	if c.Room != room {
		errWrongRoom.write(ctx)
		return false
	}
	return true
}

// lastEventID reads the Last-Event-ID header: resume is false without one (or with an empty
// one, which SSE uses to reset); ok is false when it is malformed or sent twice.
func lastEventID(ctx *fasthttp.RequestCtx) (roomevents.Key, bool, bool) {
	v, once := onlyValue(&ctx.Request.Header, headerLastID)
	if !once {
		return roomevents.Key{}, false, false
	}
	if len(v) == 0 {
		return roomevents.Key{}, false, true
	}
	k, err := roomevents.ParseID(string(v))
	return k, err == nil, err == nil
}

// lifecycleOf is what news says of a rain's lifecycle.
func lifecycleOf(ns gossip.News) roomevents.Lifecycle {
	l := roomevents.Lifecycle{Code: ns.Code, Room: ns.RoomID, TotalCount: ns.TotalCount, PreparedAt: ns.PreparedAt}
	switch ns.Kind {
	case gossip.KindStarted, gossip.KindStopped:
		l.StartsAt, l.EndsAt = ns.StartsAt, ns.EndsAt
	}
	switch ns.Kind {
	case gossip.KindStopped:
		l.StoppedAt = ns.StoppedAt
	case gossip.KindCancelled:
		l.StoppedAt, l.Cancelled = ns.StoppedAt, true
	}
	return l
}

// hubOptions bound the hub.
type hubOptions struct {
	max, perAddr int
	heartbeat    time.Duration
	writeTimeout time.Duration
}

var (
	errHubFull   = errors.New("node: too many event subscribers")
	errHubAddr   = errors.New("node: too many event subscribers from this address")
	errHubClosed = errors.New("node: event hub closed")
)

// eventHub holds every subscriber of this node and the recent events of every room.
type eventHub struct {
	opts   hubOptions
	shards []*hubShard
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	log     *roomevents.Log
	seq     uint64 // events filed so far: a subscriber joining at seq s was sent those <= s by replay
	total   int    // subscribers reserved (joined or joining)
	perAddr map[string]int
	next    int // shard of the next subscriber (round robin)
	closed  bool

	published, sent, slow, refusedAll, refusedAddr atomic.Uint64
}

// subscriber is one viewer's connection; owned by its shard's goroutine once joined.
type subscriber struct {
	conn net.Conn
	room int64
	addr string
	seq  uint64 // hub seq at join
	head []byte // response head and resumed events, written first
}

// hubShard is one writer goroutine and the subscribers it serves.
type hubShard struct {
	hub     *eventHub
	mu      sync.Mutex
	pending []shardMsg
	wake    chan struct{} // capacity 1: pending is not empty

	subs  map[*subscriber]struct{}           // owned by run
	rooms map[int64]map[*subscriber]struct{} // owned by run
}

// shardMsg is a subscriber joining, or an event of a room.
type shardMsg struct {
	join  *subscriber
	room  int64
	seq   uint64
	frame []byte
}

func newEventHub(o hubOptions) *eventHub {
	h := &eventHub{opts: o, stop: make(chan struct{}), perAddr: map[string]int{},
		log: roomevents.NewLog(EventsPerRoom, int64(EventWindow))}
	for range eventShards {
		h.shards = append(h.shards, &hubShard{hub: h, wake: make(chan struct{}, 1),
			subs: map[*subscriber]struct{}{}, rooms: map[int64]map[*subscriber]struct{}{}})
	}
	return h
}

// start runs the shards' goroutines.
func (h *eventHub) start() {
	for i, s := range h.shards {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); s.run(i == 0) }()
	}
}

// close disconnects every subscriber and stops the shards. Safe to call twice.
func (h *eventHub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.stop)
	h.mu.Unlock()
	h.wg.Wait()
}

// reserve counts a subscriber from addr in, or refuses it.
func (h *eventHub) reserve(addr string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return errHubClosed
	case h.total >= h.opts.max:
		h.refusedAll.Add(1)
		return errHubFull
	case h.perAddr[addr] >= h.opts.perAddr:
		h.refusedAddr.Add(1)
		return errHubAddr
	}
	h.total++
	h.perAddr[addr]++
	return nil
}

// release counts a subscriber out.
func (h *eventHub) release(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseLocked(addr)
}

func (h *eventHub) releaseLocked(addr string) {
	h.total--
	if h.perAddr[addr]--; h.perAddr[addr] <= 0 {
		delete(h.perAddr, addr)
	}
}

// subscribers is how many subscribers are reserved or served.
func (h *eventHub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// join hands a reserved subscriber to a shard with the events it resumes (those after last).
func (h *eventHub) join(sub *subscriber, last roomevents.Key, resume bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		sub.conn.Close()
		h.releaseLocked(sub.addr)
		return
	}
	sub.head = append([]byte(nil), eventHead...)
	if resume {
		for _, e := range h.log.After(sub.room, last, time.Now().UnixNano()) {
			sub.head = append(sub.head, e.Frame()...)
		}
	}
	sub.seq = h.seq
	s := h.shards[h.next%len(h.shards)]
	h.next++
	s.push(shardMsg{join: sub})
}

// publish files the events of a lifecycle and sends the new ones to their room's subscribers.
func (h *eventHub) publish(l roomevents.Lifecycle) {
	now := time.Now().UnixNano()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, e := range l.Events() {
		if !h.log.Add(e, now) {
			continue
		}
		h.seq++
		h.published.Add(1)
		msg := shardMsg{room: e.Room, seq: h.seq, frame: e.Frame()}
		for _, s := range h.shards {
			s.push(msg)
		}
	}
}

// push queues msg for the shard's goroutine; beyond maxShardBacklog a join is refused (its
// connection closed) and an event dropped for this shard: the backlog's memory stays bounded.
func (s *hubShard) push(msg shardMsg) {
	s.mu.Lock()
	full := len(s.pending) >= maxShardBacklog
	if !full {
		s.pending = append(s.pending, msg)
	}
	s.mu.Unlock()
	if full {
		if msg.join != nil {
			msg.join.conn.Close()
			s.hub.releaseLocked(msg.join.addr) // joins are pushed under hub.mu
		}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run serves the shard until the hub stops; the first shard also prunes the events log.
func (s *hubShard) run(prunes bool) {
	t := time.NewTicker(s.hub.opts.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.hub.stop:
			s.closeAll()
			return
		case <-s.wake:
			s.drain()
		case <-t.C:
			s.heartbeat()
			if prunes {
				s.hub.mu.Lock()
				s.hub.log.Prune(time.Now().UnixNano())
				s.hub.mu.Unlock()
			}
		}
	}
}

// drain handles everything pending, in order.
func (s *hubShard) drain() {
	s.mu.Lock()
	msgs := s.pending
	s.pending = nil
	s.mu.Unlock()
	for i, m := range msgs {
		if m.join != nil {
			s.add(m.join)
		} else {
			s.send(m)
		}
		msgs[i] = shardMsg{}
	}
}

// add writes a joining subscriber's head (and resumed events) and serves it from now on.
func (s *hubShard) add(sub *subscriber) {
	head := sub.head
	sub.head = nil
	if !s.write(sub, head) {
		s.hub.release(sub.addr)
		return
	}
	s.subs[sub] = struct{}{}
	room := s.rooms[sub.room]
	if room == nil {
		room = map[*subscriber]struct{}{}
		s.rooms[sub.room] = room
	}
	room[sub] = struct{}{}
}

// send writes an event to the room's subscribers that joined before it was filed.
func (s *hubShard) send(m shardMsg) {
	for sub := range s.rooms[m.room] {
		if sub.seq >= m.seq {
			continue
		}
		if s.write(sub, m.frame) {
			s.hub.sent.Add(1)
		} else {
			s.drop(sub)
		}
	}
}

func (s *hubShard) heartbeat() {
	for sub := range s.subs {
		if !s.write(sub, heartbeatLine) {
			s.drop(sub)
		}
	}
}

// write writes b under the write deadline, counted from now (not from the start of a round: a
// long round must not eat the deadline of the last subscribers in it); false (the connection
// closed) when it failed.
func (s *hubShard) write(sub *subscriber, b []byte) bool {
	if err := sub.conn.SetWriteDeadline(time.Now().Add(s.hub.opts.writeTimeout)); err == nil {
		if _, err = sub.conn.Write(b); err == nil {
			return true
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			s.hub.slow.Add(1)
		}
	}
	sub.conn.Close()
	return false
}

// drop forgets a subscriber whose connection write closed.
func (s *hubShard) drop(sub *subscriber) {
	delete(s.subs, sub)
	if room := s.rooms[sub.room]; room != nil {
		delete(room, sub)
		if len(room) == 0 {
			delete(s.rooms, sub.room)
		}
	}
	s.hub.release(sub.addr)
}

// closeAll disconnects every subscriber of the shard, joined or still pending.
func (s *hubShard) closeAll() {
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, m := range pending {
		if m.join != nil {
			m.join.conn.Close()
			s.hub.release(m.join.addr)
		}
	}
	for sub := range s.subs {
		sub.conn.Close()
		s.drop(sub)
	}
}

// registerMetrics adds the hub's series to the node's registry.
func (h *eventHub) registerMetrics(reg *prometheus.Registry) {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "redrain_event_subscribers", Help: "Viewers subscribed to room events on this node."},
			func() float64 { return float64(h.subscribers()) }),
		counter("redrain_events_published_total", "Room events this node filed (each transition once).", &h.published),
		counter("redrain_events_sent_total", "Room event frames written to subscribers.", &h.sent),
		counter("redrain_event_subscribers_slow_total", "Subscribers dropped because a write missed its deadline.", &h.slow),
		counter("redrain_event_subscribers_refused_total", "Subscriptions refused because the node was full (too_many_subscribers, 503).", &h.refusedAll),
		counter("redrain_event_subscribers_refused_address_total", "Subscriptions refused by the per-address limit (too_many_subscribers, 429).", &h.refusedAddr),
	)
}
