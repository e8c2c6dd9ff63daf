package usertoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestMintVerify(t *testing.T) {
	k := NewKey([]byte("platform-user-key"))
	c := Claims{User: 42, Room: 7, ExpiresAt: 1_800_000_000}
	tok := k.Mint(c)
	if len(tok) != Len || !strings.HasPrefix(tok, "v1.") {
		t.Fatalf("token %q has length %d", tok, len(tok))
	}
	got, err := k.Verify([]byte(tok), 1_700_000_000)
	if err != nil || got != c {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, c)
	}
	if _, err := k.Verify([]byte(tok), 1_800_000_000); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if _, err := NewKey([]byte("another key")).Verify([]byte(tok), 0); !errors.Is(err, ErrForged) {
		t.Fatalf("other key: %v", err)
	}
	// Any single changed character is refused.
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		if _, err := k.Verify(b, 0); err == nil {
			t.Fatalf("token with byte %d flipped accepted", i)
		}
	}
	for _, bad := range []string{"", "v1.", tok[:Len-1], tok + "A", "v2" + tok[2:], strings.Replace(tok, ".", "_", 2)} {
		if _, err := k.Verify([]byte(bad), 0); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// The MAC is standard HMAC-SHA256, so a platform can mint tokens with any library.
func TestInteroperable(t *testing.T) {
	for _, secret := range []string{"k", strings.Repeat("x", 64), strings.Repeat("long", 40)} {
		k := NewKey([]byte(secret))
		tok := k.Mint(Claims{User: 1, Room: 2, ExpiresAt: 3})
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(tok[:signedLen]))
		if want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); tok[signedLen+1:] != want {
			t.Fatalf("key %d bytes: mac %s, crypto/hmac says %s", len(secret), tok[signedLen+1:], want)
		}
	}
}

func TestZeroUserRefused(t *testing.T) {
	k := NewKey([]byte("k"))
	if _, err := k.Verify([]byte(k.Mint(Claims{User: 0, Room: 1, ExpiresAt: 10})), 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("user 0: %v", err)
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	k := NewKey([]byte("k"))
	tok := []byte(k.Mint(Claims{User: 9, Room: 1, ExpiresAt: 1 << 40}))
	if n := testing.AllocsPerRun(100, func() { k.Verify(tok, 0) }); n != 0 {
		t.Fatalf("Verify allocates %v times", n)
	}
}

func FuzzVerify(f *testing.F) {
	k := NewKey([]byte("fuzz-key"))
	f.Add(k.Mint(Claims{User: 1, Room: 1, ExpiresAt: 100}))
	f.Add("v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.")
	f.Add("")
	f.Add(strings.Repeat("v1.", 30))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.Verify([]byte(tok), 50)
		if err != nil {
			return
		}
		// Whatever verifies must be exactly what Mint makes of its claims.
		if k.Mint(c) != tok || c.User == 0 || c.ExpiresAt <= 50 {
			t.Fatalf("accepted %q as %+v", tok, c)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	k := NewKey([]byte("platform-user-key"))
	tok := []byte(k.Mint(Claims{User: 42, Room: 7, ExpiresAt: 1 << 40}))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// Changing only the unused low bits of the MAC's last character is refused too.
func TestTrailingBitsRefused(t *testing.T) {
	k := NewKey([]byte("k"))
	for u := uint64(1); u < 200; u++ {
		tok := []byte(k.Mint(Claims{User: u, Room: 1, ExpiresAt: 1 << 40}))
		last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[Len-1])
		for d := 1; d < 4; d++ {
			b := append([]byte(nil), tok...)
			b[Len-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^d]
			if _, err := k.Verify(b, 0); err == nil {
				t.Fatalf("token with its unused trailing bits changed accepted: %s", b)
			}
		}
	}
}
