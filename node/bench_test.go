package node

import (
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkClaimHandler drives the whole claim path in process (parse, pop, journal with
// fsync, answer) from 64 goroutines per core, so group commit batches them as under load.
func BenchmarkClaimHandler(b *testing.B) {
	h := newHarness(b, false, nil)
	h.rainOf("bench", 5_000_000, 50_000_000, 1000, true)
	var users atomic.Uint64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/rains/bench/claim")
		ctx.Request.Header.SetMethod("POST")
		u := users.Add(1) * 1_000_000
		var ub [20]byte
		key := []byte(headerUserID)
		for pb.Next() {
			u++
			ctx.Request.Header.SetBytesKV(key, appendUint(ub[:0], u))
			ctx.Response.Reset()
			h.n.route(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("claim: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
	})
	b.StopTimer()
	st := h.n.journal.Stats()
	b.ReportMetric(float64(st.Records)/float64(st.Commits), "claims/fsync")
}

func appendUint(dst []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, tmp[i:]...)
}

// BenchmarkClaimRefused drives the claim path up to the store without the journal: routing on
// the raw path, the claimant's header, the rain lookup and the store's per-user check, answered
// 429 user_limit. Nothing runs in the background, so allocs/op is the handler's own.
func BenchmarkClaimRefused(b *testing.B) {
	h := newHarness(b, false, nil)
	h.rainOf("capped", 1000, 100_000, 1, true)
	if st, body := h.claim("capped", 7); st != 200 {
		b.Fatalf("first claim: %d %s", st, body)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/rains/capped/claim")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("X-User-Id", "7")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		h.n.route(&ctx)
		if ctx.Response.StatusCode() != 429 {
			b.Fatalf("claim: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
