package bench

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/usertoken"
)

// Attack kinds (`bench run --attack KIND`), SPEC's abuse scenarios.
const (
	AttackHammer    = "hammer"    // one bot user hammering: it gets its cap, then 429s
	AttackBots      = "bots"      // 1,000 bot ids from one address: held to the address limit
	AttackForged    = "forged"    // forged tokens and tokens of another room: nothing
	AttackOversized = "oversized" // oversized headers and bodies: nothing
	AttackIdle      = "idle"      // 5,000 idle connections (slowloris)
)

// AttackKinds lists every kind.
var AttackKinds = []string{AttackHammer, AttackBots, AttackForged, AttackOversized, AttackIdle}

// Attack user ids sit far above any honest user's.
const (
	AttackHammerUser  uint64 = 1<<40 + 1
	AttackBotsFirst   uint64 = 1<<40 + 1_000
	AttackBotCount           = 1000
	AttackForgedUser  uint64 = 1<<40 + 7
	AttackForeignUser uint64 = 1<<40 + 8
	AttackBigUser     uint64 = 1<<40 + 9
	AttackIdleConns          = 5000
)

// AttackTarget is what an attack aims at: a token-mode rain.
type AttackTarget struct {
	Nodes []string // claim addresses; users are routed to them by tap.Route
	Code  string
	Room  int64
	Key   *usertoken.Key
}

// Token mints an hour-long token of user for room.
func (t AttackTarget) Token(user uint64, room int64) string {
	return t.Key.Mint(usertoken.Claims{User: user, Room: room, ExpiresAt: time.Now().Add(time.Hour).Unix()})
}

// Attack is one scenario: Hit sends one attack request (worker w of Workers); an idle attack
// has no Hit, it holds connections instead (Hold).
type Attack struct {
	Kind    string
	Workers int
	Local   string // the attackers' local address
	Hit     func(w int) check.Answer
	target  AttackTarget
}

// NewAttack prepares an attack of kind on t. The attackers are bound to 127.0.0.66..70 (one
// address per kind), honest users belong elsewhere (HonestAddr).
func NewAttack(kind string, t AttackTarget) (*Attack, error) {
	a := &Attack{Kind: kind, target: t}
	node := func(u uint64) string { return t.Nodes[tap.Route(u, len(t.Nodes))] }
	switch kind {
	case AttackHammer:
		a.Workers, a.Local = 4, "127.0.0.66"
		cl, tok := tap.NewClaimerFrom(4, a.Local), t.Token(AttackHammerUser, t.Room)
		a.Hit = func(int) check.Answer {
			return cl.ClaimWith(node(AttackHammerUser), t.Code, AttackHammerUser, tok, nil, nil)
		}
	case AttackBots:
		a.Workers, a.Local = 8, "127.0.0.67"
		cl := tap.NewClaimerFrom(8, a.Local)
		toks := make([]string, AttackBotCount)
		for i := range toks {
			toks[i] = t.Token(AttackBotsFirst+uint64(i), t.Room)
		}
		var n atomic.Uint64
		a.Hit = func(int) check.Answer {
			i := n.Add(1) % AttackBotCount
			u := AttackBotsFirst + i
			return cl.ClaimWith(node(u), t.Code, u, toks[i], nil, nil)
		}
	case AttackForged:
		a.Workers, a.Local = 4, "127.0.0.68"
		cl := tap.NewClaimerFrom(4, a.Local)
		forged := usertoken.NewKey([]byte("guessed-key-guessed-key")).Mint(usertoken.Claims{User: AttackForgedUser,
			Room: t.Room, ExpiresAt: 1 << 40})
		foreign := t.Token(AttackForeignUser, t.Room+1)
		var n atomic.Uint64
		a.Hit = func(int) check.Answer {
			if n.Add(1)%2 == 0 {
				return cl.ClaimWith(node(AttackForgedUser), t.Code, AttackForgedUser, forged, nil, nil)
			}
			return cl.ClaimWith(node(AttackForeignUser), t.Code, AttackForeignUser, foreign, nil, nil)
		}
	case AttackOversized:
		a.Workers, a.Local = 2, "127.0.0.69"
		cl, tok := tap.NewClaimerFrom(2, a.Local), t.Token(AttackBigUser, t.Room)
		big := []string{"X-Junk", strings.Repeat("x", 32<<10)}
		body := make([]byte, 128<<10) // over the 4 KiB claim and 64 KiB request limits
		var n atomic.Uint64
		a.Hit = func(int) check.Answer {
			if n.Add(1)%2 == 0 {
				return cl.ClaimWith(node(AttackBigUser), t.Code, AttackBigUser, tok, big, nil)
			}
			return cl.ClaimWith(node(AttackBigUser), t.Code, AttackBigUser, tok, nil, body)
		}
	case AttackIdle:
		a.Local = "127.0.0.70"
	default:
		return nil, fmt.Errorf("bench: unknown attack %q (want one of %v)", kind, AttackKinds)
	}
	return a, nil
}

// HonestAddr is honest worker i's local address: 127.0.1.1, 127.0.1.2, ... (250 per /24).
func HonestAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250) }

// Idle holds open connections, each with a claim request's first lines and never the rest.
type Idle struct {
	conns   []net.Conn
	Refused int // dials that failed
}

// Hold opens n idle connections from a.Local, round robin over the nodes.
func (a *Attack) Hold(n int) *Idle {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.Local)}, Timeout: 5 * time.Second}
	h := &Idle{}
	for i := 0; i < n; i++ {
		c, err := d.Dial("tcp", a.target.Nodes[i%len(a.target.Nodes)])
		if err != nil {
			h.Refused++
			continue
		}
		c.Write([]byte("POST /v1/rains/" + a.target.Code + "/claim HTTP/1.1\r\nHost: x\r\n")) // and never finish
		h.conns = append(h.conns, c)
	}
	return h
}

// Held is how many connections are open.
func (h *Idle) Held() int { return len(h.conns) }

// Close closes them all.
func (h *Idle) Close() {
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// Pace runs a.Hit on a.Workers goroutines, rate requests/s in all, while on is up, until stop
// is closed; each answer goes to got. Wait on the WaitGroup after closing stop.
func (a *Attack) Pace(rate float64, on *atomic.Bool, stop <-chan struct{}, got func(check.Answer)) *sync.WaitGroup {
	var wg sync.WaitGroup
	every := time.Duration(float64(a.Workers) * float64(time.Second) / rate)
	for w := 0; w < a.Workers; w++ {
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
						got(a.Hit(w))
					}
				}
			}
		}()
	}
	return &wg
}

// Toggle flips on every window until stop, and leaves it down.
func Toggle(on *atomic.Bool, window time.Duration, stop <-chan struct{}) {
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

// AttackOptions turn on an attack in `bench run` (local cluster only).
type AttackOptions struct {
	Kind          string        // "" = none; else one of AttackKinds
	Rate          float64       // attack requests/s; 0 means 2000
	Window        time.Duration // the attack is on and off in turns of this; 0 means 500 ms (idle: at least 2 s)
	IPRate        float64       // node --ip-rate; 0 means 50
	IPBurst       int           // node --ip-burst; 0 means 100
	MaxConnsPerIP int           // node --max-conns-per-ip; 0 means 500
	UserKey       string        // token key; "" = random
}

func (o *AttackOptions) defaults() {
	if o.Rate <= 0 {
		o.Rate = 2000
	}
	if o.Window <= 0 {
		o.Window = 500 * time.Millisecond
	}
	if o.Kind == AttackIdle {
		o.Window = max(o.Window, 2*time.Second)
	}
	if o.IPRate <= 0 {
		o.IPRate = 50
	}
	if o.IPBurst <= 0 {
		o.IPBurst = 100
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = 500
	}
	if o.UserKey == "" {
		o.UserKey = cluster.RandomHex(16)
	}
}

// AttackResults are an attack's figures in a run's results.
type AttackResults struct {
	Kind     string           `json:"kind"`
	Rate     float64          `json:"rate"`
	WindowS  float64          `json:"window_s"`
	Requests int64            `json:"requests"`
	ByWord   map[string]int64 `json:"by_word"` // "ok", the error word, "network", "http_NNN"
	Packets  int64            `json:"packets"` // 200 answers the attackers got
	Amount   int64            `json:"amount"`  // their cents
	// Cap is the most packets the attack may get: the user cap (hammer), the address limit
	// (bots: nodes * (burst + rate * seconds)), 0 (forged, oversized, idle).
	Cap          int64    `json:"cap"`
	MaxPerBot    int64    `json:"max_per_bot"` // the most packets one attack user got
	IdleHeld     int      `json:"idle_held,omitempty"`
	IdleRefused  int      `json:"idle_refused,omitempty"`
	HonestP99On  int64    `json:"honest_p99_on_us"`  // honest answers sent while the attack was on
	HonestP99Off int64    `json:"honest_p99_off_us"` // ... and while it was off
	HonestOn     int64    `json:"honest_on"`         // how many of each
	HonestOff    int64    `json:"honest_off"`
	Violations   []string `json:"violations"`
	answers      []check.Answer
}

// attackRun is an attack running beside a run's honest load.
type attackRun struct {
	o      AttackOptions
	a      *Attack
	on     atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    *AttackResults
	began  time.Time
	nodes  int
	maxPer int
	idle   *Idle
}

func startAttack(o AttackOptions, t AttackTarget, maxPer int) (*attackRun, error) {
	a, err := NewAttack(o.Kind, t)
	if err != nil {
		return nil, err
	}
	r := &attackRun{o: o, a: a, stop: make(chan struct{}), began: time.Now(), nodes: len(t.Nodes), maxPer: maxPer,
		res: &AttackResults{Kind: o.Kind, Rate: o.Rate, WindowS: o.Window.Seconds(), ByWord: map[string]int64{}}}
	if o.Kind == AttackIdle {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.idleLoop() }()
		return r, nil
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); Toggle(&r.on, o.Window, r.stop) }()
	pw := a.Pace(o.Rate, &r.on, r.stop, func(an check.Answer) {
		r.mu.Lock()
		r.res.answers = append(r.res.answers, an)
		r.mu.Unlock()
	})
	r.wg.Add(1)
	go func() { defer r.wg.Done(); <-r.stop; pw.Wait() }()
	return r, nil
}

// idleLoop holds the idle connections in every other window: opened, then the flag up; the
// flag down, then closed.
func (r *attackRun) idleLoop() {
	t := time.NewTicker(r.o.Window)
	defer t.Stop()
	var h *Idle
	for {
		select {
		case <-r.stop:
			r.on.Store(false)
			if h != nil {
				h.Close()
			}
			return
		case <-t.C:
		}
		if h == nil {
			h = r.a.Hold(AttackIdleConns)
			r.res.IdleHeld, r.res.IdleRefused = max(r.res.IdleHeld, h.Held()), max(r.res.IdleRefused, h.Refused)
			r.on.Store(true)
		} else {
			r.on.Store(false)
			h.Close()
			h = nil
		}
	}
}

// finish stops the attack and judges it.
func (r *attackRun) finish(l *LoadResult) *AttackResults {
	close(r.stop)
	r.wg.Wait()
	res := r.res
	secs := time.Since(r.began).Seconds()
	per := map[uint64]int64{}
	for _, an := range res.answers {
		res.Requests++
		res.ByWord[StatusWord(an)]++
		if an.Status == 200 {
			res.Packets++
			res.Amount += an.Amount
			per[an.User]++
			res.MaxPerBot = max(res.MaxPerBot, per[an.User])
		}
	}
	switch res.Kind {
	case AttackHammer:
		res.Cap = int64(r.maxPer)
	case AttackBots:
		res.Cap = int64(r.nodes) * (int64(r.o.IPBurst) + int64(r.o.IPRate*(secs+1)))
	}
	res.Violations = []string{}
	bad := func(format string, args ...any) {
		res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
	}
	if res.Packets > res.Cap {
		bad("attack %s got %d packets, cap %d", res.Kind, res.Packets, res.Cap)
	}
	if r.maxPer > 0 && res.MaxPerBot > int64(r.maxPer) {
		bad("an attack user got %d packets, max per user %d", res.MaxPerBot, r.maxPer)
	}
	if l.LatencyOn != nil {
		res.HonestP99On, res.HonestP99Off = l.LatencyOn.ValueAtQuantile(99), l.LatencyOff.ValueAtQuantile(99)
		res.HonestOn, res.HonestOff = l.LatencyOn.TotalCount(), l.LatencyOff.TotalCount()
	}
	return res
}

// RaiseFileLimit lifts the soft open-files limit to at least n where the hard limit allows
// (idle connections need descriptors, here and in the nodes started after, which inherit it).
func RaiseFileLimit(n uint64) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= n {
		return
	}
	l.Cur = min(max(l.Max, n), 1<<20)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
