package node

import "github.com/valyala/fasthttp"

// Auth modes of the claim API.
const (
	AuthGateway = "gateway" // trusted gateway sets X-User-Id
	AuthToken   = "token"   // Authorization: Bearer <signed user token> (internal/usertoken)
)

var (
	errBadToken  = newAPIError(401, "bad_token", "missing, malformed, forged or expired user token").with("WWW-Authenticate", `Bearer realm="redrain"`)
	errWrongRoom = newAPIError(403, "wrong_room", "this token is for another room")
)

// Header names of the claimant; fasthttp normalises names, so any spelling is the same header.
const (
	headerUserID = "X-User-Id"
	headerAuth   = "Authorization"
)

// claimant names the user of a claim request: from X-User-Id (gateway mode) or from a verified
// token (token mode, with the token's room checked against the rain's when the node knows the
// rain: a rain it does not know has no room, and is answered unknown_rain). The header that names
// the user must come once: twice (or again in a chunked body's trailer) is an ambiguous
// identity, refused as bad_user rather than guessed. It writes the error answer itself and
// returns ok=false when the request is refused.
func (n *Node) claimant(ctx *fasthttp.RequestCtx, rainRoom int64, known bool, now int64) (uint64, bool) {
	if n.userKey == nil {
		v, once := onlyValue(&ctx.Request.Header, headerUserID)
		user, ok := parseUserID(v)
		if !once || !ok {
			n.metrics.claimBadUser.Inc()
			errBadUser.write(ctx)
			return 0, false
		}
		return user, true
	}
	h, once := onlyValue(&ctx.Request.Header, headerAuth)
	if !once {
		n.metrics.claimBadUser.Inc()
		errBadUser.write(ctx)
		return 0, false
	}
	tok, ok := bearerToken(h)
	if !ok {
		n.metrics.claimBadToken.Inc()
		errBadToken.write(ctx)
		return 0, false
	}
	c, err := n.userKey.Verify(tok, now/1e9)
	if err != nil {
		n.metrics.claimBadToken.Inc()
		errBadToken.write(ctx)
		return 0, false
	}
	if known && c.Room != rainRoom {
		n.metrics.claimWrongRoom.Inc()
		errWrongRoom.write(ctx)
		return 0, false
	}
	return c.User, true
}

// bearerToken returns the token of an Authorization value "Bearer <token>". The scheme word is
// case-insensitive (RFC 7235 section 2.1), as on the coordinator; one space follows it.
func bearerToken(h []byte) ([]byte, bool) {
	const scheme = "bearer"
	if len(h) <= len(scheme) || h[len(scheme)] != ' ' {
		return nil, false
	}
	for i := 0; i < len(scheme); i++ {
		if h[i]|0x20 != scheme[i] { // scheme is lower-case letters: only c and its upper case match
			return nil, false
		}
	}
	return h[len(scheme)+1:], true
}

// onlyValue returns the value of header key when the request carries it at most once (nil when
// not at all); once is false when it carries it twice or more. It does not allocate: fasthttp
// reuses the header's own buffers.
func onlyValue(h *fasthttp.RequestHeader, key string) (value []byte, once bool) {
	switch all := h.PeekAll(key); len(all) {
	case 0:
		return nil, true
	case 1:
		return all[0], true
	default:
		return nil, false
	}
}
