package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/valyala/fasthttp"

	"redrain/internal/wire"
)

// FuzzRawRequest feeds raw HTTP requests (request line, headers, perhaps a body) through
// fasthttp's request parser and the node's router, as the server does, and checks what routes
// where against a model written from the contract (routeModel):
//   - a request fasthttp cannot parse gets the server's error answer;
//   - a raw path starting with exactly /internal/v1/ reaches the internal handler, and nothing
//     else does (the handler is seen by its 401 unauthorized / 403 forbidden: no other route
//     answers those words, and no fuzzed request carries a valid signature);
//   - a path that is no route is 404 not_found; a route with another method is 405 with Allow;
//   - every answer is a documented status with a JSON body (Prometheus text aside), every 401
//     carries WWW-Authenticate, and a 200 to a POST is a claim on the canonical claim path with
//     exactly one valid X-User-Id;
//   - only a GET of /v1/rooms/{room_id}/events is hijacked (an event stream).
func FuzzRawRequest(f *testing.F) {
	for _, s := range []string{
		"POST /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 1\r\n\r\n",
		"POST /v1/rains/fz/claim?src=app HTTP/1.1\r\nHost: x\r\nX-User-Id: 2\r\nContent-Length: 2\r\n\r\n{}",
		"POST /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 1001\r\nX-User-Id: 1002\r\n\r\n",
		"POST /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nx-user-id: 3\r\nX-USER-ID: 3\r\n\r\n",
		"POST /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-User-Id: 5\r\n\r\n",
		"POST /v1/rains/fz%2fclaim HTTP/1.1\r\nHost: x\r\nX-User-Id: 6\r\n\r\n",
		"POST /v1/rains/%66z/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 7\r\n\r\n",
		"POST //v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 8\r\n\r\n",
		"POST /v1/rains/x/../fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 9\r\n\r\n",
		"POST http://x/v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 10\r\n\r\n",
		"post /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 11\r\n\r\n",
		"GET /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/rains/fz HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /v1/rains/fz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/rains/nosuch HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /internal/v1/progress HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /internal/v1/progress?code=zzz HTTP/1.1\r\nHost: x\r\nX-Redrain-Time: 1\r\nX-Redrain-Nonce: 00112233445566778899aabbccddeeff\r\nX-Redrain-Signature: 00\r\n\r\n",
		"GET /%69nternal/v1/progress HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET //internal/v1/progress HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /internal/v1/../v1/progress HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /internal/v2/progress HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /internal/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x/internal/v1/progress HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /internal/v1/slices HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"POST /internal/v1/rains/fz/stop HTTP/1.1\r\nHost: x\r\nX-Redrain-Signature: \r\n\r\n",
		"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /%68ealthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nothing HTTP/1.0\r\n\r\n",
		"POST /v1/rains/fz/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 12\r\nContent-Length: 99999999\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
		"GET /healthz\r\n\r\n",
		"GET /v1/rooms/7/events HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/rooms/07/events HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/rooms/7/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1.raining.fz\r\n\r\n",
		"GET /v1/rooms/7/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: nonsense\r\n\r\n",
		"POST /v1/rooms/7/events HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/rooms/%37/events HTTP/1.1\r\nHost: x\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	h := newHarness(f, false, nil)
	h.rainOf("fz", 1_000_000, 100_000_000, 1000, true)
	documented := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 408: true, 410: true,
		413: true, 425: true, 429: true, 431: true, 503: true}

	f.Fuzz(func(t *testing.T, raw []byte) {
		var ctx fasthttp.RequestCtx
		if err := ctx.Request.ReadLimitBody(bufio.NewReader(bytes.NewReader(raw)), MaxInternalBody); err != nil {
			h.n.serverError(&ctx, err)
			if st := ctx.Response.StatusCode(); st != 400 && st != 408 && st != 413 && st != 431 {
				t.Fatalf("unparsable %q: %d", raw, st)
			}
			return
		}
		target := string(ctx.Request.Header.RequestURI())
		method := string(ctx.Method())
		h.n.route(&ctx)
		r := &ctx.Response
		st, body := r.StatusCode(), r.Body()
		var answer struct{ Error string }
		_ = json.Unmarshal(body, &answer)
		route := routeModel(target)
		if ctx.Hijacked() { // an event stream, handed to the hub after the handler: nothing answered here
			if route != "events" || method != "GET" {
				t.Fatalf("%q (route %q): %s hijacked", raw, route, method)
			}
			return
		}
		switch {
		case !documented[st]:
			t.Fatalf("%q: undocumented status %d %s", raw, st, body)
		case !(route == "ops" && st == 200) && !json.Valid(body):
			t.Fatalf("%q: %d answer is not JSON: %q", raw, st, body)
		case st == 405 && len(r.Header.Peek("Allow")) == 0:
			t.Fatalf("%q: 405 without Allow", raw)
		case st == 401 && len(r.Header.Peek("WWW-Authenticate")) == 0:
			t.Fatalf("%q: 401 without WWW-Authenticate", raw)
		}
		internal := answer.Error == "unauthorized" || answer.Error == "forbidden"
		if internal != (route == "internal") {
			t.Fatalf("%q (target %q, route %q): %d %s", raw, target, route, st, body)
		}
		if route == "none" && (st != 404 || answer.Error != "not_found") {
			t.Fatalf("%q (target %q) is no route: %d %s", raw, target, st, body)
		}
		if st == 405 && route != "internal" && string(r.Header.Peek("Allow")) != allowModel(route) {
			t.Fatalf("%q (route %q): Allow %q", raw, route, r.Header.Peek("Allow"))
		}
		if st == 200 && method != "GET" && method != "HEAD" {
			if _, ok := onlyValue(&ctx.Request.Header, headerUserID); route != "claim" || method != "POST" || !ok ||
				len(ctx.Request.Body()) > MaxClaimBody {
				t.Fatalf("%q (route %q): 200 to a %s that is no claim", raw, route, method)
			}
			if _, valid := parseUserID(ctx.Request.Header.Peek(headerUserID)); !valid {
				t.Fatalf("%q: a claim paid to an invalid user", raw)
			}
		}
	})
}

var (
	rainRoute   = regexp.MustCompile(`^/v1/rains/[A-Za-z0-9_-]{1,64}(/claim)?$`)
	eventsRoute = regexp.MustCompile(`^/v1/rooms/.*/events$`)
)

// routeModel is what the contract says a raw request target routes to: its path before any
// '?', compared as sent.
func routeModel(target string) string {
	path, _, _ := bytes.Cut([]byte(target), []byte("?"))
	p := string(path)
	switch m := rainRoute.FindStringSubmatch(p); {
	case m != nil && m[1] != "":
		return "claim"
	case m != nil:
		return "view"
	case p == "/healthz" || p == "/readyz" || p == "/metrics":
		return "ops"
	case eventsRoute.MatchString(p):
		return "events"
	case len(p) >= len(wire.PathPrefix) && p[:len(wire.PathPrefix)] == wire.PathPrefix:
		return "internal"
	}
	return "none"
}

// allowModel is the Allow header of a public route's 405.
func allowModel(route string) string {
	return map[string]string{"claim": "POST", "view": "GET", "ops": "GET, HEAD", "events": "GET"}[route]
}
