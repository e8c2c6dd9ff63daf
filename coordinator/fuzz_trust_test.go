package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/testcluster"
	"redrain/internal/testredis"
	"redrain/rain"
)

// serve runs one admin request through the coordinator's handler (no socket).
func serve(c *Coordinator, method, uri, auth string, body []byte) (int, []byte) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetMethod(method)
	if auth != "" {
		ctx.Request.Header.Set("Authorization", auth)
	}
	ctx.Request.SetBody(body)
	c.serveHTTP(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// fuzzAnchor is the anchor of the rains the fuzz targets act on.
const fuzzAnchor = 7

// FuzzLifecycleBody posts arbitrary bodies to prepare (of a waiting rain), start (of a prepared
// one) and stop (of a raining one), with one live node: the answer is a documented status with
// a JSON body; the action happens only for a body that is exactly {"anchor_id":<the rain's
// anchor>}; any other body leaves the rain as it was (status and epoch).
func FuzzLifecycleBody(f *testing.F) {
	for _, s := range []string{
		`{"anchor_id":7}`, ` {"anchor_id" : 7} `, `{"anchor_id":8}`, `{"anchor_id":0}`, `{"anchor_id":-7}`,
		`{"anchor_id":"7"}`, `{"anchor_id":7.0}`, `{"anchor_id":7e0}`, `{"ANCHOR_ID":7}`, `{"Anchor_id":7}`,
		`{"anchor_id":7,"anchor_id":8}`, `{"anchor_id":8,"anchor_id":7}`, `{"anchor_id":7,"x":1}`,
		`{"anchor_id":9223372036854775808}`, `{"anchor_id":7}{}`, `{"anchor_id":7} x`, `[7]`, `null`, `{}`, ``,
		"{\"anchor_id\":7,\"\xff\":1}", `{"anchor_id":null}`, `{"anchor_\u0069d":7}`,
	} {
		for op := range uint8(3) {
			f.Add(op, []byte(s))
		}
	}
	c := startCoordinator(f, testredis.New(f).URL(), "", nil)
	newFakeNode(f, "n1", c.GossipAddr())
	testcluster.Eventually(f, 10*time.Second, "a live node", func() bool { return len(c.liveNodes()) == 1 })
	auth := "Bearer " + testToken
	act := func(t *testing.T, code, action string) {
		if st, b := serve(c.Coordinator, "POST", "/v1/rains/"+code+"/"+action, auth, []byte(`{"anchor_id":7}`)); st != 200 {
			t.Fatalf("%s: %d %s", action, st, b)
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		r, err := c.Create(rain.Config{AnchorID: fuzzAnchor, TotalAmount: 100, TotalCount: 10, DurationS: 600})
		if err != nil {
			t.Fatal(err)
		}
		actions := []string{"prepare", "start", "stop"}
		action := actions[int(op)%len(actions)]
		for _, before := range actions[:int(op)%len(actions)] {
			act(t, r.Code, before)
		}
		was, err := c.Get(context.Background(), r.Code)
		if err != nil {
			t.Fatal(err)
		}
		st, answer := serve(c.Coordinator, "POST", "/v1/rains/"+r.Code+"/"+action, auth, body)
		now, err := c.Get(context.Background(), r.Code)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(answer) {
			t.Fatalf("answer %d is not JSON: %s", st, answer)
		}
		exact := isExactAnchorBody(body)
		switch {
		case st == 200 && (!exact || now.Status == was.Status):
			t.Fatalf("%s with %q: 200, rain %s -> %s", action, body, was.Status, now.Status)
		case st != 200 && exact && st != 503:
			t.Fatalf("%s with the right body %q: %d %s", action, body, st, answer)
		case st != 200 && (now.Status != was.Status || now.Epoch != was.Epoch):
			t.Fatalf("%s with %q refused (%d) but rain %s/%d -> %s/%d", action, body, st, was.Status, was.Epoch, now.Status, now.Epoch)
		case st == 413 != (len(body) > MaxAdminBody):
			t.Fatalf("%s with %d bytes: %d", action, len(body), st)
		case st != 200 && st != 400 && st != 403 && st != 413 && st != 503:
			t.Fatalf("%s with %q: undocumented %d %s", action, body, st, answer)
		}
		if now.Status == rain.Prepared || now.Status == rain.Raining { // keep the loop's work bounded
			act(t, r.Code, "stop")
		}
	})
}

// isExactAnchorBody: body is one JSON object whose only key is "anchor_id" (exactly, once)
// with the integer fuzzAnchor, and nothing after it.
func isExactAnchorBody(body []byte) bool {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		return false
	}
	keys := 0
	ok := true
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return false
		}
		v, err := d.Token()
		if err != nil {
			return false
		}
		n, isNum := v.(json.Number)
		keys++
		ok = ok && k == "anchor_id" && isNum && n.String() == strconv.Itoa(fuzzAnchor)
	}
	if tok, err := d.Token(); err != nil || tok != json.Delim('}') {
		return false
	}
	if _, err := d.Token(); err == nil || d.More() {
		return false // trailing data
	}
	return ok && keys == 1 && json.Valid(body)
}

// FuzzListQuery: GET /v1/rains with any query answers 200 or 400 with a JSON body, exactly as
// a model of the documented parameters says (anchor_id > 0, a status, limit 1..1000, each at
// most once, nothing else), and a 200 lists exactly the stored rains the filters select.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{
		"", "anchor_id=1", "anchor_id=1&status=waiting", "status=cancelled&limit=1", "limit=1000", "limit=1001",
		"limit=0", "anchor_id=0", "anchor_id=-1", "anchor_id=+1", "anchor_id=01", "anchor_id=1&anchor_id=1",
		"status=WAITING", "status=", "x=1", "&&", "anchor_id", "anchor_id=1;status=waiting", "anchor%5Fid=1",
		"status=wait%69ng", "limit=1e2", "anchor_id=9223372036854775808", "=1", "status=waiting#frag",
	} {
		f.Add(s)
	}
	c := startCoordinator(f, testredis.New(f).URL(), "", nil)
	type kept struct {
		anchor int64
		status rain.Status
	}
	var stored []kept
	for i, a := range []int64{1, 1, 1, 2, 3} {
		r, err := c.Create(rain.Config{AnchorID: a, TotalAmount: 100, TotalCount: 10})
		if err != nil {
			f.Fatal(err)
		}
		if i%2 == 1 {
			if r, err = c.Stop(r.Code, a); err != nil {
				f.Fatal(err)
			}
		}
		stored = append(stored, kept{a, r.Status})
	}
	f.Fuzz(func(t *testing.T, q string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/rains?" + q)
		if string(ctx.Path()) != "/v1/rains" {
			return // a control character in q spoils the request line: not a list request
		}
		wantOK, anchor, status, limit := listModel(ctx.QueryArgs())
		st, answer := serve(c.Coordinator, "GET", "/v1/rains?"+q, "Bearer "+testToken, nil)
		if (st == 200) != wantOK || (st != 200 && st != 400) {
			t.Fatalf("query %q: %d %s, model says ok=%v", q, st, answer, wantOK)
		}
		var out struct{ Rains []*Rain }
		if err := json.Unmarshal(answer, &out); err != nil {
			t.Fatalf("query %q: answer %s: %v", q, answer, err)
		}
		if st != 200 {
			return
		}
		want := 0
		for _, k := range stored {
			if (anchor == 0 || k.anchor == anchor) && (status == "" || k.status == status) {
				want++
			}
		}
		if len(out.Rains) != min(want, limit) {
			t.Fatalf("query %q lists %d rains, want %d", q, len(out.Rains), min(want, limit))
		}
		for _, r := range out.Rains {
			if (anchor != 0 && r.AnchorID != anchor) || (status != "" && r.Status != status) {
				t.Fatalf("query %q lists %+v", q, r)
			}
		}
	})
}

// listModel is SPEC.md's list query, written independently of parseListQuery.
func listModel(args *fasthttp.Args) (ok bool, anchor int64, status rain.Status, limit int) {
	ok, limit = true, DefaultList
	seen := map[string]bool{}
	for k, v := range args.All() {
		key, val := string(k), string(v)
		if seen[key] {
			ok = false
		}
		seen[key] = true
		switch key {
		case "anchor_id":
			n, err := strconv.ParseInt(val, 10, 64)
			ok, anchor = ok && err == nil && n > 0, n
		case "status":
			status = rain.Status(val)
			ok = ok && status.Valid()
		case "limit":
			n, err := strconv.Atoi(val)
			ok, limit = ok && err == nil && n >= 1 && n <= MaxList, n
		default:
			ok = false
		}
	}
	return ok, anchor, status, limit
}

// FuzzAdminAuth: any Authorization header is let in exactly when it is the bearer scheme (any
// case) followed by the admin token; otherwise the answer is 401 whatever the path.
func FuzzAdminAuth(f *testing.F) {
	for _, s := range []string{
		"Bearer " + testToken, "bearer " + testToken, "BEARER " + testToken, "Bearer  " + testToken,
		"Bearer " + testToken + " ", "Bearer " + testToken[:len(testToken)-1], "Bearer " + testToken + "x",
		"Basic " + testToken, "Bearer", "Bearer ", "", testToken, "Bearer\t" + testToken, "Bearer " + testToken + "\x00",
	} {
		f.Add(s, "/v1/rains/unknown")
	}
	f.Add("Bearer "+testToken, "/v1/nodes")
	f.Add("", "/v1/tokens")
	f.Add("x", "/healthz")
	c := startCoordinator(f, testredis.New(f).URL(), "", nil)
	f.Fuzz(func(t *testing.T, auth, path string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.Set("Authorization", auth)
		h := ctx.Request.Header.Peek("Authorization") // what the server sees of it
		in := len(h) >= 7 && bytes.EqualFold(h[:7], []byte("bearer ")) && string(h[7:]) == testToken
		open := string(ctx.Path()) == "/healthz" || string(ctx.Path()) == "/metrics"
		c.serveHTTP(&ctx)
		st := ctx.Response.StatusCode()
		if open {
			return
		}
		if (st == 401) == in {
			t.Fatalf("Authorization %q (seen %q) on %q: %d, let in: %v", auth, h, path, st, in)
		}
		if st == 401 && bytes.Contains(ctx.Response.Body(), []byte(testToken)) {
			t.Fatalf("401 answer carries the token: %s", ctx.Response.Body())
		}
	})
}
