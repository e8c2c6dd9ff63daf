package node

import (
	"encoding/json"
	"testing"
	"time"

	"redrain/internal/wire"
)

// signedHeaders are the header lines of an internal request signed with secret over method and
// target (path and query as sent).
func signedHeaders(secret, method, target string, body []byte) string {
	ts, nonce, sig := wire.NewSigner(secret).Sign(method, target, body, time.Now())
	return wire.HeaderTime + ": " + ts + "\r\n" + wire.HeaderNonce + ": " + nonce + "\r\n" + wire.HeaderSignature + ": " + sig + "\r\n"
}

// The internal signature covers the whole request target: a query appended to (or dropped
// from) a signed request is another request, refused 403; the query as signed is accepted.
func TestInternalSignatureCoversQuery(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("qa", 10, 100, 1, false)
	h.rainOf("qb", 10, 100, 1, false)
	get := func(target, headers string) (int, string) {
		return h.raw(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n"+headers+"\r\n")
	}
	signed := signedHeaders(testSecret, "GET", wire.PathProgress, nil)
	st, body := get(wire.PathProgress+"?code=zzz", signed)
	wantError(t, st, body, 403, "forbidden")
	st, body = get(wire.PathProgress+"?", signed)
	wantError(t, st, body, 403, "forbidden")
	one := signedHeaders(testSecret, "GET", wire.PathProgress+"?code=qa", nil)
	st, body = get(wire.PathProgress, one)
	wantError(t, st, body, 403, "forbidden")
	st, body = get(wire.PathProgress+"?code=qb", one)
	wantError(t, st, body, 403, "forbidden")

	// The refusals spent no nonce: the requests as signed are accepted, each once.
	if st, body := get(wire.PathProgress, signed); st != 200 {
		t.Fatalf("signed progress: %d %s", st, body)
	}
	st, body = get(wire.PathProgress+"?code=qa", one)
	var pl wire.ProgressList
	if err := json.Unmarshal([]byte(body), &pl); st != 200 || err != nil || len(pl.Rains) != 1 || pl.Rains[0].Code != "qa" {
		t.Fatalf("signed progress of qa: %d %s", st, body)
	}
	// The client signs what it sends, query included.
	if err := h.wire.Do(t.Context(), "GET", h.addr(), wire.PathProgress+"?code=qb", nil, &pl); err != nil || len(pl.Rains) != 1 || pl.Rains[0].Code != "qb" {
		t.Fatalf("client progress of qb: %v %+v", err, pl)
	}
}
