package node

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"redrain/internal/wire"
	"redrain/ledger"
)

type claimAnswer struct {
	Amount  int64  `json:"amount"`
	ClaimID string `json:"claim_id"`
	Message string `json:"message"`
	Error   string `json:"error"`
}

func decodeAnswer(t *testing.T, body string) claimAnswer {
	t.Helper()
	var a claimAnswer
	d := json.NewDecoder(strings.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&a); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return a
}

func wantError(t *testing.T, status int, body string, wantStatus int, word string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d (%s), want %d %s", status, body, wantStatus, word)
	}
	if a := decodeAnswer(t, body); a.Error != word {
		t.Fatalf("error %q, want %q (%s)", a.Error, word, body)
	}
}

func TestClaimStatusCodes(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("open", 3, 300, 2, true)
	h.rainOf("later", 10, 100, 1, false)
	answered := map[string]int64{}

	t.Run("bad user", func(t *testing.T) {
		for _, v := range []string{"", "0", "-1", "abc", "1.5", "18446744073709551616", "7x"} {
			hdr := map[string]string{"X-User-Id": v}
			if v == "" {
				hdr = nil
			}
			st, body := h.do("POST", "/v1/rains/open/claim", hdr, nil)
			wantError(t, st, body, 400, "bad_user")
		}
	})
	t.Run("unknown rain", func(t *testing.T) {
		st, body := h.claim("nosuchrain", 1)
		wantError(t, st, body, 404, "unknown_rain")
	})
	t.Run("not started", func(t *testing.T) {
		st, body := h.claim("later", 1)
		wantError(t, st, body, 425, "not_started")
	})
	t.Run("ok then user limit", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			st, body := h.claim("open", 7)
			if st != 200 {
				t.Fatalf("claim %d: %d %s", i, st, body)
			}
			a := decodeAnswer(t, body)
			if a.Amount < 1 || !strings.HasPrefix(a.ClaimID, "n1-") || a.Message == "" {
				t.Fatalf("bad answer %+v", a)
			}
			answered[a.ClaimID] = a.Amount
		}
		st, body := h.claim("open", 7)
		wantError(t, st, body, 429, "user_limit")
	})
	t.Run("exhausted", func(t *testing.T) {
		st, body := h.claim("open", 8)
		if st != 200 {
			t.Fatalf("last packet: %d %s", st, body)
		}
		a := decodeAnswer(t, body)
		answered[a.ClaimID] = a.Amount
		st, body = h.claim("open", 9)
		wantError(t, st, body, 410, "exhausted")
		var sum int64
		for _, v := range answered {
			sum += v
		}
		if sum != 300 {
			t.Fatalf("three packets sum to %d, want the budget 300", sum)
		}
	})
	t.Run("finished", func(t *testing.T) {
		h.rainOf("stopme", 5, 50, 1, true)
		if err := h.internal("POST", wire.RainPath(wire.PathStop, "stopme"), wire.Stop{At: time.Now().UnixNano()}); err != nil {
			t.Fatal(err)
		}
		st, body := h.claim("stopme", 1)
		wantError(t, st, body, 410, "finished")
	})
	t.Run("body too large", func(t *testing.T) {
		st, body := h.do("POST", "/v1/rains/open/claim", map[string]string{"X-User-Id": "5"}, bytes.Repeat([]byte("x"), 4097))
		wantError(t, st, body, 413, "body_too_large")
	})
	t.Run("10 MiB body", func(t *testing.T) {
		// The server answers from the Content-Length alone, without reading 10 MiB.
		st, body := h.raw(t, "POST /v1/rains/open/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 5\r\nContent-Length: 10485760\r\n\r\n")
		wantError(t, st, body, 413, "body_too_large")
	})
	t.Run("method and path", func(t *testing.T) {
		st, body := h.do("GET", "/v1/rains/open/claim", nil, nil)
		wantError(t, st, body, 405, "method_not_allowed")
		st, body = h.do("POST", "/v1/nothing", nil, nil)
		wantError(t, st, body, 404, "not_found")
	})
	t.Run("public view", func(t *testing.T) {
		st, body := h.do("GET", "/v1/rains/open", nil, nil)
		if st != 200 || !strings.Contains(body, `"status":"raining"`) || !strings.Contains(body, `"remaining_count":0`) {
			t.Fatalf("view: %d %s", st, body)
		}
		st, body = h.do("GET", "/v1/rains/later", nil, nil)
		if st != 200 || !strings.Contains(body, `"status":"prepared"`) || !strings.Contains(body, `"remaining_count":10`) {
			t.Fatalf("view: %d %s", st, body)
		}
	})
	h.checkInvariants("open", answered)
}

// X-User-Id is a decimal uint64 > 0 (SPEC.md): leading zeros name the same user, so "007" and
// "7" share one per-user cap and the journal records user 7.
func TestClaimUserIDLeadingZeros(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("zeros", 10, 1000, 2, true)
	answered := map[string]int64{}
	for _, v := range []string{"007", "7"} {
		st, body := h.do("POST", "/v1/rains/zeros/claim", map[string]string{"X-User-Id": v}, nil)
		if st != 200 {
			t.Fatalf("X-User-Id %q: %d %s", v, st, body)
		}
		a := decodeAnswer(t, body)
		answered[a.ClaimID] = a.Amount
	}
	st, body := h.do("POST", "/v1/rains/zeros/claim", map[string]string{"X-User-Id": "0007"}, nil)
	wantError(t, st, body, 429, "user_limit")
	for _, v := range []string{"000", strings.Repeat("0", 32) + "7"} {
		st, body := h.do("POST", "/v1/rains/zeros/claim", map[string]string{"X-User-Id": v}, nil)
		wantError(t, st, body, 400, "bad_user")
	}
	users := map[uint64]int{}
	if err := h.n.journal.Scan("zeros", 0, 1<<30, func(_ uint64, r ledger.Record) bool {
		users[r.User]++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[7] != 2 {
		t.Fatalf("journaled users %v, want user 7 twice", users)
	}
	h.checkInvariants("zeros", answered)
}

func TestClaimRateLimited(t *testing.T) {
	h := newHarness(t, false, nil)
	a := wire.SliceAssignment{Rules: wire.RainRules{Code: "rl", MaxPerUser: 5, MinClaimIntervalMS: 60000},
		Slice: h.rainSlice("rl", 10, 1000)}
	if err := h.internal("POST", wire.PathSlices, a); err != nil {
		t.Fatal(err)
	}
	h.startRain("rl")
	if st, body := h.claim("rl", 3); st != 200 {
		t.Fatalf("first claim: %d %s", st, body)
	}
	st, body := h.claim("rl", 3)
	wantError(t, st, body, 429, "rate_limited")
	if st, body := h.claim("rl", 4); st != 200 {
		t.Fatalf("another user: %d %s", st, body)
	}
}

// A journal that cannot commit hands out no packet: 503, and the packet stays claimable.
func TestClaimJournalUnavailable(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("j", 2, 20, 1, true)
	if err := h.n.journal.Close(); err != nil {
		t.Fatal(err)
	}
	st, body := h.claim("j", 1)
	wantError(t, st, body, 503, "journal_unavailable")
	p, _ := h.n.store.Progress("j", time.Now().UnixNano())
	if p.RemainingCount != 2 || p.RemainingAmount != 20 {
		t.Fatalf("after a failed journal write %d packets (%d cents) remain, want 2 (20)", p.RemainingCount, p.RemainingAmount)
	}
	// The user's reservation was rolled back too: the same user is not at its cap.
	if _, err := h.n.store.Claim([]byte("j"), 1, time.Now().UnixNano()); err != nil {
		t.Fatalf("user still blocked after the failed claim: %v", err)
	}
}

func TestInternalAuth(t *testing.T) {
	h := newHarness(t, false, nil)
	st, body := h.do("GET", wire.PathProgress, nil, nil)
	wantError(t, st, body, 401, "unauthorized")
	st, body = h.do("POST", wire.PathSlices, map[string]string{wire.HeaderTime: "1", wire.HeaderNonce: strings.Repeat("a", 32),
		wire.HeaderSignature: strings.Repeat("0", 64)}, []byte(`{}`))
	wantError(t, st, body, 403, "forbidden")
	bad := wire.NewClient("another-secret", time.Second)
	bad.HTTP.Transport = h.wire.HTTP.Transport
	err := bad.Do(t.Context(), "POST", h.addr(), wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "x", MaxPerUser: 1},
		Slice: h.rainSlice("x", 1, 1)}, nil)
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 403 {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, ok := h.n.store.Progress("x", 0); ok {
		t.Fatal("a slice pushed without the secret was accepted")
	}
}

func TestSliceAssignmentIdempotentAndEpochs(t *testing.T) {
	h := newHarness(t, false, nil)
	sl := h.rainOf("ep", 10, 100, 1, false)
	if err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "ep", MaxPerUser: 1}, Slice: sl}); err != nil {
		t.Fatalf("repeated assignment: %v", err)
	}
	sl2 := sl
	sl2.Epoch, sl2.Seed = 2, 7
	if err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "ep", MaxPerUser: 1}, Slice: sl2}); err != nil {
		t.Fatalf("second epoch: %v", err)
	}
	if err := h.internal("POST", wire.RainPath(wire.PathDiscard, "ep"), wire.Discard{Epoch: 1}); err != nil {
		t.Fatalf("discard: %v", err)
	}
	now := time.Now()
	err := h.internal("POST", wire.RainPath(wire.PathStart, "ep"), wire.Start{Epoch: 1, StartsAt: now.UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 404 {
		t.Fatalf("start of a discarded epoch: %v", err)
	}
	h.startRainEpoch("ep", 2)
	err = h.internal("POST", wire.RainPath(wire.PathDiscard, "ep"), wire.Discard{Epoch: 2})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("discard of the served epoch: %v", err)
	}
	var sum int64
	for u := uint64(1); u <= 11; u++ {
		st, body := h.claim("ep", u)
		if u <= 10 {
			if st != 200 {
				t.Fatalf("claim %d: %d %s", u, st, body)
			}
			sum += decodeAnswer(t, body).Amount
		} else {
			wantError(t, st, body, 410, "exhausted")
		}
	}
	if sum != 100 {
		t.Fatalf("epoch 2 paid %d, want 100 (only one slice set on sale)", sum)
	}
	h.checkInvariants("ep", nil)
}
