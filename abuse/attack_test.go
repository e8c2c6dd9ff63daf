package abuse

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/bench"
	"redrain/internal/testcluster"
	"redrain/internal/usertoken"
)

// checkP99 turns the latency comparison into a failure. Off by default: the repository measures
// speed with benchmarks and the load harness, not timed tests, and on a shared 2-core machine
// a p99 over a few seconds moves by more than 2x on its own. The figures are logged either way.
var checkP99 = flag.Bool("abuse.p99", false, "fail when honest users' p99 under an attack exceeds 2x their p99 without")

func TestMain(m *testing.M) {
	flag.Parse()
	// 5,000 idle connections need file descriptors, here and in the node processes (inherited).
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < 20000 {
		l.Cur = min(max(l.Max, 20000), 1<<20)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
			l.Cur = l.Max
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		}
	}
	os.Exit(testcluster.Main(m))
}

const (
	userKey = "attack-test-user-key-0123456789"
	room    = 31
	anchor  = 5
)

// client is a claimer bound to one local address, in token mode.
type client struct {
	hc *fasthttp.Client
}

func newClient(local string, conns int) *client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &client{hc: &fasthttp.Client{
		MaxConnsPerHost: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxConnWaitTimeout: 10 * time.Second,
		Dial:               func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) },
		RetryIfErr:         func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}}
}

type answer struct {
	status  int
	word    string
	amount  int64
	latency time.Duration
}

func (c *client) claim(addr, code, token string, hdr map[string]string, body []byte) answer {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/v1/rains/" + code + "/claim")
	req.Header.SetMethod("POST")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.SetBody(body)
	began := time.Now()
	err := c.hc.Do(req, resp)
	a := answer{latency: time.Since(began)}
	if err != nil {
		a.word = "network: " + err.Error()
		return a
	}
	a.status = resp.StatusCode()
	b := string(resp.Body())
	if i := strings.Index(b, `"error":"`); i >= 0 {
		a.word = b[i+9:]
		a.word = a.word[:strings.IndexByte(a.word, '"')]
	}
	if a.status == 200 {
		fmt.Sscanf(b, `{"amount":%d`, &a.amount)
	}
	return a
}

type env struct {
	c     *bench.LocalCluster
	key   *usertoken.Key
	code  string
	total int64
	count int64
}

func setup(t *testing.T, count, total int64, maxPer int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := bench.StartCluster(ctx, bench.ClusterOptions{Nodes: 1, BinDir: filepath.Dir(testcluster.PlainBin(t, "node")),
		Dir: t.TempDir(), FastGossip: true,
		NodeArgs:  []string{"--auth", "token", "--user-key", userKey, "--ip-rate", "50", "--ip-burst", "100", "--max-conns-per-ip", "500"},
		CoordArgs: []string{"--user-key", userKey, "--prepare-timeout", "60s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	cfg := bench.RainConfig(anchor, total, count, maxPer, 900)
	cfg.RoomID = room
	adm := c.Admin()
	r, err := adm.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"prepare", "start"} {
		if _, err := adm.Act(ctx, r.Code, step, anchor); err != nil {
			t.Fatal(err)
		}
	}
	return &env{c: c, key: usertoken.NewKey([]byte(userKey)), code: r.Code, total: total, count: count}
}

func (e *env) token(user uint64, rm int64) string {
	return e.key.Mint(usertoken.Claims{User: user, Room: rm, ExpiresAt: time.Now().Add(time.Hour).Unix()})
}

// honest runs n honest users, each on its own address 127.0.1.x, tapping at a modest pace
// (one tap per user every 20 ms) for d; it returns the latencies of their answers, split by
// whether the attack flag was up when the tap was sent, and the packets they got.
func (e *env) honest(t *testing.T, first uint64, n int, d time.Duration, attacking *atomic.Bool) (quiet, attacked []time.Duration, paid int64) {
	var mu sync.Mutex
	var got atomic.Int64
	var wg sync.WaitGroup
	addr := e.c.Nodes[0].HTTP
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient(fmt.Sprintf("127.0.1.%d", i+1), 1)
			tok := e.token(first+uint64(i), room)
			t0 := time.Now()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for time.Since(t0) < d {
				under := attacking.Load()
				a := cl.claim(addr, e.code, tok, nil, nil)
				if a.status == 0 {
					t.Errorf("honest user %d: %s", first+uint64(i), a.word)
					return
				}
				if a.status == 200 {
					got.Add(a.amount)
				}
				mu.Lock()
				if under {
					attacked = append(attacked, a.latency)
				} else {
					quiet = append(quiet, a.latency)
				}
				mu.Unlock()
				<-tick.C
			}
		}()
	}
	wg.Wait()
	return quiet, attacked, got.Load()
}

func p99(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// AttackRate is each attack's request rate. The attackers share this machine's two cores with
// the node and the honest users, so an unpaced attack would measure the test's own CPU
// contention, not the node's defences; 2,000 requests/s is ~10x the honest users' rate.
const AttackRate = 2000

// attack runs fn on workers goroutines, paced to AttackRate in all, while on is up, until stop
// is closed.
func attack(workers int, on *atomic.Bool, stop <-chan struct{}, fn func(w int)) *sync.WaitGroup {
	var wg sync.WaitGroup
	every := time.Duration(workers) * time.Second / AttackRate
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if on.Load() {
						fn(w)
					}
				}
			}
		}()
	}
	return &wg
}

// TestAttacks runs every attack against one token-mode node while honest users tap, and
// compares the honest users' p99 with and without each attack.
func TestAttacks(t *testing.T) {
	const maxPer = 3
	e := setup(t, 50_000, 5_000_000, maxPer)
	addr := e.c.Nodes[0].HTTP
	// The attack is switched on and off every Window while the honest users tap, and their
	// answers are split by whether it was on: slow drifts of this shared machine (other
	// processes, fsync stalls) then fall on both sides alike.
	const honestUsers, phase, window = 16, 6 * time.Second, 500 * time.Millisecond
	var honestBase uint64 = 1000

	scenarios := []struct {
		name    string
		workers int
		run     func(w int) answer
		check   func(t *testing.T, got map[string]int, paid int64)
		setup   func() func()
	}{
		{name: "one bot hammering", workers: 4, run: func() func(int) answer {
			cl, tok := newClient("127.0.0.66", 4), e.token(900_001, room)
			return func(int) answer { return cl.claim(addr, e.code, tok, nil, nil) }
		}(), check: func(t *testing.T, got map[string]int, _ int64) {
			if got["ok"] > maxPer {
				t.Errorf("one bot got %d packets, cap %d", got["ok"], maxPer)
			}
		}},
		{name: "1000 bot ids from one address", workers: 8, run: func() func(int) answer {
			cl := newClient("127.0.0.67", 8)
			toks := make([]string, 1000)
			for i := range toks {
				toks[i] = e.token(800_000+uint64(i), room)
			}
			var n atomic.Uint64
			return func(int) answer { return cl.claim(addr, e.code, toks[n.Add(1)%1000], nil, nil) }
		}(), check: func(t *testing.T, got map[string]int, _ int64) {
			// --ip-rate 50 --ip-burst 100 over the phase: at most burst + rate*seconds packets.
			if limit := 100 + 50*int(phase/time.Second+1); got["ok"] > limit {
				t.Errorf("1000 bot ids on one address got %d packets, the address limit allows %d", got["ok"], limit)
			}
			if got["rate_limited"] == 0 {
				t.Error("the address limit never answered")
			}
		}},
		{name: "forged and foreign tokens", workers: 4, run: func() func(int) answer {
			cl := newClient("127.0.0.68", 4)
			forged := usertoken.NewKey([]byte("guessed-key-guessed-key")).Mint(usertoken.Claims{User: 7, Room: room, ExpiresAt: 1 << 40})
			foreign := e.token(7_000_000, room+1)
			var n atomic.Uint64
			return func(int) answer {
				if n.Add(1)%2 == 0 {
					return cl.claim(addr, e.code, forged, nil, nil)
				}
				return cl.claim(addr, e.code, foreign, nil, nil)
			}
		}(), check: func(t *testing.T, got map[string]int, _ int64) {
			if got["ok"] != 0 || got["bad_token"] == 0 || got["wrong_room"] == 0 {
				t.Errorf("forged/foreign answers %v: want only bad_token and wrong_room", got)
			}
		}},
		{name: "oversized headers and bodies", workers: 2, run: func() func(int) answer {
			cl := newClient("127.0.0.69", 2)
			tok := e.token(600_001, room)
			big := strings.Repeat("x", 32<<10)
			body := make([]byte, 128<<10) // over the 4 KiB claim and 64 KiB request limits
			var n atomic.Uint64
			return func(int) answer {
				if n.Add(1)%2 == 0 {
					return cl.claim(addr, e.code, tok, map[string]string{"X-Junk": big}, nil)
				}
				return cl.claim(addr, e.code, tok, nil, body)
			}
		}(), check: func(t *testing.T, got map[string]int, _ int64) {
			if got["ok"] != 0 {
				t.Errorf("oversized requests got %d packets", got["ok"])
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			stop := make(chan struct{})
			var on atomic.Bool
			var mu sync.Mutex
			got := map[string]int{}
			go toggle(&on, window, stop)
			wg := attack(sc.workers, &on, stop, func(w int) {
				a := sc.run(w)
				k := a.word
				switch {
				case a.status == 200:
					k = "ok"
				case a.status == 0:
					k = "network"
				}
				mu.Lock()
				got[k]++
				mu.Unlock()
			})
			quietLat, attacked, _ := e.honest(t, honestBase, honestUsers, phase, &on)
			honestBase += 100
			close(stop)
			wg.Wait()
			sc.check(t, got, 0)
			p, base := p99(attacked), p99(quietLat)
			t.Logf("attack answers %v; honest p99 %v (without attack %v)", got, p, base)
			if *checkP99 && p > 2*base {
				t.Errorf("honest p99 %v under attack, %v without: more than 2x", p, base)
			}
		})
	}

	t.Run("5000 idle connections", func(t *testing.T) {
		var never atomic.Bool
		quietLat, _, _ := e.honest(t, honestBase, honestUsers, phase/2, &never)
		honestBase += 100
		base := p99(quietLat)
		var conns []net.Conn
		refused := 0
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.70")}}
		for i := 0; i < 5000; i++ {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				refused++
				continue
			}
			c.Write([]byte("POST /v1/rains/" + e.code + "/claim HTTP/1.1\r\nHost: x\r\n")) // and never finish
			conns = append(conns, c)
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		// Let the node take in the flood (accept, per-address refusals) before measuring.
		testcluster.Eventually(t, 10*time.Second, "idle connections settled", func() bool { return settled(addr) })
		lat, _, paid := e.honest(t, honestBase, honestUsers, phase/2, &never)
		p := p99(lat)
		t.Logf("5000 idle connections (%d refused at dial); honest p99 %v (without attack %v), %d cents paid", refused, p, base, paid)
		if *checkP99 && p > 2*base {
			t.Errorf("honest p99 %v with idle connections, %v without", p, base)
		}
		if paid == 0 {
			t.Error("honest users got nothing while idle connections were held")
		}
	})
}

// toggle flips on every window until stop.
func toggle(on *atomic.Bool, window time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-stop:
			on.Store(false)
			return
		case <-t.C:
			on.Store(!on.Load())
		}
	}
}

// settled reports whether the node's open connection count held still for 200 ms.
func settled(addr string) bool {
	a, b := openConns(addr), -1
	time.Sleep(200 * time.Millisecond) // the interval the count must hold over
	b = openConns(addr)
	return a >= 0 && a == b
}

func openConns(addr string) int {
	st, body, err := fasthttp.Get(nil, "http://"+addr+"/metrics")
	if err != nil || st != 200 {
		return -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "redrain_open_connections "); ok {
			var n float64
			fmt.Sscan(v, &n)
			return int(n)
		}
	}
	return -1
}
