package node

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// Auth modes of the claim API.
const (
	AuthGateway = "gateway" // trusted gateway sets X-User-Id
	AuthToken   = "token"   // Authorization: Bearer <signed user token> (internal/usertoken)
)

var (
	errBadToken  = newAPIError(401, "bad_token", "missing, malformed, forged or expired user token").with("WWW-Authenticate", `Bearer realm="redrain"`)
	errWrongRoom = newAPIError(403, "wrong_room", "this token is for another room")
	errIPLimited = newAPIError(429, "rate_limited", "too many claims from this address; slow down")
)

// Header names of the claimant; fasthttp normalises names, so any spelling is the same header.
const (
	headerUserID = "X-User-Id"
	headerAuth   = "Authorization"
)

var headerXFF = []byte("X-Forwarded-For")

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

// ipLimiter is a token bucket per client address in a fixed table: memory never grows with the
// number of addresses. An address whose slot another holds takes it over when that bucket is
// full again (the other address is idle); otherwise the two share one bucket, which only makes
// the limit stricter for them. Amounts are in nano-tokens so the arithmetic is integer.
type ipLimiter struct {
	perNano int64 // nano-tokens added per nanosecond (the rate in claims/s)
	burst   int64 // bucket size in nano-tokens
	seed    maphash.Seed
	stripes [ipStripes]struct {
		mu    sync.Mutex
		slots [ipSlotsPerStripe]ipSlot
		_     [40]byte
	}
}

type ipSlot struct {
	key    uint64 // hash of the address; 0 = free
	tokens int64
	last   int64 // unix ns of the last refill
}

// IPLimitSlots is the limiter's fixed number of tracked addresses.
const (
	ipStripes        = 256
	ipSlotsPerStripe = 256
	IPLimitSlots     = ipStripes * ipSlotsPerStripe
)

func newIPLimiter(rate float64, burst int) *ipLimiter {
	if burst < 1 {
		burst = max(1, int(2*rate))
	}
	return &ipLimiter{perNano: int64(rate), burst: int64(burst) * 1e9, seed: maphash.MakeSeed()}
}

// allow takes one token for the address key at now.
func (l *ipLimiter) allow(addr []byte, now int64) bool {
	h := maphash.Bytes(l.seed, addr) | 1
	st := &l.stripes[h%ipStripes]
	st.mu.Lock()
	defer st.mu.Unlock()
	s := &st.slots[(h/ipStripes)%ipSlotsPerStripe]
	if s.key != h && (s.key == 0 || l.refilled(s, now) >= l.burst) {
		*s = ipSlot{key: h, tokens: l.burst, last: now} // free, or its holder is idle: take it over
	}
	s.tokens = l.refilled(s, now)
	s.last = now
	if s.tokens < 1e9 {
		return false
	}
	s.tokens -= 1e9
	return true
}

func (l *ipLimiter) refilled(s *ipSlot, now int64) int64 {
	d := now - s.last
	if d <= 0 {
		return s.tokens
	}
	if d > l.burst/max(l.perNano, 1) {
		return l.burst
	}
	return min(l.burst, s.tokens+d*l.perNano)
}

// clientAddr is the address a claim is limited by: the TCP peer, or the last X-Forwarded-For hop
// when the peer is a trusted proxy. It returns bytes valid until the handler returns.
func (n *Node) clientAddr(ctx *fasthttp.RequestCtx, scratch []byte) []byte {
	ip := ctx.RemoteIP()
	if len(n.trusted) > 0 {
		if a, ok := netip.AddrFromSlice(ip); ok && n.isTrusted(a.Unmap()) {
			if xff := ctx.Request.Header.PeekBytes(headerXFF); len(xff) > 0 {
				if i := bytes.LastIndexByte(xff, ','); i >= 0 {
					xff = xff[i+1:]
				}
				if hop := bytes.TrimSpace(xff); len(hop) > 0 {
					return hop
				}
			}
		}
	}
	return append(scratch, ip...)
}

func (n *Node) isTrusted(a netip.Addr) bool {
	for _, p := range n.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ErrBadProxies: --trusted-proxies is not a list of IPs or CIDR prefixes.
var ErrBadProxies = errors.New("node: bad trusted proxies")

// ParseTrustedProxies parses a comma-separated list of IPs and CIDR prefixes.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", ErrBadProxies, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
