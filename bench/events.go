package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"redrain/internal/attack"
	"redrain/internal/cluster"
	"redrain/internal/roomevents"
	"redrain/internal/sseclient"
	"redrain/rain"
)

// EventsOptions describe one `bench events`: N viewers subscribed to one room's event stream
// across the nodes of a local cluster, a rain of that room started, and how fast and to how
// many the start arrived; optionally, claims/s of the node with and without those idle viewers.
type EventsOptions struct {
	Subscribers int    // viewers, spread round robin over the nodes; 0 means 1000
	LocalNodes  int    // node processes; 0 means 1
	BinDir      string // node and coordinator binaries; "" = beside the running executable
	Dir         string // the cluster's data and logs; "" = a temporary directory, removed after
	Room        int64  // the viewers' room; 0 means 1
	Dialers     int    // subscriptions opened at once; 0 means 64
	// Wait bounds how long after the start the viewers are waited for; 0 means 10 s.
	Wait time.Duration
	// ClaimTime > 0 also measures claims/s (a `bench run` on the first node, for this long, every
	// invariant checked) before the viewers subscribe and again while they are subscribed and idle.
	ClaimTime time.Duration
	Load      LoadOptions // of those runs (Nodes, Code and Time are set here)
	Logger    *slog.Logger
}

// EventsResult is what `bench events` measured. Latencies are in microseconds, from the start
// transition (the event's starts_at, the coordinator's clock: same machine) to the event read.
type EventsResult struct {
	Subscribers int     `json:"subscribers"`
	Connected   int     `json:"connected"`  // subscriptions the nodes accepted
	Received    int     `json:"received"`   // viewers that read the raining event
	Latency     Latency `json:"latency_us"` // of those
	Code        string  `json:"code"`
	// Memory of the first node: RSS before any viewer subscribed and after every one did (all
	// idle), and the Go heap and stacks in use at both points, from its /metrics.
	Node          string    `json:"node"`
	PerNode       int       `json:"subscribers_on_node"`
	RSSBefore     int64     `json:"rss_before"`
	RSSAfter      int64     `json:"rss_after"`
	HeapBefore    int64     `json:"heap_inuse_before"`
	HeapAfter     int64     `json:"heap_inuse_after"`
	StackBefore   int64     `json:"stack_inuse_before"`
	StackAfter    int64     `json:"stack_inuse_after"`
	RSSPerSub     float64   `json:"rss_per_subscriber"`
	HeapPerSub    float64   `json:"heap_per_subscriber"`
	ClaimsWithout float64   `json:"claims_per_s_without,omitempty"`
	ClaimsWith    float64   `json:"claims_per_s_with,omitempty"`
	ClaimsRatio   float64   `json:"claims_ratio,omitempty"`
	ClaimRuns     []float64 `json:"claim_runs,omitempty"` // claims/s: without, with, without
	Verified      bool      `json:"verified"`             // the claim runs' invariants held (true without them)
	Violations    []string
}

func (o *EventsOptions) defaults() {
	if o.Subscribers == 0 {
		o.Subscribers = 1000
	}
	if o.LocalNodes == 0 {
		o.LocalNodes = 1
	}
	if o.Room == 0 {
		o.Room = 1
	}
	if o.Dialers == 0 {
		o.Dialers = 64
	}
	if o.Wait == 0 {
		o.Wait = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// ErrEventsOptions is wrapped by every validation error of EventsOptions.
var ErrEventsOptions = errors.New("bench: bad events options")

// MaxEventSubscribers bounds --subscribers (file descriptors: one here and one on a node each).
const MaxEventSubscribers = 200_000

func (o *EventsOptions) validate() error {
	switch {
	case o.Subscribers < 0 || o.Subscribers > MaxEventSubscribers:
		return fmt.Errorf("%w: Subscribers (--subscribers) must be in 1..%d", ErrEventsOptions, MaxEventSubscribers)
	case o.LocalNodes < 0 || o.Room < 0 || o.Dialers < 0 || o.Wait < 0 || o.ClaimTime < 0:
		return fmt.Errorf("%w: nodes, room, dialers, wait and claim time must not be negative", ErrEventsOptions)
	}
	if msg := loadProblem(o.Load, ""); msg != "" {
		return fmt.Errorf("%w: %s", ErrEventsOptions, msg)
	}
	return nil
}

// Events runs `bench events` on a local cluster it starts and stops.
func Events(ctx context.Context, o EventsOptions) (*EventsResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.defaults()
	attack.RaiseFileLimit(uint64(o.Subscribers) + 4096) // here; the nodes inherit it
	dir, clean := o.Dir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "redrain-bench-events-")
		if err != nil {
			return nil, err
		}
		dir, clean = d, true
	}
	perNode := (o.Subscribers + o.LocalNodes - 1) / o.LocalNodes
	co := cluster.ClusterOptions{Nodes: o.LocalNodes, BinDir: o.BinDir, Dir: dir, NodeArgs: []string{
		"--max-subscribers", strconv.Itoa(perNode + 100), "--max-subscribers-per-ip", strconv.Itoa(perNode + 100)}}
	o.Logger.Info("starting local cluster", "nodes", o.LocalNodes, "dir", dir)
	c, err := cluster.StartCluster(ctx, co)
	if err != nil {
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	defer func() {
		c.Stop()
		if clean {
			os.RemoveAll(dir)
		}
	}()
	return eventsOn(ctx, &o, c, perNode)
}

// eventsOn measures, in this order: (ClaimTime) claims/s without viewers; the first node's
// memory, the viewers subscribing, its memory again; the start of a rain of the viewers' room and
// its delivery; then (ClaimTime) claims/s with the viewers subscribed and idle, and once more
// without them once they are gone. The ratio is "with" over the mean of the two "without" runs
// around it, so a drift of the machine over the run (warm-up, other load) cancels out.
func eventsOn(ctx context.Context, o *EventsOptions, c *cluster.LocalCluster, perNode int) (*EventsResult, error) {
	res := &EventsResult{Subscribers: o.Subscribers, Node: c.Nodes[0].ID, PerNode: perNode, Verified: true}
	var runs []*Results
	claims := func(what string) error {
		if o.ClaimTime <= 0 {
			return nil
		}
		r, err := claimRun(ctx, o, c)
		if err != nil {
			return fmt.Errorf("claims %s: %w", what, err)
		}
		res.note(r)
		runs = append(runs, r)
		return nil
	}
	if err := claims("without subscribers"); err != nil {
		return nil, err
	}
	before, err := nodeMemory(c.Nodes[0])
	if err != nil {
		return nil, err
	}
	subs, err := subscribeAll(ctx, o, c)
	defer subs.close()
	if err != nil {
		return nil, err
	}
	res.Connected = subs.connected()
	after, err := nodeMemory(c.Nodes[0])
	if err != nil {
		return nil, err
	}
	res.setMemory(before, after, subs.onFirst)
	if res.Code, err = startRoomRain(ctx, o, c); err != nil {
		return nil, err
	}
	subs.await(ctx, o.Wait)
	res.Received, res.Latency = subs.latency()
	if err := claims("with subscribers"); err != nil {
		return nil, err
	}
	subs.close()
	if err := claims("without subscribers, after"); err != nil {
		return nil, err
	}
	if len(runs) == 3 {
		res.ClaimsWithout = (runs[0].ClaimsPerSec + runs[2].ClaimsPerSec) / 2
		res.ClaimsWith = runs[1].ClaimsPerSec
		res.ClaimsRatio = res.ClaimsWith / res.ClaimsWithout
		res.ClaimRuns = []float64{runs[0].ClaimsPerSec, runs[1].ClaimsPerSec, runs[2].ClaimsPerSec}
	}
	return res, nil
}

func (r *EventsResult) note(run *Results) {
	if !run.Verified {
		r.Verified = false
		r.Violations = append(r.Violations, run.Violations...)
	}
}

type memSample struct{ rss, heap, stack int64 }

func (r *EventsResult) setMemory(before, after memSample, onFirst int) {
	r.RSSBefore, r.RSSAfter = before.rss, after.rss
	r.HeapBefore, r.HeapAfter = before.heap, after.heap
	r.StackBefore, r.StackAfter = before.stack, after.stack
	if onFirst > 0 {
		r.RSSPerSub = float64(after.rss-before.rss) / float64(onFirst)
		r.HeapPerSub = float64(after.heap-before.heap) / float64(onFirst)
	}
}

// nodeMemory samples a node's RSS (/proc) and its Go heap and stacks in use (/metrics).
func nodeMemory(n *cluster.LocalNode) (memSample, error) {
	var m memSample
	var err error
	if m.rss, err = ProcRSS(n.Proc.Pid()); err != nil {
		return m, err
	}
	resp, err := http.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = int64(f)
		case "go_memstats_stack_inuse_bytes":
			m.stack = int64(f)
		}
	}
	return m, sc.Err()
}

// claimRun is a `bench run` on the first node, on the running cluster, in room 0 (not the
// viewers' room, so they stay idle).
func claimRun(ctx context.Context, o *EventsOptions, c *cluster.LocalCluster) (*Results, error) {
	lo := o.Load
	lo.Time = o.ClaimTime
	ro := RunOptions{Coordinator: c.CoordHTTP, NodeAddrs: []string{c.Nodes[0].HTTP}, AdminToken: c.Opts.AdminToken,
		Secret: c.Opts.Secret, RedisURL: c.RedisURL(), Load: lo, Logger: o.Logger,
		Rain: rain.Config{TotalAmount: 100_000_000, TotalCount: 2_000_000, MaxPerUser: 1000}}
	r, err := Run(ctx, ro)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("claims", "claims_per_s", int(r.ClaimsPerSec), "verified", r.Verified)
	return r, nil
}

// startRoomRain creates, prepares and starts a rain in the viewers' room.
func startRoomRain(ctx context.Context, o *EventsOptions, c *cluster.LocalCluster) (string, error) {
	adm := c.Admin()
	cfg := rain.Config{AnchorID: 1, RoomID: o.Room, TotalAmount: 1_000_000, TotalCount: 10_000, MaxPerUser: 1, DurationS: 60}
	r, err := adm.Create(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("create rain: %w", err)
	}
	for _, step := range []string{"prepare", "start"} {
		if _, err := adm.Act(ctx, r.Code, step, 1); err != nil {
			return "", fmt.Errorf("%s rain: %w", step, err)
		}
	}
	o.Logger.Info("started", "rain", r.Code, "room", o.Room)
	return r.Code, nil
}

// viewers are the subscriptions, each read by its own goroutine until it hears a start.
type viewers struct {
	streams []*sseclient.Stream // nil where the subscription failed
	lat     []atomic.Int64      // microseconds to the raining event; -1 until heard
	heard   atomic.Int64
	onFirst int // subscriptions accepted by the first node
	wg      sync.WaitGroup
}

// subscribeAll opens o.Subscribers subscriptions, o.Dialers at a time; every accepted one has
// its head read (the node writes it once the hub serves it) before this returns.
func subscribeAll(ctx context.Context, o *EventsOptions, c *cluster.LocalCluster) (*viewers, error) {
	v := &viewers{streams: make([]*sseclient.Stream, o.Subscribers), lat: make([]atomic.Int64, o.Subscribers)}
	path := "/v1/rooms/" + strconv.FormatInt(o.Room, 10) + "/events"
	next := atomic.Int64{}
	var refused atomic.Int64
	var firstErr atomic.Value
	var dial sync.WaitGroup
	for range o.Dialers {
		dial.Add(1)
		go func() {
			defer dial.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.Subscribers {
					return
				}
				v.lat[i].Store(-1)
				s, err := sseclient.Dial(c.Nodes[i%len(c.Nodes)].HTTP, path, 10*time.Second)
				if err != nil || s.Status != 200 {
					refused.Add(1)
					if err == nil {
						err = fmt.Errorf("HTTP %d %s", s.Status, s.Word)
					}
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				v.streams[i] = s
			}
		}()
	}
	dial.Wait()
	for i, s := range v.streams {
		if s != nil && i%len(c.Nodes) == 0 {
			v.onFirst++
		}
	}
	if n := refused.Load(); n > 0 {
		o.Logger.Warn("subscriptions refused or failed", "count", n, "first", firstErr.Load())
	}
	o.Logger.Info("subscribed", "viewers", v.connected())
	for i, s := range v.streams {
		if s == nil {
			continue
		}
		v.wg.Add(1)
		go func() { defer v.wg.Done(); v.listen(i, s) }()
	}
	return v, ctx.Err()
}

// listen reads s until the raining event, and records its latency.
func (v *viewers) listen(i int, s *sseclient.Stream) {
	for {
		f, e, err := s.NextEvent(time.Time{})
		if err != nil {
			return
		}
		if e.Status != "raining" {
			continue
		}
		now := time.Now()
		// The id holds the transition's time in ns (starts_at in the data is in ms).
		if k, err := roomevents.ParseID(f.ID); err == nil {
			v.lat[i].Store(now.Sub(time.Unix(0, k.At)).Microseconds())
			v.heard.Add(1)
		}
		return
	}
}

func (v *viewers) connected() int {
	n := 0
	for _, s := range v.streams {
		if s != nil {
			n++
		}
	}
	return n
}

// await waits until every viewer heard the start, or wait passes.
func (v *viewers) await(ctx context.Context, wait time.Duration) {
	want := int64(v.connected())
	deadline := time.Now().Add(wait)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for v.heard.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		<-t.C
	}
}

func (v *viewers) latency() (int, Latency) {
	h := NewHistogram()
	n := 0
	for i, s := range v.streams {
		if us := v.lat[i].Load(); s != nil && us >= 0 {
			record(h, max(us, 1))
			n++
		}
	}
	return n, Summarize(h)
}

// close ends every subscription and waits for the readers; safe to call twice.
func (v *viewers) close() {
	if v == nil {
		return
	}
	for i, s := range v.streams {
		if s != nil {
			s.Close()
			v.streams[i] = nil
		}
	}
	v.wg.Wait()
}

// EventsTable prints r.
func EventsTable(w io.Writer, r *EventsResult) {
	row := func(k, f string, a ...any) { fmt.Fprintf(w, "%-20s "+f+"\n", append([]any{k}, a...)...) }
	row("subscribers", "%s asked, %s connected (%s on %s)", Commas(int64(r.Subscribers)), Commas(int64(r.Connected)),
		Commas(int64(r.PerNode)), r.Node)
	row("received start", "%s of %s", Commas(int64(r.Received)), Commas(int64(r.Connected)))
	row("delivery latency", "p50 %s  p99 %s  max %s", ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.Max))
	row("node RSS", "%s -> %s: %.0f B per subscriber", mib(r.RSSBefore), mib(r.RSSAfter), r.RSSPerSub)
	row("node Go heap", "%s -> %s: %.0f B per subscriber (stacks %s -> %s)", mib(r.HeapBefore), mib(r.HeapAfter),
		r.HeapPerSub, mib(r.StackBefore), mib(r.StackAfter))
	if r.ClaimsWithout > 0 {
		row("claims/s", "%s with idle subscribers, %s without (mean of the runs before and after): %.2fx",
			Commas(int64(r.ClaimsWith)), Commas(int64(r.ClaimsWithout)), r.ClaimsRatio)
		row("claim runs", "without %s, with %s, without %s", Commas(int64(r.ClaimRuns[0])),
			Commas(int64(r.ClaimRuns[1])), Commas(int64(r.ClaimRuns[2])))
		verdict := "verified"
		if !r.Verified {
			verdict = fmt.Sprintf("%d violation(s): %s", len(r.Violations), r.Violations[0])
		}
		row("invariants", "%s", verdict)
	}
}

func ms(us int64) string { return fmt.Sprintf("%.1f ms", float64(us)/1000) }
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
