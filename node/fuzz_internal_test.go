package node

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/wire"
	"redrain/rain"
)

// internalOps are the internal requests FuzzInternalAPI sends; {code} is the fuzzed code.
var internalOps = []struct{ method, path string }{
	{"POST", wire.PathSlices},
	{"POST", wire.PathStart},
	{"POST", wire.PathStop},
	{"POST", wire.PathDiscard},
	{"POST", wire.PathSettle},
	{"GET", wire.PathProgress + "?code={code}"},
	{"GET", wire.PathStart},                       // wrong method
	{"POST", "/internal/v1/rains/{code}/x"},       // unknown action
	{"POST", "/internal/{code}"},                  // unknown endpoint
	{"POST", wire.PathProgress + "/{code}/"},      // unknown endpoint under a known one
	{"POST", "/internal/v1/rains/{code}/reserve"}, // per-user owners (owner_serve.go)
	{"POST", "/internal/v1/rains/{code}/release"},
}

// FuzzInternalAPI sends arbitrary internal requests through the node's real handler: each is
// refused unsigned (401) and signed with another secret (403), then sent with a valid
// signature. Signed, the answer is a documented status with a JSON body, never a 5xx; an
// accepted slice is a valid slice for this node; and no message, however malformed, changes
// what was paid: the started rain keeps its epoch, its 3 claims and exactly the packets they
// took, and no other rain has a claim or more left than it was given.
func FuzzInternalAPI(f *testing.F) {
	now := time.Now()
	sl := func(code string, id uint32, epoch uint64, count, amount int64) []byte {
		b, _ := json.Marshal(wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: 3},
			Slice: rain.Slice{Code: code, ID: id, Epoch: epoch, Node: "n1", Count: count, Amount: amount, Seed: 5, Algorithm: rain.DoubleAverage}})
		return b
	}
	start := func(epoch uint64, from, to time.Time) []byte {
		b, _ := json.Marshal(wire.Start{Epoch: epoch, StartsAt: from.UnixNano(), EndsAt: to.UnixNano()})
		return b
	}
	f.Add(uint8(0), "", sl("fz", 1, 1, 10, 1000))
	f.Add(uint8(0), "", sl("live", 2, 1, 10, 1000)) // another slice into the started rain
	f.Add(uint8(0), "", sl("live", 1, 2, 10, 1000)) // another epoch of the started rain
	f.Add(uint8(0), "", sl("prep", 1, 1, 10, 1000)) // the prepared slice again, other content
	f.Add(uint8(0), "", []byte(`{"rules":{"code":"fz","max_per_user":0},"slice":{"code":"fz","id":1,"epoch":1,"node":"n1","count":1,"amount":1}}`))
	f.Add(uint8(0), "", []byte(`{"rules":{"code":"fz","max_per_user":1},"slice":{"code":"fz","id":1,"epoch":1,"node":"n2","count":1,"amount":1}}`))
	f.Add(uint8(0), "", []byte(`{"rules":{"code":"f z","max_per_user":1},"slice":{"code":"f z","id":1,"epoch":1,"node":"n1","count":1,"amount":1}}`))
	f.Add(uint8(0), "", []byte(`{"rules":{},"slice":{},"extra":1}`))
	f.Add(uint8(1), "prep", start(1, now, now.Add(time.Hour)))
	f.Add(uint8(1), "live", start(1, now, now.Add(time.Hour)))
	f.Add(uint8(1), "live", start(2, now, now.Add(time.Hour)))
	f.Add(uint8(1), "prep", start(1, now, now.Add(-time.Hour)))
	f.Add(uint8(2), "live", []byte(`{"at":0}`))
	f.Add(uint8(2), "nope", []byte(`{"at":1}`))
	f.Add(uint8(3), "prep", []byte(`{"epoch":1}`))
	f.Add(uint8(3), "live", []byte(`{"epoch":1}`))
	f.Add(uint8(3), "new", []byte(`{"epoch":18446744073709551615}`))
	f.Add(uint8(4), "live", []byte(`{}`))
	f.Add(uint8(4), "live", []byte(nil))
	f.Add(uint8(5), "live", []byte(nil))
	f.Add(uint8(5), "", []byte(nil))
	f.Add(uint8(6), "live", []byte(nil))
	f.Add(uint8(7), "live", []byte(`{}`))
	f.Add(uint8(8), "v1/../v1/slices", []byte(`{}`))
	f.Add(uint8(9), "x", []byte(`{}`))
	f.Add(uint8(1), "live/../prep", start(1, now, now.Add(time.Hour)))
	f.Add(uint8(1), "%6Cive", start(1, now, now.Add(time.Hour)))
	f.Add(uint8(10), "live", []byte(`{"users":[1,2,2,3]}`))
	f.Add(uint8(10), "live", []byte(`{"users":[0]}`))
	f.Add(uint8(10), "live", []byte(`{"users":[],"x":1}`))
	f.Add(uint8(11), "live", []byte(`{"user":1}`))
	f.Add(uint8(11), "nope", []byte(`{"user":-1}`))

	h := newHarness(f, false, nil)
	h.rainOf("live", 100, 10_000, 3, true)
	h.rainOf("prep", 50, 5_000, 3, false)
	var paid int64
	for u := uint64(1); u <= 3; u++ {
		st, body := h.claim("live", u)
		if st != 200 {
			f.Fatalf("claim: %d %s", st, body)
		}
		var a struct{ Amount int64 }
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			f.Fatal(err)
		}
		paid += a.Amount
	}
	signer, outsider := wire.NewSigner(testSecret), wire.NewSigner("outsider-secret")
	documented := map[int]bool{200: true, 400: true, 404: true, 405: true, 409: true}

	f.Fuzz(func(t *testing.T, op uint8, code string, body []byte) {
		o := internalOps[int(op)%len(internalOps)]
		if tooBig(o.path, body) {
			return // a valid slice of millions of packets is legitimate, only slow to generate
		}
		uri := string(bytes.ReplaceAll([]byte(o.path), []byte("{code}"), []byte(code)))
		unsigned, outsiders := 401, 403
		if !isInternal(uri) { // not under /internal/v1/ as sent (POST /internal/{code}, a '?' in the code)
			unsigned, outsiders = 404, 404
		}
		if st, _ := sendInternal(h, o.method, uri, body, nil); st != unsigned {
			t.Fatalf("%s %q unsigned: %d, want %d", o.method, uri, st, unsigned)
		}
		if st, _ := sendInternal(h, o.method, uri, body, outsider); st != outsiders {
			t.Fatalf("%s %q signed with another secret: %d, want %d", o.method, uri, st, outsiders)
		}
		st, answer := sendInternal(h, o.method, uri, body, signer)
		if !documented[st] || !json.Valid(answer) {
			t.Fatalf("%s %q %q: %d %s", o.method, uri, body, st, answer)
		}
		if st == 200 && strings.HasSuffix(o.path, "/reserve") {
			checkRefusedReservations(t, body, answer)
		} else if st == 200 && o.method == "POST" && string(answer) != `{"ok":true}` {
			t.Fatalf("%s %q: 200 %s", o.method, uri, answer)
		}
		if st == 200 && o.path == wire.PathSlices {
			checkAcceptedSlice(t, body)
		}
		checkPaid(t, h.n, paid)
	})
}

// checkRefusedReservations: a reserve call answered 200 has one result per user, each refused
// (resultRefused): this node's rains have no holders, so it owns no user and counts none.
func checkRefusedReservations(t *testing.T, body, answer []byte) {
	var b reserveBatch
	var a reserveAnswer
	if json.Unmarshal(body, &b) != nil || json.Unmarshal(answer, &a) != nil || len(a.Results) != len(b.Users) {
		t.Fatalf("reserve %q answered 200 %s", body, answer)
	}
	for _, r := range a.Results {
		if r != resultRefused {
			t.Fatalf("reserve %q on a node that owns no user: %s", body, answer)
		}
	}
}

// tooBig: a slice assignment of more packets than a fuzz run should generate.
func tooBig(path string, body []byte) bool {
	var a wire.SliceAssignment
	return path == wire.PathSlices && json.Unmarshal(body, &a) == nil && a.Slice.Count > 20_000
}

// isInternal: the raw path of uri, as sent, is under the internal API's prefix.
func isInternal(uri string) bool {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	p, _, _ := bytes.Cut(ctx.Request.Header.RequestURI(), []byte("?"))
	return bytes.HasPrefix(p, []byte(wire.PathPrefix))
}

// sendInternal runs one request through the node's router, signed by s over the request target
// as the node receives it, query included (nil: unsigned).
func sendInternal(h *harness, method, uri string, body []byte, s *wire.Signer) (int, []byte) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetBody(body)
	if s != nil {
		ts, nonce, sig := s.Sign(method, string(ctx.Request.Header.RequestURI()), body, time.Now())
		ctx.Request.Header.Set(wire.HeaderTime, ts)
		ctx.Request.Header.Set(wire.HeaderNonce, nonce)
		ctx.Request.Header.Set(wire.HeaderSignature, sig)
	}
	h.n.route(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// checkAcceptedSlice: an accepted assignment decodes strictly and is a valid slice for n1.
func checkAcceptedSlice(t *testing.T, body []byte) {
	t.Helper()
	var a wire.SliceAssignment
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&a); err != nil {
		t.Fatalf("accepted a slice that does not decode: %v: %s", err, body)
	}
	s, r := a.Slice, a.Rules
	if s.Node != "n1" || s.Epoch == 0 || s.Validate() != nil || r.Code != s.Code || !rain.ValidCode(s.Code) ||
		r.MaxPerUser < 1 || r.MaxPerUser > rain.MaxMaxPerUser || r.MinClaimIntervalMS < 0 || r.MinClaimIntervalMS > rain.MaxMinClaimInterval {
		t.Fatalf("accepted an invalid slice: %s", body)
	}
}

// checkPaid: the started rain "live" still serves epoch 1 and its 3 claims took exactly what
// was paid; every other rain has no claim and no more left than it was given.
func checkPaid(t *testing.T, n *Node, paid int64) {
	t.Helper()
	for _, p := range n.progress("").Rains {
		if p.RemainingCount > p.SliceCount || p.RemainingAmount > p.SliceAmount || p.SliceAmount < p.SliceCount {
			t.Fatalf("rain %s holds more than given: %+v", p.Code, p)
		}
		if p.Code != "live" {
			if p.ClaimedCount != 0 || p.RemainingCount != p.SliceCount || p.RemainingAmount != p.SliceAmount {
				t.Fatalf("rain %s changed without a claim: %+v", p.Code, p)
			}
			continue
		}
		if p.Epoch != 1 || p.ClaimedCount != 3 || p.ClaimedAmount != paid ||
			p.SliceCount-p.RemainingCount != 3 || p.SliceAmount-p.RemainingAmount != paid {
			t.Fatalf("the started rain changed (paid %d in 3 claims): %+v", paid, p)
		}
	}
	if _, ok := n.store.Progress("live", time.Now().UnixNano()); !ok {
		t.Fatalf("the started rain is gone")
	}
}
