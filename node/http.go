package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/logpace"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// MaxHeaderBytes bounds a request's headers (fasthttp's ReadBufferSize).
const MaxHeaderBytes = 8 << 10

func (n *Node) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       n.route,
		Name:                          "redrain-node",
		ReadTimeout:                   n.opts.ReadTimeout,
		WriteTimeout:                  n.opts.WriteTimeout,
		IdleTimeout:                   n.opts.IdleTimeout,
		MaxRequestBodySize:            MaxInternalBody,
		ReadBufferSize:                MaxHeaderBytes,
		MaxConnsPerIP:                 n.opts.MaxConnsPerIP,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         true,
		KeepHijackedConns:             true, // event streams: the hub keeps the connection (events.go)
		NoDefaultDate:                 true,
		ErrorHandler:                  n.serverError,
		Logger:                        discardLogger{},
	}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// serverError answers requests fasthttp refused before the handler (too large, malformed).
func (n *Node) serverError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		n.metrics.claimTooLarge.Inc()
		errBodyTooLarge.write(ctx)
	case strings.Contains(err.Error(), "timeout"):
		writeError(ctx, 408, "timeout", "request not received in time")
	case strings.Contains(err.Error(), "too big") || strings.Contains(err.Error(), "small read buffer"):
		writeError(ctx, 431, "headers_too_large", "request headers too large")
	default:
		writeError(ctx, 400, "bad_request", "malformed HTTP request")
	}
	ctx.SetConnectionClose()
}

var pathInt = []byte(wire.PathPrefix)

// rawPath is the path of the request target exactly as sent, up to any '?'. The node routes
// on it, never on fasthttp's normalised ctx.Path(): an escaped (%69), doubled (//) or dotted
// (/./, /../) form of a path is not that path but 404, so the node routes what a gateway in
// front of it saw, and a gateway that blocks the raw prefix /internal/ cannot be walked around.
func rawPath(ctx *fasthttp.RequestCtx) []byte {
	uri := ctx.Request.Header.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// route picks the handler by raw path, then the method: a known path with another method is
// 405 with the path's methods in Allow.
func (n *Node) route(ctx *fasthttp.RequestCtx) {
	path := rawPath(ctx)
	if code, claim, ok := parseRainPath(path); ok {
		switch {
		case claim && ctx.IsPost():
			n.handleClaim(ctx, code)
		case claim:
			errMethodPost.write(ctx)
		case ctx.IsGet():
			n.handleView(ctx, code)
		default:
			errMethodGet.write(ctx)
		}
		return
	}
	if room, ok := parseEventsPath(path); ok {
		if !ctx.IsGet() {
			errMethodGet.write(ctx)
			return
		}
		n.handleEvents(ctx, room)
		return
	}
	if bytes.HasPrefix(path, pathInt) {
		n.handleInternal(ctx, string(path))
		return
	}
	switch p := string(path); p {
	case "/healthz", "/readyz", "/metrics":
		if !ctx.IsGet() && !ctx.IsHead() {
			errMethodGetHead.write(ctx)
			return
		}
		n.handleOps(ctx, p)
	default:
		errNotFound.write(ctx)
	}
}

// handleOps answers health, readiness and metrics (GET or HEAD).
func (n *Node) handleOps(ctx *fasthttp.RequestCtx, path string) {
	switch path {
	case "/healthz":
		ctx.Response.Header.SetContentTypeBytes(contentJSON)
		ctx.SetBodyString(`{"status":"ok"}`)
	case "/readyz":
		if !n.ready.Load() || n.cluster == nil || !n.cluster.Joined() {
			writeError(ctx, 503, "not_ready", "not joined or stopping")
			return
		}
		ctx.Response.Header.SetContentTypeBytes(contentJSON)
		ctx.SetBodyString(`{"status":"ready"}`)
	case "/metrics":
		n.metrics.handler(ctx)
	}
}

// handleClaim is the hot path: no JSON decoding, no allocation of its own.
func (n *Node) handleClaim(ctx *fasthttp.RequestCtx, code []byte) {
	began := time.Now()
	if len(ctx.Request.Body()) > MaxClaimBody {
		n.metrics.claimTooLarge.Inc()
		errBodyTooLarge.write(ctx)
		return
	}
	now := began.UnixNano()
	if n.ipLimit != nil {
		var scratch [16]byte
		if !n.ipLimit.allow(n.clientAddr(ctx, scratch[:0]), now) {
			n.metrics.claimIPLimited.Inc()
			errIPLimited.write(ctx)
			return
		}
	}
	hot, known := (*n.codes.Load())[string(code)]
	user, ok := n.claimant(ctx, hot.room, known, now)
	if !ok {
		return
	}
	if !n.ready.Load() {
		errShutdown.write(ctx)
		return
	}
	if e, ok := n.rainOpen(hot, known); !ok {
		e.write(ctx)
		return
	}
	if n.forwards(code, user, ctx, now) { // the user's owner makes the claim (owner_forward.go)
		return
	}
	amount, seq, e, ok := n.claimHere(code, hot.code, user, now)
	if !ok {
		e.write(ctx)
		return
	}
	var buf [192]byte
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.Response.AppendBody(n.appendAnswer(buf[:0], amount, seq))
	n.metrics.latency.Observe(time.Since(began).Seconds())
}

// rainOpen answers a claim of a rain this node does not know, has compacted or holds back
// (counted in the claim metrics); ok when the store decides.
func (n *Node) rainOpen(hot hotRain, known bool) (e apiError, ok bool) {
	switch {
	case !known: // every rain the store holds was interned first: nothing to look up
		n.metrics.claimUnknown.Inc()
		return errUnknownRain, false
	case hot.state == rainCompacted:
		n.metrics.claimFinished.Inc()
		return errFinished, false
	case hot.state == rainHeld:
		n.metrics.claimJournal.Inc()
		return errHeld, false
	}
	return apiError{}, true
}

// claimHere makes a claim of user from this node's stock: the pop (and, when the node is empty,
// the wait for stock), the owner's count when the owner is another node (OwnerHopReserve), the
// journal. It answers the packet's amount and the journal sequence of its claim_id, or the
// error to answer; it counts the claim in the claim metrics either way. name is the rain's
// interned code.
func (n *Node) claimHere(code []byte, name string, user uint64, now int64) (amount int64, seq uint64, e apiError, ok bool) {
	c, err := n.store.Claim(code, user, now)
	if errors.Is(err, shard.ErrExhausted) {
		c, err = n.claimAfterWait(code, user)
	}
	if err != nil {
		return 0, 0, n.claimError(err), false
	}
	// Forwarding, a claim is made here only by the user's owner (forwards, claimForwarded): no
	// second owner lookup. Reserving, the owner counts it first (owner.go).
	if n.opts.OwnerHop == OwnerHopReserve {
		if e, ok := n.askOwner(code, user, now); !ok {
			n.store.Release(code, user, c)
			return 0, 0, e, false
		}
	}
	seq, err = n.journal.Append(ledger.Record{Code: name, Slice: c.Slice, Epoch: c.Epoch, Index: c.Index,
		User: user, Amount: c.Amount, UnixNano: now})
	if err != nil {
		n.journalFailed(name, user, c, err)
		n.ownerJournalFailed(code, user, err)
		n.metrics.claimJournal.Inc()
		return 0, 0, errJournal, false
	}
	n.flusher.Notify()
	n.metrics.claimOK.Inc()
	return c.Amount, seq, apiError{}, true
}

// claimAfterWait is a claim that found this node empty: while a peer holds stock it waits for
// moves, trying again after each arrival (other waiting claims may take a small move first).
// After StockWait it goes on waiting, in steps of StockWait, up to MaxStockWait in all, as long
// as a give this node asked for is still on its way or a live peer still hints stock; each step
// asks again when no give is in flight. A move under way is stock that can be moved here (its
// journal writes on two nodes can outlast StockWait on a loaded machine); so is a peer's stock
// when an ask failed, or at the tail of a rain, where every node has demand and a donor keeps
// half of its last packets for its own. Then it answers exhausted, and logs why (paced): an
// exhausted answer while a peer hints stock is worth knowing about.
func (n *Node) claimAfterWait(code []byte, user uint64) (shard.Claim, error) {
	if n.opts.NoStockMoves || !n.stockElsewhere(string(code)) {
		return shard.Claim{}, shard.ErrExhausted
	}
	began := time.Now()
	deadline := time.NewTimer(n.opts.StockWait)
	defer deadline.Stop()
	for {
		switch n.awaitStock(string(code), deadline) {
		case noStockElsewhere:
			return shard.Claim{}, shard.ErrExhausted
		case stockLate:
			if left := MaxStockWait - time.Since(began); left > 0 && n.stockElsewhere(string(code)) {
				deadline.Reset(min(left, n.opts.StockWait)) // then ask again, if no give is in flight
				continue
			}
			// One last try: a move may have landed as the wait ended.
			if c, err := n.store.ClaimAgain(code, user, time.Now().UnixNano()); !errors.Is(err, shard.ErrExhausted) {
				n.metrics.stockWaits.WithLabelValues("arrived").Inc()
				return c, err
			}
			n.metrics.stockWaits.WithLabelValues("late").Inc()
			n.logLateStock(string(code), time.Since(began))
			return shard.Claim{}, shard.ErrExhausted
		}
		c, err := n.store.ClaimAgain(code, user, time.Now().UnixNano())
		if !errors.Is(err, shard.ErrExhausted) {
			n.metrics.stockWaits.WithLabelValues("arrived").Inc()
			return c, err
		}
	}
}

func (n *Node) appendAnswer(dst []byte, amount int64, seq uint64) []byte {
	dst = append(dst, `{"amount":`...)
	dst = strconv.AppendInt(dst, amount, 10)
	dst = append(dst, `,"claim_id":"`...)
	dst = ledger.AppendClaimID(dst, n.opts.ID, n.journal.Incarnation(), seq)
	dst = append(dst, '"')
	return append(dst, claimMessage...)
}

func (n *Node) claimError(err error) apiError {
	m := n.metrics
	switch {
	case errors.Is(err, shard.ErrExhausted):
		m.claimExhausted.Inc()
		return errExhausted
	case errors.Is(err, shard.ErrUserLimit):
		m.claimUserLimit.Inc()
		return errUserLimit
	case errors.Is(err, shard.ErrRateLimited):
		m.claimRateLimited.Inc()
		return errRateLimited
	case errors.Is(err, shard.ErrFinished):
		m.claimFinished.Inc()
		return errFinished
	case errors.Is(err, shard.ErrNotStarted):
		m.claimNotStarted.Inc()
		return errNotStarted
	default:
		m.claimUnknown.Inc()
		return errUnknownRain
	}
}

// rainView is the public view of a rain on this node.
type rainView struct {
	Code            string  `json:"code"`
	Status          string  `json:"status"`
	StartedAt       *string `json:"started_at"`
	EndsAt          *string `json:"ends_at"`
	RemainingCount  int64   `json:"remaining_count"`
	RemainingAmount int64   `json:"remaining_amount"`
}

func (n *Node) handleView(ctx *fasthttp.RequestCtx, code []byte) {
	now := time.Now()
	p, ok := n.store.Progress(string(code), now.UnixNano())
	if !ok {
		n.viewCompacted(ctx, string(code))
		return
	}
	v := rainView{Code: p.Code, Status: "prepared", RemainingCount: p.RemainingCount, RemainingAmount: p.RemainingAmount}
	switch {
	case p.Finished:
		v.Status = "finished"
	case p.Started && now.UnixNano() >= p.StartsAt:
		v.Status = "raining"
	}
	if p.StartsAt != 0 {
		s, e := rain.FormatTime(p.StartsAt), rain.FormatTime(p.EndsAt)
		v.StartedAt, v.EndsAt = &s, &e
	}
	writeJSON(ctx, 200, v)
}

// viewCompacted shows a rain whose records retention dropped as finished, with nothing remaining
// here; any other rain the store does not hold is unknown.
func (n *Node) viewCompacted(ctx *fasthttp.RequestCtx, code string) {
	n.mu.Lock()
	ri := n.rains[code]
	var m ledger.RainMeta
	if ri != nil {
		m = ri.meta
	}
	n.mu.Unlock()
	if ri == nil || m.CompactedAt == 0 {
		errUnknownRain.write(ctx)
		return
	}
	v := rainView{Code: code, Status: "finished"}
	if m.StartsAt != 0 {
		s, e := rain.FormatTime(m.StartsAt), rain.FormatTime(m.EndsAt)
		v.StartedAt, v.EndsAt = &s, &e
	}
	writeJSON(ctx, 200, v)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, 500, "internal", err.Error())
		return
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetBody(b)
}

// handleInternal serves the coordinator's signed /internal/v1 endpoints. The signature is
// checked first, over the request target as sent; path is its raw path.
func (n *Node) handleInternal(ctx *fasthttp.RequestCtx, path string) {
	h := &ctx.Request.Header
	err := n.verify.Verify(string(ctx.Method()), string(h.RequestURI()), ctx.Request.Body(),
		string(h.Peek(wire.HeaderTime)), string(h.Peek(wire.HeaderNonce)), string(h.Peek(wire.HeaderSignature)), time.Now())
	if err != nil {
		n.metrics.refused.WithLabelValues(refusalReason(err)).Inc()
	}
	if errors.Is(err, wire.ErrUnsigned) {
		errUnauthorized.write(ctx)
		return
	} else if err != nil {
		if n.refusedLog.Allow(time.Now()) { // at most one line a second: refusals must not flood the log
			n.log.Warn("internal request refused", "target", logpace.Clip(string(h.RequestURI()), logpace.MaxField), "remote", ctx.RemoteAddr().String(),
				"err", err, "refused_since_last_line", n.refusedLog.Suppressed())
		}
		errForbidden.write(ctx)
		return
	}
	switch path {
	case wire.PathProgress:
		if !ctx.IsGet() {
			errMethodGet.write(ctx)
			return
		}
		writeJSON(ctx, 200, n.progress(string(ctx.QueryArgs().Peek("code"))))
	case wire.PathSlices:
		if !ctx.IsPost() {
			errMethodPost.write(ctx)
			return
		}
		var a wire.SliceAssignment
		n.answerInternal(ctx, decodeStrict(ctx.Request.Body(), &a), func() error { return n.assign(a) })
	default:
		if !n.handleOwner(ctx, path) { // reserve, release (owner_serve.go)
			n.handleInternalRain(ctx, path)
		}
	}
}

// handleInternalRain serves POST /internal/v1/rains/{code}/{action}: the path decides 404 before
// the method decides 405.
func (n *Node) handleInternalRain(ctx *fasthttp.RequestCtx, path string) {
	code, action, ok := splitInternalRain(path)
	if !ok {
		errNotFound.write(ctx)
		return
	}
	if !ctx.IsPost() {
		errMethodPost.write(ctx)
		return
	}
	body := ctx.Request.Body()
	switch action {
	case "start":
		var s wire.Start
		n.answerInternal(ctx, decodeStrict(body, &s), func() error { return n.start(code, s) })
	case "stop":
		var s wire.Stop
		n.answerInternal(ctx, decodeStrict(body, &s), func() error { return n.stop(code, s.At) })
	case "discard":
		var d wire.Discard
		n.answerInternal(ctx, decodeStrict(body, &d), func() error { return n.discard(code, d.Epoch) })
	case "settle":
		n.answerInternal(ctx, nil, func() error { return n.settle(code) })
	case "moves":
		var m wire.Moves
		n.answerInternal(ctx, decodeStrict(body, &m), func() error {
			if err := n.acceptMoves(code, m); err != nil {
				return err
			}
			n.publishStockNow(code) // its peers' empty nodes should not wait a tick to see it
			return nil
		})
	case "give":
		var g wire.Give
		var given wire.Given
		err := decodeStrict(body, &g)
		if err == nil {
			given, err = n.give(code, g)
		}
		if err == nil {
			writeJSON(ctx, 200, given)
			return
		}
		n.answerInternal(ctx, err, nil)
	}
}

// splitInternalRain parses "/internal/v1/rains/{code}/{action}" with a known action.
func splitInternalRain(path string) (code, action string, ok bool) {
	rest, found := strings.CutPrefix(path, "/internal/v1/rains/")
	if !found {
		return "", "", false
	}
	code, action, found = strings.Cut(rest, "/")
	if !found || !rain.ValidCode(code) {
		return "", "", false
	}
	switch action {
	case "start", "stop", "discard", "settle", "give", "moves":
	default:
		return "", "", false
	}
	return code, action, true
}

func decodeStrict(body []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

func (n *Node) answerInternal(ctx *fasthttp.RequestCtx, decodeErr error, do func() error) {
	err := decodeErr
	if err == nil {
		err = do()
	}
	switch {
	case err == nil:
		ctx.Response.Header.SetContentTypeBytes(contentJSON)
		ctx.SetBodyString(`{"ok":true}`)
	case errors.Is(err, ErrBadRequest):
		writeError(ctx, 400, "bad_request", err.Error())
	case errors.Is(err, ErrUnknownRain):
		writeError(ctx, 404, "unknown_rain", err.Error())
	case errors.Is(err, ErrConflict):
		writeError(ctx, 409, "conflict", err.Error())
	default:
		n.log.Error("internal request failed", "path", string(rawPath(ctx)), "err", err)
		writeError(ctx, 503, "journal_unavailable", err.Error())
	}
}

// refusalReason names a wire verification error for the refusal counter.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, wire.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, wire.ErrStale):
		return "stale"
	case errors.Is(err, wire.ErrReplay):
		return "replay"
	case errors.Is(err, wire.ErrBusy):
		return "busy"
	default:
		return "bad_signature"
	}
}
