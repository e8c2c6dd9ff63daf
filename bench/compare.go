package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/proc"
	"redrain/rain"
)

// CompareOptions describe one `bench compare`: redrain (a local cluster) against the baseline
// (the seed's Redis list, see baseline.go) in interleaved rounds under the same load.
type CompareOptions struct {
	Nodes  int // ours: node processes; 0 means 3
	Rounds int // rounds per side (ours, baseline, ours, baseline, ...); 0 means 2
	// Each round's rain, on both sides; zero fields as bench run (AnchorID 1, DurationS
	// Load.Time + 30 s). The baseline takes TotalAmount, TotalCount and MaxPerUser.
	Rain rain.Config
	Load LoadOptions // the same load for both sides; Nodes, Code and Live are filled in
	// PrepareCount > 0 also times preparing that many packets on each side (fresh processes):
	// ours the admin prepare call on Nodes nodes, the baseline generation + LPUSH. 0 skips it.
	PrepareCount  int64
	Pin           bool // servers (and their Redis) on the first allowed cpu, the load on the others
	Pool          int  // the baseline's Redis connections; 0 means 256
	BinDir        string
	Dir           string // data and logs; "" = a temporary directory, removed after a clean run
	Keep          bool   // keep Dir after a clean run too
	FastGossip    bool
	SettleTimeout time.Duration // ours: bound on Redis catching up with the journals; 0 means 60 s
	Out           string        // write Out/results.json and Out/compare.png when set
	Command       string        // the command line, recorded in results.json
	Progress      string        // as RunOptions.Progress, per round
	ProgressTo    io.Writer
	Logger        *slog.Logger
}

// Sides of a comparison.
const (
	SideOurs     = "ours"
	SideBaseline = "baseline"
)

// CompareResults are one bench compare, as printed (CompareTable) and written to results.json.
type CompareResults struct {
	Command  string          `json:"command,omitempty"`
	Machine  Machine         `json:"machine"`
	Nodes    int             `json:"nodes"` // ours
	Rain     rain.Config     `json:"rain"`
	Load     LoadSpec        `json:"load"`
	Rounds   []*CompareRound `json:"rounds"`
	Ours     SideFigures     `json:"ours"`     // all rounds of a side together
	Baseline SideFigures     `json:"baseline"` //
	Ratios   Ratios          `json:"ratios"`   // ours / baseline
	Prepare  *PrepareCompare `json:"prepare,omitempty"`
	Targets  []Target        `json:"targets"`
	Verified bool            `json:"verified"` // every round of both sides passed its checks
	Chart    string          `json:"chart,omitempty"`
}

// Machine is where a comparison ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go_version"`
	Pinned     bool   `json:"pinned"`
	ServerCPUs string `json:"server_cpus,omitempty"` // as the kernel lists a server's Cpus_allowed_list
	LoadCPUs   string `json:"load_cpus,omitempty"`
}

// CompareRound is one side's round.
type CompareRound struct {
	Round     int           `json:"round"`
	Side      string        `json:"side"`
	Figures   SideFigures   `json:"figures"`
	Processes []ProcFigures `json:"processes"` // the servers measured
	Results   *Results      `json:"results"`
	latency   *hdrhistogram.Histogram
}

// SideFigures are what the comparison compares. CPU is user+sys time over the measured window
// (ours: from the load's start until Redis holds every journaled claim; the baseline: over the
// load): CPUSeconds of the servers and Redis together (from /proc), ServerCPUSeconds of the
// nodes or the baseline server alone (/proc), RedisCPUSeconds of Redis (INFO cpu); the load
// driver's own over the load. Memory is the servers' peak RSS.
type SideFigures struct {
	Claims           int64   `json:"claims"`
	ElapsedS         float64 `json:"elapsed_s"`
	ClaimsPerSec     float64 `json:"claims_per_s"`
	P50US            int64   `json:"p50_us"` // latency of 200 answers
	P99US            int64   `json:"p99_us"`
	P999US           int64   `json:"p999_us"`
	Errors           int64   `json:"errors"` // no answer, 5xx, or an undecodable one
	CPUSeconds       float64 `json:"cpu_s"`
	CPUPer1k         float64 `json:"cpu_s_per_1k_claims"`
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	RedisCPUSeconds  float64 `json:"redis_cpu_s"`
	LoadCPUSeconds   float64 `json:"load_cpu_s"` // the load driver's (this process's) over the load
	ServerUSPerClaim float64 `json:"server_cpu_us_per_claim"`
	RedisUSPerClaim  float64 `json:"redis_cpu_us_per_claim"`
	LoadUSPerClaim   float64 `json:"load_cpu_us_per_claim"`
	// RedisAbsorbs is 1 / Redis CPU per claim: the claims/s one Redis takes before its CPU is
	// the limit, however many nodes there are (0: not measured).
	RedisAbsorbs   float64 `json:"redis_absorbs_claims_per_s"`
	PeakBytes      int64   `json:"peak_rss_bytes"` // sum over the servers (totals: the largest round)
	Packets        int64   `json:"packets"`        // held at the start of the round
	BytesPerPacket float64 `json:"peak_bytes_per_packet"`
	PrepareS       float64 `json:"prepare_s"` // the round's rain (Packets): ours the admin prepare call, the baseline generation + LPUSH (totals: the mean)
	Verified       bool    `json:"verified"`
	Violations     int     `json:"violations"`
}

// Ratios are ours / baseline.
type Ratios struct {
	ClaimsPerSec   float64 `json:"claims_per_s"`
	P50            float64 `json:"p50"`
	P99            float64 `json:"p99"`
	P999           float64 `json:"p999"`
	CPUPer1k       float64 `json:"cpu_per_claim"`
	ServerCPU      float64 `json:"server_cpu_per_claim"`
	RedisCPU       float64 `json:"redis_cpu_per_claim"`
	LoadCPU        float64 `json:"load_cpu_per_claim"`
	RedisAbsorbs   float64 `json:"redis_absorbs"`
	BytesPerPacket float64 `json:"bytes_per_packet"`
	PrepareS       float64 `json:"prepare_s"` // each round's rain
}

// PrepareCompare is the time (and memory) to prepare PrepareCount packets on each side.
type PrepareCompare struct {
	Count       int64          `json:"count"`
	Ours        PrepareFigures `json:"ours"`
	Baseline    PrepareFigures `json:"baseline"`
	Ratio       float64        `json:"ratio"`        // seconds, ours / baseline
	MemoryRatio float64        `json:"memory_ratio"` // bytes per packet, ours / baseline
}

// PrepareFigures are one side's prepare.
type PrepareFigures struct {
	Seconds        float64       `json:"seconds"` // wall time of the prepare call
	Nodes          int           `json:"nodes,omitempty"`
	GenerateS      float64       `json:"generate_s,omitempty"` // baseline: of Seconds, generation
	PushS          float64       `json:"push_s,omitempty"`     // baseline: of Seconds, LPUSH
	PeakBytes      int64         `json:"peak_rss_bytes"`
	BytesPerPacket float64       `json:"peak_bytes_per_packet"`
	Processes      []ProcFigures `json:"processes"`
}

// Target is one of the performance goals compare judges (see targets) and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// ErrCompareOptions is wrapped by every validation error of CompareOptions.
var ErrCompareOptions = errors.New("bench: bad compare options")

func (o *CompareOptions) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCompareOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Nodes < 0 || o.Rounds < 0 || o.PrepareCount < 0 || o.Pool < 0:
		return bad("nodes, rounds, prepare count and pool must not be negative")
	case o.PrepareCount > rain.MaxTotalCount:
		return bad("PrepareCount (--prepare-count) above %d", rain.MaxTotalCount)
	}
	if msg := loadProblem(o.Load, o.Progress); msg != "" {
		return bad("%s", msg)
	}
	return nil
}

func (o *CompareOptions) defaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Rounds == 0 {
		o.Rounds = 2
	}
	o.Load = o.Load.withDefaults()
	if o.Rain.AnchorID == 0 {
		o.Rain.AnchorID = 1
	}
	if o.Rain.MaxPerUser == 0 {
		o.Rain.MaxPerUser = rain.DefaultMaxPerUser
	}
	if o.Rain.DurationS == 0 {
		o.Rain.DurationS = int((o.Load.Time + 30*time.Second + time.Second - 1) / time.Second)
	}
	if o.ProgressTo == nil {
		o.ProgressTo = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

type comparer struct {
	o          CompareOptions
	dir        string
	serverCPUs []int // nil: not pinned
	res        *CompareResults
}

// Compare runs the rounds, then the prepare measurement, and fills the totals, ratios and
// targets; with Out it writes results.json and the chart. A failed check is no error: see
// CompareResults.Verified. Every process started is stopped before Compare returns.
func Compare(ctx context.Context, o CompareOptions) (*CompareResults, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.defaults()
	c := &comparer{o: o, res: &CompareResults{Command: o.Command, Nodes: o.Nodes, Rain: o.Rain,
		Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Pinned: o.Pin},
		Load:    SpecOf(o.Load)}}
	if err := c.makeDir(); err != nil {
		return nil, err
	}
	if o.Pin {
		undo, err := c.pin()
		if err != nil {
			return nil, err
		}
		defer undo()
	}
	err := c.run(ctx)
	clean := err == nil && c.res.Verified
	if c.dir != "" && ((clean && !o.Keep) || ctx.Err() != nil) {
		os.RemoveAll(c.dir)
	} else if c.dir != "" || o.Dir != "" {
		o.Logger.Warn("data and logs kept", "dir", c.dirOrTemp())
	}
	if err != nil {
		return nil, err
	}
	return c.res, c.write()
}

func (c *comparer) makeDir() error {
	if c.o.Dir != "" {
		return os.MkdirAll(c.o.Dir, 0o755)
	}
	d, err := os.MkdirTemp("", "redrain-compare-")
	c.dir = d
	return err
}

// dirOrTemp is where the rounds keep their data and logs.
func (c *comparer) dirOrTemp() string {
	if c.o.Dir != "" {
		return c.o.Dir
	}
	return c.dir
}

// pin puts this process (the load) on every allowed cpu but the first, which the servers get.
func (c *comparer) pin() (func(), error) {
	cpus, err := allowedCPUs()
	if err != nil {
		return nil, err
	}
	if len(cpus) < 2 {
		return nil, fmt.Errorf("%w: --pin needs 2 cpus, this process may use %v", ErrCompareOptions, cpus)
	}
	c.serverCPUs = cpus[:1]
	undo, err := pinSelf(cpus[1:], cpus)
	if err != nil {
		return nil, err
	}
	c.res.Machine.LoadCPUs = cpusAllowedList(os.Getpid())
	return undo, nil
}

func (c *comparer) run(ctx context.Context) error {
	for n := 1; n <= c.o.Rounds; n++ {
		for _, side := range []string{SideOurs, SideBaseline} {
			r, err := c.round(ctx, n, side)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", n, side, err)
			}
			c.res.Rounds = append(c.res.Rounds, r)
			f := r.Figures
			c.o.Logger.Info("round done", "round", n, "side", side, "claims_per_s", int64(f.ClaimsPerSec),
				"p99", Micros(f.P99US), "errors", f.Errors, "cpu_s_per_1k", fmt.Sprintf("%.3f", f.CPUPer1k),
				"verified", f.Verified)
		}
	}
	if c.o.PrepareCount > 0 {
		p, err := c.prepare(ctx)
		if err != nil {
			return fmt.Errorf("prepare %d packets: %w", c.o.PrepareCount, err)
		}
		c.res.Prepare = p
	}
	c.totals()
	return nil
}

func (c *comparer) round(ctx context.Context, n int, side string) (*CompareRound, error) {
	dir := filepath.Join(c.dirOrTemp(), fmt.Sprintf("r%d-%s", n, side))
	if side == SideOurs {
		return c.oursRound(ctx, n, dir)
	}
	return c.baselineRound(ctx, n, dir)
}

// oursRound is bench run on a fresh local cluster, measured.
func (c *comparer) oursRound(ctx context.Context, n int, dir string) (*CompareRound, error) {
	o := RunOptions{LocalNodes: c.o.Nodes, BinDir: c.o.BinDir, Dir: dir, Keep: true, FastGossip: c.o.FastGossip,
		Rain: c.o.Rain, Load: c.o.Load, SettleTimeout: c.o.SettleTimeout, Progress: c.o.Progress,
		ProgressTo: c.o.ProgressTo, Logger: c.o.Logger}
	o.Load.Live = nil
	r := &CompareRound{Round: n, Side: SideOurs}
	var win *cpuWindow
	var spent cost
	var redis0 float64
	o.hooks = runHooks{
		beforeLoad: func(t *target) (err error) {
			c.noteServerCPUs(t.local.Nodes[0].Proc)
			if redis0, err = RedisCPU(ctx, t.rdb); err != nil {
				return err
			}
			win, err = startCPUWindow(clusterServers(t.local))
			return err
		},
		afterLoad: func(l *LoadResult) { r.latency, spent.load = l.ClaimLatency, l.CPU.Seconds() },
		flushed: func(t *target) (err error) {
			if spent.procs, err = win.stop(); err != nil {
				return err
			}
			spent.redis, err = RedisCPU(ctx, t.rdb)
			spent.redis -= redis0
			return err
		},
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.defaults()
	var t *target
	err := spawnOn(c.serverCPUs, func() (err error) {
		t, err = openTarget(ctx, &o)
		return err
	})
	if err != nil {
		return nil, err
	}
	res, err := runOn(ctx, &o, t)
	t.close((err == nil && res.Verified) || ctx.Err() != nil) // an interrupted run leaves nothing to look at
	if err != nil {
		return nil, err
	}
	r.Results, r.Processes = res, spent.procs
	r.Figures = figures(res, r.latency, spent, c.o.Rain.TotalCount)
	return r, nil
}

// clusterServers are the processes a claim costs: the nodes and Redis (not the coordinator).
func clusterServers(c *cluster.LocalCluster) []*proc.Proc {
	var ps []*proc.Proc
	for _, n := range c.Nodes {
		ps = append(ps, n.Proc)
	}
	return append(ps, c.Redis)
}

func (c *comparer) noteServerCPUs(p *proc.Proc) {
	if c.serverCPUs != nil && c.res.Machine.ServerCPUs == "" {
		c.res.Machine.ServerCPUs = cpusAllowedList(p.Pid())
	}
}

// baselineRound prepares the same rain on a fresh baseline and drives the same load at it.
func (c *comparer) baselineRound(ctx context.Context, n int, dir string) (*CompareRound, error) {
	b, err := c.startBaseline(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer b.Stop()
	c.noteServerCPUs(b.Server)
	cfg := c.o.Rain
	prep, took, err := b.Prepare(ctx, BaselinePrepare{TotalAmount: cfg.TotalAmount, TotalCount: cfg.TotalCount,
		MaxPerUser: cfg.MaxPerUser})
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	lo := c.o.Load
	lo.Nodes, lo.Code, lo.Live = []string{b.Addr}, prep.Code, &Live{}
	res := &Results{Code: prep.Code, Cluster: SideBaseline, Nodes: lo.Nodes, Rain: cfg, Load: c.res.Load,
		PrepareS: took.Seconds()}
	redis0, err := RedisCPU(ctx, b.Client())
	if err != nil {
		return nil, err
	}
	win, err := startCPUWindow(b.Procs())
	if err != nil {
		return nil, err
	}
	stop := ShowProgress(c.o.Progress, c.o.ProgressTo, lo.Live, cfg.TotalCount, cfg.TotalAmount, lo.Interval)
	load := Load(ctx, lo)
	stop()
	spent := cost{load: load.CPU.Seconds()}
	if spent.procs, err = win.stop(); err != nil {
		return nil, err
	}
	if spent.redis, err = RedisCPU(ctx, b.Client()); err != nil {
		return nil, err
	}
	spent.redis -= redis0
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	res.FillLoad(load)
	v, err := checkBaseline(ctx, b, prep, load.Answers)
	if err != nil {
		return nil, err
	}
	res.Violations, res.Verified = v.Violations, len(v.Violations) == 0
	if res.Violations == nil {
		res.Violations = []string{}
	}
	r := &CompareRound{Round: n, Side: SideBaseline, Processes: spent.procs, Results: res, latency: load.ClaimLatency}
	r.Figures = figures(res, load.ClaimLatency, spent, cfg.TotalCount)
	return r, nil
}

func (c *comparer) startBaseline(ctx context.Context, dir string) (*LocalBaseline, error) {
	var b *LocalBaseline
	err := spawnOn(c.serverCPUs, func() (err error) {
		b, err = StartBaseline(ctx, BaselineProcOptions{BinDir: c.o.BinDir, Dir: dir, Pool: c.o.Pool})
		return err
	})
	return b, err
}

// checkBaseline checks what the baseline can promise: claim_ids unique, caps held, and every
// packet either answered or still in the list (when every request got an answer).
func checkBaseline(ctx context.Context, b *LocalBaseline, prep BaselinePrepared, answers []check.Answer) (*check.Verdict, error) {
	v := &check.Verdict{}
	check.Paid(v, answers, prep.MaxPerUser, nil)
	unanswered := 0
	for _, a := range answers {
		if a.Status == 0 || a.Status >= 500 {
			unanswered++
		}
	}
	left, leftAmount, err := listSum(ctx, b.Client(), prep.Key)
	if err != nil {
		return nil, err
	}
	if v.AnsweredAmount > prep.TotalAmount {
		v.Fail("overpay: answered %d of %d cents", v.AnsweredAmount, prep.TotalAmount)
	}
	if unanswered == 0 && (int64(v.Answered)+left != prep.TotalCount || v.AnsweredAmount+leftAmount != prep.TotalAmount) {
		v.Fail("answered %d packets / %d cents + %d / %d left in the list != %d / %d", v.Answered, v.AnsweredAmount,
			left, leftAmount, prep.TotalCount, prep.TotalAmount)
	}
	return v, nil
}

// listSum counts and adds the amounts left in a list, a page at a time.
func listSum(ctx context.Context, rdb *redis.Client, key string) (n, sum int64, err error) {
	const page = 100_000
	for start := int64(0); ; start += page {
		vals, err := rdb.LRange(ctx, key, start, start+page-1).Result()
		if err != nil {
			return 0, 0, fmt.Errorf("lrange %s: %w", key, err)
		}
		for _, v := range vals {
			a, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("list %s holds %q", key, v)
			}
			n, sum = n+1, sum+a
		}
		if len(vals) < page {
			return n, sum, nil
		}
	}
}

// cost is what a round spent of the machine: the server processes (from /proc), Redis (CPU
// seconds, from INFO cpu) and the load driver (CPU seconds, this process's over the load).
type cost struct {
	procs       []ProcFigures
	redis, load float64
}

// figures summarises one round.
func figures(res *Results, lat *hdrhistogram.Histogram, spent cost, packets int64) SideFigures {
	cpu, peak := sumProcs(spent.procs)
	f := SideFigures{Claims: res.Claims, ElapsedS: res.ElapsedS, ClaimsPerSec: res.ClaimsPerSec, CPUSeconds: cpu,
		ServerCPUSeconds: serverCPU(spent.procs), RedisCPUSeconds: spent.redis, LoadCPUSeconds: spent.load,
		PeakBytes: peak, Packets: packets, Verified: res.Verified, Violations: len(res.Violations),
		Errors: errorCount(res.ByStatus), PrepareS: res.PrepareS}
	if lat != nil {
		f.P50US, f.P99US, f.P999US = lat.ValueAtQuantile(50), lat.ValueAtQuantile(99), lat.ValueAtQuantile(99.9)
	}
	f.finish()
	return f
}

func (f *SideFigures) finish() {
	f.CPUPer1k = 1000 * perClaim(f.CPUSeconds, f.Claims)
	f.ServerUSPerClaim = 1e6 * perClaim(f.ServerCPUSeconds, f.Claims)
	f.RedisUSPerClaim = 1e6 * perClaim(f.RedisCPUSeconds, f.Claims)
	f.LoadUSPerClaim = 1e6 * perClaim(f.LoadCPUSeconds, f.Claims)
	f.RedisAbsorbs = claimsPerCPUSecond(f.Claims, f.RedisCPUSeconds)
	if f.Packets > 0 {
		f.BytesPerPacket = float64(f.PeakBytes) / float64(f.Packets)
	}
	if f.ElapsedS > 0 {
		f.ClaimsPerSec = float64(f.Claims) / f.ElapsedS
	}
}

// perClaim is seconds per claim (0 without claims).
func perClaim(seconds float64, claims int64) float64 {
	if claims <= 0 {
		return 0
	}
	return seconds / float64(claims)
}

// claimsPerCPUSecond is 1 / (cpuSeconds / claims): the claims per second one core spending
// cpuSeconds on claims serves before it is saturated; 0 when nothing was measured.
func claimsPerCPUSecond(claims int64, cpuSeconds float64) float64 {
	if cpuSeconds <= 0 || claims <= 0 {
		return 0
	}
	return float64(claims) / cpuSeconds
}

// errorCount counts the answers that are failures rather than refusals: none (network), a
// 5xx, or an undecodable one (http_NNN).
func errorCount(by map[string]int64) int64 {
	var n int64
	for w, k := range by {
		switch {
		case w == "network", w == "journal_unavailable", w == "store_unavailable", w == "shutting_down",
			len(w) > 5 && w[:5] == "http_":
			n += k
		}
	}
	return n
}

// totals adds up each side's rounds and derives the ratios and the targets.
func (c *comparer) totals() {
	res := c.res
	res.Verified = len(res.Rounds) > 0
	for _, side := range []string{SideOurs, SideBaseline} {
		var f SideFigures
		var hs []*hdrhistogram.Histogram
		var rounds int
		f.Verified = true
		for _, r := range res.Rounds {
			if r.Side != side {
				continue
			}
			f.Claims += r.Figures.Claims
			f.ElapsedS += r.Figures.ElapsedS
			f.Errors += r.Figures.Errors
			f.CPUSeconds += r.Figures.CPUSeconds
			f.ServerCPUSeconds += r.Figures.ServerCPUSeconds
			f.RedisCPUSeconds += r.Figures.RedisCPUSeconds
			f.LoadCPUSeconds += r.Figures.LoadCPUSeconds
			f.PrepareS += r.Figures.PrepareS
			rounds++
			f.Violations += r.Figures.Violations
			f.Verified = f.Verified && r.Figures.Verified
			if r.Figures.PeakBytes >= f.PeakBytes {
				f.PeakBytes, f.Packets = r.Figures.PeakBytes, r.Figures.Packets
			}
			if r.latency != nil {
				hs = append(hs, r.latency)
			}
		}
		if rounds > 0 {
			f.PrepareS /= float64(rounds)
		}
		lat := MergeHistograms(hs...)
		f.P50US, f.P99US, f.P999US = lat.ValueAtQuantile(50), lat.ValueAtQuantile(99), lat.ValueAtQuantile(99.9)
		f.finish()
		res.Verified = res.Verified && f.Verified
		if side == SideOurs {
			res.Ours = f
		} else {
			res.Baseline = f
		}
	}
	o, b := res.Ours, res.Baseline
	res.Ratios = Ratios{ClaimsPerSec: ratio(o.ClaimsPerSec, b.ClaimsPerSec), P50: ratio(float64(o.P50US), float64(b.P50US)),
		P99: ratio(float64(o.P99US), float64(b.P99US)), P999: ratio(float64(o.P999US), float64(b.P999US)),
		CPUPer1k: ratio(o.CPUPer1k, b.CPUPer1k), ServerCPU: ratio(o.ServerUSPerClaim, b.ServerUSPerClaim),
		RedisCPU: ratio(o.RedisUSPerClaim, b.RedisUSPerClaim), LoadCPU: ratio(o.LoadUSPerClaim, b.LoadUSPerClaim),
		RedisAbsorbs: ratio(o.RedisAbsorbs, b.RedisAbsorbs), BytesPerPacket: ratio(o.BytesPerPacket, b.BytesPerPacket),
		PrepareS: ratio(o.PrepareS, b.PrepareS)}
	res.Targets = c.targets()
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// targets are the performance goals, judged on this run: durable claims/s against the baseline
// (1.5x unpinned, 2x pinned), no errors, invariants verified every round, CPU per claim at most
// half the baseline's, p99 <= 3 ms, the make demo's p99 <= 5 ms, the baseline's checks verified,
// and, when measured, a prepare under a second.
func (c *comparer) targets() []Target {
	res := c.res
	want := 1.5
	setup := nodesWord(c.o.Nodes) + ", unpinned"
	if c.o.Pin {
		want, setup = 2, nodesWord(c.o.Nodes)+", pinned"
	}
	ts := []Target{
		{Name: "durable claims/s vs baseline (" + setup + ")", Want: fmt.Sprintf(">= %.1fx", want),
			Got: fmt.Sprintf("%.2fx", res.Ratios.ClaimsPerSec), Met: res.Ratios.ClaimsPerSec >= want},
		{Name: "errors (ours)", Want: "0", Got: strconv.FormatInt(res.Ours.Errors, 10), Met: res.Ours.Errors == 0},
		{Name: "invariants (ours, every round)", Want: "verified", Got: verifiedWord(res.Ours.Verified), Met: res.Ours.Verified},
		{Name: "CPU per claim vs baseline", Want: "<= 0.50x", Got: fmt.Sprintf("%.2fx", res.Ratios.CPUPer1k),
			Met: res.Ratios.CPUPer1k > 0 && res.Ratios.CPUPer1k <= 0.5},
		{Name: fmt.Sprintf("p99 (ours, %d conns)", c.o.Load.Conns), Want: "<= 3ms", Got: Micros(res.Ours.P99US),
			Met: res.Ours.Claims > 0 && res.Ours.P99US <= 3000},
		{Name: fmt.Sprintf("demo p99 (ours, %d conns)", c.o.Load.Conns), Want: "<= 5ms", Got: Micros(res.Ours.P99US),
			Met: res.Ours.Claims > 0 && res.Ours.P99US <= 5000},
		{Name: "checks (baseline, every round)", Want: "verified", Got: verifiedWord(res.Baseline.Verified),
			Met: res.Baseline.Verified},
	}
	if p := res.Prepare; p != nil {
		ts = append(ts, Target{Name: fmt.Sprintf("prepare %s packets (ours, %s)", Commas(p.Count), nodesWord(p.Ours.Nodes)),
			Want: "< 1s", Got: fmt.Sprintf("%.3fs", p.Ours.Seconds), Met: p.Ours.Seconds < 1})
	}
	return ts
}

func nodesWord(n int) string {
	if n == 1 {
		return "1 node"
	}
	return strconv.Itoa(n) + " nodes"
}

func verifiedWord(ok bool) string {
	if ok {
		return "verified"
	}
	return "VIOLATED"
}

// prepare times preparing PrepareCount packets on fresh processes of each side.
func (c *comparer) prepare(ctx context.Context) (*PrepareCompare, error) {
	n := c.o.PrepareCount
	mean := max(c.o.Rain.TotalAmount/max(c.o.Rain.TotalCount, 1), 1)
	amount := min(n*mean, rain.MaxTotalAmount)
	p := &PrepareCompare{Count: n}
	var err error
	if p.Ours, err = c.prepareOurs(ctx, n, amount); err != nil {
		return nil, fmt.Errorf("ours: %w", err)
	}
	if p.Baseline, err = c.prepareBaseline(ctx, n, amount); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	p.Ratio = ratio(p.Ours.Seconds, p.Baseline.Seconds)
	p.MemoryRatio = ratio(p.Ours.BytesPerPacket, p.Baseline.BytesPerPacket)
	c.o.Logger.Info("prepare measured", "packets", n, "ours_s", p.Ours.Seconds, "baseline_s", p.Baseline.Seconds)
	return p, nil
}

func (c *comparer) prepareOurs(ctx context.Context, n, amount int64) (PrepareFigures, error) {
	f := PrepareFigures{Nodes: c.o.Nodes}
	var lc *cluster.LocalCluster
	err := spawnOn(c.serverCPUs, func() (err error) {
		lc, err = cluster.StartCluster(ctx, cluster.ClusterOptions{Nodes: c.o.Nodes, BinDir: c.o.BinDir,
			Dir: filepath.Join(c.dirOrTemp(), "prepare-ours"), FastGossip: c.o.FastGossip})
		return err
	})
	if err != nil {
		return f, err
	}
	defer lc.Stop()
	admin := lc.Admin()
	r, err := admin.Create(ctx, rain.Config{AnchorID: c.o.Rain.AnchorID, TotalAmount: amount, TotalCount: n, MaxPerUser: 1,
		DurationS: 60})
	if err != nil {
		return f, fmt.Errorf("create: %w", err)
	}
	began := time.Now()
	if _, err := admin.Act(ctx, r.Code, "prepare", c.o.Rain.AnchorID); err != nil {
		return f, fmt.Errorf("prepare: %w", err)
	}
	f.Seconds = time.Since(began).Seconds()
	if f.Processes, err = peakRSS(clusterServers(lc)); err != nil {
		return f, err
	}
	admin.Act(ctx, r.Code, "stop", c.o.Rain.AnchorID) // cancels it
	_, f.PeakBytes = sumProcs(f.Processes)
	f.BytesPerPacket = float64(f.PeakBytes) / float64(n)
	return f, nil
}

func (c *comparer) prepareBaseline(ctx context.Context, n, amount int64) (PrepareFigures, error) {
	var f PrepareFigures
	b, err := c.startBaseline(ctx, filepath.Join(c.dirOrTemp(), "prepare-baseline"))
	if err != nil {
		return f, err
	}
	defer b.Stop()
	prep, took, err := b.Prepare(ctx, BaselinePrepare{TotalAmount: amount, TotalCount: n, MaxPerUser: 1})
	if err != nil {
		return f, err
	}
	f.Seconds, f.GenerateS, f.PushS = took.Seconds(), prep.GenerateS, prep.PushS
	if f.Processes, err = peakRSS(b.Procs()); err != nil {
		return f, err
	}
	_, f.PeakBytes = sumProcs(f.Processes)
	f.BytesPerPacket = float64(f.PeakBytes) / float64(n)
	return f, nil
}

// write writes Out/results.json and Out/compare.png.
func (c *comparer) write() error {
	if c.o.Out == "" {
		return nil
	}
	if err := os.MkdirAll(c.o.Out, 0o755); err != nil {
		return err
	}
	chart := filepath.Join(c.o.Out, "compare.png")
	if err := WriteCompareChart(chart, c.res); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	c.res.Chart = chart
	p, err := writeJSON(filepath.Join(c.o.Out, "results.json"), c.res)
	if err == nil {
		c.o.Logger.Info("results written", "path", p, "chart", chart)
	}
	return err
}

// CompareTable prints a comparison: a row per round and side, the totals and the ratios
// ours/baseline, first of speed, then of cost; the prepare measurement and the targets.
func CompareTable(w io.Writer, res *CompareResults) error {
	c := res.Rain
	fmt.Fprintf(w, "ours:      %s (local processes; every claim fsynced to its journal before the answer, Redis flushed behind)\n", oursName(res))
	fmt.Fprintf(w, "baseline:  the seed's design: one Redis list, amounts LPUSHed 100 per call, one RPOP per claim (nothing journaled)\n")
	fmt.Fprintf(w, "rain:      %s packets, %s cents, max %d per user, each round, both sides\n", Commas(c.TotalCount),
		Commas(c.TotalAmount), c.MaxPerUser)
	fmt.Fprintf(w, "load:      %s, the same for both\n", loadLine(res.Load))
	fmt.Fprintf(w, "machine:   %s\n\n", machineLine(res.Machine))
	q := res.Ratios
	err := sideTable(w, res, "claims/s\tp50\tp99\tp99.9\terrors\tchecks", func(f SideFigures) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", Commas(int64(f.ClaimsPerSec+0.5)), Micros(f.P50US), Micros(f.P99US),
			Micros(f.P999US), Commas(f.Errors), checkWord(f))
	}, strings.Join([]string{times(q.ClaimsPerSec), times(q.P50), times(q.P99), times(q.P999), "", ""}, "\t"))
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	err = sideTable(w, res, "CPU µs/claim\tserver µs/claim\tRedis µs/claim\tload µs/claim\tone Redis absorbs\tpeak RSS\tB/packet\tprepare",
		func(f SideFigures) string {
			return fmt.Sprintf("%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%.1f\t%.3fs", 1000*f.CPUPer1k, f.ServerUSPerClaim,
				f.RedisUSPerClaim, f.LoadUSPerClaim, perSecond(f.RedisAbsorbs), MiB(f.PeakBytes), f.BytesPerPacket, f.PrepareS)
		}, strings.Join([]string{times(q.CPUPer1k), times(q.ServerCPU), times(q.RedisCPU), times(q.LoadCPU),
			times(q.RedisAbsorbs), "", times(q.BytesPerPacket), times(q.PrepareS)}, "\t"))
	if err != nil {
		return err
	}
	if p := res.Prepare; p != nil {
		fmt.Fprintf(w, "\nprepare %s packets: ours %.3fs (%s: plan + generation on the nodes), baseline %.3fs "+
			"(generate %.3fs + LPUSH %.3fs); ratio %s\n", Commas(p.Count), p.Ours.Seconds, nodesWord(p.Ours.Nodes), p.Baseline.Seconds,
			p.Baseline.GenerateS, p.Baseline.PushS, times(p.Ratio))
		fmt.Fprintf(w, "peak memory holding them: ours %s (%.1f B/packet), baseline %s (%.1f B/packet); ratio %s\n",
			MiB(p.Ours.PeakBytes), p.Ours.BytesPerPacket, MiB(p.Baseline.PeakBytes), p.Baseline.BytesPerPacket, times(p.MemoryRatio))
	}
	fmt.Fprint(w, compareNotes)
	fmt.Fprintln(w, "\ntargets:")
	for _, t := range res.Targets {
		fmt.Fprintf(w, "  %-7s %s: want %s, got %s\n", map[bool]string{true: "met", false: "MISSED"}[t.Met], t.Name, t.Want, t.Got)
	}
	if res.Chart != "" {
		fmt.Fprintf(w, "\nchart: %s\n", res.Chart)
	}
	return nil
}

// compareNotes say what CompareTable's columns measure.
const compareNotes = `
CPU: user+sys over the measured window (ours: from the load's start until Redis totals == journals; baseline: over the
load). CPU µs/claim: the servers and redis-server together (/proc); server: the nodes, or the baseline server, alone
(/proc); Redis: redis-server (INFO cpu: used_cpu_sys + used_cpu_user); load: the load driver (bench) over the load.
One Redis absorbs = 1 / Redis CPU per claim: the claims/s one Redis serves before its CPU is the limit, however many
nodes. Peak RSS: VmHWM of the servers, summed; B/packet = peak RSS / the round's packets (each process's fixed size
dominates at this size: see the prepare line).
`

// sideTable prints one table of a comparison: columns heads (tab-separated) of each round's
// figures (cells of f, tab-separated), the totals per side and the ratio row.
func sideTable(w io.Writer, res *CompareResults, heads string, cells func(f SideFigures) string, ratios string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round\tside\t%s\t\n", heads)
	for _, r := range res.Rounds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t\n", r.Round, r.Side, cells(r.Figures))
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t\n", SideOurs, cells(res.Ours))
	fmt.Fprintf(tw, "total\t%s\t%s\t\n", SideBaseline, cells(res.Baseline))
	fmt.Fprintf(tw, "ratio\tours/baseline\t%s\t\n", ratios)
	return tw.Flush()
}

func times(v float64) string { return fmt.Sprintf("%.2fx", v) }

// perSecond formats a rate, "-" when it was not measured.
func perSecond(v float64) string {
	if v <= 0 {
		return "-"
	}
	return Commas(int64(v+0.5)) + "/s"
}

func machineLine(m Machine) string {
	s := fmt.Sprintf("%d cpus, %s, ", m.CPUs, m.GoVersion)
	if !m.Pinned {
		return s + "unpinned (load generator, servers and Redis share every cpu)"
	}
	return s + fmt.Sprintf("pinned: servers and Redis on cpu %s, load generator on cpu %s", m.ServerCPUs, m.LoadCPUs)
}

func checkWord(f SideFigures) string {
	if f.Verified {
		return "ok"
	}
	return fmt.Sprintf("%d VIOLATED", f.Violations)
}

// MiB formats bytes as mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
