package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"redrain/internal/check"
	"redrain/internal/tap"
)

// LoadOptions say how to drive claims at one rain. Zero values mean the documented defaults.
type LoadOptions struct {
	Nodes   []string // claim API addresses (host:port), at most MaxNodes; Balance spreads the taps over them
	Balance Balance  // how taps are spread over Nodes; "" means BalanceSticky
	// Route, if set, is each user's node (an index into Nodes) under BalanceSticky: bench run
	// routes users to their owners (rain.OwnerOf), as a gateway that routes by user does, so no
	// claim takes the hop to another node's count. nil = tap.Route (a hash of the id).
	Route     func(user uint64) int
	Code      string        // the rain
	Users     int           // simulated users, ids FirstUser .. FirstUser+Users-1; 0 means 1000
	FirstUser uint64        // 0 means 1
	Conns     int           // workers (each keeps a connection per node): requests in flight at most; 0 means 64
	Rate      float64       // > 0: open loop at this many taps/s, latency from the scheduled send time
	Time      time.Duration // the load stops after this; 0 means 10 s
	Interval  time.Duration // resolution of the time series; 0 means 1 s
	Live      *Live         // optional: running totals, for a progress display
	// Token mode and per-address limits (bench run --attack).
	Token     func(user uint64) string // non-nil: each user's bearer token, minted once
	LocalAddr func(worker int) string  // non-nil: each worker's connections bound to this local IP
	Split     *atomic.Bool             // non-nil: latencies also split by its value at each send
	// Procs is GOMAXPROCS while the load runs (process-wide, restored after); 0 means 1: one
	// thread runs every worker, as `wrk -t1` does, which costs less CPU per answer than waking
	// a second thread for answers. Raise it when one core cannot keep up with the servers.
	Procs int
}

// Balance is how the load driver spreads taps over the nodes, as a load balancer would.
type Balance string

// The balances. With BalanceSticky and BalanceOne every user has one node, and the users of a node
// that answered exhausted stop tapping; with BalanceRandom and BalanceSkew each tap picks its node,
// and a user stops at its first exhausted answer (as a viewer told "none left" does).
const (
	BalanceSticky Balance = "sticky" // each user always to one node, by a hash of its id (tap.Route): the default
	BalanceRandom Balance = "random" // each tap to a uniformly random node
	BalanceSkew   Balance = "skew"   // 80% of taps to the first 20% of the nodes (at least one), 20% spread over the others
	BalanceOne    Balance = "one"    // every tap to the first node
)

// Balances are the valid LoadOptions.Balance values.
var Balances = []Balance{BalanceSticky, BalanceRandom, BalanceSkew, BalanceOne}

// ParseBalance reads a --balance value.
func ParseBalance(s string) (Balance, error) {
	if b := Balance(s); slices.Contains(Balances, b) {
		return b, nil
	}
	return "", fmt.Errorf("balance %q: want one of %v", s, Balances)
}

// MaxNodes bounds LoadOptions.Nodes (an answer keeps its node in 16 bits).
const MaxNodes = 1<<16 - 1

// hotNodes is how many nodes BalanceSkew sends 80% of the taps to: the first 20% of n, at least one.
func hotNodes(n int) int { return max(1, n/5) }

// perTap reports whether each tap picks its node (else each user has one).
func (b Balance) perTap() bool { return b == BalanceRandom || b == BalanceSkew }

// Why a load stopped.
const (
	StopDrained   = "drained"    // every node answered exhausted
	StopUsersDone = "users_done" // every user was refused for good (user_limit, finished, ...)
	StopTime      = "time"       // LoadOptions.Time ran out
	StopCancelled = "cancelled"  // the context ended
)

// LoadResult is everything a load saw. Latencies are in microseconds.
type LoadResult struct {
	Answers      []check.Answer          // every answer, grouped by worker
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

// judge decides what a simulated user does after an answer of status with error word word.
func judge(status int, word []byte) verdict {
	switch w := string(word); {
	case status == 200:
		return tapAgain
	case w == "exhausted":
		return nodeEmpty
	case w == "finished" || w == "unknown_rain":
		return nodeOver
	case w == "user_limit" || w == "bad_user":
		return userDone
	}
	return tapAgain
}

type simUser struct {
	id    uint64
	node  int // its node under BalanceSticky and BalanceOne
	token string
}

// worker drives its own share of the users, round robin, one request at a time.
type worker struct {
	local   string       // its connections' local IP ("" = any)
	conns   []*claimConn // by node, dialed on first use
	rng     uint64       // splitmix64 state: the node of each tap under BalanceRandom and BalanceSkew
	on, off *hdrhistogram.Histogram
	users   []simUser
	chunks  []*recChunk // every answer, in order
	all, ok *hdrhistogram.Histogram

	mu                  sync.Mutex // guards the current interval's figures
	ivOK                *hdrhistogram.Histogram
	ivAnswers, ivClaims int64
}

// answerRec is an answer as a worker keeps it during the load, in 32 bytes. It holds no
// pointer, so the garbage collector never scans the records; its text (the claim_id of a 200,
// else the error word or the network error) is in its chunk's text. gather makes Answers of them.
type answerRec struct {
	user    uint64
	amount  int64
	textOff uint32
	at      uint32 // when it arrived, µs from the load's start (saturating at maxAt, 71 minutes)
	node    uint16
	textLen uint16
	status  uint16
	isID    bool // the text is a claim_id (a 200 that parsed)
}

const maxAt = 1<<32 - 1

// recChunk is up to chunkRecs answers and their texts: a worker's answers are kept in chunks
// allocated once each, never copied as one growing slice would be.
type recChunk struct {
	recs []answerRec
	text []byte
}

const (
	chunkRecs = 4096
	// maxErrorText bounds the text kept of one network or protocol error.
	maxErrorText = 256
)

type loader struct {
	o       LoadOptions
	nodes   []atomic.Int32
	perTap  bool      // each tap picks its node (BalanceRandom, BalanceSkew)
	start   time.Time // the answers' times count from here
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
	if len(o.Nodes) > MaxNodes {
		panic(fmt.Sprintf("bench: %d nodes, at most %d", len(o.Nodes), MaxNodes)) // callers validate (LoadProblem)
	}
	l := &loader{o: o, nodes: make([]atomic.Int32, len(o.Nodes)), live: o.Live, perTap: o.Balance.perTap()}
	if l.live == nil {
		l.live = &Live{}
	}
	l.workers = splitUsers(o)
	for i, w := range l.workers {
		w.conns = make([]*claimConn, len(o.Nodes))
		if o.LocalAddr != nil {
			w.local = o.LocalAddr(i)
		}
		if o.Split != nil {
			w.on, w.off = NewHistogram(), NewHistogram()
		}
	}
	defer useProcs(o.Procs)()
	cpu0, start := SelfCPU(), time.Now()
	l.start = start
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
	if o.Procs <= 0 {
		o.Procs = 1
	}
	if o.Balance == "" {
		o.Balance = BalanceSticky
	}
	return o
}

// procs are the loads running in this process and the GOMAXPROCS they found.
var procs struct {
	sync.Mutex
	loads, saved int
}

// useProcs sets GOMAXPROCS to n for a load (to the most any running load asked for) and
// returns what restores it once the last running load is over.
func useProcs(n int) (restore func()) {
	procs.Lock()
	defer procs.Unlock()
	if procs.loads == 0 {
		procs.saved = runtime.GOMAXPROCS(n)
	} else if n > runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
	procs.loads++
	return func() {
		procs.Lock()
		defer procs.Unlock()
		if procs.loads--; procs.loads == 0 {
			runtime.GOMAXPROCS(procs.saved)
		}
	}
}

// splitUsers deals the users round robin to min(Conns, Users) workers, each user with its node
// under BalanceSticky (Route, or tap.Route) and BalanceOne (the first).
func splitUsers(o LoadOptions) []*worker {
	ws := make([]*worker, min(o.Conns, o.Users))
	for i := range ws {
		ws[i] = &worker{all: NewHistogram(), ok: NewHistogram(), ivOK: hdrhistogram.New(1, histMax, intervalFigs),
			rng: 0x5eed_0000 + uint64(i)}
	}
	for i := 0; i < o.Users; i++ {
		id := o.FirstUser + uint64(i)
		w := ws[i%len(ws)]
		u := simUser{id: id}
		switch {
		case o.Balance == BalanceOne:
		case o.Route != nil:
			u.node = o.Route(id)
		default:
			u.node = tap.Route(id, len(o.Nodes))
		}
		if o.Token != nil {
			u.token = o.Token(id)
		}
		w.users = append(w.users, u)
	}
	return ws
}

func (l *loader) work(ctx context.Context, w *worker) {
	defer w.closeConns()
	var timer *time.Timer
	for i := 0; len(w.users) > 0 && ctx.Err() == nil; {
		if i >= len(w.users) {
			i = 0
		}
		u := w.users[i]
		node := u.node
		if l.perTap {
			node = w.pick(l.o.Balance, len(l.o.Nodes))
		} else if l.nodes[node].Load() != nodeOpen {
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
		under := l.o.Split != nil && l.o.Split.Load()
		status, word, lat := w.tap(l, u, node, due)
		if under {
			record(w.on, lat.Microseconds())
		} else if w.off != nil {
			record(w.off, lat.Microseconds())
		}
		switch judge(status, word) {
		case tapAgain:
			i++
		case userDone:
			w.drop(i)
		case nodeEmpty:
			l.nodes[node].CompareAndSwap(nodeOpen, nodeExhausted)
			w.drop(i)
		case nodeOver:
			l.nodes[node].CompareAndSwap(nodeOpen, nodeClosed)
			w.drop(i)
		}
	}
}

// pick is the node of the next tap under BalanceRandom or BalanceSkew, of n nodes.
func (w *worker) pick(b Balance, n int) int {
	w.rng += 0x9e3779b97f4a7c15 // splitmix64
	z := w.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	hi := z >> 32
	if b == BalanceSkew {
		hot := hotNodes(n)
		if hot == n || z%5 < 4 {
			return int(hi % uint64(hot))
		}
		return hot + int(hi%uint64(n-hot))
	}
	return int(hi % uint64(n))
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

// tap sends u's claim to node and records the answer; it returns the answer's status and
// error word (valid until the next tap) and its latency from due.
func (w *worker) tap(l *loader, u simUser, node int, due time.Time) (status int, word []byte, lat time.Duration) {
	k := w.conns[node]
	if k == nil {
		k = newClaimConn(l.o.Nodes[node], l.o.Code, w.local)
		w.conns[node] = k
	}
	status, body, err := k.claim(u.id, u.token, due)
	now := time.Now()
	lat = now.Sub(due)
	c := w.chunk()
	r := answerRec{user: u.id, node: uint16(node), status: uint16(status), textOff: uint32(len(c.text)),
		at: uint32(min(now.Sub(l.start).Microseconds(), maxAt))}
	switch {
	case err != nil && status == 0:
		c.text = appendError(c.text, "", err.Error())
	case err != nil:
		c.text = appendError(c.text, "undecodable answer: ", err.Error())
	default:
		amount, id, wd, perr := tap.ParseAnswer(body)
		switch {
		case perr != nil:
			c.text = appendError(c.text, "undecodable answer: ", strconv.Quote(string(body[:min(len(body), 64)])))
		case status == 200:
			r.amount, r.isID = amount, true
			c.text = append(c.text, id...)
		default:
			r.amount = amount
			c.text = append(c.text, wd...)
		}
	}
	r.textLen = uint16(len(c.text) - int(r.textOff))
	c.recs = append(c.recs, r)
	w.record(r, lat, l.live)
	if r.isID {
		return status, nil, lat
	}
	return status, c.text[r.textOff:], lat
}

// chunk is the chunk the next answer goes to.
func (w *worker) chunk() *recChunk {
	if n := len(w.chunks); n > 0 && len(w.chunks[n-1].recs) < chunkRecs {
		return w.chunks[n-1]
	}
	c := &recChunk{recs: make([]answerRec, 0, chunkRecs), text: make([]byte, 0, 32*chunkRecs)}
	w.chunks = append(w.chunks, c)
	return c
}

// appendError appends prefix and at most maxErrorText bytes of msg (a rare path: it may allocate).
func appendError(text []byte, prefix, msg string) []byte {
	return append(append(text, prefix...), msg[:min(len(msg), maxErrorText)]...)
}

func (w *worker) closeConns() {
	for _, k := range w.conns {
		if k != nil {
			k.close()
		}
	}
}

func (w *worker) record(r answerRec, lat time.Duration, live *Live) {
	us := lat.Microseconds()
	record(w.all, us)
	live.answers.Add(1)
	w.mu.Lock()
	w.ivAnswers++
	if r.status == 200 {
		w.ivClaims++
		record(w.ivOK, us)
	}
	w.mu.Unlock()
	if r.status == 200 {
		record(w.ok, us)
		live.claims.Add(1)
		live.amount.Add(r.amount)
	}
}

// answers appends w's answers to out as Answers. Their claim_ids and words are substrings of
// one string per chunk.
func (w *worker) answers(nodes []string, out []check.Answer) []check.Answer {
	for _, c := range w.chunks {
		text := string(c.text)
		for _, r := range c.recs {
			a := check.Answer{Node: nodes[r.node], User: r.user, Status: int(r.status), Amount: r.amount,
				At: time.Duration(r.at) * time.Microsecond}
			if t := text[r.textOff : r.textOff+uint32(r.textLen)]; r.isID {
				a.ClaimID = t
			} else {
				a.Error = t
			}
			out = append(out, a)
		}
	}
	return out
}

func (w *worker) count() int {
	n := 0
	for _, c := range w.chunks {
		n += len(c.recs)
	}
	return n
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
		n += w.count()
		alls, oks = append(alls, w.all), append(oks, w.ok)
	}
	res.Answers = make([]check.Answer, 0, n)
	for _, w := range l.workers {
		res.Answers = w.answers(l.o.Nodes, res.Answers)
		w.chunks = nil
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
