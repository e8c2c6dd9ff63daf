package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/adminapi"
	"redrain/gossip"
	"redrain/internal/cluster"
	"redrain/internal/poll"
	"redrain/internal/proc"
	"redrain/ledger"
	"redrain/node"
	"redrain/rain"
)

// ScaleOptions describe one `bench scale`: Members nodes in this process (real node.Node claim
// servers, each on its own gossip.Cluster with production timings, its own HTTP listener, an
// in-memory journal and its own client of a real redis-server), a real coordinator process and
// redis-server, and a rain of Packets prepared over them.
type ScaleOptions struct {
	Members    int    // nodes; required, 1..MaxScaleMembers
	Packets    int64  // packets of the rain prepared over them; 0 = 10,000,000
	Amount     int64  // its cents; 0 = 10 x Packets
	BinDir     string // holds the coordinator binary; "" = beside the running executable
	RedisBin   string // "" = redis-server from PATH
	Dir        string // data and logs; required
	FastGossip bool   // memberlist's test timings instead of production's LAN ones, on every member
	Reports    int    // report calls timed; 0 = 5
	// Wave is how many nodes start at once: the next wave starts when the coordinator lists the
	// nodes started so far alive (a rolling scale-out). 0 = DefaultScaleWave; >= Members: all at once.
	Wave       int
	Timeout    time.Duration
	Out        string // write Out/results.json when set
	CPUProfile string // this process's CPU profile (the nodes' side) from launch to the last report
	MemProfile string // this process's heap profile after the reports
	// GCPercent is this process's GOGC while it runs: 0 = DefaultScaleGCPercent, < 0 = as the
	// environment set it. N nodes in one process share one garbage collector, and memberlist's
	// transport allocates a 64 KiB buffer per UDP packet received: at GOGC=100 a 300-node process
	// spends most of its CPU in the collector, which no real node (its own process) would.
	GCPercent int
	Progress  io.Writer // one line per phase; nil = none

	pace time.Duration // polling pace of the waits; 0 = 20ms
}

// Limits and defaults of ScaleOptions.
const (
	MaxScaleMembers       = 1000
	DefaultScalePackets   = 10_000_000
	DefaultScaleReports   = 5
	DefaultScaleTimeout   = 2 * time.Minute // bound on each wait: membership, start, one call
	DefaultScaleGCPercent = 800
	DefaultScaleWave      = 50
)

// ErrScaleOptions is wrapped by every validation error of ScaleOptions.
var ErrScaleOptions = errors.New("bench: bad scale options")

func (o *ScaleOptions) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrScaleOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Members < 1 || o.Members > MaxScaleMembers:
		return bad("Members (--members) must be in 1..%d", MaxScaleMembers)
	case o.Packets < 0 || o.Amount < 0 || o.Reports < 0 || o.Timeout < 0 || o.Wave < 0:
		return bad("packets, amount, reports, wave and timeout must not be negative")
	case o.Dir == "":
		return bad("Dir is required")
	}
	if o.Packets == 0 {
		o.Packets = DefaultScalePackets
	}
	if o.Amount == 0 {
		o.Amount = 10 * o.Packets
	}
	if o.Packets < int64(o.Members) {
		return bad("Packets (--packets) %d: at least one per member (%d)", o.Packets, o.Members)
	}
	cfg := scaleRain(*o)
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return bad("rain: %v", err)
	}
	if o.Reports == 0 {
		o.Reports = DefaultScaleReports
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultScaleTimeout
	}
	if o.Wave == 0 {
		o.Wave = DefaultScaleWave
	}
	if o.GCPercent == 0 {
		o.GCPercent = DefaultScaleGCPercent
	}
	if o.pace == 0 {
		o.pace = 20 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// scaleRain is the rain o prepares: 10 minutes, one packet per user.
func scaleRain(o ScaleOptions) rain.Config {
	return rain.Config{AnchorID: 1, TotalAmount: o.Amount, TotalCount: o.Packets, MaxPerUser: 1, DurationS: 600,
		Algorithm: rain.DoubleAverage}
}

// ScaleResults are one `bench scale`, as printed (ScaleTable) and written to results.json.
// Durations are seconds.
type ScaleResults struct {
	Members int         `json:"members"` // nodes (the coordinator is one more member)
	Gossip  string      `json:"gossip"`  // "lan" (production timings) or "fast"
	GOGC    int         `json:"gogc"`    // the nodes' process's GC percent (-1: as the environment set it)
	Wave    int         `json:"wave"`    // nodes started at once
	Code    string      `json:"code"`
	Rain    rain.Config `json:"rain"`

	LaunchS float64 `json:"launch_s"` // starting the nodes, wave after wave (each node joins at once)
	// MembershipS: from the first node's start until every member (each node, and the
	// coordinator's /v1/nodes) sees all the others alive; MembershipAfterLaunchS from the last
	// wave's start.
	MembershipS            float64 `json:"membership_s"`
	MembershipAfterLaunchS float64 `json:"membership_after_launch_s"`
	FullViews              int     `json:"full_views"`          // nodes that saw all N+1 members alive (-1 above: not all did within Timeout)
	CoordinatorSawAll      bool    `json:"coordinator_saw_all"` // the coordinator listed all N nodes alive

	PrepareS        float64 `json:"prepare_s"`           // the prepare call: plan, push every slice, every ack, stored
	PrepareCoordCPU float64 `json:"prepare_coord_cpu_s"` // the coordinator's CPU time over it (/proc: 10 ms ticks)
	PrepareNodesCPU float64 `json:"prepare_nodes_cpu_s"` // this process's (the nodes': each builds its slice's amounts before it acks)
	Slices          int     `json:"slices"`              // in the prepare's answer
	SlicesHeld      int     `json:"slices_held"`         // nodes whose journal holds their slice of the epoch

	StartCallS float64 `json:"start_call_s"` // the start call's wall time (it waits up to 1 s for the direct deliveries)
	// Start reaching the members, from just before the start call: Applied is when a node's
	// journal recorded the start (by the direct call or by the news, whichever came first: the
	// node then serves); Gossip is when the started news reached a member's gossip layer
	// (gossip.Publish sends it to every member by UDP, best effort, and broadcasts it).
	StartApplied Reach `json:"start_applied"`
	StartGossip  Reach `json:"start_gossip"`

	Claims  int              `json:"claims"` // one claim per node, each answered 200, before the reports
	ReportS []float64        `json:"report_s"`
	Report  *adminapi.Report `json:"report,omitempty"`

	Coordinator ScaleMemory `json:"coordinator"`   // the coordinator process, after the reports
	NodesSide   ScaleMemory `json:"nodes_process"` // this process (the nodes), after the reports

	Targets    []ScaleTarget `json:"targets"`
	Verified   bool          `json:"verified"`
	Violations []string      `json:"violations"`
}

// Reach is how fast something reached the members: the time by which 99% of them (rounded up)
// and all of them had it (-1: not within the wait), and how many did.
type Reach struct {
	P99S     float64   `json:"p99_s"`
	AllS     float64   `json:"all_s"`
	Reached  int       `json:"reached"`
	Arrivals []float64 `json:"arrivals_s"` // each member's, sorted
}

// ScaleMemory is a process's memory: resident set now and at its peak (/proc/PID/status VmRSS,
// VmHWM), Go heap in use (the coordinator's /metrics go_memstats_heap_inuse_bytes, as its
// collector left it; for this process runtime.MemStats.HeapInuse right after a runtime.GC) and
// goroutines.
type ScaleMemory struct {
	RSSBytes       int64 `json:"rss_bytes"`
	PeakRSSBytes   int64 `json:"peak_rss_bytes"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
	Goroutines     int64 `json:"goroutines"`
}

// ScaleTarget is one of the targets against what was measured.
type ScaleTarget struct {
	Name string  `json:"name"`
	Max  float64 `json:"max_s"`
	Got  float64 `json:"got_s"`
	Met  bool    `json:"met"`
}

// Err is nil when every figure was measured and sane (targets aside), else the violations.
func (r *ScaleResults) Err() error {
	if r.Verified {
		return nil
	}
	return fmt.Errorf("%d problem(s): %s", len(r.Violations), strings.Join(r.Violations, "; "))
}

// Scale runs `bench scale`: redis-server and a coordinator process, then Members nodes in this
// process joining it; it measures membership, a prepare of the rain, its start reaching every
// member, a claim on every node, the report, and the coordinator's memory; then stops
// everything. Measured figures that are missing or wrong are Violations, not errors.
func Scale(ctx context.Context, o ScaleOptions) (*ScaleResults, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.CPUProfile != "" {
		stop, err := StartCPUProfile(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	s := &scaler{o: o, res: &ScaleResults{Members: o.Members, Gossip: "lan", GOGC: -1, Wave: o.Wave}}
	if o.GCPercent > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(o.GCPercent))
		s.res.GOGC = o.GCPercent
	}
	if o.FastGossip {
		s.res.Gossip = "fast"
	}
	defer s.teardown()
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	s.res.Verified = len(s.res.Violations) == 0
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return s.res, err
		}
		if _, err := writeJSON(filepath.Join(o.Out, "results.json"), s.res); err != nil {
			return s.res, err
		}
	}
	return s.res, nil
}

// scaler is one Scale run's state.
type scaler struct {
	o      ScaleOptions
	res    *ScaleResults
	secret string
	token  string

	redisAddr   string
	redisP      *proc.Proc
	coordP      *proc.Proc
	coordHTTP   string
	coordGossip string
	admin       *cluster.Admin

	members []*scaleMember
	holders map[int]bool // members (by index) the prepare gave a slice
	watch   *scaleWatch
	logFile *os.File
}

// scaleMember is one node of the run and the gossip.Cluster it was given.
type scaleMember struct {
	id      string
	node    *node.Node
	cluster *gossip.Cluster
}

func (s *scaler) violate(format string, args ...any) {
	s.res.Violations = append(s.res.Violations, fmt.Sprintf(format, args...))
}

func (s *scaler) say(format string, args ...any) {
	fmt.Fprintf(s.o.Progress, "scale: "+format+"\n", args...)
}

func (s *scaler) run(ctx context.Context) error {
	if err := os.MkdirAll(s.o.Dir, 0o755); err != nil {
		return err
	}
	s.secret, s.token = cluster.RandomHex(16), cluster.RandomHex(16)
	if err := s.startRedis(ctx); err != nil {
		return err
	}
	if err := s.startCoordinator(ctx); err != nil {
		return err
	}
	first, last, err := s.launch(ctx)
	if err != nil {
		return err
	}
	if err := s.membership(ctx, first, last); err != nil {
		return err
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	if err := s.claimEach(ctx); err != nil {
		return err
	}
	if err := s.reports(ctx); err != nil {
		return err
	}
	s.memory(ctx)
	s.targets()
	return nil
}

func (s *scaler) startRedis(ctx context.Context) error {
	bin := s.o.RedisBin
	if bin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return fmt.Errorf("scale: redis-server not found (apt-get install -y redis-server): %w", err)
		}
		bin = p
	}
	var err error
	if s.redisAddr, err = proc.FreeAddr(); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.redisAddr})
	defer rdb.Close()
	s.redisP, err = proc.StartRedis(ctx, bin, s.redisAddr, s.o.Dir, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	return err
}

func (s *scaler) redisURL() string { return "redis://" + s.redisAddr + "/0" }

// startCoordinator runs the coordinator binary with no join list: the nodes join it.
func (s *scaler) startCoordinator(ctx context.Context) error {
	binDir := s.o.BinDir
	if binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		binDir = filepath.Dir(exe)
	}
	var err error
	if s.coordHTTP, err = proc.FreeAddr(); err != nil {
		return err
	}
	if s.coordGossip, err = proc.FreeAddr(); err != nil {
		return err
	}
	args := []string{"--http", s.coordHTTP, "--gossip", s.coordGossip, "--data", filepath.Join(s.o.Dir, "coord"),
		"--admin-token", s.token}
	if s.o.FastGossip {
		args = append(args, "--fast-gossip")
	}
	env := []string{"REDRAIN_SECRET=" + s.secret, "REDRAIN_REDIS=" + s.redisURL()}
	if s.coordP, err = proc.Start("coordinator", filepath.Join(binDir, "coordinator"), args, env,
		filepath.Join(s.o.Dir, "coordinator.log")); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	if err := s.coordP.WaitHTTP(wctx, "http://"+s.coordHTTP+"/healthz"); err != nil {
		return fmt.Errorf("scale: coordinator: %w\n%s", err, proc.Tail(s.coordP.Log, 2048))
	}
	s.admin = cluster.NewAdmin(s.coordHTTP, s.token)
	return nil
}

// launch starts the nodes in waves of Wave, each node joining the coordinator as soon as it is
// up; the next wave starts once the coordinator lists every node so far alive. It returns when
// the first and the last wave started.
func (s *scaler) launch(ctx context.Context) (first, last time.Time, err error) {
	f, err := os.Create(filepath.Join(s.o.Dir, "nodes.log"))
	if err != nil {
		return first, last, err
	}
	s.logFile = f
	log := slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s.watch = newScaleWatch(s.o.Members)
	first = time.Now()
	for i := range s.o.Members {
		if err := ctx.Err(); err != nil {
			return first, last, err
		}
		if i > 0 && i%s.o.Wave == 0 {
			if err := s.coordinatorSees(ctx, i); err != nil {
				return first, last, err
			}
		}
		if i%s.o.Wave == 0 {
			last = time.Now()
		}
		m, err := s.startMember(i, log)
		if err != nil {
			return first, last, fmt.Errorf("scale: node %d: %w", i+1, err)
		}
		s.members = append(s.members, m)
	}
	s.res.LaunchS = time.Since(first).Seconds()
	s.say("%d nodes started in %.2f s, %d at a time", s.o.Members, s.res.LaunchS, s.o.Wave)
	return first, last, nil
}

// coordinatorSees waits until the coordinator lists n nodes alive.
func (s *scaler) coordinatorSees(ctx context.Context, n int) error {
	alive := 0
	err := poll.Until(ctx, s.o.Timeout, s.o.pace, func() bool {
		cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		defer cancel()
		nodes, err := s.admin.Nodes(cctx)
		alive = aliveNodes(nodes)
		return err == nil && alive == n
	})
	if err != nil {
		return fmt.Errorf("scale: the coordinator lists %d of %d nodes alive after %v: %w", alive, n, s.o.Timeout, err)
	}
	return nil
}

// startMember builds node i as cmd/node would, except for the journal (in memory) and the
// gossip.Cluster, which it builds itself with the node's options (production timings) so that
// the bench can read its membership and news; the node gets that news through node.News.
func (s *scaler) startMember(i int, log *slog.Logger) (*scaleMember, error) {
	id := fmt.Sprintf("n%04d", i+1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var nd atomic.Pointer[node.Node]
	g := gossip.DefaultOptions()
	if s.o.FastGossip {
		g = gossip.LocalOptions()
	}
	g.Meta = gossip.Meta{ID: id, Role: gossip.RoleNode, HTTPAddr: ln.Addr().String()}
	g.BindAddr, g.Secret, g.Join, g.Logger = "127.0.0.1:0", s.secret, []string{s.coordGossip}, log.With("node", id)
	g.OnNews = func(ns gossip.News) {
		if ns.Kind == gossip.KindStarted { // not the prepared news before it
			s.watch.gossiped(i, ns.Code, time.Now())
		}
		if n := nd.Load(); n != nil {
			n.News(ns)
		}
	}
	c, err := gossip.New(g)
	if err != nil {
		ln.Close()
		return nil, err
	}
	o := node.DefaultOptions()
	o.ID, o.HTTPAddr, o.GossipAddr, o.RedisURL, o.Secret = id, ln.Addr().String(), "127.0.0.1:0", s.redisURL(), s.secret
	o.Listener, o.Cluster, o.Logger = ln, c, log
	o.Journal = &watchedJournal{MemJournal: ledger.NewMemJournal(id, uint64(i+1)), watch: s.watch, i: i}
	n, err := node.New(o)
	if err != nil {
		c.Shutdown()
		ln.Close()
		return nil, err
	}
	if err := n.Start(); err != nil {
		n.Close()
		return nil, err
	}
	nd.Store(n)
	return &scaleMember{id: id, node: n, cluster: c}, nil
}

// membership waits until every node sees all N+1 members alive and the coordinator lists the
// N nodes alive.
func (s *scaler) membership(ctx context.Context, first, launched time.Time) error {
	want := len(s.members) + 1
	full := make([]bool, len(s.members))
	coordFull := false
	left := len(s.members)
	err := poll.Until(ctx, s.o.Timeout, s.o.pace, func() bool {
		for i, m := range s.members {
			if !full[i] && aliveCount(m.cluster.Members()) == want {
				full[i] = true
				left--
			}
		}
		if !coordFull {
			cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
			nodes, err := s.admin.Nodes(cctx)
			cancel()
			coordFull = err == nil && aliveNodes(nodes) == len(s.members)
		}
		return left == 0 && coordFull
	})
	now := time.Now()
	s.res.FullViews, s.res.CoordinatorSawAll = len(s.members)-left, coordFull
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Go on: the prepare and the start need only the coordinator's view and direct calls.
		s.res.MembershipS, s.res.MembershipAfterLaunchS = -1, -1
		s.violate("membership: after %.1f s, %d of %d nodes had seen all %d members alive, the coordinator all nodes: %v; %s",
			now.Sub(first).Seconds(), s.res.FullViews, len(s.members), want, coordFull, s.partialViews(full, want))
		s.say("membership did not converge: %s", s.res.Violations[len(s.res.Violations)-1])
		return nil
	}
	s.res.MembershipS, s.res.MembershipAfterLaunchS = now.Sub(first).Seconds(), now.Sub(launched).Seconds()
	s.say("every member sees all %d alive: %.2f s from the first start, %.2f s after the last wave's", want,
		s.res.MembershipS, s.res.MembershipAfterLaunchS)
	return nil
}

// partialViews describes (at most 3 of) the nodes that never saw everyone alive: what they see now.
func (s *scaler) partialViews(full []bool, want int) string {
	var out []string
	for i, m := range s.members {
		if full[i] || len(out) == 3 {
			continue
		}
		ms := m.cluster.Members()
		var odd []string
		seen := map[string]bool{}
		for _, x := range ms {
			seen[x.ID] = true
			if x.State != gossip.StateAlive && len(odd) < 3 {
				odd = append(odd, x.ID+" "+string(x.State))
			}
		}
		for _, o := range s.members {
			if !seen[o.id] && len(odd) < 3 {
				odd = append(odd, o.id+" unknown")
			}
		}
		out = append(out, fmt.Sprintf("%s sees %d of %d members, %d alive (not alive: %s)", m.id, len(ms), want,
			aliveCount(ms), strings.Join(odd, ", ")))
	}
	return strings.Join(out, "; ")
}

func aliveCount(ms []gossip.Member) int {
	n := 0
	for _, m := range ms {
		if m.State == gossip.StateAlive {
			n++
		}
	}
	return n
}

func aliveNodes(ns []adminapi.Node) int {
	n := 0
	for _, x := range ns {
		if x.State == adminapi.StateAlive {
			n++
		}
	}
	return n
}

// prepare creates the rain and prepares it over every node, timed, and checks that every node
// holds its slice.
func (s *scaler) prepare(ctx context.Context) error {
	cfg := scaleRain(s.o)
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	r, err := s.admin.Create(cctx, cfg)
	if err != nil {
		return fmt.Errorf("scale: create: %w", err)
	}
	s.res.Code, s.res.Rain = r.Code, cfg
	cpu0, self0 := coordCPU(s.coordP.Pid()), SelfCPU()
	began := time.Now()
	r, err = s.admin.Act(cctx, r.Code, "prepare", 1)
	s.res.PrepareS = time.Since(began).Seconds()
	s.res.PrepareCoordCPU, s.res.PrepareNodesCPU = (coordCPU(s.coordP.Pid()) - cpu0).Seconds(), (SelfCPU() - self0).Seconds()
	if err != nil {
		return fmt.Errorf("scale: prepare: %w", err)
	}
	s.res.Slices = len(r.Slices)
	s.res.SlicesHeld = s.watch.heldSlices(r.Code, r.Epoch, r.Slices, s.members)
	s.holders = map[int]bool{}
	for i, m := range s.members {
		for _, v := range r.Slices {
			if v.Node == m.id {
				s.holders[i] = true
			}
		}
	}
	if s.res.Slices != len(s.members) || s.res.SlicesHeld != len(s.members) {
		s.violate("prepare: %d slices, %d held by their node, for %d nodes", s.res.Slices, s.res.SlicesHeld, len(s.members))
	}
	s.say("prepared %s packets over %d nodes in %.3f s (CPU: coordinator %.2f s, nodes %.2f s)", Commas(s.o.Packets),
		s.res.Slices, s.res.PrepareS, s.res.PrepareCoordCPU, s.res.PrepareNodesCPU)
	return nil
}

// coordCPU is the coordinator's CPU time so far (0 if unreadable).
func coordCPU(pid int) time.Duration {
	d, _ := ProcCPU(pid)
	return d
}

// start starts the rain and waits until every node applied it and heard its news by gossip.
func (s *scaler) start(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	t0 := time.Now()
	if _, err := s.admin.Act(cctx, s.res.Code, "start", 1); err != nil {
		return fmt.Errorf("scale: start: %w", err)
	}
	s.res.StartCallS = time.Since(t0).Seconds()
	code, n, holders := s.res.Code, len(s.members), s.holders
	err := poll.Until(ctx, s.o.Timeout, s.o.pace, func() bool {
		a, g := s.watch.reached(code, holders)
		return len(a) == len(holders) && len(g) == n
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	applied, gossiped := s.watch.reached(code, holders)
	s.res.StartApplied, s.res.StartGossip = reach(t0, applied, len(holders)), reach(t0, gossiped, n)
	if err != nil {
		s.violate("start: applied on %d of the %d slice holders, heard by gossip on %d of %d nodes within %v", len(applied),
			len(holders), len(gossiped), n, s.o.Timeout)
	}
	s.say("start applied on 99%% of nodes in %s, all in %s; gossip news 99%% %s, all %s", secs(s.res.StartApplied.P99S),
		secs(s.res.StartApplied.AllS), secs(s.res.StartGossip.P99S), secs(s.res.StartGossip.AllS))
	return nil
}

// reach summarises arrival times after t0 over n members.
func reach(t0 time.Time, at []time.Time, n int) Reach {
	r := Reach{Reached: len(at), P99S: -1, AllS: -1}
	d := make([]float64, len(at))
	for i, t := range at {
		d[i] = t.Sub(t0).Seconds()
	}
	slices.Sort(d)
	r.Arrivals = d
	if k := int(math.Ceil(0.99 * float64(n))); k <= len(d) && k > 0 {
		r.P99S = d[k-1]
	}
	if len(d) == n && n > 0 {
		r.AllS = d[n-1]
	}
	return r
}

// claimEach makes one claim on every node (user i+1 on node i), each must be paid.
func (s *scaler) claimEach(ctx context.Context) error {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var paid atomic.Int64
	var mu sync.Mutex
	var bad []string
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, m := range s.members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+m.node.HTTPAddr()+"/v1/rains/"+s.res.Code+"/claim", nil)
			req.Header.Set("X-User-Id", strconv.Itoa(i+1))
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					paid.Add(1)
					return
				}
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s: %v", m.id, err))
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.res.Claims = int(paid.Load())
	if len(bad) > 0 {
		slices.Sort(bad)
		s.violate("claims: %d of %d nodes paid; first refusals: %s", s.res.Claims, len(s.members),
			strings.Join(bad[:min(len(bad), 3)], ", "))
	}
	return nil
}

// reports reads the report Reports times, timed, and checks the last one.
func (s *scaler) reports(ctx context.Context) error {
	for range s.o.Reports {
		cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		began := time.Now()
		rep, err := s.admin.Report(cctx, s.res.Code)
		d := time.Since(began).Seconds()
		cancel()
		if err != nil {
			return fmt.Errorf("scale: report: %w", err)
		}
		s.res.ReportS, s.res.Report = append(s.res.ReportS, d), rep
	}
	rep := s.res.Report
	for _, p := range rep.Problems() {
		s.violate("report: %s", p)
	}
	alive := 0
	for _, n := range rep.Nodes {
		if n.State == adminapi.StateAlive {
			alive++
		}
	}
	if len(rep.Nodes) != len(s.members) || alive != len(s.members) || rep.ClaimedCount != int64(s.res.Claims) ||
		rep.LostAmount != 0 {
		s.violate("report: %d node lines, %d alive, claimed %d (paid %d), lost %d", len(rep.Nodes), alive,
			rep.ClaimedCount, s.res.Claims, rep.LostAmount)
	}
	s.say("report over %d nodes: median %.3f s, max %.3f s", len(rep.Nodes), median(s.res.ReportS), slices.Max(s.res.ReportS))
	return nil
}

// memory reads the coordinator's and this process's memory.
func (s *scaler) memory(ctx context.Context) {
	pid := s.coordP.Pid()
	c := &s.res.Coordinator
	var err error
	if c.RSSBytes, err = procStatusBytes(pid, "VmRSS:"); err != nil {
		s.violate("coordinator memory: %v", err)
	}
	c.PeakRSSBytes, _ = procStatusBytes(pid, "VmHWM:")
	m, err := scrapeMetrics(ctx, "http://"+s.coordHTTP+"/metrics", "go_memstats_heap_inuse_bytes", "go_goroutines")
	if err != nil {
		s.violate("coordinator /metrics: %v", err)
	}
	c.HeapInuseBytes, c.Goroutines = int64(m["go_memstats_heap_inuse_bytes"]), int64(m["go_goroutines"])
	var ms runtime.MemStats
	runtime.GC() // live heap: at GOGC 800 the heap in use is mostly garbage of memberlist's packet buffers
	runtime.ReadMemStats(&ms)
	self := os.Getpid()
	s.res.NodesSide.RSSBytes, _ = procStatusBytes(self, "VmRSS:")
	s.res.NodesSide.PeakRSSBytes, _ = procStatusBytes(self, "VmHWM:")
	s.res.NodesSide.HeapInuseBytes, s.res.NodesSide.Goroutines = int64(ms.HeapInuse), int64(runtime.NumGoroutine())
	if s.o.MemProfile != "" {
		if err := writeHeapProfile(s.o.MemProfile); err != nil {
			s.say("heap profile: %v", err)
		}
	}
	if c.RSSBytes <= 0 || c.HeapInuseBytes <= 0 {
		s.violate("coordinator memory not measured: rss %d heap %d", c.RSSBytes, c.HeapInuseBytes)
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ScaleTargets are the targets, for N = 300 on the project's 2-core machine.
var ScaleTargets = struct{ Start99, StartAll, Prepare, Report float64 }{1, 2, 3, 1}

func (s *scaler) targets() {
	r := s.res
	add := func(name string, max, got float64) {
		r.Targets = append(r.Targets, ScaleTarget{Name: name, Max: max, Got: got, Met: got >= 0 && got <= max})
	}
	add("start reaches 99% of nodes", ScaleTargets.Start99, r.StartApplied.P99S)
	add("start reaches 100% of nodes", ScaleTargets.StartAll, r.StartApplied.AllS)
	add("prepare", ScaleTargets.Prepare, r.PrepareS)
	add("report (median)", ScaleTargets.Report, median(r.ReportS))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	c := slices.Clone(v)
	slices.Sort(c)
	return c[len(c)/2]
}

// teardown stops the nodes (concurrently, gracefully), the coordinator and redis-server.
func (s *scaler) teardown() {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, m := range s.members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m.node.Close() // leaves and shuts its Cluster down
		}()
	}
	wg.Wait()
	if s.coordP != nil {
		s.coordP.Term(10 * time.Second)
	}
	if s.redisP != nil {
		s.redisP.Term(10 * time.Second)
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
}

// scaleWatch records, per node, when each rain's start reached its journal and its news its
// gossip, and the slices its journal took.
type scaleWatch struct {
	mu       sync.Mutex
	applied  []map[string]time.Time
	gossip   []map[string]time.Time
	slicesOf []map[string][]rain.Slice
}

func newScaleWatch(n int) *scaleWatch {
	w := &scaleWatch{applied: make([]map[string]time.Time, n), gossip: make([]map[string]time.Time, n),
		slicesOf: make([]map[string][]rain.Slice, n)}
	for i := range n {
		w.applied[i], w.gossip[i], w.slicesOf[i] = map[string]time.Time{}, map[string]time.Time{}, map[string][]rain.Slice{}
	}
	return w
}

func firstAt(m map[string]time.Time, code string, at time.Time) {
	if _, ok := m[code]; !ok {
		m[code] = at
	}
}

func (w *scaleWatch) started(i int, code string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	firstAt(w.applied[i], code, at)
}

func (w *scaleWatch) gossiped(i int, code string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	firstAt(w.gossip[i], code, at)
}

func (w *scaleWatch) slice(i int, s rain.Slice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slicesOf[i][s.Code] = append(w.slicesOf[i][s.Code], s)
}

// reached lists the times the rain's start was applied by each of holders that did, and reached
// the gossip of each node that heard it.
func (w *scaleWatch) reached(code string, holders map[int]bool) (applied, gossiped []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.applied {
		if t, ok := w.applied[i][code]; ok && holders[i] {
			applied = append(applied, t)
		}
		if t, ok := w.gossip[i][code]; ok {
			gossiped = append(gossiped, t)
		}
	}
	return applied, gossiped
}

// heldSlices counts the nodes whose journal holds exactly the share of epoch the prepare's
// answer gives them.
func (w *scaleWatch) heldSlices(code string, epoch uint64, views []adminapi.SliceView, ms []*scaleMember) int {
	want := map[string]adminapi.SliceView{}
	for _, v := range views {
		want[v.Node] = v
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	held := 0
	for i, m := range ms {
		var count, amount int64
		for _, s := range w.slicesOf[i][code] {
			if s.Epoch == epoch && s.Node == m.id {
				count, amount = count+s.Count, amount+s.Amount
			}
		}
		if v, ok := want[m.id]; ok && count == v.Count && amount == v.Amount && count > 0 {
			held++
		}
	}
	return held
}

// watchedJournal is a node's in-memory journal that tells the watch when a start or a slice
// was stored (the node stores both before it acts on them).
type watchedJournal struct {
	*ledger.MemJournal
	watch *scaleWatch
	i     int
}

func (j *watchedJournal) PutRain(m ledger.RainMeta) error {
	err := j.MemJournal.PutRain(m)
	if err == nil && m.Epoch != 0 && m.StartsAt != 0 {
		j.watch.started(j.i, m.Code, time.Now())
	}
	return err
}

func (j *watchedJournal) PutSlice(s rain.Slice) error {
	err := j.MemJournal.PutSlice(s)
	if err == nil {
		j.watch.slice(j.i, s)
	}
	return err
}

// procStatusBytes reads a "kB" field of /proc/PID/status (VmRSS:, VmHWM:) in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		v, ok := bytes.CutPrefix(line, []byte(field))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
		kb, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %s %q", pid, field, v)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// scrapeMetrics reads the named unlabelled series from a Prometheus text exposition.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body, names...)
}

// parseMetrics picks the named unlabelled series' values out of a Prometheus text exposition;
// a name it does not find is an error.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(r, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %q", name, val)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("metric %s missing", n)
		}
	}
	return out, nil
}

// ScaleTable prints r as a two-column table.
func ScaleTable(w io.Writer, r *ScaleResults) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("cluster", "%d nodes in one process (real node.Node, in-memory journals; GOGC %d) + a coordinator process + redis-server; gossip %s",
		r.Members, r.GOGC, r.Gossip)
	row("launch", "%.2f s to start the nodes, %d at a time (the next once the coordinator lists them alive)", r.LaunchS, r.Wave)
	if r.MembershipS >= 0 {
		row("membership", "all %d members see each other alive %.2f s after the first start (%.2f s after the last wave's)",
			r.Members+1, r.MembershipS, r.MembershipAfterLaunchS)
	} else {
		row("membership", "NOT CONVERGED: %d of %d nodes saw all %d members alive; the coordinator saw every node alive: %v",
			r.FullViews, r.Members, r.Members+1, r.CoordinatorSawAll)
	}
	row("prepare", "%s packets, %s cents over %d nodes: %.3f s (CPU: coordinator %.2f s, nodes %.2f s); %d of %d slices held",
		Commas(r.Rain.TotalCount), Commas(r.Rain.TotalAmount), r.Slices, r.PrepareS, r.PrepareCoordCPU, r.PrepareNodesCPU,
		r.SlicesHeld, r.Members)
	row("start", "call %.3f s; applied on 99%% of nodes %s, all %s (%d)", r.StartCallS, secs(r.StartApplied.P99S),
		secs(r.StartApplied.AllS), r.StartApplied.Reached)
	row("start news", "in each node's gossip (UDP to all, then broadcast): 99%% of nodes %s, all %s (%d)", secs(r.StartGossip.P99S), secs(r.StartGossip.AllS),
		r.StartGossip.Reached)
	row("claims", "%d of %d nodes paid one claim", r.Claims, r.Members)
	if len(r.ReportS) > 0 {
		row("report", "median %.3f s, max %.3f s over %d calls", median(r.ReportS), slices.Max(r.ReportS), len(r.ReportS))
	}
	if rep := r.Report; rep != nil {
		row("report figures", "claimed %s (%d), leftover %s, lost %s, %d node lines", Commas(rep.ClaimedAmount), rep.ClaimedCount,
			Commas(rep.LeftoverAmount), Commas(rep.LostAmount), len(rep.Nodes))
	}
	c := r.Coordinator
	row("coordinator memory", "RSS %s (peak %s), Go heap in use %s, %d goroutines", mib(c.RSSBytes), mib(c.PeakRSSBytes),
		mib(c.HeapInuseBytes), c.Goroutines)
	nsd := r.NodesSide
	row("nodes' process", "RSS %s (peak %s), Go heap in use %s (%s per node), %d goroutines", mib(nsd.RSSBytes),
		mib(nsd.PeakRSSBytes), mib(nsd.HeapInuseBytes), mib(nsd.HeapInuseBytes/int64(max(r.Members, 1))), nsd.Goroutines)
	for _, t := range r.Targets {
		verdict := "met"
		if !t.Met {
			verdict = "MISSED"
		}
		row("target", "%s <= %.0f s: %s (%s)", t.Name, t.Max, secs(t.Got), verdict)
	}
	if r.Verified {
		row("checks", "verified: full membership, every slice held, start on every node, every claim paid, report balances")
	} else {
		row("checks", "FAILED (%d)", len(r.Violations))
		for _, v := range r.Violations {
			row("", "- %s", v)
		}
	}
	return tw.Flush()
}

func secs(s float64) string {
	if s < 0 || math.IsNaN(s) {
		return "-"
	}
	return fmt.Sprintf("%.3f s", s)
}
