package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/coordinator/dashboard"
	"redrain/internal/logpace"
	"redrain/rain"
)

// Limits of the admin API.
const (
	MaxAdminBody = 64 << 10 // request bodies over this get 413 body_too_large
	// maxReadBody is what the server reads before it answers 413: a body up to this size is
	// read whole and refused by the handler, so the client, still writing it, gets the answer
	// rather than a connection reset. A larger declared body is refused unread and the
	// connection closed (fasthttp has no lingering close), and the client may see a reset.
	maxReadBody = 1 << 20
	// MaxHeaderBytes bounds a request's line and headers (fasthttp's ReadBufferSize), as on the
	// node: more is 431 headers_too_large, so a long path is still read and answered 404.
	MaxHeaderBytes = 8 << 10
	DefaultList    = 100  // rains listed when no limit is given
	MaxList        = 1000 // largest limit
)

// apiError is one error answer: {"error":word,"message":msg} (and "field" when one is named).
type apiError struct {
	Status  int    `json:"-"`
	Word    string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func badRequest(field, msg string) *apiError {
	m := msg
	if field != "" {
		m = field + ": " + msg
	}
	return &apiError{Status: fasthttp.StatusBadRequest, Word: "bad_request", Message: m, Field: field}
}

var (
	errUnauthorized = &apiError{Status: 401, Word: "unauthorized", Message: "missing or wrong bearer token"}
	errNotFound     = &apiError{Status: 404, Word: "not_found", Message: "no such endpoint"}
	errMethod       = &apiError{Status: 405, Word: "method_not_allowed", Message: "method not allowed"}
	errTooLarge     = &apiError{Status: 413, Word: "body_too_large", Message: fmt.Sprintf("request body over %d bytes", MaxAdminBody)}
	errUnknownRain  = &apiError{Status: 404, Word: "unknown_rain", Message: "no rain has this code"}
	// What fasthttp could not read, answered as the node answers it (node/http.go serverError).
	errTimeout         = &apiError{Status: 408, Word: "timeout", Message: "request not received in time"}
	errHeadersTooLarge = &apiError{Status: 431, Word: "headers_too_large", Message: fmt.Sprintf("request line and headers over %d bytes", MaxHeaderBytes)}
	errMalformed       = &apiError{Status: 400, Word: "bad_request", Message: "malformed HTTP request"}
)

// authChallenge is the WWW-Authenticate header of every 401 (RFC 9110 11.6.1).
const authChallenge = `Bearer realm="redrain-admin"`

// errorFor maps an operation's error to its answer.
func errorFor(err error) *apiError {
	var fe *rain.FieldError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &fe):
		return badRequest(fe.Field, fe.Msg)
	case errors.Is(err, ErrUnknownRain):
		return errUnknownRain
	case errors.Is(err, ErrForbidden):
		return &apiError{Status: 403, Word: "forbidden", Message: "anchor_id is not this rain's anchor"}
	case errors.Is(err, ErrConflict):
		return &apiError{Status: 409, Word: "conflict", Message: err.Error()}
	case errors.Is(err, ErrNoNodes):
		return &apiError{Status: 503, Word: "no_nodes", Message: "no live node to hold the slices"}
	case errors.Is(err, ErrPrepareFailed):
		return &apiError{Status: 503, Word: "prepare_failed", Message: err.Error()}
	case errors.Is(err, ErrRedis):
		return &apiError{Status: 503, Word: "redis_unavailable", Message: "redis could not be reached; try again"}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 503, Word: "shutting_down", Message: "the coordinator is stopping"}
	}
	return &apiError{Status: 500, Word: "internal", Message: "internal error"}
}

func (e *apiError) Error() string { return e.Word + ": " + e.Message }

// newServer builds the admin API server (timeouts, the header and body limits set).
func (c *Coordinator) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               c.serveHTTP,
		ErrorHandler:          c.serveError,
		Name:                  "redrain-coordinator",
		ReadTimeout:           adminReadTO,
		WriteTimeout:          adminWriteTO,
		IdleTimeout:           adminIdleTO,
		MaxRequestBodySize:    maxReadBody,
		ReadBufferSize:        MaxHeaderBytes,
		SecureErrorLogMessage: true, // fasthttp's errors do not quote the request
		Logger:                &fasthttpLogger{l: c.log, pace: logpace.Limiter{Burst: refusalBurst}},
	}
}

// fasthttpLogger takes fasthttp's lines: one for each connection it could not serve, so a
// malformed request from anyone makes one. They are paced and clipped like refusals.
type fasthttpLogger struct {
	l    *slog.Logger
	pace logpace.Limiter
}

func (f *fasthttpLogger) Printf(format string, args ...any) {
	if f.pace.Allow(time.Now()) {
		f.l.Info("fasthttp: "+logpace.Clip(fmt.Sprintf(format, args...), 4*logpace.MaxField),
			"held_back_since_last_line", f.pace.Suppressed())
	}
}

// serveError answers what fasthttp could not read, as the node does: a body over the limit is
// 413 like an oversized body the handler sees, headers over MaxHeaderBytes 431, a request not
// received within the read timeout 408, anything else 400. Each is a refusal, counted by reason.
func (c *Coordinator) serveError(ctx *fasthttp.RequestCtx, err error) {
	e := edgeError(err)
	writeJSON(ctx, e.Status, e)
	ctx.SetConnectionClose()
	c.metrics.request("unread", e.Status)
	c.metrics.refuse(e.Word)
}

func edgeError(err error) *apiError {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errTooLarge
	case errors.Is(err, fasthttp.ErrSmallReadBuffer):
		return errHeadersTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	}
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		return errHeadersTooLarge
	}
	return errMalformed
}

// request is what one admin request is about, for the handler and the audit log.
type request struct {
	action string // create, list, get, prepare, start, stop, report, nodes
	code   string // the path's {code} segment, as sent (not yet checked when refused)
	anchor int64
	allow  string // the path's methods, for a 405's Allow header
}

// serveHTTP routes on the raw path (SPEC.md): an escaped ('%'), doubled-slash or dot-segment
// form of a route is not that route, and is 404 (401 without the token). /healthz, /metrics and
// the dashboard's paths (dashboard.Paths, exact matches) need no token.
func (c *Coordinator) serveHTTP(ctx *fasthttp.RequestCtx) {
	path, method := string(ctx.Request.URI().PathOriginal()), string(ctx.Method())
	switch path {
	case "/healthz", "/metrics":
		c.servePublic(ctx, path[1:], method)
		return
	}
	if a := dashboard.Lookup(path); a != nil { // the dashboard's page and assets: exact paths only
		c.serveAsset(ctx, a, method)
		return
	}
	req, e := route(method, path)
	if !c.authorized(ctx) { // before any other answer: nothing is told without the token
		e = errUnauthorized
	}
	if e == nil {
		e = c.dispatch(ctx, &req)
	}
	if e != nil {
		writeError(ctx, e, req.allow)
	}
	c.metrics.request(orDefault(req.action, "unknown"), ctx.Response.StatusCode())
	if e == errUnauthorized {
		c.metrics.refuse(e.Word)
	}
	c.audit(ctx, req, e)
}

// publicMethods are what /healthz and /metrics answer (no token needed); any other method is 405.
const publicMethods = "GET, HEAD"

func (c *Coordinator) servePublic(ctx *fasthttp.RequestCtx, name, method string) {
	switch {
	case method != fasthttp.MethodGet && method != fasthttp.MethodHead:
		writeError(ctx, errMethod, publicMethods)
	case name == "healthz":
		writeJSON(ctx, 200, map[string]string{"status": "ok"})
	default:
		c.metrics.handler(ctx)
	}
	c.metrics.request(name, ctx.Response.StatusCode())
}

// writeError writes an error answer with its headers: a 405 names the allowed methods, a 401
// the authentication scheme. Nothing else is told: a 401 carries no Allow.
func writeError(ctx *fasthttp.RequestCtx, e *apiError, allow string) {
	switch e.Status {
	case fasthttp.StatusMethodNotAllowed:
		ctx.Response.Header.Set("Allow", allow)
	case fasthttp.StatusUnauthorized:
		ctx.Response.Header.Set("WWW-Authenticate", authChallenge)
	}
	writeJSON(ctx, e.Status, e)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// authorized compares the bearer token in constant time (over hashes, so the length of the
// token does not leak either). Two Authorization headers are an ambiguous credential: refused,
// as the node refuses two identity headers.
func (c *Coordinator) authorized(ctx *fasthttp.RequestCtx) bool {
	all := ctx.Request.Header.PeekAll("Authorization")
	if len(all) != 1 {
		return false
	}
	h := all[0]
	const scheme = "bearer " // the scheme is case-insensitive (RFC 9110 11.1)
	if len(h) < len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return false
	}
	got := h[len(scheme):]
	a, b := sha256.Sum256(got), sha256.Sum256([]byte(c.opts.AdminToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// route maps method and raw path to an action (and the code in the path).
func route(method, path string) (request, *apiError) {
	var shape string
	var req request
	switch {
	case path == "/v1/rains":
		shape = "rains"
	case path == "/v1/nodes":
		shape = "nodes"
	case path == "/v1/tokens":
		shape = "tokens"
	case strings.HasPrefix(path, "/v1/rains/"):
		rest := strings.Split(path[len("/v1/rains/"):], "/")
		req.code = rest[0]
		switch {
		case len(rest) == 1:
			shape = "rain"
		case len(rest) == 2 && rainOps[rest[1]]:
			shape = rest[1]
		}
		if req.code == "" {
			shape = ""
		}
		// A code that is not rain.ValidCode (say, too long) names no rain: unknown without a lookup.
		if shape != "" && !rain.ValidCode(req.code) {
			return req, errUnknownRain
		}
	}
	byMethod := methods[shape]
	if byMethod == nil {
		return req, errNotFound
	}
	if req.action = byMethod[method]; req.action == "" {
		req.allow = allow(byMethod)
		return req, errMethod
	}
	return req, nil
}

// rainOps are the shapes that follow /v1/rains/{code}/ (not "nodes" or "rains").
var rainOps = map[string]bool{"prepare": true, "start": true, "stop": true, "report": true}

// methods maps a path shape to method -> action.
var methods = map[string]map[string]string{
	"rains":   {"GET": "list", "POST": "create"},
	"rain":    {"GET": "get"},
	"prepare": {"POST": "prepare"},
	"start":   {"POST": "start"},
	"stop":    {"POST": "stop"},
	"report":  {"GET": "report"},
	"nodes":   {"GET": "nodes"},
	"tokens":  {"POST": "mint"},
}

func allow(byMethod map[string]string) string {
	if len(byMethod) == 2 {
		return "GET, POST"
	}
	for m := range byMethod {
		return m
	}
	return ""
}

// dispatch runs the action and writes its success answer.
func (c *Coordinator) dispatch(ctx *fasthttp.RequestCtx, req *request) *apiError {
	if len(ctx.PostBody()) > MaxAdminBody {
		return errTooLarge
	}
	var (
		out    any
		err    error
		status = fasthttp.StatusOK
	)
	switch req.action {
	case "create":
		out, err = c.handleCreate(ctx, req)
		status = fasthttp.StatusCreated
	case "list":
		out, err = c.handleList(ctx, req)
	case "get":
		out, err = c.Get(c.ctx, req.code)
	case "prepare", "start", "stop":
		out, err = c.handleLifecycle(ctx, req)
	case "report":
		out, err = c.Report(c.ctx, req.code)
	case "nodes":
		var nodes []Node
		nodes, err = c.Nodes()
		out = map[string][]Node{"nodes": nodes}
	case "mint":
		out, err = c.handleMint(ctx)
	}
	if err != nil {
		e := errorFor(err)
		if e.Status == 500 {
			c.log.Error("admin: internal error", "action", req.action, "rain", req.code, "err", err)
		}
		return e
	}
	writeJSON(ctx, status, out)
	return nil
}

func (c *Coordinator) handleCreate(ctx *fasthttp.RequestCtx, req *request) (*Rain, error) {
	cfg := rain.DefaultConfig() // an absent field keeps its default
	if e := decodeBody(ctx.PostBody(), &cfg); e != nil {
		return nil, e
	}
	req.anchor = cfg.AnchorID
	if err := cfg.Validate(); err != nil { // before Create normalizes: an explicit 0 is out of range
		return nil, err
	}
	r, err := c.Create(cfg)
	if err == nil {
		req.code = r.Code
		ctx.Response.Header.Set("Location", "/v1/rains/"+r.Code)
	}
	return r, err
}

// anchorBody is the body of prepare, start and stop.
type anchorBody struct {
	AnchorID int64 `json:"anchor_id"`
}

func (c *Coordinator) handleLifecycle(ctx *fasthttp.RequestCtx, req *request) (*Rain, error) {
	var b anchorBody
	if e := decodeBody(ctx.PostBody(), &b); e != nil {
		return nil, e
	}
	if b.AnchorID <= 0 {
		return nil, badRequest("anchor_id", "required, must be > 0")
	}
	req.anchor = b.AnchorID
	switch req.action {
	case "prepare":
		return c.Prepare(req.code, b.AnchorID)
	case "start":
		return c.Start(req.code, b.AnchorID)
	}
	return c.Stop(req.code, b.AnchorID)
}

// handleList validates the query: anchor_id (> 0), status (a status string), limit
// (1..MaxList, default DefaultList); any other parameter is refused.
func (c *Coordinator) handleList(ctx *fasthttp.RequestCtx, req *request) (map[string][]*Rain, error) {
	q, e := parseListQuery(ctx.QueryArgs())
	if e != nil {
		return nil, e
	}
	req.anchor = q.AnchorID
	rains, err := c.List(c.ctx, q.AnchorID, q.Status, q.Limit)
	if err != nil {
		return nil, err
	}
	return map[string][]*Rain{"rains": rains}, nil
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs are written: a programmer error
		panic("coordinator: encode answer: " + err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// refusalBurst is how many refusal lines are written at once before the pace of one a second:
// a few refusals are each logged, a flood adds a line a second.
const refusalBurst = 10

// audit logs one admin request: no token, no body, only what identifies the action. Every
// request made with the token, reads included, is logged at info level (warn when refused or
// failed), so the default log level keeps the whole audit trail. Requests without it (401) are
// anyone's to send: their lines are paced (refusalBurst, then one a second), each carrying how
// many were held back since the last (every one is counted in redrain_coordinator_refused_total).
// The path's code is clipped to logpace.MaxField bytes: a refused one was never checked.
func (c *Coordinator) audit(ctx *fasthttp.RequestCtx, req request, e *apiError) {
	outcome, level := "ok", slog.LevelInfo
	if e != nil {
		outcome = e.Word
		if e.Status == 401 || e.Status == 403 || e.Status >= 500 {
			level = slog.LevelWarn
		}
	}
	attrs := []any{"action", orDefault(req.action, "unknown"), "rain", logpace.Clip(req.code, logpace.MaxField),
		"anchor_id", req.anchor, "status", ctx.Response.StatusCode(), "outcome", outcome, "remote", ctx.RemoteAddr().String()}
	if e == errUnauthorized {
		if !c.refusedLog.Allow(time.Now()) {
			return
		}
		attrs = append(attrs, "refused_since_last_line", c.refusedLog.Suppressed())
	}
	c.log.Log(context.Background(), level, "admin", attrs...)
}
