package attack

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"redrain/internal/check"
	"redrain/internal/tap"
	"redrain/internal/usertoken"
)

// Attack kinds (`bench run --attack KIND`), SPEC's abuse scenarios.
const (
	KindHammer    = "hammer"    // one bot user hammering: it gets its cap, then 429s
	KindBots      = "bots"      // 1,000 bot ids from one address: held to the address limit
	KindForged    = "forged"    // forged tokens and tokens of another room: nothing
	KindOversized = "oversized" // oversized headers and bodies: nothing
	KindIdle      = "idle"      // 5,000 idle connections (slowloris)
)

// Kinds lists every kind.
var Kinds = []string{KindHammer, KindBots, KindForged, KindOversized, KindIdle}

// Attack user ids sit far above any honest user's.
const (
	HammerUser  uint64 = 1<<40 + 1
	BotsFirst   uint64 = 1<<40 + 1_000
	BotCount           = 1000
	ForgedUser  uint64 = 1<<40 + 7
	ForeignUser uint64 = 1<<40 + 8
	BigUser     uint64 = 1<<40 + 9
	IdleConns          = 5000
)

// Target is what an attack aims at: a token-mode rain.
type Target struct {
	Nodes []string // claim addresses; users are routed to them by tap.Route
	Code  string
	Room  int64
	Key   *usertoken.Key
}

// Token mints an hour-long token of user for room.
func (t Target) Token(user uint64, room int64) string {
	return t.Key.Mint(usertoken.Claims{User: user, Room: room, ExpiresAt: time.Now().Add(time.Hour).Unix()})
}

// Attack is one scenario: Hit sends one attack request (worker w of Workers); an idle attack
// has no Hit, it holds connections instead (Hold).
type Attack struct {
	Kind    string
	Workers int
	Local   string // the attackers' local address
	Hit     func(w int) check.Answer
	target  Target
}

// New prepares an attack of kind on t. The attackers are bound to 127.0.0.66..70 (one
// address per kind), honest users belong elsewhere (HonestAddr).
func New(kind string, t Target) (*Attack, error) {
	a := &Attack{Kind: kind, target: t}
	node := func(u uint64) string { return t.Nodes[tap.Route(u, len(t.Nodes))] }
	switch kind {
	case KindHammer:
		a.Workers, a.Local = 4, "127.0.0.66"
		cl, tok := tap.NewClaimerFrom(4, a.Local), t.Token(HammerUser, t.Room)
		a.Hit = func(int) check.Answer {
			return cl.ClaimWith(node(HammerUser), t.Code, HammerUser, tok, nil, nil)
		}
	case KindBots:
		a.Workers, a.Local = 8, "127.0.0.67"
		cl := tap.NewClaimerFrom(8, a.Local)
		toks := make([]string, BotCount)
		for i := range toks {
			toks[i] = t.Token(BotsFirst+uint64(i), t.Room)
		}
		var n atomic.Uint64
		a.Hit = func(int) check.Answer {
			i := n.Add(1) % BotCount
			u := BotsFirst + i
			return cl.ClaimWith(node(u), t.Code, u, toks[i], nil, nil)
		}
	case KindForged:
		a.Workers, a.Local = 4, "127.0.0.68"
		cl := tap.NewClaimerFrom(4, a.Local)
		forged := usertoken.NewKey([]byte("guessed-key-guessed-key")).Mint(usertoken.Claims{User: ForgedUser,
			Room: t.Room, ExpiresAt: 1 << 40})
		foreign := t.Token(ForeignUser, t.Room+1)
		var n atomic.Uint64
		a.Hit = func(int) check.Answer {
			if n.Add(1)%2 == 0 {
				return cl.ClaimWith(node(ForgedUser), t.Code, ForgedUser, forged, nil, nil)
			}
			return cl.ClaimWith(node(ForeignUser), t.Code, ForeignUser, foreign, nil, nil)
		}
	case KindOversized:
		a.Workers, a.Local = 2, "127.0.0.69"
		cl, tok := tap.NewClaimerFrom(2, a.Local), t.Token(BigUser, t.Room)
		big := []string{"X-Junk", strings.Repeat("x", 32<<10)}
		body := make([]byte, 128<<10) // over the 4 KiB claim and 64 KiB request limits
		var n atomic.Uint64
		a.Hit = func(int) check.Answer {
			if n.Add(1)%2 == 0 {
				return cl.ClaimWith(node(BigUser), t.Code, BigUser, tok, big, nil)
			}
			return cl.ClaimWith(node(BigUser), t.Code, BigUser, tok, nil, body)
		}
	case KindIdle:
		a.Local = "127.0.0.70"
	default:
		return nil, fmt.Errorf("attack: unknown attack %q (want one of %v)", kind, Kinds)
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
