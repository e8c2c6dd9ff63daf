package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"redrain/rain"
)

// fuzzNow is the verifier's clock in the fuzz targets: a whole millisecond, so signing times
// round-trip exactly.
var fuzzNow = time.Unix(1_700_000_000, 0)

const fuzzSecret = "fuzz-cluster-secret"

// FuzzVerify: whatever headers, method, request target and body arrive, Verify never panics,
// answers one of its documented errors, accepts only the request that was signed (same method,
// target with its query, body, time and nonce, same MAC), accepts it once, and remembers
// nothing of a refused request (so an outsider cannot fill the nonce cache).
func FuzzVerify(f *testing.F) {
	const method, path = "POST", "/internal/v1/rains/abc/start"
	body := []byte(`{"epoch":1,"starts_at":1,"ends_at":2}`)
	// A fixed nonce (Sign draws a random one), so every fuzz worker knows the same signed request.
	ts, nonce := strconv.FormatInt(fuzzNow.UnixMilli(), 10), "00112233445566778899aabbccddeeff"
	sig := hex.EncodeToString(mac(DeriveKey(fuzzSecret, InternalLabel), method, path, ts, nonce, body))
	f.Add(method, path, body, ts, nonce, sig)
	f.Add(method, path, body, ts, nonce, sig[:len(sig)-1]+"0")
	f.Add(method, path, []byte(`{"epoch":2,"starts_at":1,"ends_at":2}`), ts, nonce, sig)
	f.Add("GET", path, body, ts, nonce, sig)
	f.Add(method, path+"/", body, ts, nonce, sig)
	f.Add(method, path+"?", body, ts, nonce, sig)
	f.Add(method, path+"?code=zzz", body, ts, nonce, sig)
	f.Add(method, "/internal/v1/rains/%61bc/start", body, ts, nonce, sig)
	f.Add(method, "//internal/v1/rains/abc/start", body, ts, nonce, sig)
	f.Add(method, path, body, "+"+ts, nonce, sig)
	f.Add(method, path, body, "0"+ts, nonce, sig)
	f.Add(method, path, body, ts, nonce, "")
	f.Add(method, path, body, "", "", "")
	f.Add(method, path, body, ts, nonce[:31], sig)
	f.Add(method, path, body, "-9223372036854775808", nonce, sig)
	f.Add(method, path, body, ts, nonce, string(bytes.ToUpper([]byte(sig))))
	f.Fuzz(func(t *testing.T, m, p string, b []byte, gotTS, gotNonce, gotSig string) {
		v := NewVerifier(fuzzSecret)
		err := v.Verify(m, p, b, gotTS, gotNonce, gotSig, fuzzNow)
		known := []error{nil, ErrUnsigned, ErrBadSignature, ErrStale, ErrReplay, ErrBusy}
		found := false
		for _, k := range known {
			found = found || err == k
		}
		if !found {
			t.Fatalf("undocumented error %v", err)
		}
		if (gotTS == "" && gotNonce == "" && gotSig == "") != (err == ErrUnsigned) {
			t.Fatalf("unsigned iff no headers: got %v", err)
		}
		if err != nil {
			if len(v.seen) != 0 || len(v.expiry) != 0 {
				t.Fatalf("refused request (%v) left %d nonces in the cache", err, len(v.seen))
			}
			return
		}
		want, _ := hex.DecodeString(sig)
		got, _ := hex.DecodeString(gotSig)
		if m != method || p != path || !bytes.Equal(b, body) || gotTS != ts || gotNonce != nonce || !bytes.Equal(got, want) {
			t.Fatalf("accepted a request that was not signed: %q %q %q ts=%q nonce=%q sig=%q", m, p, b, gotTS, gotNonce, gotSig)
		}
		if err := v.Verify(m, p, b, gotTS, gotNonce, gotSig, fuzzNow); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: got %v, want ErrReplay", err)
		}
	})
}

// FuzzVerifyWindow: a request signed with the secret at any time is accepted iff the signing
// time is within DefaultWindow of the verifier's clock; signed with another secret, never.
func FuzzVerifyWindow(f *testing.F) {
	f.Add("POST", "/internal/v1/slices", []byte(`{}`), int64(0), false)
	f.Add("POST", "/internal/v1/slices", []byte(`{}`), DefaultWindow.Milliseconds(), false)
	f.Add("POST", "/internal/v1/slices", []byte(`{}`), -DefaultWindow.Milliseconds(), false)
	f.Add("GET", "/internal/v1/progress", []byte(nil), DefaultWindow.Milliseconds()+1, false)
	f.Add("GET", "/internal/v1/progress", []byte(nil), -DefaultWindow.Milliseconds()-1, false)
	f.Add("GET", "/internal/v1/progress", []byte(nil), int64(5), true)
	f.Add("GET", "/internal/v1/progress?code=abc", []byte(nil), int64(0), false)
	f.Add("GET", "/internal/v1/progress?code=abc", []byte(nil), int64(5), true)
	f.Fuzz(func(t *testing.T, m, p string, b []byte, skewMS int64, wrongSecret bool) {
		skewMS %= 1 << 40 // about 35 years either way: time.Duration cannot hold much more
		secret := fuzzSecret
		if wrongSecret {
			secret = "another-secret"
		}
		ts, nonce, sig := NewSigner(secret).Sign(m, p, b, fuzzNow.Add(time.Duration(skewMS)*time.Millisecond))
		if ms, _ := strconv.ParseInt(ts, 10, 64); ms != fuzzNow.UnixMilli()+skewMS {
			t.Fatalf("signing time %s, want %d", ts, fuzzNow.UnixMilli()+skewMS)
		}
		err := NewVerifier(fuzzSecret).Verify(m, p, b, ts, nonce, sig, fuzzNow)
		inside := skewMS >= -DefaultWindow.Milliseconds() && skewMS <= DefaultWindow.Milliseconds()
		switch {
		case wrongSecret && !errors.Is(err, ErrBadSignature):
			t.Fatalf("signed with another secret: got %v", err)
		case !wrongSecret && inside && err != nil:
			t.Fatalf("skew %d ms refused: %v", skewMS, err)
		case !wrongSecret && !inside && !errors.Is(err, ErrStale):
			t.Fatalf("skew %d ms: got %v, want ErrStale", skewMS, err)
		}
	})
}

// FuzzDecodeMessages: every internal message body, decoded as the node decodes it (unknown
// fields refused) or as the coordinator decodes answers, never panics and round-trips; a
// decoded slice assignment that validates generates exactly its count and amount.
func FuzzDecodeMessages(f *testing.F) {
	for _, s := range []string{
		`{"rules":{"code":"abc","max_per_user":3,"min_claim_interval_ms":0,"room_id":2},"slice":{"code":"abc","id":1,"epoch":1,"node":"n1","count":10,"amount":1000,"seed":42,"algorithm":"double_average"}}`,
		`{"rules":{"code":"abc","max_per_user":1},"slice":{"code":"abc","id":1,"epoch":1,"node":"n1","count":3,"amount":3,"seed":0,"algorithm":"equal"}}`,
		`{"rules":{},"slice":{"count":100000001,"amount":-1,"algorithm":"line_cut"}}`,
		`{"epoch":1,"starts_at":1700000000000000000,"ends_at":1700000060000000000}`,
		`{"at":-1}`, `{"epoch":18446744073709551615}`, `{}`, `{"ok":true}`,
		`{"node":"n1","rains":[{"code":"abc","epoch":1,"slice_count":10,"slice_amount":1000,"claimed_count":1,"claimed_amount":7,"flushed_count":1,"flushed_amount":7,"remaining_count":9,"remaining_amount":993,"started":true,"finished":false,"exhausted":false}]}`,
		`{"error":"forbidden","message":"x"}`, `{"slice":{"seed":1e400}}`, `{"rules":null}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []any{&SliceAssignment{}, &Start{}, &Stop{}, &Discard{}, &Settle{}, &Ack{}, &ProgressList{}, &Error{}} {
			strict := json.NewDecoder(bytes.NewReader(data))
			strict.DisallowUnknownFields()
			if strict.Decode(v) == nil {
				roundTrip(t, v)
			}
			w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if json.Unmarshal(data, w) == nil {
				roundTrip(t, w)
			}
		}
		var a SliceAssignment
		if json.Unmarshal(data, &a) != nil || a.Slice.Validate() != nil || a.Slice.Count > 5000 {
			return
		}
		amounts, err := rain.Generate(a.Slice)
		if err != nil {
			t.Fatalf("valid slice %+v not generated: %v", a.Slice, err)
		}
		var sum int64
		for i := 0; i < amounts.Len(); i++ {
			if amounts.At(i) < 1 {
				t.Fatalf("packet %d of %+v is %d", i, a.Slice, amounts.At(i))
			}
			sum += amounts.At(i)
		}
		if int64(amounts.Len()) != a.Slice.Count || sum != a.Slice.Amount {
			t.Fatalf("slice %+v generated %d packets, %d cents", a.Slice, amounts.Len(), sum)
		}
	})
}

// roundTrip: v, encoded and decoded again, is unchanged.
func roundTrip(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %#v: %v", v, err)
	}
	again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := json.Unmarshal(b, again); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("round trip: %#v -> %s -> %#v", v, b, again)
	}
}
