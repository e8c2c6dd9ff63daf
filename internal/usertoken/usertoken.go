// Package usertoken owns the signed user tokens of the node's token auth mode: their format,
// minting (for the platform and for tests) and verification in constant time with no lookup
// and no allocation.
//
// A token is "v1." + base64url(payload) + "." + base64url(mac), unpadded, 79 bytes:
//
//	payload = user_id (uint64) | room_id (int64) | expires_at (unix seconds, int64), big-endian, 24 bytes
//	mac     = HMAC-SHA256(user key, the token's first 35 bytes: "v1." + base64url(payload))
//
// The user key is shared by the platform (which mints tokens) and the nodes (--user-key).
package usertoken

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Errors of Verify; all of them are answered 401 bad_token.
var (
	ErrMalformed = errors.New("usertoken: malformed token")
	ErrForged    = errors.New("usertoken: bad signature")
	ErrExpired   = errors.New("usertoken: expired")
)

// strict refuses non-zero trailing bits, so exactly one string encodes each token.
var strict = base64.RawURLEncoding.Strict()

// Sizes of the format.
const (
	prefix     = "v1."
	payloadLen = 24
	payloadB64 = 32 // base64url of 24 bytes
	macB64     = 43 // base64url of 32 bytes, unpadded
	signedLen  = len(prefix) + payloadB64
	Len        = signedLen + 1 + macB64 // 79
)

// MinKeyLen is the shortest user key accepted, by the node (--user-key in token mode) and by
// the coordinator (--user-key, for minting) alike: one rule, kept here.
const MinKeyLen = 16

// Claims are what a token says.
type Claims struct {
	User      uint64
	Room      int64
	ExpiresAt int64 // unix seconds
}

// Key is a user key prepared for HMAC-SHA256 (the pads computed once). Safe for concurrent use.
type Key struct {
	ipad, opad [sha256.BlockSize]byte
}

// NewKey prepares a key; keys longer than 64 bytes are hashed first, as HMAC specifies.
func NewKey(secret []byte) *Key {
	k := &Key{}
	if len(secret) > sha256.BlockSize {
		s := sha256.Sum256(secret)
		secret = s[:]
	}
	for i := range sha256.BlockSize {
		var b byte
		if i < len(secret) {
			b = secret[i]
		}
		k.ipad[i], k.opad[i] = b^0x36, b^0x5c
	}
	return k
}

// mac computes HMAC-SHA256 of msg (at most 64 bytes) without allocating.
func (k *Key) mac(msg []byte) [sha256.Size]byte {
	var in [sha256.BlockSize + 64]byte
	n := copy(in[:], k.ipad[:])
	n += copy(in[n:], msg)
	inner := sha256.Sum256(in[:n])
	var out [sha256.BlockSize + sha256.Size]byte
	m := copy(out[:], k.opad[:])
	m += copy(out[m:], inner[:])
	return sha256.Sum256(out[:m])
}

// Mint returns the token for c.
func (k *Key) Mint(c Claims) string {
	var p [payloadLen]byte
	binary.BigEndian.PutUint64(p[0:], c.User)
	binary.BigEndian.PutUint64(p[8:], uint64(c.Room))
	binary.BigEndian.PutUint64(p[16:], uint64(c.ExpiresAt))
	b := make([]byte, 0, Len)
	b = append(b, prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, p[:])
	sum := k.mac(b)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

// Verify checks tok's format, signature (constant time) and expiry at now (unix seconds) and
// returns its claims. It allocates nothing.
func (k *Key) Verify(tok []byte, now int64) (Claims, error) {
	if len(tok) != Len || string(tok[:len(prefix)]) != prefix || tok[signedLen] != '.' {
		return Claims{}, ErrMalformed
	}
	var got [sha256.Size + 1]byte // base64 of 43 chars decodes to 32 bytes; one spare for safety
	n, err := strict.Decode(got[:], tok[signedLen+1:])
	if err != nil || n != sha256.Size {
		return Claims{}, ErrMalformed
	}
	want := k.mac(tok[:signedLen])
	if subtle.ConstantTimeCompare(got[:sha256.Size], want[:]) != 1 {
		return Claims{}, ErrForged
	}
	var p [payloadLen + 1]byte
	if n, err := strict.Decode(p[:], tok[len(prefix):signedLen]); err != nil || n != payloadLen {
		return Claims{}, ErrMalformed
	}
	c := Claims{User: binary.BigEndian.Uint64(p[0:]), Room: int64(binary.BigEndian.Uint64(p[8:])),
		ExpiresAt: int64(binary.BigEndian.Uint64(p[16:]))}
	if c.User == 0 || c.Room < 0 {
		return Claims{}, ErrMalformed
	}
	if now >= c.ExpiresAt {
		return Claims{}, ErrExpired
	}
	return c, nil
}
