package node

import (
	"fmt"
	"hash/maphash"
	"math"
	"testing"
	"time"

	"redrain/internal/usertoken"
	"redrain/internal/wire"
)

const testUserKey = "platform-user-key-0123456789"

func tokenHarness(t *testing.T, tweak func(*Options)) *harness {
	return newHarness(t, false, func(o *Options) {
		o.Auth, o.UserKey = AuthToken, testUserKey
		if tweak != nil {
			tweak(o)
		}
	})
}

func (h *harness) roomRain(code string, room int64, count, amount int64, maxPer int) {
	h.t.Helper()
	a := wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: maxPer, RoomID: room}, Slice: h.rainSlice(code, count, amount)}
	if err := h.internal("POST", wire.PathSlices, a); err != nil {
		h.t.Fatal(err)
	}
	h.startRain(code)
}

func (h *harness) tokenClaim(code, token string, extra map[string]string) (int, string) {
	hdr := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range extra {
		hdr[k] = v
	}
	return h.do("POST", "/v1/rains/"+code+"/claim", hdr, nil)
}

func TestTokenMode(t *testing.T) {
	h := tokenHarness(t, nil)
	h.roomRain("roomA", 11, 10, 1000, 1)
	key := usertoken.NewKey([]byte(testUserKey))
	exp := time.Now().Add(time.Hour).Unix()
	good := key.Mint(usertoken.Claims{User: 5, Room: 11, ExpiresAt: exp})

	cases := []struct {
		name, token string
		status      int
		word        string
	}{
		{"forged", usertoken.NewKey([]byte("not the platform's key....")).Mint(usertoken.Claims{User: 6, Room: 11, ExpiresAt: exp}), 401, "bad_token"},
		{"expired", key.Mint(usertoken.Claims{User: 7, Room: 11, ExpiresAt: time.Now().Add(-time.Second).Unix()}), 401, "bad_token"},
		{"malformed", "v1.nonsense", 401, "bad_token"},
		{"other room", key.Mint(usertoken.Claims{User: 8, Room: 12, ExpiresAt: exp}), 403, "wrong_room"},
	}
	for _, c := range cases {
		st, body := h.tokenClaim("roomA", c.token, nil)
		wantError(t, st, body, c.status, c.word)
	}
	st, body := h.do("POST", "/v1/rains/roomA/claim", map[string]string{"X-User-Id": "5"}, nil)
	wantError(t, st, body, 401, "bad_token") // no gateway header honoured in token mode
	p, _ := h.n.store.Progress("roomA", time.Now().UnixNano())
	if p.RemainingCount != 10 {
		t.Fatalf("refused tokens changed the rain: %d packets left, want 10", p.RemainingCount)
	}
	st, body = h.tokenClaim("roomA", good, nil)
	if st != 200 {
		t.Fatalf("good token: %d %s", st, body)
	}
	st, body = h.tokenClaim("roomA", good, nil)
	wantError(t, st, body, 429, "user_limit")
}

func TestIPRateLimit(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.IPRate, o.IPBurst = 1, 5 })
	h.rainOf("ip", 1000, 100000, 1000, true)
	ok, limited := 0, 0
	start := time.Now()
	for u := uint64(1); u <= 50; u++ {
		switch st, body := h.claim("ip", u); st {
		case 200:
			ok++
		case 429:
			wantError(t, st, body, 429, "rate_limited")
			limited++
		default:
			t.Fatalf("%d %s", st, body)
		}
	}
	// One address, 50 taps: the burst of 5 plus at most one refill per second they took.
	took := time.Since(start)
	if most := 5 + int(math.Ceil(took.Seconds())); ok < 5 || ok > most || limited != 50-ok || limited == 0 {
		t.Fatalf("%d served, %d limited from one address with burst 5 at 1/s in %v (want 5..%d served)", ok, limited, took, most)
	}
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.IPRate, o.IPBurst = 1, 2
		o.TrustedProxies = []string{"127.0.0.0/8"}
	})
	h.rainOf("xff", 1000, 100000, 1000, true)
	// 20 client addresses in 20 slots of the limiter (two addresses in one slot share a bucket,
	// by design: 21 addresses in 65,536 slots do so about once in 300 runs).
	var clients []string
	slots := map[uint64]bool{}
	for c := 0; len(clients) < 20; c++ {
		a := fmt.Sprintf("10.0.%d.%d", c/256, c%256)
		key := maphash.Bytes(h.n.ipLimit.seed, []byte(a)) | 1 // as ipLimiter.allow hashes it
		if slot := key % IPLimitSlots; !slots[slot] {
			slots[slot] = true
			clients = append(clients, a)
		}
	}
	// Behind a trusted proxy each client address has its own bucket...
	for c, a := range clients {
		for i := 0; i < 2; i++ {
			hdr := map[string]string{"X-User-Id": fmt.Sprint(c*10 + i + 1), "X-Forwarded-For": "1.2.3.4, " + a}
			if st, body := h.do("POST", "/v1/rains/xff/claim", hdr, nil); st != 200 {
				t.Fatalf("client %d (%s) tap %d: %d %s", c, a, i, st, body)
			}
		}
	}
	// ...and a client cannot dodge its limit by prepending hops: the last hop counts.
	hdr := map[string]string{"X-User-Id": "999", "X-Forwarded-For": "9.9.9.9, " + clients[0]}
	st, body := h.do("POST", "/v1/rains/xff/claim", hdr, nil)
	wantError(t, st, body, 429, "rate_limited")
}

func TestIPLimiterBounded(t *testing.T) {
	l := newIPLimiter(1, 1)
	now := time.Now().UnixNano()
	// A million addresses: the table does not grow, and each new address gets its first claim.
	first := 0
	for i := 0; i < 1_000_000; i++ {
		if l.allow([]byte(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)), now+int64(i)*1e6) {
			first++
		}
	}
	if first < 900_000 {
		t.Fatalf("only %d of a million spread-out addresses got a claim", first)
	}
	if sz := len(l.stripes) * len(l.stripes[0].slots); sz != IPLimitSlots {
		t.Fatalf("table has %d slots", sz)
	}
	// A hammering address is held to its rate.
	a := []byte("192.0.2.1")
	n := 0
	later := now + 2_000_000*int64(time.Millisecond) // after every address above went idle
	for i := 0; i < 1000; i++ {
		if l.allow(a, later+int64(i)*1e6) { // 1000 taps over one second
			n++
		}
	}
	if n < 1 || n > 3 {
		t.Fatalf("1000 taps in a second at 1/s with burst 1: %d allowed", n)
	}
}

func BenchmarkTokenClaimPath(b *testing.B) {
	key := usertoken.NewKey([]byte(testUserKey))
	tok := []byte(key.Mint(usertoken.Claims{User: 1, Room: 1, ExpiresAt: 1 << 40}))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := key.Verify(tok, 1); err != nil {
			b.Fatal(err)
		}
	}
}
