package node

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// The per-address claim limit (--ip-rate, --ip-burst) and the client address it is keyed by.

var errIPLimited = newAPIError(429, "rate_limited", "too many claims from this address; slow down")

var headerXFF = []byte("X-Forwarded-For")

// ipLimiter is a token bucket per client address in a fixed table: memory never grows with the
// number of addresses. An address whose slot another holds takes it over when that bucket is
// full again (the other address is idle); otherwise the two share one bucket, which only makes
// the limit stricter for them. Amounts are in nano-tokens and the rate in nano-claims per
// second, so the arithmetic is integer and a fractional rate (--ip-rate 0.5) is kept: each
// slot carries the remainder of its last refill, so frequent taps lose nothing to rounding.
type ipLimiter struct {
	rate    uint64 // the rate in nano-claims/s = nano-tokens added per 1e9 ns; >= 1
	burst   int64  // bucket size in nano-tokens
	seed    maphash.Seed
	stripes [ipStripes]struct {
		mu    sync.Mutex
		slots [ipSlotsPerStripe]ipSlot
		_     [40]byte
	}
}

type ipSlot struct {
	key    uint64 // hash of the address; 0 = free
	tokens int64  // nano-tokens
	last   int64  // unix ns of the last refill
	frac   uint64 // remainder of the last refill, in 1e-9 nano-tokens (< 1e9)
}

// IPLimitSlots is the limiter's fixed number of tracked addresses.
const (
	ipStripes        = 256
	ipSlotsPerStripe = 256
	IPLimitSlots     = ipStripes * ipSlotsPerStripe
)

// newIPLimiter limits each address to rate claims/s (resolution 1e-9) with bursts of burst
// claims; burst < 1 means 2*rate, at least 1.
func newIPLimiter(rate float64, burst int) *ipLimiter {
	if burst < 1 {
		burst = max(1, int(2*rate))
	}
	return &ipLimiter{rate: max(1, uint64(math.Round(rate*1e9))), burst: int64(burst) * 1e9, seed: maphash.MakeSeed()}
}

// allow takes one token for the address key at now.
func (l *ipLimiter) allow(addr []byte, now int64) bool {
	h := maphash.Bytes(l.seed, addr) | 1
	st := &l.stripes[h%ipStripes]
	st.mu.Lock()
	defer st.mu.Unlock()
	s := &st.slots[(h/ipStripes)%ipSlotsPerStripe]
	if s.key != h && (s.key == 0 || l.isFull(s, now)) {
		*s = ipSlot{key: h, tokens: l.burst, last: now} // free, or its holder is idle: take it over
	}
	s.tokens, s.frac = l.refilled(s, now)
	s.last = now
	if s.tokens < 1e9 {
		return false
	}
	s.tokens -= 1e9
	return true
}

func (l *ipLimiter) isFull(s *ipSlot, now int64) bool {
	tokens, _ := l.refilled(s, now)
	return tokens >= l.burst
}

// refilled is s's bucket at now: its tokens plus (now-last)*rate/1e9, exactly (the remainder
// carried in frac), capped at burst.
func (l *ipLimiter) refilled(s *ipSlot, now int64) (tokens int64, frac uint64) {
	d := now - s.last
	if d <= 0 {
		return s.tokens, s.frac
	}
	hi, lo := bits.Mul64(uint64(d), l.rate)
	lo, carry := bits.Add64(lo, s.frac, 0)
	hi += carry
	if hi >= 1e9 { // the quotient does not fit 64 bits: long idle
		return l.burst, 0
	}
	add, frac := bits.Div64(hi, lo, 1e9)
	if add >= uint64(l.burst-s.tokens) {
		return l.burst, 0
	}
	return s.tokens + int64(add), frac
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
