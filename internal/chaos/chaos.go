package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/poll"
	"redrain/internal/tap"
	"redrain/internal/wire"
	"redrain/rain"
)

// Options configure `bench chaos`: a rain on a local cluster with claims flowing the whole
// time while the scenario crashes a node and restarts it, kills Redis and starts it empty, and
// stops a node with SIGTERM; then every invariant is checked against the clients' answers.
type Options struct {
	Dir        string // data and logs; required
	BinDir     string // node and coordinator binaries; "" = beside this executable
	Count      int64  // packets; 0 = 30,000
	Amount     int64  // cents; 0 = 100 x Count
	MaxPerUser int    // 0 = 5
	Users      uint64 // 0 = Count/3
	Conns      int    // 0 = 32
	Out        io.Writer
}

// Step is one fault and what it cost.
type Step struct {
	Fault   string        `json:"fault"`
	Before  int64         `json:"claims_before"` // claims answered 200 when it was injected
	Took    time.Duration `json:"took"`          // until the cluster served again
	Failed  int64         `json:"failed"`        // requests with no answer meanwhile
	Comment string        `json:"comment"`
}

// Result is the scenario's outcome.
type Result struct {
	Code    string         `json:"code"`
	Steps   []Step         `json:"steps"`
	Verdict *check.Verdict `json:"verdict"`
	Claimed int64          `json:"report_claimed"`
	Left    int64          `json:"report_leftover"`
	Lost    int64          `json:"report_lost"`
}

// ErrNotRun: the scenario could not run (a process would not start, the rain could not begin).
var ErrNotRun = errors.New("chaos")

// setDefaults sets each zero field of o to its default.
func (o *Options) setDefaults() {
	if o.Count == 0 {
		o.Count = 30_000
	}
	if o.Amount == 0 {
		o.Amount = 100 * o.Count
	}
	if o.MaxPerUser == 0 {
		o.MaxPerUser = 5
	}
	if o.Users == 0 {
		o.Users = uint64(max(o.Count/3, 1))
	}
	if o.Conns == 0 {
		o.Conns = 32
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// startRain creates the scenario's rain, prepares and starts it, and returns its code.
func startRain(ctx context.Context, c *cluster.LocalCluster, o Options) (string, error) {
	adm := c.Admin()
	r, err := adm.Create(ctx, rain.Config{AnchorID: 1, TotalAmount: o.Amount, TotalCount: o.Count, MaxPerUser: o.MaxPerUser, DurationS: 3600})
	if err != nil {
		return "", fmt.Errorf("%w: create: %v", ErrNotRun, err)
	}
	for _, step := range []string{"prepare", "start"} {
		if _, err := adm.Act(ctx, r.Code, step, 1); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrNotRun, step, err)
		}
	}
	return r.Code, nil
}

// Run runs the scenario. A violated invariant is in the result's Verdict, not an error.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.setDefaults()
	c, err := cluster.StartCluster(ctx, cluster.ClusterOptions{Nodes: 3, BinDir: o.BinDir, Dir: o.Dir, FastGossip: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRun, err)
	}
	defer c.Stop()
	code, err := startRain(ctx, c, o)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "rain %s: %d packets, %d cents, 3 nodes; claims flowing from %d users\n", code, o.Count, o.Amount, o.Users)
	t := tap.StartTapper(c, code, o.Users, o.Conns)
	res := &Result{Code: code}
	faults := []struct {
		name string
		do   func() (string, error)
	}{
		{"node n2 kill -9, restarted on its data dir", func() (string, error) {
			c.Nodes[1].Proc.Kill()
			return "recovered from its journal", c.StartNode(ctx, 1)
		}},
		{"redis-server kill -9, restarted empty", func() (string, error) {
			c.Redis.Kill()
			served := t.OKs()
			waitOKs(ctx, t, o.Count/20)
			return fmt.Sprintf("%d claims served while Redis was down", t.OKs()-served), c.StartRedis(ctx)
		}},
		{"node n3 SIGTERM (leaves for good)", func() (string, error) {
			return "its remainder is leftover", c.Nodes[2].Proc.Term(30 * time.Second)
		}},
	}
	for _, f := range faults {
		if err := waitOKs(ctx, t, o.Count/10); err != nil {
			return nil, err
		}
		st := Step{Fault: f.name, Before: t.OKs()}
		fails, began := t.Fails(), time.Now()
		comment, err := f.do()
		if err != nil {
			t.Stop()
			return nil, fmt.Errorf("%w: %s: %v", ErrNotRun, f.name, err)
		}
		st.Took, st.Failed, st.Comment = time.Since(began), t.Fails()-fails, comment
		res.Steps = append(res.Steps, st)
		fmt.Fprintf(o.Out, "%-45s after %6d claims; back in %v; %d requests unanswered; %s\n", f.name, st.Before,
			st.Took.Round(time.Millisecond), st.Failed, comment)
	}
	answers := drain(ctx, t, c)
	res.Verdict, err = verdict(ctx, c, code, answers, o, res)
	return res, err
}

// verdict waits until Redis holds what the live nodes journaled and checks the invariants.
func verdict(ctx context.Context, c *cluster.LocalCluster, code string, answers []check.Answer, o Options, res *Result) (*check.Verdict, error) {
	var rep *adminapi.Report
	flushed := func() bool {
		var err error
		rep, err = c.Admin().Report(ctx, code)
		return err == nil && rep.CaughtUp()
	}
	if err := poll.Until(ctx, time.Minute, 50*time.Millisecond, flushed); err != nil {
		return nil, fmt.Errorf("%w: Redis did not catch up with the journals within a minute (%v)", ErrNotRun, err)
	}
	res.Claimed, res.Left, res.Lost = rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount
	credits, totals, nodes, err := check.ReadRedis(ctx, c.Client(), code)
	if err != nil {
		return nil, err
	}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: code, TotalAmount: o.Amount, TotalCount: o.Count, MaxPerUser: o.MaxPerUser})
	for _, p := range check.Report(rep) {
		v.Fail("report: %s", p)
	}
	return v, nil
}

// waitOKs waits until t has n more 200 answers, a minute at most.
func waitOKs(ctx context.Context, t *tap.Tapper, n int64) error {
	target := t.OKs() + n
	if poll.Until(ctx, time.Minute, 20*time.Millisecond, func() bool { return t.OKs() >= target }) != nil {
		return fmt.Errorf("%w: claims stopped flowing (%d answered)", ErrNotRun, t.OKs())
	}
	return nil
}

// drain keeps tapping until the live nodes have nothing left (or two minutes pass), then stops.
func drain(ctx context.Context, t *tap.Tapper, c *cluster.LocalCluster) []check.Answer {
	wc := wire.NewClient(c.Opts.Secret, 5*time.Second)
	_ = poll.Until(ctx, 2*time.Minute, 50*time.Millisecond, func() bool { return liveLeft(ctx, c, wc) == 0 })
	return t.Stop()
}

// liveLeft is how many packets the live nodes still hold; a live node that does not answer
// counts as one.
func liveLeft(ctx context.Context, c *cluster.LocalCluster, wc *wire.Client) int64 {
	left := int64(0)
	for _, n := range c.Nodes {
		if n.Proc == nil || n.Proc.Exited() {
			continue
		}
		var pl wire.ProgressList
		if err := wc.Do(ctx, "GET", n.HTTP, wire.PathProgress, nil, &pl); err != nil {
			left++
			continue
		}
		for _, p := range pl.Rains {
			left += p.RemainingCount
		}
	}
	return left
}

// Table prints the outcome.
func Table(w io.Writer, r *Result) {
	fmt.Fprintf(w, "report       claimed %d + leftover %d + lost %d\n", r.Claimed, r.Left, r.Lost)
	fmt.Fprintf(w, "answered     %d claims, %d cents; credited %d, %d cents\n", r.Verdict.Answered, r.Verdict.AnsweredAmount,
		r.Verdict.Credits, r.Verdict.CreditAmount)
	if err := r.Verdict.Err(); err != nil {
		fmt.Fprintf(w, "invariants   VIOLATED:\n")
		for _, v := range r.Verdict.Violations {
			fmt.Fprintf(w, "  - %s\n", v)
		}
		return
	}
	fmt.Fprintln(w, "invariants   verified: every 200 journaled and credited once, no claim_id twice, sum <= budget, caps held, report balances")
}
