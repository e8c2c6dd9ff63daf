package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// A claim that lands on a node other than its user's owner is made by the owner: the packet
// comes from the owner's stock, the claim_id is the owner's, the answer (200 or refusal) is the
// owner's word for word; the node it landed on hands out nothing of its own.
func TestForwardedClaim(t *testing.T) {
	oc := newOwnerCluster(t, 2)
	const code = "forward"
	oc.rain(code, 50, 2)
	n1, n2 := oc.hs[0], oc.hs[1]
	u := oc.userOwnedBy(code, "n2", 0)
	before1, before2 := remaining(n1, code), remaining(n2, code)
	for i := range 2 {
		st, body := n1.claim(code, u)
		var a struct {
			Amount  int64  `json:"amount"`
			ClaimID string `json:"claim_id"`
		}
		if st != 200 || json.Unmarshal([]byte(body), &a) != nil || a.Amount <= 0 || !strings.HasPrefix(a.ClaimID, "n2-") {
			t.Fatalf("claim %d through n1: %d %s", i, st, body)
		}
	}
	st, body := n1.claim(code, u)
	wantError(t, st, body, 429, "user_limit")
	if r1, r2 := remaining(n1, code), remaining(n2, code); r1 != before1 || r2 != before2-2 {
		t.Fatalf("remaining n1 %d (was %d), n2 %d (was %d): the packets are the owner's", r1, before1, r2, before2)
	}
	if tot, _ := n2.n.journal.Totals(code); tot.Count != 2 {
		t.Fatalf("n2 journaled %d claims, want 2", tot.Count)
	}
	if got := ownerCalls(t, n1, "forward", "ok"); got != 3 {
		t.Fatalf("n1 forwarded %v claims, want 3", got)
	}
}

// The claims endpoint: signed only, a strict body; a user this node does not own gets status 0
// (the caller fails it closed), an owned one its claim's answer; a batch answers in order.
func TestForwardEndpoint(t *testing.T) {
	oc := newOwnerCluster(t, 2)
	const code = "fwdend"
	oc.rain(code, 50, 1)
	n2 := oc.hs[1]
	mine, other := oc.userOwnedBy(code, "n2", 0), oc.userOwnedBy(code, "n1", 0)
	path := "/internal/v1/rains/" + code + "/claims"
	var a forwardAnswer
	if err := n2.wire.Do(context.Background(), "POST", n2.addr(), path, reserveBatch{Users: []uint64{mine, other, mine}}, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Answers) != 3 {
		t.Fatalf("answers: %+v", a)
	}
	var statuses []int
	for _, x := range a.Answers {
		statuses = append(statuses, x.Status)
	}
	// The two claims of mine run concurrently: one is paid, the other refused at the cap.
	ok, limit := a.Answers[0], a.Answers[2]
	if ok.Status != 200 {
		ok, limit = limit, ok
	}
	if ok.Status != 200 || !strings.Contains(string(ok.Body), `"claim_id":"n2-`) || limit.Status != 429 ||
		!strings.Contains(string(limit.Body), `"user_limit"`) || a.Answers[1].Status != 0 {
		t.Fatalf("answers %v: %s / %s / %s", statuses, a.Answers[0].Body, a.Answers[1].Body, a.Answers[2].Body)
	}
	for _, bad := range [][]uint64{{0}, {}, make([]uint64, maxReserveBatch+1)} {
		if st := statusOf(n2.wire.Do(context.Background(), "POST", n2.addr(), path, reserveBatch{Users: bad}, nil)); st != 400 {
			t.Fatalf("users %v: %d", bad, st)
		}
	}
	st, body := n2.do("POST", path, nil, []byte(`{"users":[1]}`))
	wantError(t, st, body, 401, "unauthorized")
	if st := statusOf(n2.wire.Do(context.Background(), "POST", n2.addr(), "/internal/v1/rains/nosuchrain/claims",
		reserveBatch{Users: []uint64{mine}}, nil)); st != 404 {
		t.Fatalf("claims of an unknown rain: %d", st)
	}
	if tot, _ := n2.n.journal.Totals(code); tot.Count != 1 {
		t.Fatalf("n2 journaled %d claims, want 1", tot.Count)
	}
}

// An owner's answer is relayed only when it is well formed: one answer per claim, each an HTTP
// status with a JSON object body; anything else leaves the claim unanswered (it fails closed).
func TestReadForwardAnswer(t *testing.T) {
	okBody := `{"claim_id":"n2-1","amount":7}`
	for _, c := range []struct {
		name   string
		answer string
		want   []int // statuses set, per claim; 0: unanswered
	}{
		{"two answers", `{"answers":[{"status":200,"body":` + okBody + `},{"status":429,"body":{"error":"user_limit"}}]}`, []int{200, 429}},
		{"not made there", `{"answers":[{"status":0,"body":null},{"status":200,"body":` + okBody + `}]}`, []int{0, 200}},
		{"one answer short", `{"answers":[{"status":200,"body":` + okBody + `}]}`, []int{0, 0}},
		{"one answer too many", `{"answers":[{"status":200,"body":{}},{"status":200,"body":{}},{"status":200,"body":{}}]}`, []int{0, 0}},
		{"not JSON", `{"answers":[{"status":200,"body":{}},{"status":200,"body":{`, []int{0, 0}},
		{"a status out of range", `{"answers":[{"status":600,"body":{}},{"status":199,"body":{}}]}`, []int{0, 0}},
		{"a body not an object", `{"answers":[{"status":200,"body":null},{"status":200,"body":"paid"}]}`, []int{0, 0}},
		{"a body missing", `{"answers":[{"status":200},{"status":200,"body":[1]}]}`, []int{0, 0}},
		{"wrong types", `{"answers":[{"status":"200","body":{}},{"status":200,"body":{}}]}`, []int{0, 0}},
	} {
		sent := []*reservation{{}, {}}
		readForwardAnswer([]byte(c.answer), sent)
		for i, r := range sent {
			if r.status != c.want[i] || (r.status != 0) != (len(r.body) > 0) {
				t.Errorf("%s: claim %d: status %d body %q, want status %d", c.name, i, r.status, r.body, c.want[i])
			}
		}
	}
	sent := []*reservation{{}}
	readForwardAnswer([]byte(`{"answers":[{"status":200,"body":`+okBody+`}]}`), sent)
	if string(sent[0].body) != okBody {
		t.Errorf("body relayed as %q, want %q word for word", sent[0].body, okBody)
	}
}

// FuzzReadForwardAnswer: whatever an owner answers, each claim is either unanswered (status 0,
// no body: it fails closed) or answered with an HTTP status and a JSON object body; and a claim
// is answered only when the answer has one entry per claim.
func FuzzReadForwardAnswer(f *testing.F) {
	f.Add([]byte(`{"answers":[{"status":200,"body":{"claim_id":"n2-1","amount":7}},{"status":410,"body":{"error":"exhausted"}}]}`), uint8(2))
	f.Add([]byte(`{"answers":[{"status":0,"body":null}]}`), uint8(1))
	f.Add([]byte(`{"answers":[{"status":200,"body":"x"},{"status":-1,"body":{}}]}`), uint8(2))
	f.Add([]byte(`{"answers":null}`), uint8(0))
	f.Add([]byte(`[{"status":200,"body":{}}]`), uint8(1))
	f.Fuzz(func(t *testing.T, answer []byte, n uint8) {
		sent := make([]*reservation, n%8)
		for i := range sent {
			sent[i] = &reservation{}
		}
		readForwardAnswer(answer, sent)
		for i, r := range sent {
			if r.status == 0 {
				if r.body != nil {
					t.Fatalf("claim %d unanswered with a body %q", i, r.body)
				}
				continue
			}
			if r.status < 200 || r.status >= 600 || len(r.body) == 0 || r.body[0] != '{' || !json.Valid(r.body) {
				t.Fatalf("claim %d answered %d %q", i, r.status, r.body)
			}
			var a forwardAnswer
			if json.Unmarshal(answer, &a) != nil || len(a.Answers) != len(sent) {
				t.Fatalf("claim %d answered from %q, which has not %d answers", i, answer, len(sent))
			}
		}
	})
}
