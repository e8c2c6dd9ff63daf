package node

import (
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/rain"
)

// BenchmarkOwnerRouting is claims over real HTTP on 127.0.0.1 to 3 in-process nodes with real
// journals (fsync), every user counted by its owner: "sticky" sends each user to its owner (the
// balancer routes by user: no extra hop), "random" to any node (2/3 of the claims land on a node
// that is not their user's owner, which forwards them to it: OwnerHopForward, the default), and
// "random-reserve" likewise with OwnerHopReserve (the landing node pays the claim after the
// owner's reservation). Compare claims/s in one run (benchstat); allocs/op covers the client,
// the servers and the owner calls.
func BenchmarkOwnerRouting(b *testing.B) {
	for _, mode := range []string{"sticky", "random", "random-reserve"} {
		b.Run(mode, func(b *testing.B) {
			hop := OwnerHopForward
			if mode == "random-reserve" {
				hop = OwnerHopReserve
			}
			oc := newOwnerClusterHop(b, 3, hop)
			oc.rain("bench", 500_000, 1000)
			owners := rain.NewOwners("bench", oc.ids) // oc.ids are sorted: an index is a node
			cl := &fasthttp.Client{MaxConnsPerHost: 512, ReadTimeout: 10 * time.Second}
			var seq atomic.Uint64
			var fails atomic.Int64
			b.SetParallelism(64)
			b.ReportAllocs()
			began, cpu := time.Now(), cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seq.Add(1), 3))
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				urls := make([]string, 3)
				for i, h := range oc.hs {
					urls[i] = "http://" + h.addr() + "/v1/rains/bench/claim"
				}
				var ub [20]byte
				for pb.Next() {
					u := 1 + rng.Uint64N(1_000_000)
					i := rng.IntN(3)
					if mode == "sticky" {
						i = owners.Index(u)
					}
					req.SetRequestURI(urls[i])
					req.Header.SetMethod("POST")
					req.Header.SetBytesKV(headerUserIDBytes, appendUint(ub[:0], u))
					if err := cl.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						fails.Add(1)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "claims/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/claim")
			if f := fails.Load(); f > int64(b.N)/1000 {
				b.Fatalf("%d of %d claims not paid", f, b.N)
			}
		})
	}
}

var headerUserIDBytes = []byte(headerUserID)

// cpuTime is the process's user+system CPU time: the nodes, their journals and the client.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
