package node

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"redrain/internal/wire"
)

// apiError is one documented error answer of the claim API.
type apiError struct {
	status int
	word   string
	body   []byte // pre-encoded {"error":...,"message":...}
	header []byte // a header the answer also carries (Allow, WWW-Authenticate), or nil
	value  []byte
}

// with returns e answering also with the header name: value.
func (e apiError) with(name, value string) apiError {
	e.header, e.value = []byte(name), []byte(value)
	return e
}

func newAPIError(status int, word, msg string) apiError {
	b := []byte(`{"error":"` + word + `","message":` + strconv.Quote(msg) + `}`)
	return apiError{status: status, word: word, body: b}
}

// The claim API's answers other than 200, as SPEC.md lists them.
var (
	errBadUser      = newAPIError(400, "bad_user", "X-User-Id must be a decimal user id > 0")
	errUnknownRain  = newAPIError(404, "unknown_rain", "no such rain on this node")
	errNotStarted   = newAPIError(425, "not_started", "the rain has not started yet")
	errFinished     = newAPIError(410, "finished", "the rain is over")
	errExhausted    = newAPIError(410, "exhausted", "no packets left here")
	errUserLimit    = newAPIError(429, "user_limit", "you already have the most packets of this rain a user may have")
	errRateLimited  = newAPIError(429, "rate_limited", "too many taps; slow down")
	errJournal      = newAPIError(503, "journal_unavailable", "the claim could not be made durable; no packet was handed out, try again")
	errHeld         = newAPIError(503, "journal_unavailable", "this node cannot pay this rain's claims safely until Redis is reachable; no packet was handed out, try again")
	errBodyTooLarge = newAPIError(413, "body_too_large", "request body too large")
	errNotFound     = newAPIError(404, "not_found", "no such endpoint")
	errUnauthorized = newAPIError(401, "unauthorized", "internal endpoint: signature required").with("WWW-Authenticate", wire.Challenge)
	errForbidden    = newAPIError(403, "forbidden", "internal endpoint: bad or replayed signature")
	errShutdown     = newAPIError(503, "shutting_down", "this node is stopping")
)

// 405 answers, one per set of methods a path takes: each says which in Allow.
var (
	errMethodGet     = methodNotAllowed("GET")
	errMethodGetHead = methodNotAllowed("GET, HEAD")
	errMethodPost    = methodNotAllowed("POST")
)

func methodNotAllowed(allow string) apiError {
	return newAPIError(405, "method_not_allowed", "method not allowed; this path takes "+allow).with("Allow", allow)
}

var contentJSON = []byte("application/json")

func (e apiError) write(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(e.status)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	if e.header != nil {
		ctx.Response.Header.SetBytesKV(e.header, e.value)
	}
	ctx.Response.SetBodyRaw(e.body)
}

// writeError answers with an ad-hoc error word and message (not on the claim hot path).
func writeError(ctx *fasthttp.RequestCtx, status int, word, msg string) {
	newAPIError(status, word, msg).write(ctx)
}

var claimMessage = []byte(`,"message":"congratulations"}`)
