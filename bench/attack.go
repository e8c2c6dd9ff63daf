package bench

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"redrain/internal/attack"
	"redrain/internal/check"
	"redrain/internal/cluster"
)

// AttackOptions turn on an attack in `bench run` (local cluster only).
type AttackOptions struct {
	Kind          string        // "" = none; else one of attack.Kinds
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
	if o.Kind == attack.KindIdle {
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
	a      *attack.Attack
	on     atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    *AttackResults
	began  time.Time
	nodes  int
	maxPer int
	idle   *attack.Idle
}

func startAttack(o AttackOptions, t attack.Target, maxPer int) (*attackRun, error) {
	a, err := attack.New(o.Kind, t)
	if err != nil {
		return nil, err
	}
	r := &attackRun{o: o, a: a, stop: make(chan struct{}), began: time.Now(), nodes: len(t.Nodes), maxPer: maxPer,
		res: &AttackResults{Kind: o.Kind, Rate: o.Rate, WindowS: o.Window.Seconds(), ByWord: map[string]int64{}}}
	if o.Kind == attack.KindIdle {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.idleLoop() }()
		return r, nil
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); attack.Toggle(&r.on, o.Window, r.stop) }()
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
	var h *attack.Idle
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
			h = r.a.Hold(attack.IdleConns)
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
		res.ByWord[check.StatusWord(an)]++
		if an.Status == 200 {
			res.Packets++
			res.Amount += an.Amount
			per[an.User]++
			res.MaxPerBot = max(res.MaxPerBot, per[an.User])
		}
	}
	switch res.Kind {
	case attack.KindHammer:
		res.Cap = int64(r.maxPer)
	case attack.KindBots:
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
