package coordinator

import (
	"encoding/json"
	"testing"
	"time"

	"redrain/internal/testredis"
	"redrain/internal/usertoken"
)

func TestMintTokens(t *testing.T) {
	const key = "platform-user-key"
	c := startCoordinator(t, testredis.New(t).URL(), "", func(o *Options) { o.UserKey = key })
	st, b := c.call(t, "POST", "/v1/tokens", `{"user_id":42,"room_id":7,"ttl_s":60}`)
	if st != 200 {
		t.Fatalf("mint: %d %s", st, b)
	}
	var a mintAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	claims, err := usertoken.NewKey([]byte(key)).Verify([]byte(a.Token), time.Now().Unix())
	if err != nil || claims.User != 42 || claims.Room != 7 || claims.ExpiresAt > time.Now().Add(61*time.Second).Unix() {
		t.Fatalf("minted token %q: %+v %v", a.Token, claims, err)
	}
	for _, body := range []string{`{"user_id":0,"room_id":1}`, `{"user_id":1,"room_id":-1}`, `{"user_id":1,"ttl_s":86401}`, `{"user_id":1,"ttl_s":0}`,
		`{"user_id":1,"extra":1}`, `{"user_id":"1"}`, `[]`} {
		st, b := c.call(t, "POST", "/v1/tokens", body)
		checkError(t, st, b, 400, "bad_request", body)
	}
	st, b = c.call(t, "POST", "/v1/tokens", `{"user_id":1}`) // ttl_s absent: the default
	if err := json.Unmarshal(b, &a); st != 200 || err != nil {
		t.Fatalf("mint with the default ttl: %d %s", st, b)
	}
	if claims, err := usertoken.NewKey([]byte(key)).Verify([]byte(a.Token), time.Now().Unix()); err != nil ||
		claims.ExpiresAt < time.Now().Add(DefaultTokenTTL*time.Second-time.Minute).Unix() {
		t.Fatalf("default ttl: %+v %v", claims, err)
	}
	st, b = rawCall(t, c.base, "POST", "/v1/tokens", "", `{"user_id":1}`)
	checkError(t, st, b, 401, "unauthorized", "mint without the admin token")

	off := newAPI(t)
	st, b = off.call(t, "POST", "/v1/tokens", `{"user_id":1}`)
	checkError(t, st, b, 503, "no_user_key", "mint without a user key")
}
