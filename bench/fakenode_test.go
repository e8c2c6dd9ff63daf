package bench

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeNode is an obviously correct claim server (one mutex) for the load driver's tests:
// it answers like a node, from a list of packets, with a per-user cap.
type fakeNode struct {
	addr    string
	id      string
	mu      sync.Mutex
	left    int // packets left; < 0: endless
	maxPer  int
	perUser map[uint64]int
	seq     int
	seq0    int           // a test's mark
	delay   time.Duration // service time of every claim
	onClaim func(seq int) // called (under the lock) after each claim, when set
}

func startFake(t *testing.T, id string, packets, maxPer int, delay time.Duration) *fakeNode {
	t.Helper()
	f := &fakeNode{id: id, left: packets, maxPer: maxPer, perUser: map[uint64]int{}, delay: delay}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: f.handle, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	f.addr = ln.Addr().String()
	return f
}

func (f *fakeNode) handle(ctx *fasthttp.RequestCtx) {
	if f.delay > 0 {
		time.Sleep(f.delay) // simulated service time, not a wait for a condition
	}
	user, err := strconv.ParseUint(string(ctx.Request.Header.Peek("X-User-Id")), 10, 64)
	ctx.SetContentType("application/json")
	if err != nil || user == 0 {
		ctx.SetStatusCode(400)
		ctx.SetBodyString(`{"error":"bad_user","message":"no user"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.perUser[user] >= f.maxPer:
		ctx.SetStatusCode(429)
		ctx.SetBodyString(`{"error":"user_limit","message":"enough"}`)
	case f.left == 0:
		ctx.SetStatusCode(410)
		ctx.SetBodyString(`{"error":"exhausted","message":"none left"}`)
	default:
		if f.left > 0 {
			f.left--
		}
		f.perUser[user]++
		f.seq++
		fmt.Fprintf(ctx, `{"amount":%d,"claim_id":"%s-%d","message":"ok"}`, 1+f.seq%7, f.id, f.seq)
		if f.onClaim != nil {
			f.onClaim(f.seq)
		}
	}
}

func fakeAddrs(fs ...*fakeNode) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.addr
	}
	return out
}
