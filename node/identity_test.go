package node

import (
	"strings"
	"testing"
	"time"

	"redrain/internal/usertoken"
)

// claimRequest is a raw claim of code with the given header lines (each ending in \r\n).
func claimRequest(code, headers string) string {
	return "POST /v1/rains/" + code + "/claim HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n"
}

// Two identity headers are refused, never guessed (SPEC "Node claim API"): a gateway that
// appends its X-User-Id rather than replacing the client's must not let the client's copy win.
func TestTwoUserHeadersRefused(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("dup", 10, 1000, 5, true)
	for _, req := range []string{
		claimRequest("dup", "X-User-Id: 1001\r\nX-User-Id: 1002\r\n"),
		claimRequest("dup", "X-User-Id: 1001\r\nx-user-id: 1001\r\n"), // the same value, another spelling
		claimRequest("dup", "X-User-Id: 1001\r\nX-User-Id: \r\n"),
		// A copy in a chunked body's trailer is a second copy too.
		claimRequest("dup", "X-User-Id: 1001\r\nTransfer-Encoding: chunked\r\n") + "0\r\nX-User-Id: 1002\r\n\r\n",
	} {
		st, body := h.raw(t, req)
		if st != 400 {
			t.Errorf("%q: %d %s, want 400 bad_user", req, st, body)
			continue
		}
		wantError(t, st, body, 400, "bad_user")
	}
	if p, _ := h.n.store.Progress("dup", time.Now().UnixNano()); p.RemainingCount != 10 {
		t.Fatalf("refused claims took packets: %d left, want 10", p.RemainingCount)
	}
	if st, body := h.raw(t, claimRequest("dup", "X-User-Id: 1001\r\n")); st != 200 {
		t.Fatalf("one header: %d %s", st, body)
	}
}

// In token mode the same holds for Authorization: two tokens are refused, whichever comes first.
func TestTwoAuthorizationHeadersRefused(t *testing.T) {
	h := tokenHarness(t, nil)
	h.roomRain("dupt", 11, 10, 1000, 5)
	key := usertoken.NewKey([]byte(testUserKey))
	exp := time.Now().Add(time.Hour).Unix()
	a := key.Mint(usertoken.Claims{User: 5, Room: 11, ExpiresAt: exp})
	b := key.Mint(usertoken.Claims{User: 6, Room: 11, ExpiresAt: exp})
	for _, hdr := range []string{
		"Authorization: Bearer " + a + "\r\nAuthorization: Bearer " + b + "\r\n",
		"Authorization: Bearer " + a + "\r\nAuthorization: Bearer " + a + "\r\n",
		"Authorization: Bearer " + a + "\r\nAuthorization: Basic eDp5\r\n",
	} {
		st, body := h.raw(t, claimRequest("dupt", hdr))
		if st != 400 {
			t.Errorf("%q: %d %s, want 400 bad_user", hdr, st, body)
			continue
		}
		wantError(t, st, body, 400, "bad_user")
	}
	if p, _ := h.n.store.Progress("dupt", time.Now().UnixNano()); p.RemainingCount != 10 {
		t.Fatalf("refused claims took packets: %d left, want 10", p.RemainingCount)
	}
	if st, body := h.raw(t, claimRequest("dupt", "Authorization: Bearer "+a+"\r\n")); st != 200 {
		t.Fatalf("one token: %d %s", st, body)
	}
}

// A valid token claiming a rain this node does not hold is told the rain is unknown, not that
// the token is of the wrong room (the room of a missing rain is no room at all).
func TestTokenUnknownRain(t *testing.T) {
	h := tokenHarness(t, nil)
	h.roomRain("known", 70, 10, 1000, 1)
	key := usertoken.NewKey([]byte(testUserKey))
	exp := time.Now().Add(time.Hour).Unix()
	for _, room := range []int64{70, 0, 12} {
		tok := key.Mint(usertoken.Claims{User: 5, Room: room, ExpiresAt: exp})
		st, body := h.tokenClaim("nosuchrain", tok, nil)
		wantError(t, st, body, 404, "unknown_rain")
	}
	// A token of another room is still refused for a rain the node holds, and a bad token
	// is still 401 for a rain it does not.
	st, body := h.tokenClaim("known", key.Mint(usertoken.Claims{User: 5, Room: 12, ExpiresAt: exp}), nil)
	wantError(t, st, body, 403, "wrong_room")
	st, body = h.tokenClaim("nosuchrain", "v1.nonsense", nil)
	wantError(t, st, body, 401, "bad_token")
}

// The bearer scheme word is case-insensitive (RFC 7235), as on the coordinator.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	h := tokenHarness(t, nil)
	h.roomRain("case", 3, 10, 1000, 1)
	key := usertoken.NewKey([]byte(testUserKey))
	exp := time.Now().Add(time.Hour).Unix()
	for i, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		tok := key.Mint(usertoken.Claims{User: uint64(i + 1), Room: 3, ExpiresAt: exp})
		st, body := h.do("POST", "/v1/rains/case/claim", map[string]string{"Authorization": scheme + " " + tok}, nil)
		if st != 200 {
			t.Errorf("scheme %q: %d %s", scheme, st, body)
		}
	}
	tok := key.Mint(usertoken.Claims{User: 9, Room: 3, ExpiresAt: exp})
	for _, v := range []string{"Bearer" + tok, "Bearer: " + tok, "Basic " + tok, tok, "Bearer", "Bearer ", strings.ToUpper("bearer ") + "v1.x"} {
		st, body := h.do("POST", "/v1/rains/case/claim", map[string]string{"Authorization": v}, nil)
		wantError(t, st, body, 401, "bad_token")
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer t", "t", true},
		{"bearer t", "t", true},
		{"BEARER v1.x.y", "v1.x.y", true},
		{"Bearer ", "", true}, // an empty token, refused by the verifier
		{"Bearer", "", false},
		{"Bearert", "", false},
		{"Bearer\tt", "", false},
		{"Bearer\x00t", "", false},
		{"Bearor t", "", false},
		{"Basic dDp4", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		tok, ok := bearerToken([]byte(c.in))
		if ok != c.ok || string(tok) != c.tok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", c.in, tok, ok, c.tok, c.ok)
		}
	}
}
