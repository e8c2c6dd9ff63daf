package tap

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// wantAnswer is what encoding/json makes of an answer body: the reference for ParseAnswer.
type wantAnswer struct {
	Amount  int64  `json:"amount"`
	ClaimID string `json:"claim_id"`
	Error   string `json:"error"`
}

func TestParseAnswer(t *testing.T) {
	for _, c := range []struct {
		body string
		want wantAnswer
	}{
		{`{"amount":123,"claim_id":"n1.00ab.7","message":"congratulations"}`, wantAnswer{123, "n1.00ab.7", ""}},
		{`{"error":"exhausted","message":"no packets left here"}`, wantAnswer{0, "", "exhausted"}},
		{` { "message" : "a \"quoted\" \\ \u00e9 msg" , "claim_id":"x", "amount" : -0 } `, wantAnswer{0, "x", ""}},
		{`{"amount":9223372036854775807}`, wantAnswer{Amount: 9223372036854775807}},
		{`{"amount":-9223372036854775808}`, wantAnswer{Amount: -9223372036854775808}},
		{`{"amount":1,"amount":2,"amount":null}`, wantAnswer{Amount: 2}},
		{`{"x":1.5e-3,"y":true,"z":false,"w":null,"amount":7}`, wantAnswer{Amount: 7}},
		{`{"claim_id":"a\/b\u0041","error":"w\tx"}`, wantAnswer{0, "a/bA", "w\tx"}},
		{`{"cl\u0061im_id":"ignored-by-us"}`, wantAnswer{}}, // see FuzzParseAnswer: escaped keys stay unknown
		{`{}`, wantAnswer{}},
	} {
		amount, id, word, err := ParseAnswer([]byte(c.body))
		got := wantAnswer{amount, string(id), string(word)}
		if err != nil || got != c.want {
			t.Errorf("ParseAnswer(%s) = %+v, %v; want %+v", c.body, got, err, c.want)
		}
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{`, `{"amount":1`, `{"amount":1,}`, `{"amount":01}`, `{"amount":1.0}`, `{"amount":1e2}`,
		`{"amount":"1"}`, `{"amount":9223372036854775808}`, `{"amount":-9223372036854775809}`, `{"amount":-}`,
		`{"claim_id":1}`, `{"error":true}`, `{"x":{}}`, `{"x":[1]}`, `{"x":"a\qb"}`, `{"x":"a` + "\x01" + `"}`,
		`{"x":"\u12"}`, `{"amount":1} x`, `{"amount":1}{}`, `{amount:1}`, `{"x":.5}`, `{"x":1.}`, `{"x":tru}`,
		`{"x":1e}`, `{"a":1 "b":2}`, `{"claim_id":"unterminated}`, `{"amount":184467440737095516160}`,
	} {
		if _, _, _, err := ParseAnswer([]byte(bad)); err == nil {
			t.Errorf("ParseAnswer(%q) accepted", bad)
		}
	}
}

// FuzzParseAnswer: answers encoded by encoding/json come back exactly; on any input the
// parser never panics, and what it accepts encoding/json accepts with the same values (when
// the body is plain ASCII without upper case or escapes in keys, since encoding/json also
// matches keys case-insensitively and after unescaping).
func FuzzParseAnswer(f *testing.F) {
	f.Add(int64(123), "n1.00ab.7", "", "congratulations", []byte(`{"amount":5,"claim_id":"a","message":"m"}`))
	f.Add(int64(0), "", "exhausted", "no packets left here", []byte(`{"error":"user_limit","message":"x"}`))
	f.Add(int64(-1), "é\"<>", "w\n", "\x00", []byte(` {"amount" : 1 , "x":[1]} `))
	f.Fuzz(func(t *testing.T, amount int64, id, word, msg string, raw []byte) {
		in := struct {
			Amount  int64  `json:"amount"`
			ClaimID string `json:"claim_id"`
			Error   string `json:"error"`
			Message string `json:"message"`
		}{amount, id, word, msg}
		body, _ := json.Marshal(in)
		var want wantAnswer
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		a, cid, w, err := ParseAnswer(body)
		if got := (wantAnswer{a, string(cid), string(w)}); err != nil || got != want {
			t.Fatalf("ParseAnswer(%s) = %+v, %v; want %+v", body, got, err, want)
		}
		a, cid, w, err = ParseAnswer(raw)
		if err != nil || !plainASCII(raw) {
			return
		}
		var ref wantAnswer
		if jerr := json.Unmarshal(raw, &ref); jerr != nil {
			t.Fatalf("ParseAnswer accepted %q, encoding/json refuses it: %v", raw, jerr)
		}
		if got := (wantAnswer{a, string(cid), string(w)}); got != ref {
			t.Fatalf("ParseAnswer(%q) = %+v, encoding/json %+v", raw, got, ref)
		}
	})
}

// plainASCII: ASCII, no upper case, no backslash (escapes are compared by the first half).
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || 'A' <= c && c <= 'Z' || c == '\\' {
			return false
		}
	}
	return true
}

func TestParseAnswerAllocs(t *testing.T) {
	body := []byte(`{"amount":123,"claim_id":"n1.00ab.7","message":"congratulations"}`)
	if n := testing.AllocsPerRun(100, func() { ParseAnswer(body) }); n != 0 {
		t.Fatalf("ParseAnswer allocates %v times", n)
	}
	errBody := []byte(`{"error":"exhausted","message":"no packets left here"}`)
	if n := testing.AllocsPerRun(100, func() {
		_, _, w, _ := ParseAnswer(errBody)
		_ = internWord(w)
	}); n != 0 {
		t.Fatalf("an error answer allocates %v times", n)
	}
}

// inmemNode serves a fixed claim answer over an in-memory listener and returns a Claimer
// dialling it.
func inmemNode(tb testing.TB) *Claimer {
	ln := fasthttputil.NewInmemoryListener()
	body := []byte(`{"amount":123,"claim_id":"n1.00ab.7","message":"congratulations"}`)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.Response.SetBodyRaw(body) }}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown(); ln.Close() })
	c := NewClaimer(4)
	c.client.Dial = func(string) (net.Conn, error) { return ln.Dial() }
	return c
}

// A claim costs the client one allocation: the claim_id it keeps (checked without -race:
// the race detector makes sync.Pool drop pooled requests at random).
func TestClaimAllocs(t *testing.T) {
	c := inmemNode(t)
	if a := c.Claim("n1", "code", 7); a.Status != 200 || a.ClaimID != "n1.00ab.7" || a.Amount != 123 {
		t.Fatalf("%+v", a)
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(200, func() { c.Claim("n1", "code", 7) }); n > 1 {
		t.Fatalf("Claim allocates %v times, want <= 1", n)
	}
}

func BenchmarkParseAnswer(b *testing.B) {
	body := []byte(`{"amount":123,"claim_id":"n1.00ab.7","message":"congratulations"}`)
	b.ReportAllocs()
	for b.Loop() {
		ParseAnswer(body)
	}
}

func BenchmarkClaim(b *testing.B) {
	c := inmemNode(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
		c.Claim("n1", "code", 7)
	}
}
