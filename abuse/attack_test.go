package abuse

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/attack"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/internal/usertoken"
)

// checkP99 turns the latency comparison into a failure. Off by default: the repository measures
// speed with benchmarks and the load harness, not timed tests, and on a shared 2-core machine
// a p99 over a few seconds moves by more than 2x on its own. The figures are logged either way.
var checkP99 = flag.Bool("abuse.p99", false, "fail when honest users' p99 under an attack exceeds 2x their p99 without")

func TestMain(m *testing.M) {
	flag.Parse()
	// 5,000 idle connections need file descriptors, here and in the node processes (inherited).
	attack.RaiseFileLimit(20000)
	os.Exit(testcluster.Main(m))
}

const (
	userKey = "attack-test-user-key-0123456789"
	room    = 31
	anchor  = 5
)

type env struct {
	c     *cluster.LocalCluster
	key   *usertoken.Key
	code  string
	total int64
	count int64
}

func setup(t *testing.T, count, total int64, maxPer int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 1, BinDir: filepath.Dir(testcluster.PlainBin(t, "node")),
		NodeArgs:  []string{"--auth", "token", "--user-key", userKey, "--ip-rate", "50", "--ip-burst", "100", "--max-conns-per-ip", "500"},
		CoordArgs: []string{"--user-key", userKey, "--prepare-timeout", "60s"}})
	cfg := cluster.RainConfig(anchor, total, count, maxPer, 900)
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

func (e *env) target() attack.Target {
	return attack.Target{Nodes: []string{e.c.Nodes[0].HTTP}, Code: e.code, Room: room, Key: e.key}
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
			cl := tap.NewClaimerFrom(1, attack.HonestAddr(i))
			u := first + uint64(i)
			tok := e.token(u, room)
			t0 := time.Now()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for time.Since(t0) < d {
				under := attacking.Load()
				began := time.Now()
				a := cl.ClaimWith(addr, e.code, u, tok, nil, nil)
				lat := time.Since(began)
				if a.Status == 0 {
					t.Errorf("honest user %d: %s", u, a.Error)
					return
				}
				if a.Status == 200 {
					got.Add(a.Amount)
				}
				mu.Lock()
				if under {
					attacked = append(attacked, lat)
				} else {
					quiet = append(quiet, lat)
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
		kind  string
		check func(t *testing.T, got map[string]int)
	}{
		{kind: attack.KindHammer, check: func(t *testing.T, got map[string]int) {
			if got["ok"] > maxPer {
				t.Errorf("one bot got %d packets, cap %d", got["ok"], maxPer)
			}
		}},
		{kind: attack.KindBots, check: func(t *testing.T, got map[string]int) {
			// --ip-rate 50 --ip-burst 100 over the phase: at most burst + rate*seconds packets.
			limit := 100 + 50*int(phase/time.Second+1)
			if got["ok"] > limit {
				t.Errorf("1000 bot ids on one address got %d packets, the address limit allows %d", got["ok"], limit)
			}
			sent := 0
			for _, n := range got {
				sent += n
			}
			if sent > limit && got["rate_limited"] == 0 {
				t.Errorf("%d requests from one address and the address limit never answered", sent)
			}
		}},
		{kind: attack.KindForged, check: func(t *testing.T, got map[string]int) {
			if got["ok"] != 0 || got["bad_token"] == 0 || got["wrong_room"] == 0 {
				t.Errorf("forged/foreign answers %v: want only bad_token and wrong_room", got)
			}
		}},
		{kind: attack.KindOversized, check: func(t *testing.T, got map[string]int) {
			if got["ok"] != 0 {
				t.Errorf("oversized requests got %d packets", got["ok"])
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.kind, func(t *testing.T) {
			atk, err := attack.New(sc.kind, e.target())
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var on atomic.Bool
			var mu sync.Mutex
			got := map[string]int{}
			go attack.Toggle(&on, window, stop)
			wg := atk.Pace(AttackRate, &on, stop, func(a check.Answer) {
				mu.Lock()
				got[check.StatusWord(a)]++
				mu.Unlock()
			})
			quietLat, attacked, _ := e.honest(t, honestBase, honestUsers, phase, &on)
			honestBase += 100
			close(stop)
			wg.Wait()
			sc.check(t, got)
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
		atk, err := attack.New(attack.KindIdle, e.target())
		if err != nil {
			t.Fatal(err)
		}
		idle := atk.Hold(attack.IdleConns)
		defer idle.Close()
		refused := idle.Refused
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
