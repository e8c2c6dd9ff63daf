package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/adminapi"
	"redrain/internal/attack"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/redisconn"
	"redrain/internal/usertoken"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
)

// RunOptions describe one `bench run`: where (a local cluster, or a running one when
// Coordinator is set), which rain, which load, and what to show.
type RunOptions struct {
	// A local cluster of real processes (when Coordinator == "").
	LocalNodes int    // node processes; 0 means 3
	BinDir     string // node and coordinator binaries; "" = beside the running executable
	Dir        string // its data and logs; "" = a temporary directory, removed after a clean run
	Keep       bool   // keep Dir after a clean run too
	FastGossip bool   // fast failure detection

	// A running cluster.
	Coordinator string   // admin API base URL
	NodeAddrs   []string // claim addresses; empty: the alive nodes the coordinator lists
	AdminToken  string   // required with Coordinator; a local cluster draws one if empty
	Secret      string   // optional with Coordinator: read progress from the nodes themselves
	RedisURL    string   // with Coordinator, this or RedisCluster: the cluster's Redis, to check it
	// RedisCluster: host:port seeds of a Redis Cluster: the running cluster's (with
	// Coordinator), or the one the local cluster's processes use instead of a redis-server.
	RedisCluster []string
	// LocalRedisCluster: the local cluster runs on a Redis Cluster of its own (three masters
	// with a replica each, on 127.0.0.1) instead of one redis-server.
	LocalRedisCluster bool

	Rain          rain.Config   // AnchorID 0 means 1; DurationS 0 means Load.Time + 30 s
	Load          LoadOptions   // Nodes and Code are filled in by Run
	SettleTimeout time.Duration // bound on waiting for Redis to catch up with the journals; 0 means 60 s
	// Attack runs an abuse scenario beside the load: the local cluster runs in token mode with
	// per-address limits, honest users claim with tokens from their own local addresses.
	Attack AttackOptions

	Out          string    // write Out/results.json when set
	CPUProfile   string    // write this process's CPU profile over the load (pprof) to this file when set
	Progress     string    // ProgressAuto, ProgressBar, ProgressPlain or ProgressOff ("" = off)
	ProgressTo   io.Writer // nil means os.Stderr
	Logger       *slog.Logger
	pollInterval time.Duration
	hooks        runHooks
}

// runHooks let bench compare measure a run: the servers' CPU time from just before the load
// until Redis holds every journaled claim.
type runHooks struct {
	beforeLoad func(t *target) error // the rain is raining; the load starts next
	afterLoad  func(l *LoadResult)   // the load is over
	flushed    func(t *target) error // Redis totals equal the journals; the checks read Redis next
}

// ErrRunOptions is wrapped by every validation error of RunOptions.
var ErrRunOptions = errors.New("bench: bad run options")

func (o *RunOptions) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrRunOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Coordinator != "" && o.AdminToken == "":
		return bad("AdminToken (--admin-token) is required with a coordinator")
	case o.Coordinator != "" && o.RedisURL == "" && len(o.RedisCluster) == 0:
		return bad("RedisURL or RedisCluster (--redis, --redis-cluster) is required with a coordinator: the invariants are checked against Redis")
	case o.RedisURL != "" && len(o.RedisCluster) > 0:
		return bad("RedisURL and RedisCluster (--redis, --redis-cluster) exclude each other")
	case o.LocalRedisCluster && (o.Coordinator != "" || len(o.RedisCluster) > 0):
		return bad("LocalRedisCluster (--redis-cluster local) starts a Redis Cluster for a local cluster: not with --coordinator or addresses")
	case len(o.RedisCluster) > 0 && redisconn.CheckAddrs(o.RedisCluster) != nil:
		return bad("RedisCluster (--redis-cluster): %v", redisconn.CheckAddrs(o.RedisCluster))
	case o.Coordinator == "" && (o.RedisURL != "" || len(o.NodeAddrs) > 0):
		return bad("RedisURL and NodeAddrs (--redis, node addresses) need Coordinator (--coordinator)")
	case o.LocalNodes < 0:
		return bad("LocalNodes (--nodes) must be >= 1")
	case o.Attack.Kind != "" && o.Coordinator != "":
		return bad("Attack (--attack) needs a local cluster (no --coordinator)")
	case o.Attack.Kind != "" && !slices.Contains(attack.Kinds, o.Attack.Kind):
		return bad("Attack (--attack) must be one of %v", attack.Kinds)
	case o.Attack.Rate < 0 || o.Attack.IPRate < 0 || o.Attack.IPBurst < 0 || o.Attack.MaxConnsPerIP < 0:
		return bad("attack rate and limits must not be negative")
	}
	if msg := loadProblem(o.Load, o.Progress); msg != "" {
		return bad("%s", msg)
	}
	return nil
}

// loadProblem is what run and compare check alike: the load's sizes and the progress mode
// ("" when both are fine).
func loadProblem(l LoadOptions, progress string) string {
	switch {
	case l.Conns < 0 || l.Users < 0 || l.Rate < 0 || l.Time < 0 || l.Procs < 0:
		return "users, conns, rate, time and procs must not be negative"
	case l.Balance != "" && !slices.Contains(Balances, l.Balance):
		return fmt.Sprintf("Balance (--balance) must be one of %v", Balances)
	case len(l.Nodes) > MaxNodes:
		return fmt.Sprintf("at most %d nodes", MaxNodes)
	case progress != "" && !slices.Contains(ProgressModes, progress):
		return fmt.Sprintf("Progress (--progress) must be one of %v", ProgressModes)
	}
	return ""
}

func (o *RunOptions) defaults() {
	o.Load = o.Load.withDefaults()
	if o.Rain.AnchorID == 0 {
		o.Rain.AnchorID = 1
	}
	if o.Rain.DurationS == 0 {
		o.Rain.DurationS = int((o.Load.Time + 30*time.Second + time.Second - 1) / time.Second)
	}
	if o.SettleTimeout <= 0 {
		o.SettleTimeout = 60 * time.Second
	}
	if o.ProgressTo == nil {
		o.ProgressTo = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Attack.Kind != "" {
		o.Attack.defaults()
	}
	if o.pollInterval == 0 {
		o.pollInterval = 50 * time.Millisecond
	}
}

// Run starts (or targets) a cluster, creates, prepares and starts a rain, drives the load,
// stops the rain, waits (bounded) until Redis holds everything the nodes journaled, and checks
// the invariants. A violation is no error: it is in Results.Violations (Results.Err). A local
// cluster is stopped before Run returns, also when ctx ends (Ctrl-C).
func Run(ctx context.Context, o RunOptions) (*Results, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.defaults()
	t, err := openTarget(ctx, &o)
	if err != nil {
		return nil, err
	}
	clean := false
	defer func() { t.close(clean) }()
	res, err := runOn(ctx, &o, t)
	clean = (err == nil && res.Verified) || ctx.Err() != nil // an interrupted run leaves nothing to look at
	if err == nil && o.Out != "" {
		p, werr := res.WriteJSON(o.Out)
		if werr != nil {
			return res, werr
		}
		o.Logger.Info("results written", "path", p)
	}
	return res, err
}

// Err is check.ErrViolated (wrapped, with the first violation) unless every invariant held.
func (r *Results) Err() error {
	if r.Verified {
		return nil
	}
	return (&check.Verdict{Violations: r.Violations}).Err()
}

func runOn(ctx context.Context, o *RunOptions, t *target) (*Results, error) {
	res := &Results{Cluster: t.desc, Nodes: t.nodes, Load: SpecOf(o.Load), RedisTarget: t.redisDesc}
	code, prepared, err := startRain(ctx, o, t)
	if err != nil {
		return nil, err
	}
	res.Code, res.Rain, res.PrepareS = code, o.Rain, prepared.Seconds()
	lo := o.Load
	lo.Nodes, lo.Code = t.nodes, code
	if lo.Route == nil {
		lo.Route = ownerRoute(ctx, t, code)
	}
	if lo.Live == nil {
		lo.Live = &Live{}
	}
	o.Logger.Info("raining", "rain", code, "users", lo.Users, "conns", lo.Conns, "rate", lo.Rate, "time", lo.Time.String())
	if h := o.hooks.beforeLoad; h != nil {
		if err := h(t); err != nil {
			return nil, err
		}
	}
	var atk *attackRun
	if o.Attack.Kind != "" {
		tg := attack.Target{Nodes: t.nodes, Code: code, Room: o.Rain.RoomID, Key: usertoken.NewKey([]byte(o.Attack.UserKey))}
		lo.Token = func(u uint64) string { return tg.Token(u, tg.Room) }
		lo.LocalAddr = attack.HonestAddr
		if atk, err = startAttack(o.Attack, tg, o.Rain.MaxPerUser); err != nil {
			return nil, err
		}
		lo.Split = &atk.on
		o.Logger.Info("attacking", "kind", o.Attack.Kind, "rate", o.Attack.Rate, "window", o.Attack.Window.String())
	}
	stopProfile := func() error { return nil }
	if o.CPUProfile != "" {
		if stopProfile, err = StartCPUProfile(o.CPUProfile); err != nil {
			return nil, err
		}
	}
	stop := ShowProgress(o.Progress, o.ProgressTo, lo.Live, o.Rain.TotalCount, o.Rain.TotalAmount, lo.Interval)
	load := Load(ctx, lo)
	stop()
	if err := stopProfile(); err != nil {
		return nil, err
	}
	answers := load.Answers
	if atk != nil {
		res.Attack = atk.finish(load)
		answers = append(slices.Clip(answers), res.Attack.answers...)
	}
	if h := o.hooks.afterLoad; h != nil {
		h(load)
	}
	if err := ctx.Err(); err != nil { // stop the rain all the same (best effort): it may be a running cluster's
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		t.admin.Act(sctx, code, "stop", o.Rain.AnchorID)
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	res.FillLoad(load)
	if _, err := t.admin.Act(ctx, code, "stop", o.Rain.AnchorID); err != nil && !isConflict(err) {
		return nil, fmt.Errorf("stop rain %s: %w", code, err)
	}
	if err := verifyRun(ctx, o, t, res, answers); err != nil {
		return res, err
	}
	if res.Attack != nil && len(res.Attack.Violations) > 0 {
		res.Violations, res.Verified = append(res.Violations, res.Attack.Violations...), false
	}
	return res, nil
}

// ownerRoute maps each user to the index in t.nodes of its owner (rain.OwnerOf over the rain's
// slice holders), for BalanceSticky; nil when a holder's address is not one of t.nodes.
func ownerRoute(ctx context.Context, t *target, code string) func(uint64) int {
	r, err := t.admin.Get(ctx, code)
	if err != nil {
		return nil
	}
	nodes, err := t.admin.Nodes(ctx)
	if err != nil {
		return nil
	}
	addrOf := map[string]string{}
	for _, n := range nodes {
		addrOf[n.ID] = n.Addr
	}
	holders := map[string]bool{}
	for _, s := range r.Slices {
		holders[s.Node] = true
	}
	ids := slices.Sorted(maps.Keys(holders))
	index := map[string]int{}
	for _, id := range ids {
		i := slices.Index(t.nodes, addrOf[id])
		if i < 0 {
			return nil
		}
		index[id] = i
	}
	return func(u uint64) int { return index[rain.OwnerOf(ids, code, u)] }
}

// startRain creates, prepares and starts the rain; it returns its code and the prepare call's
// wall time.
func startRain(ctx context.Context, o *RunOptions, t *target) (string, time.Duration, error) {
	r, err := t.admin.Create(ctx, o.Rain)
	if err != nil {
		return "", 0, fmt.Errorf("create rain: %w", err)
	}
	o.Rain = rain.Config{AnchorID: r.AnchorID, RoomID: r.RoomID, TotalAmount: r.TotalAmount, TotalCount: r.TotalCount,
		MaxPerUser: r.MaxPerUser, DurationS: r.DurationS, Algorithm: r.Algorithm, MinClaimIntervalMS: r.MinClaimIntervalMS,
		Remark: r.Remark}
	began := time.Now()
	if _, err := t.admin.Act(ctx, r.Code, "prepare", o.Rain.AnchorID); err != nil {
		return "", 0, fmt.Errorf("prepare rain %s: %w", r.Code, err)
	}
	took := time.Since(began)
	o.Logger.Info("rain prepared", "rain", r.Code, "packets", r.TotalCount, "took", took.Round(time.Millisecond).String())
	if _, err := t.admin.Act(ctx, r.Code, "start", o.Rain.AnchorID); err != nil {
		return "", 0, fmt.Errorf("start rain %s: %w", r.Code, err)
	}
	return r.Code, took, nil
}

func isConflict(err error) bool {
	var e *cluster.APIError
	return errors.As(err, &e) && e.Status == 409
}

// verifyRun waits for Redis to hold the journals, then runs check.Check and the run's own
// cross-checks (journals, report), filling res.
func verifyRun(ctx context.Context, o *RunOptions, t *target, res *Results, answers []check.Answer) error {
	began := time.Now()
	journaled, waitErr := waitFlushed(ctx, o, t, res.Code)
	res.SettleWaitS = time.Since(began).Seconds()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	res.Journaled = journaled
	if h := o.hooks.flushed; h != nil {
		if err := h(t); err != nil {
			return err
		}
	}
	rep, err := t.admin.Report(ctx, res.Code)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	res.Report = rep
	t.fillNodes(ctx, res)
	credits, totals, nodes, err := check.ReadRedis(ctx, t.rdb, res.Code)
	if err != nil {
		return fmt.Errorf("read redis: %w", err)
	}
	res.Redis = Figures{Count: totals.ClaimedCount, Amount: totals.ClaimedAmount}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: res.Code, TotalAmount: o.Rain.TotalAmount,
		TotalCount: o.Rain.TotalCount, MaxPerUser: o.Rain.MaxPerUser, Drained: res.Drained})
	if waitErr != nil {
		v.Fail("%v", waitErr)
	}
	if t.local != nil { // last: the nodes must stop to free their journals
		checkJournalFiles(v, t.local, res)
	}
	crossCheck(v, res)
	res.Violations, res.Verified = v.Violations, len(v.Violations) == 0
	if res.Violations == nil {
		res.Violations = []string{}
	}
	return nil
}

// checkJournalFiles stops the local cluster's nodes, reads their journal files and checks them
// against each other (check.CheckJournals: no packet paid twice, amounts as seeded) and against
// Redis; a journal it cannot read is a violation.
func checkJournalFiles(v *check.Verdict, c *cluster.LocalCluster, res *Results) {
	js, err := c.Journals(res.Code)
	if err != nil {
		v.Fail("journal files not checked: %v", err)
		return
	}
	check.CheckJournals(v, js)
	var f Figures
	for _, j := range js {
		n, a := j.Totals()
		f.Count, f.Amount = f.Count+n, f.Amount+a
	}
	res.JournalFiles = &f
	if f != res.Redis {
		v.Fail("journal files hold %d claims / %d cents, redis %d / %d", f.Count, f.Amount, res.Redis.Count, res.Redis.Amount)
	}
}

// fillNodes completes res.PerNode once the rain stopped and Redis caught up: each node's id and
// its line of the report (state, leftover, lost), and what its public view says remains.
func (t *target) fillNodes(ctx context.Context, res *Results) {
	ids := map[string]string{}
	if t.local != nil {
		for _, n := range t.local.Nodes {
			ids[n.HTTP] = n.ID
		}
	} else if ns, err := t.admin.Nodes(ctx); err == nil {
		for _, n := range ns {
			ids[n.Addr] = n.ID
		}
	}
	lines := map[string]adminapi.NodeReport{}
	if res.Report != nil {
		for _, l := range res.Report.Nodes {
			lines[l.Node] = l
		}
	}
	for i := range res.PerNode {
		n := &res.PerNode[i]
		n.ID = ids[n.Addr]
		if l, ok := lines[n.ID]; ok {
			n.State, n.LeftoverAmount, n.LostAmount = l.State, l.LeftoverAmount, l.LostAmount
		}
		if v, err := cluster.ViewRain(ctx, n.Addr, res.Code); err != nil {
			n.ViewError = err.Error()
		} else {
			n.RemainingCount, n.RemainingAmount = v.RemainingCount, v.RemainingAmount
		}
	}
}

// crossCheck adds what check.Check cannot see: Redis against the journals and the coordinator's
// report, the report's own invariants (check.Report), and a drained rain's whole budget in the clients' hands.
func crossCheck(v *check.Verdict, res *Results) {
	if res.Redis != res.Journaled {
		v.Fail("redis totals %d claims / %d cents, journals %d / %d", res.Redis.Count, res.Redis.Amount,
			res.Journaled.Count, res.Journaled.Amount)
	}
	if rep := res.Report; rep != nil {
		if rep.FlushedCount != res.Redis.Count || rep.FlushedAmount != res.Redis.Amount ||
			rep.ClaimedCount != res.Redis.Count || rep.ClaimedAmount != res.Redis.Amount {
			v.Fail("report claimed %d / %d and flushed %d / %d, redis %d / %d", rep.ClaimedCount, rep.ClaimedAmount,
				rep.FlushedCount, rep.FlushedAmount, res.Redis.Count, res.Redis.Amount)
		}
		for _, p := range check.Report(rep) {
			v.Fail("report: %s", p)
		}
	}
	unanswered, claims, sum := res.ByStatus["network"], res.Claims, res.Amounts.Sum
	byStatus := []map[string]int64{res.ByStatus}
	if a := res.Attack; a != nil { // the attackers' packets are clients' packets too
		unanswered, claims, sum = unanswered+a.ByWord["network"], claims+a.Packets, sum+a.Amount
		byStatus = append(byStatus, a.ByWord)
	}
	for _, m := range byStatus {
		for w, n := range m {
			if len(w) == 8 && w[:6] == "http_5" {
				unanswered += n
			}
		}
	}
	if res.Drained && unanswered == 0 && (sum != res.Rain.TotalAmount || claims != res.Rain.TotalCount) {
		v.Fail("drained, every request answered, but clients got %d packets / %d cents of %d / %d", claims,
			sum, res.Rain.TotalCount, res.Rain.TotalAmount)
	}
}

// waitFlushed polls until every node has flushed all it journaled of the rain and Redis
// totals equal the journals' sum, or o.SettleTimeout passes. It returns the journals' totals.
func waitFlushed(ctx context.Context, o *RunOptions, t *target, code string) (Figures, error) {
	ctx, cancel := context.WithTimeout(ctx, o.SettleTimeout)
	defer cancel()
	var last Figures
	var why string
	for {
		j, flushed, err := t.journaled(ctx, code)
		if err == nil {
			last = j
			var redis Figures
			redis, err = readTotals(ctx, t.rdb, code)
			if err == nil && flushed && redis == j {
				return j, nil
			}
			why = fmt.Sprintf("journals %d / %d, redis %d / %d, every node flushed: %v", j.Count, j.Amount,
				redis.Count, redis.Amount, flushed)
		}
		if err != nil {
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("redis did not catch up with the journals within %v: %s", o.SettleTimeout, why)
		case <-time.After(o.pollInterval):
		}
	}
}

func readTotals(ctx context.Context, rdb redis.UniversalClient, code string) (Figures, error) {
	totals, err := ledger.ReadTotals(ctx, rdb, code)
	return Figures{Count: totals.ClaimedCount, Amount: totals.ClaimedAmount}, err
}

// target is the cluster a run drives: local processes or a running cluster.
type target struct {
	desc      string
	redisDesc string // Results.RedisTarget
	admin     *cluster.Admin
	nodes     []string // claim addresses
	rdb       redis.UniversalClient
	wire      *wire.Client // nil: journals are read from the coordinator's report
	local     *cluster.LocalCluster
	dir       string // the local cluster's Dir when Run made it
	log       *slog.Logger
}

func openTarget(ctx context.Context, o *RunOptions) (*target, error) {
	if o.Coordinator != "" {
		return openRemote(ctx, o)
	}
	t := &target{desc: "local", log: o.Logger}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "redrain-bench-")
		if err != nil {
			return nil, err
		}
		dir, t.dir = d, d
	}
	o.Logger.Info("starting local cluster", "nodes", max(o.LocalNodes, 1), "dir", dir)
	co := cluster.ClusterOptions{Nodes: o.LocalNodes, BinDir: o.BinDir, Dir: dir, Secret: o.Secret,
		AdminToken: o.AdminToken, FastGossip: o.FastGossip, RedisCluster: o.RedisCluster, LocalRedisCluster: o.LocalRedisCluster}
	if at := o.Attack; at.Kind != "" {
		if at.Kind == attack.KindIdle {
			attack.RaiseFileLimit(4 * attack.IdleConns)
		}
		co.NodeArgs = []string{"--auth", "token", "--user-key", at.UserKey, "--ip-rate", fmt.Sprint(at.IPRate),
			"--ip-burst", fmt.Sprint(at.IPBurst), "--max-conns-per-ip", fmt.Sprint(at.MaxConnsPerIP)}
		co.CoordArgs = []string{"--user-key", at.UserKey}
	}
	c, err := cluster.StartCluster(ctx, co)
	if err != nil {
		if t.dir != "" && !o.Keep {
			os.RemoveAll(t.dir)
		}
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	if o.Keep {
		t.dir = ""
	}
	t.local, t.admin, t.nodes, t.rdb = c, c.Admin(), c.NodeAddrs(), c.Client()
	t.redisDesc = redisDesc("", c.Opts.RedisCluster)
	t.wire = wire.NewClient(c.Opts.Secret, 5*time.Second)
	return t, nil
}

func openRemote(ctx context.Context, o *RunOptions) (*target, error) {
	if err := redisconn.Check(o.RedisURL, o.RedisCluster); err != nil {
		return nil, fmt.Errorf("%w: RedisURL (--redis): %v", ErrRunOptions, err)
	}
	t := &target{desc: o.Coordinator, admin: cluster.NewAdmin(o.Coordinator, o.AdminToken),
		rdb: redisconn.Open(o.RedisURL, o.RedisCluster), redisDesc: redisDesc(o.RedisURL, o.RedisCluster), log: o.Logger}
	var err error
	if o.Secret != "" {
		t.wire = wire.NewClient(o.Secret, 5*time.Second)
	}
	t.nodes = o.NodeAddrs
	if len(t.nodes) == 0 {
		if t.nodes, err = t.aliveNodes(ctx); err != nil {
			t.rdb.Close()
			return nil, err
		}
		if len(t.nodes) == 0 {
			t.rdb.Close()
			return nil, errors.New("the coordinator lists no alive node")
		}
	}
	return t, nil
}

// redisDesc names the Redis a run checks: "redis-server", or the Redis Cluster's seeds.
func redisDesc(url string, addrs []string) string {
	if len(addrs) > 0 {
		return fmt.Sprintf("Redis Cluster %s", strings.Join(addrs, ","))
	}
	return "redis-server"
}

func (t *target) aliveNodes(ctx context.Context) ([]string, error) {
	ns, err := t.admin.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []string
	for _, n := range ns {
		if n.State == "alive" {
			out = append(out, n.Addr)
		}
	}
	return out, nil
}

// close stops a local cluster and removes its temporary directory after a clean run.
func (t *target) close(clean bool) {
	if t.local == nil {
		t.rdb.Close()
		return
	}
	t.local.Stop()
	switch {
	case clean && t.dir != "":
		os.RemoveAll(t.dir)
	case !clean:
		t.log.Warn("local cluster's data and logs kept", "dir", t.local.Opts.Dir)
	}
}

// journaled is the rain's totals in the nodes' journals, and whether every node has flushed
// all of it: from the nodes' progress when the secret is known, else from the report.
func (t *target) journaled(ctx context.Context, code string) (Figures, bool, error) {
	if t.wire == nil {
		rep, err := t.admin.Report(ctx, code)
		if err != nil {
			return Figures{}, false, err
		}
		alive := true
		for _, n := range rep.Nodes {
			alive = alive && n.State == "alive"
		}
		return Figures{rep.ClaimedCount, rep.ClaimedAmount}, alive && rep.FlushedCount == rep.ClaimedCount &&
			rep.FlushedAmount == rep.ClaimedAmount, nil
	}
	addrs, err := t.aliveNodes(ctx)
	if err != nil {
		return Figures{}, false, err
	}
	var f Figures
	flushed := true
	for _, a := range addrs {
		var pl wire.ProgressList
		if err := t.wire.Do(ctx, "GET", a, wire.PathProgress+"?code="+code, nil, &pl); err != nil {
			return f, false, err
		}
		for _, p := range pl.Rains {
			if p.Code == code {
				f.Count += p.ClaimedCount
				f.Amount += p.ClaimedAmount
				flushed = flushed && p.FlushedCount == p.ClaimedCount && p.FlushedAmount == p.ClaimedAmount
			}
		}
	}
	return f, flushed, nil
}
