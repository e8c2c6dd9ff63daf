package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// LoadOptions say how to drive claims at one rain. Zero values mean the documented defaults.
type LoadOptions struct {
	Nodes     []string      // claim API addresses (host:port); each user is routed to one by Route
	Code      string        // the rain
	Users     int           // simulated users, ids FirstUser .. FirstUser+Users-1; 0 means 1000
	FirstUser uint64        // 0 means 1
	Conns     int           // workers: requests in flight at most (both loops); 0 means 64
	Rate      float64       // > 0: open loop at this many taps/s, latency from the scheduled send time
	Time      time.Duration // the load stops after this; 0 means 10 s
	Interval  time.Duration // resolution of the time series; 0 means 1 s
	Claimer   *Claimer      // nil: NewClaimer(Conns)
	Live      *Live         // optional: running totals, for a progress display
	// Token mode and per-address limits (bench run --attack).
	Token     func(user uint64) string // non-nil: each user's bearer token, minted once
	LocalAddr func(worker int) string  // non-nil: each worker's own claimer bound to this local IP
	Split     *atomic.Bool             // non-nil: latencies also split by its value at each send
}

// Why a load stopped.
const (
	StopDrained   = "drained"    // every node answered exhausted
	StopUsersDone = "users_done" // every user was refused for good (user_limit, finished, ...)
	StopTime      = "time"       // LoadOptions.Time ran out
	StopCancelled = "cancelled"  // the context ended
)

// LoadResult is everything a load saw. Latencies are in microseconds.
type LoadResult struct {
	Answers      []Answer                // every answer, grouped by worker
	Latency      *hdrhistogram.Histogram // every answer
	ClaimLatency *hdrhistogram.Histogram // 200 answers only
	Series       []Interval              // one per Interval, the last one possibly shorter
	Start        time.Time
	Elapsed      time.Duration // first send to last answer
	Stop         string        // StopDrained, StopUsersDone, StopTime or StopCancelled
	Exhausted    []bool        // per node (LoadOptions.Nodes order): it answered exhausted
	// CPU is this process's user+sys time over the load: the driver's cost (and whatever else
	// the process did meanwhile, e.g. a progress display or an attack).
	CPU time.Duration
	// With LoadOptions.Split: every answer's latency by whether Split was up when it was sent.
	LatencyOn, LatencyOff *hdrhistogram.Histogram
}

// Drained reports whether every node answered exhausted.
func (r *LoadResult) Drained() bool {
	for _, e := range r.Exhausted {
		if !e {
			return false
		}
	}
	return len(r.Exhausted) > 0
}

// Interval is one point of a load's time series.
type Interval struct {
	EndS         float64 `json:"end_s"` // from the load's start
	DurationS    float64 `json:"duration_s"`
	Answers      int64   `json:"answers"`
	Claims       int64   `json:"claims"` // 200 answers
	ClaimsPerSec float64 `json:"claims_per_s"`
	P50US        int64   `json:"p50_us"` // latency of this interval's 200 answers
	P99US        int64   `json:"p99_us"`
	MaxUS        int64   `json:"max_us"`
}

// Live are a load's running totals, safe to read while it runs.
type Live struct {
	answers, claims, amount atomic.Int64
	last                    atomic.Pointer[Interval]
}

// Answers, Claims (200s) and Amount (their cents) so far.
func (l *Live) Answers() int64 { return l.answers.Load() }
func (l *Live) Claims() int64  { return l.claims.Load() }
func (l *Live) Amount() int64  { return l.amount.Load() }

// Last is the latest finished interval (nil before the first).
func (l *Live) Last() *Interval { return l.last.Load() }

// Histogram range: 1 µs .. 2 minutes; slower answers are recorded as 2 minutes.
const (
	histMax      = int64(2 * time.Minute / time.Microsecond)
	histSigFigs  = 3 // whole-run histograms
	intervalFigs = 2 // per-interval histograms (1% resolution, 8x smaller)
)

// NewHistogram is a latency histogram in microseconds as the load driver keeps them.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, histSigFigs) }

func record(h *hdrhistogram.Histogram, us int64) {
	_ = h.RecordValue(min(max(us, 1), histMax))
}

// MergeHistograms adds every histogram of hs into a new one.
func MergeHistograms(hs ...*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	out := NewHistogram()
	for _, h := range hs {
		out.Merge(h)
	}
	return out
}

// Schedule is an open loop's arrival times: tap i is due at Start + i/Rate, whether or not
// the taps before it were answered, so a slow server cannot slow the arrivals down (no
// coordinated omission). Take is safe for concurrent use.
type Schedule struct {
	Start time.Time
	Rate  float64 // taps per second, > 0
	next  atomic.Int64
}

// At is the due time of tap i (from 0).
func (s *Schedule) At(i int64) time.Time {
	return s.Start.Add(time.Duration(float64(i) * float64(time.Second) / s.Rate))
}

// Take claims the next tap and returns its due time.
func (s *Schedule) Take() time.Time { return s.At(s.next.Add(1) - 1) }

// Node states as the load driver learns them from answers.
const (
	nodeOpen      int32 = iota
	nodeExhausted       // answered exhausted: nothing left there
	nodeClosed          // answered finished or unknown_rain: the rain is over there
)

// What a user does after an answer.
type verdict int

const (
	tapAgain  verdict = iota // 200, or a transient refusal (not_started, rate_limited, 503, network)
	userDone                 // user_limit, bad_user: this user is done
	nodeEmpty                // exhausted: this user and every other user of the node are done
	nodeOver                 // finished, unknown_rain: likewise, but not "drained"
)

// judge decides what a simulated user does after answer a.
func judge(a Answer) verdict {
	switch {
	case a.Status == 200:
		return tapAgain
	case a.Error == "exhausted":
		return nodeEmpty
	case a.Error == "finished" || a.Error == "unknown_rain":
		return nodeOver
	case a.Error == "user_limit" || a.Error == "bad_user":
		return userDone
	}
	return tapAgain
}

type simUser struct {
	id    uint64
	node  int
	token string
}

// worker drives its own share of the users, round robin, one request at a time.
type worker struct {
	claimer *Claimer // nil: the loader's
	on, off *hdrhistogram.Histogram
	users   []simUser
	answers []Answer
	all, ok *hdrhistogram.Histogram

	mu                  sync.Mutex // guards the current interval's figures
	ivOK                *hdrhistogram.Histogram
	ivAnswers, ivClaims int64
}

type loader struct {
	o       LoadOptions
	claimer *Claimer
	nodes   []atomic.Int32
	sched   *Schedule // nil: closed loop
	live    *Live
	workers []*worker
}

// Load drives claims at a rain from simulated users until every user is done, every node is
// out of packets, o.Time passes or ctx ends. Each user taps again after each answer until it is
// refused for good (user_limit, exhausted, finished); users of a node that answered exhausted
// stop without a last tap. Closed loop: o.Conns workers each tap as soon as their previous
// answer arrives. Open loop (o.Rate > 0): taps are due at a fixed rate, sent by whichever of the
// o.Conns workers is free, and latency counts from the due time.
func Load(ctx context.Context, o LoadOptions) *LoadResult {
	o = o.withDefaults()
	l := &loader{o: o, claimer: o.Claimer, nodes: make([]atomic.Int32, len(o.Nodes)), live: o.Live}
	if l.claimer == nil {
		l.claimer = NewClaimer(o.Conns)
	}
	if l.live == nil {
		l.live = &Live{}
	}
	l.workers = splitUsers(o)
	for i, w := range l.workers {
		if o.LocalAddr != nil {
			w.claimer = NewClaimerFrom(1, o.LocalAddr(i))
		}
		if o.Split != nil {
			w.on, w.off = NewHistogram(), NewHistogram()
		}
	}
	cpu0, start := SelfCPU(), time.Now()
	parent := ctx
	ctx, cancel := context.WithDeadline(ctx, start.Add(o.Time))
	defer cancel()
	if o.Rate > 0 {
		l.sched = &Schedule{Start: start, Rate: o.Rate}
	}
	series := make(chan []Interval, 1)
	done := make(chan struct{})
	go func() { series <- l.collect(start, done) }()
	var wg sync.WaitGroup
	for _, w := range l.workers {
		wg.Add(1)
		go func() { defer wg.Done(); l.work(ctx, w) }()
	}
	wg.Wait()
	res := &LoadResult{Start: start, Elapsed: time.Since(start), Stop: l.why(parent), CPU: SelfCPU() - cpu0}
	close(done)
	res.Series = <-series
	l.gather(res)
	return res
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Users <= 0 {
		o.Users = 1000
	}
	if o.FirstUser == 0 {
		o.FirstUser = 1
	}
	if o.Conns <= 0 {
		o.Conns = 64
	}
	if o.Time <= 0 {
		o.Time = 10 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	return o
}

// splitUsers deals the users round robin to min(Conns, Users) workers.
func splitUsers(o LoadOptions) []*worker {
	ws := make([]*worker, min(o.Conns, o.Users))
	for i := range ws {
		ws[i] = &worker{all: NewHistogram(), ok: NewHistogram(), ivOK: hdrhistogram.New(1, histMax, intervalFigs)}
	}
	for i := 0; i < o.Users; i++ {
		id := o.FirstUser + uint64(i)
		w := ws[i%len(ws)]
		u := simUser{id: id, node: Route(id, len(o.Nodes))}
		if o.Token != nil {
			u.token = o.Token(id)
		}
		w.users = append(w.users, u)
	}
	return ws
}

func (l *loader) work(ctx context.Context, w *worker) {
	var timer *time.Timer
	for i := 0; len(w.users) > 0 && ctx.Err() == nil; {
		if i >= len(w.users) {
			i = 0
		}
		u := w.users[i]
		if l.nodes[u.node].Load() != nodeOpen {
			w.drop(i)
			continue
		}
		due := time.Now()
		if l.sched != nil {
			due = l.sched.Take()
			if !waitUntil(ctx, &timer, due) {
				return
			}
		}
		c := l.claimer
		if w.claimer != nil {
			c = w.claimer
		}
		under := l.o.Split != nil && l.o.Split.Load()
		a := c.ClaimWith(l.o.Nodes[u.node], l.o.Code, u.id, u.token, nil, nil)
		lat := time.Since(due)
		w.record(a, lat, l.live)
		if under {
			record(w.on, lat.Microseconds())
		} else if w.off != nil {
			record(w.off, lat.Microseconds())
		}
		switch judge(a) {
		case tapAgain:
			i++
		case userDone:
			w.drop(i)
		case nodeEmpty:
			l.nodes[u.node].CompareAndSwap(nodeOpen, nodeExhausted)
			w.drop(i)
		case nodeOver:
			l.nodes[u.node].CompareAndSwap(nodeOpen, nodeClosed)
			w.drop(i)
		}
	}
}

// waitUntil waits for t unless ctx ends first (false). It reuses *timer.
func waitUntil(ctx context.Context, timer **time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	if dl, ok := ctx.Deadline(); ok && t.After(dl) {
		return false
	}
	if *timer == nil {
		*timer = time.NewTimer(d)
	} else {
		(*timer).Reset(d)
	}
	select {
	case <-ctx.Done():
		return false
	case <-(*timer).C:
		return true
	}
}

func (w *worker) drop(i int) {
	last := len(w.users) - 1
	w.users[i] = w.users[last]
	w.users = w.users[:last]
}

func (w *worker) record(a Answer, lat time.Duration, live *Live) {
	us := lat.Microseconds()
	w.answers = append(w.answers, a)
	record(w.all, us)
	live.answers.Add(1)
	w.mu.Lock()
	w.ivAnswers++
	if a.Status == 200 {
		w.ivClaims++
		record(w.ivOK, us)
	}
	w.mu.Unlock()
	if a.Status == 200 {
		record(w.ok, us)
		live.claims.Add(1)
		live.amount.Add(a.Amount)
	}
}

// collect closes an interval every o.Interval until done, then the last partial one.
func (l *loader) collect(start time.Time, done <-chan struct{}) []Interval {
	var out []Interval
	tick := time.NewTicker(l.o.Interval)
	defer tick.Stop()
	from := start
	h := hdrhistogram.New(1, histMax, intervalFigs)
	for {
		var end bool
		select {
		case <-tick.C:
		case <-done:
			end = true
		}
		now := time.Now()
		iv := l.closeInterval(h, start, from, now)
		from = now
		if iv.Answers > 0 || !end {
			out = append(out, iv)
			l.live.last.Store(&iv)
		}
		if end {
			return out
		}
	}
}

func (l *loader) closeInterval(h *hdrhistogram.Histogram, start, from, now time.Time) Interval {
	h.Reset()
	iv := Interval{EndS: now.Sub(start).Seconds(), DurationS: now.Sub(from).Seconds()}
	for _, w := range l.workers {
		w.mu.Lock()
		h.Merge(w.ivOK)
		w.ivOK.Reset()
		iv.Answers += w.ivAnswers
		iv.Claims += w.ivClaims
		w.ivAnswers, w.ivClaims = 0, 0
		w.mu.Unlock()
	}
	if iv.DurationS > 0 {
		iv.ClaimsPerSec = float64(iv.Claims) / iv.DurationS
	}
	iv.P50US, iv.P99US, iv.MaxUS = h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max()
	return iv
}

// why names the reason the workers returned; parent is the caller's context.
func (l *loader) why(parent context.Context) string {
	drained := len(l.nodes) > 0
	for i := range l.nodes {
		drained = drained && l.nodes[i].Load() == nodeExhausted
	}
	left := false
	for _, w := range l.workers {
		left = left || len(w.users) > 0
	}
	switch {
	case drained:
		return StopDrained
	case parent.Err() != nil:
		return StopCancelled
	case left:
		return StopTime
	}
	return StopUsersDone
}

func (l *loader) gather(res *LoadResult) {
	n := 0
	alls, oks := make([]*hdrhistogram.Histogram, 0, len(l.workers)), make([]*hdrhistogram.Histogram, 0, len(l.workers))
	for _, w := range l.workers {
		n += len(w.answers)
		alls, oks = append(alls, w.all), append(oks, w.ok)
	}
	res.Answers = make([]Answer, 0, n)
	for _, w := range l.workers {
		res.Answers = append(res.Answers, w.answers...)
		w.answers = nil
	}
	res.Latency, res.ClaimLatency = MergeHistograms(alls...), MergeHistograms(oks...)
	if l.o.Split != nil {
		res.LatencyOn, res.LatencyOff = NewHistogram(), NewHistogram()
		for _, w := range l.workers {
			res.LatencyOn.Merge(w.on)
			res.LatencyOff.Merge(w.off)
		}
	}
	res.Exhausted = make([]bool, len(l.nodes))
	for i := range l.nodes {
		res.Exhausted[i] = l.nodes[i].Load() == nodeExhausted
	}
}
