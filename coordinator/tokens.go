package coordinator

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/usertoken"
)

// mintBody is the body of POST /v1/tokens: a user token for tests and tools, behind the admin
// token. The platform mints its own tokens in production (format: internal/usertoken, README).
type mintBody struct {
	UserID uint64 `json:"user_id"`
	RoomID int64  `json:"room_id"`
	TTLS   int    `json:"ttl_s"` // 1..MaxTokenTTL; absent means DefaultTokenTTL
}

// Limits of a minted token's life, in seconds.
const (
	MaxTokenTTL     = 86400
	DefaultTokenTTL = 600
)

type mintAnswer struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

var errNoUserKey = &apiError{Status: 503, Word: "no_user_key", Message: "the coordinator has no --user-key: token minting is off"}

func (c *Coordinator) handleMint(ctx *fasthttp.RequestCtx) (*mintAnswer, error) {
	if c.userKey == nil {
		return nil, errNoUserKey
	}
	b := mintBody{TTLS: DefaultTokenTTL} // an absent ttl_s keeps it; an explicit 0 is out of range
	if e := decodeBody(ctx.PostBody(), &b); e != nil {
		return nil, e
	}
	switch {
	case b.UserID == 0:
		return nil, badRequest("user_id", "required, must be > 0")
	case b.RoomID < 0:
		return nil, badRequest("room_id", "must be >= 0")
	case b.TTLS < 1 || b.TTLS > MaxTokenTTL:
		return nil, badRequest("ttl_s", fmt.Sprintf("must be in 1..%d", MaxTokenTTL))
	}
	exp := time.Now().Add(time.Duration(b.TTLS) * time.Second).Unix()
	tok := c.userKey.Mint(usertoken.Claims{User: b.UserID, Room: b.RoomID, ExpiresAt: exp})
	return &mintAnswer{Token: tok, ExpiresAt: time.Unix(exp, 0).UTC().Format(time.RFC3339)}, nil
}
