package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Header names carried by every internal request.
const (
	HeaderTime      = "X-Redrain-Time"      // unix milliseconds at signing
	HeaderNonce     = "X-Redrain-Nonce"     // 128 random bits, hex
	HeaderSignature = "X-Redrain-Signature" // hex HMAC-SHA256, see Signer.Sign
)

// Challenge is the WWW-Authenticate value of an internal request refused as unsigned (401): the
// scheme, and the headers that carry its signature (see Signer.Sign).
const Challenge = `Redrain-HMAC realm="redrain-internal", headers="` + HeaderTime + " " + HeaderNonce + " " + HeaderSignature + `"`

// Errors returned by Verifier.Verify.
var (
	// ErrUnsigned: the request carries no signature headers (answer 401).
	ErrUnsigned = errors.New("wire: request is not signed")
	// ErrBadSignature: headers present but the signature, time or nonce is wrong (answer 403).
	ErrBadSignature = errors.New("wire: bad signature")
	// ErrStale: the signing time is outside the replay window (answer 403).
	ErrStale = errors.New("wire: signature outside the replay window")
	// ErrReplay: the nonce was already seen inside the window (answer 403).
	ErrReplay = errors.New("wire: replayed request")
)

// DeriveKey turns the cluster secret into the internal-API HMAC key, so the secret itself is
// never used directly (gossip derives its own key from it with another label).
func DeriveKey(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// InternalLabel is the derivation label of the internal HTTP key.
const InternalLabel = "redrain/internal/v1"

// Signer signs internal requests. It is safe for concurrent use.
type Signer struct{ key []byte }

// NewSigner returns a signer for the cluster secret.
func NewSigner(secret string) *Signer { return &Signer{key: DeriveKey(secret, InternalLabel)} }

// Sign returns the time, nonce and signature headers for a request. target is the request
// target exactly as it goes on the request line: the path and, when there is one, '?' and the
// raw query ("/internal/v1/progress?code=abc"). The whole of it is signed, so a query added,
// dropped or changed, or another spelling of the path, is another request.
func (s *Signer) Sign(method, target string, body []byte, now time.Time) (ts, nonce, sig string) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		panic("wire: crypto/rand failed: " + err.Error())
	}
	ts = strconv.FormatInt(now.UnixMilli(), 10)
	nonce = hex.EncodeToString(n[:])
	return ts, nonce, hex.EncodeToString(mac(s.key, method, target, ts, nonce, body))
}

func mac(key []byte, method, target, ts, nonce string, body []byte) []byte {
	bh := sha256.Sum256(body)
	m := hmac.New(sha256.New, key)
	for _, part := range []string{method, target, ts, nonce} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	m.Write(bh[:])
	return m.Sum(nil)
}

// Verifier checks signed requests. It remembers the nonces it accepted for the replay window,
// at most MaxNonces of them; when full it refuses new requests rather than forget a nonce
// that is still inside the window.
type Verifier struct {
	key    []byte
	window time.Duration
	max    int

	mu     sync.Mutex
	seen   map[string]int64 // nonce -> expiry (unix ms)
	expiry []nonceAt        // FIFO of seen, in acceptance order
}

type nonceAt struct {
	nonce string
	exp   int64
}

// DefaultWindow is how far a signing time may be from the verifier's clock.
const DefaultWindow = 30 * time.Second

// DefaultMaxNonces bounds the replay cache.
const DefaultMaxNonces = 1 << 20

// ErrBusy: the nonce cache is full of nonces still inside the window (answer 403 and retry later).
var ErrBusy = errors.New("wire: replay cache full")

// NewVerifier returns a verifier for the cluster secret with the default window and bound.
func NewVerifier(secret string) *Verifier {
	return &Verifier{key: DeriveKey(secret, InternalLabel), window: DefaultWindow, max: DefaultMaxNonces,
		seen: make(map[string]int64)}
}

// Verify checks the headers of a request against its method, request target (as received on
// the request line, query included: see Signer.Sign) and body at time now.
func (v *Verifier) Verify(method, target string, body []byte, ts, nonce, sig string, now time.Time) error {
	if ts == "" && nonce == "" && sig == "" {
		return ErrUnsigned
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(nonce) != 32 || len(got) != sha256.Size {
		return ErrBadSignature
	}
	if !hmac.Equal(got, mac(v.key, method, target, ts, nonce, body)) {
		return ErrBadSignature
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	nowMS := now.UnixMilli()
	if d := nowMS - ms; d > v.window.Milliseconds() || d < -v.window.Milliseconds() {
		return ErrStale
	}
	return v.remember(nonce, ms+v.window.Milliseconds(), nowMS)
}

func (v *Verifier) remember(nonce string, exp, nowMS int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.expiry) > 0 && v.expiry[0].exp < nowMS {
		delete(v.seen, v.expiry[0].nonce)
		v.expiry = v.expiry[1:]
	}
	if _, ok := v.seen[nonce]; ok {
		return ErrReplay
	}
	if len(v.seen) >= v.max {
		return ErrBusy
	}
	v.seen[nonce] = exp
	v.expiry = append(v.expiry, nonceAt{nonce, exp})
	return nil
}
