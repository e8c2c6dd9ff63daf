package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"redrain/adminapi"
	"redrain/internal/attack"
	"redrain/internal/check"
	"redrain/rain"
)

// Results are one bench run, as printed (Table) and written to results.json.
type Results struct {
	Code          string           `json:"code"`
	Cluster       string           `json:"cluster"`                // "local" or the coordinator's URL
	Nodes         []string         `json:"nodes"`                  // claim addresses
	RedisTarget   string           `json:"redis_target,omitempty"` // "redis-server", "Redis Cluster host:port,..."
	Rain          rain.Config      `json:"rain"`
	Load          LoadSpec         `json:"load"`
	PrepareS      float64          `json:"prepare_s"` // the prepare call's wall time
	StartedAt     time.Time        `json:"started_at"`
	ElapsedS      float64          `json:"elapsed_s"` // first send to last answer
	Stop          string           `json:"stop"`      // why the load stopped (Stop* constants)
	Answers       int64            `json:"answers"`
	Claims        int64            `json:"claims"` // 200 answers
	ClaimsPerSec  float64          `json:"claims_per_s"`
	AnswersPerSec float64          `json:"answers_per_s"`
	LoadCPUS      float64          `json:"load_cpu_s"` // bench's own CPU time over the load (the driver's)
	ByStatus      map[string]int64 `json:"by_status"`  // "ok", or the error word, "network", "http_NNN"
	ClaimLatency  Latency          `json:"claim_latency_us"`
	AnswerLatency Latency          `json:"answer_latency_us"`
	Amounts       Amounts          `json:"amounts"` // of the 200 answers, cents
	// Drained: nothing is left to claim — every node answered exhausted, or every packet of the
	// rain was handed out (with stock following the taps, a node whose users all reached
	// max_per_user may never answer exhausted although its stock went to the others).
	Drained bool `json:"drained"`
	// FirstExhaustedS is when the first exhausted answer from any node arrived, seconds from the
	// load's start (null: none came). BeforeExhausted are the 200s that arrived before it (every
	// 200 when none came), BeforeExhaustedPct those as a percentage of the rain's total_count.
	FirstExhaustedS    *float64     `json:"first_exhausted_s"`
	BeforeExhausted    int64        `json:"claims_before_exhausted"`
	BeforeExhaustedPct float64      `json:"before_exhausted_pct"`
	PerNode            []NodeResult `json:"per_node"` // in Nodes order
	SettleWaitS        float64      `json:"settle_wait_s"`
	Journaled          Figures      `json:"journaled"` // the nodes' journals (or the report's claimed figures)
	Redis              Figures      `json:"redis"`     // redrain:{CODE}:totals
	// JournalFiles are the rain's claims in the nodes' journal files, read after the nodes stopped
	// (local cluster only; null on a running cluster, whose files bench cannot read).
	JournalFiles *Figures         `json:"journal_files,omitempty"`
	Report       *adminapi.Report `json:"report,omitempty"`
	Series       []Interval       `json:"series"`
	Attack       *AttackResults   `json:"attack,omitempty"` // bench run --attack
	Verified     bool             `json:"verified"`
	Violations   []string         `json:"violations"`
}

// NodeResult is what one node answered and held at the end of a run.
type NodeResult struct {
	Addr  string `json:"addr"`            // claim address
	ID    string `json:"id,omitempty"`    // node id (from the coordinator)
	State string `json:"state,omitempty"` // the report's: alive, suspect, dead or left
	// From the load's answers.
	Answers         int64    `json:"answers"`
	Claims          int64    `json:"claims"`                  // 200s
	BeforeExhausted int64    `json:"claims_before_exhausted"` // 200s that arrived before the first exhausted answer from any node
	Exhausted       int64    `json:"exhausted"`               // exhausted answers
	FirstExhaustedS *float64 `json:"first_exhausted_s"`       // its first exhausted answer, s from the load's start; null: none
	// From the node's public view (GET /v1/rains/{code}) once the rain stopped and Redis caught up.
	RemainingCount  int64  `json:"remaining_count"`
	RemainingAmount int64  `json:"remaining_amount"`
	ViewError       string `json:"view_error,omitempty"` // the view could not be read
	// From the coordinator's report.
	LeftoverAmount int64 `json:"leftover_amount"`
	LostAmount     int64 `json:"lost_amount"`
}

// LoadSpec is the load a run applied.
type LoadSpec struct {
	Mode    string  `json:"mode"`    // "closed" or "open"
	Balance Balance `json:"balance"` // how taps were spread over the nodes
	Users   int     `json:"users"`
	Conns   int     `json:"conns"`
	Rate    float64 `json:"rate,omitempty"`
	TimeS   float64 `json:"time_s"`
}

// SpecOf is the load o applies, as results record it.
func SpecOf(o LoadOptions) LoadSpec {
	o = o.withDefaults()
	s := LoadSpec{Mode: "closed", Balance: o.Balance, Users: o.Users, Conns: o.Conns, Rate: o.Rate, TimeS: o.Time.Seconds()}
	if o.Rate > 0 {
		s.Mode = "open"
	}
	return s
}

// Latency summarises a histogram in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p999"`
	Max   int64   `json:"max"`
}

// Amounts summarise the amounts clients got.
type Amounts struct {
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	Max  int64   `json:"max"`
	Sum  int64   `json:"sum"`
}

// Figures are a claim count and its cents.
type Figures struct {
	Count  int64 `json:"count"`
	Amount int64 `json:"amount"`
}

// Summarize reads the percentiles of h.
func Summarize(h *hdrhistogram.Histogram) Latency {
	return Latency{Count: h.TotalCount(), Mean: h.Mean(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max()}
}

// FillLoad sets the answer-derived fields of r from a load.
func (r *Results) FillLoad(l *LoadResult) {
	r.StartedAt, r.ElapsedS, r.Stop, r.Series = l.Start, l.Elapsed.Seconds(), l.Stop, l.Series
	r.LoadCPUS = l.CPU.Seconds()
	r.Drained = l.Drained()
	r.ByStatus = map[string]int64{}
	r.Amounts = Amounts{}
	for _, a := range l.Answers {
		r.ByStatus[check.StatusWord(a)]++
		if a.Status != 200 {
			continue
		}
		if r.Claims == 0 || a.Amount < r.Amounts.Min {
			r.Amounts.Min = a.Amount
		}
		r.Amounts.Max = max(r.Amounts.Max, a.Amount)
		r.Amounts.Sum += a.Amount
		r.Claims++
	}
	r.Answers = int64(len(l.Answers))
	if r.Claims > 0 {
		r.Amounts.Mean = float64(r.Amounts.Sum) / float64(r.Claims)
	}
	r.Drained = r.Drained || (r.Rain.TotalCount > 0 && r.Claims == r.Rain.TotalCount)
	if r.ElapsedS > 0 {
		r.ClaimsPerSec, r.AnswersPerSec = float64(r.Claims)/r.ElapsedS, float64(r.Answers)/r.ElapsedS
	}
	r.ClaimLatency, r.AnswerLatency = Summarize(l.ClaimLatency), Summarize(l.Latency)
	r.fillExhaustion(l.Answers)
}

// fillExhaustion sets the first exhausted answer's time and the 200s before it, overall and per
// node (one NodeResult per address of r.Nodes, and one more per other address that answered).
func (r *Results) fillExhaustion(answers []check.Answer) {
	r.PerNode = make([]NodeResult, len(r.Nodes))
	at := make(map[string]int, len(r.Nodes))
	for i, a := range r.Nodes {
		r.PerNode[i].Addr, at[a] = a, i
	}
	first := time.Duration(-1)
	for _, a := range answers {
		i, ok := at[a.Node]
		if !ok {
			i, at[a.Node] = len(r.PerNode), len(r.PerNode)
			r.PerNode = append(r.PerNode, NodeResult{Addr: a.Node})
		}
		n := &r.PerNode[i]
		n.Answers++
		switch {
		case a.Status == 200:
			n.Claims++
		case a.Error == "exhausted":
			n.Exhausted++
			if s := a.At.Seconds(); n.FirstExhaustedS == nil || s < *n.FirstExhaustedS {
				n.FirstExhaustedS = &s
			}
			if first < 0 || a.At < first {
				first = a.At
			}
		}
	}
	r.FirstExhaustedS, r.BeforeExhausted = nil, 0
	if first >= 0 {
		s := first.Seconds()
		r.FirstExhaustedS = &s
	}
	for _, a := range answers {
		if a.Status == 200 && (first < 0 || a.At < first) {
			r.PerNode[at[a.Node]].BeforeExhausted++
			r.BeforeExhausted++
		}
	}
	r.BeforeExhaustedPct = 0
	if r.Rain.TotalCount > 0 {
		r.BeforeExhaustedPct = 100 * float64(r.BeforeExhausted) / float64(r.Rain.TotalCount)
	}
}

// WriteJSON writes r to dir/results.json (creating dir).
func (r *Results) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return writeJSON(filepath.Join(dir, "results.json"), r)
}

// writeJSON writes v, indented, to path.
func writeJSON(path string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// Table prints r as the two-column results table.
func Table(w io.Writer, r *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	c := r.Rain
	row("rain", "%s: %s packets, %s cents, %s, max %d per user", r.Code, Commas(c.TotalCount), Commas(c.TotalAmount),
		algorithmName(c.Algorithm), c.MaxPerUser)
	row("cluster", "%s, %d node(s)%s", r.Cluster, len(r.Nodes), map[bool]string{true: ", " + r.RedisTarget}[r.RedisTarget != ""])
	row("load", "%s", loadLine(r.Load))
	row("stopped", "%s after %.2f s", r.Stop, r.ElapsedS)
	row("claims/s", "%s  (%s claims; %s answers, %s/s)", Commas(int64(r.ClaimsPerSec+0.5)), Commas(r.Claims),
		Commas(r.Answers), Commas(int64(r.AnswersPerSec+0.5)))
	loadRows(row, r)
	row("exhausted", "%s", exhaustedLine(r))
	nodeRows(row, r)
	row("amounts", "min %s  mean %.1f  max %s cents", Commas(r.Amounts.Min), r.Amounts.Mean, Commas(r.Amounts.Max))
	row("budget", "%s", budgetLine(r))
	eq := map[bool]string{true: "==", false: "!="}[r.Redis == r.Journaled]
	row("redis", "%s claims, %s cents %s journals %s / %s (waited %.2f s)", Commas(r.Redis.Count), Commas(r.Redis.Amount),
		eq, Commas(r.Journaled.Count), Commas(r.Journaled.Amount), r.SettleWaitS)
	if f := r.JournalFiles; f != nil {
		row("journal db", "%s claims, %s cents in the files, read after the nodes stopped: no packet twice, amounts as seeded",
			Commas(f.Count), Commas(f.Amount))
	} else {
		row("journal db", "not read (a running cluster's files are not bench's to read)")
	}
	if a := r.Attack; a != nil {
		row("attack", "%s at %s req/s, on/off every %.1f s: %s requests", a.Kind, Commas(int64(a.Rate)), a.WindowS, Commas(a.Requests))
		row("attack answers", "%s", statusLine(a.ByWord))
		row("attack packets", "%s (%s cents), cap %s, most to one attack user %d", Commas(a.Packets), Commas(a.Amount),
			Commas(a.Cap), a.MaxPerBot)
		if a.Kind == attack.KindIdle {
			row("idle conns", "%s held, %s refused at dial", Commas(int64(a.IdleHeld)), Commas(int64(a.IdleRefused)))
		}
		ratio := 0.0
		if a.HonestP99Off > 0 {
			ratio = float64(a.HonestP99On) / float64(a.HonestP99Off)
		}
		row("honest p99", "%s under attack (%s answers), %s without (%s): %.2fx", Micros(a.HonestP99On), Commas(a.HonestOn),
			Micros(a.HonestP99Off), Commas(a.HonestOff), ratio)
		if len(a.Violations) == 0 {
			row("attack verdict", "held: no attack user above its cap, no forged/foreign/oversized claim paid")
		} else {
			row("attack verdict", "BROKEN (%d)", len(a.Violations))
		}
	}
	if r.Verified {
		row("invariants", "verified: claim_ids unique, every answer credited once, sum <= budget%s, caps held, Redis == journals == report",
			map[bool]string{true: " (== when drained)", false: ""}[r.Drained])
	} else {
		row("invariants", "VIOLATED (%d)", len(r.Violations))
		for _, v := range r.Violations {
			row("", "- %s", v)
		}
	}
	return tw.Flush()
}

// loadRows are the rows of what the load driver saw (after the claims/s row).
func loadRows(row func(k, format string, args ...any), r *Results) {
	row("answers", "%s", statusLine(r.ByStatus))
	row("latency ok", "%s", latencyLine(r.ClaimLatency))
	row("latency all", "%s", latencyLine(r.AnswerLatency))
	row("load CPU", "%.2f s: %.1f µs per answer (bench's own, user+sys)", r.LoadCPUS, r.LoadCPUPerAnswerUS())
}

// LoadCPUPerAnswerUS is the driver's CPU time per answer, microseconds (0 without answers).
func (r *Results) LoadCPUPerAnswerUS() float64 {
	if r.Answers == 0 {
		return 0
	}
	return r.LoadCPUS * 1e6 / float64(r.Answers)
}

// LoadTable prints what a bare load (bench load: no rain set-up, no checks) saw.
func LoadTable(w io.Writer, r *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("target", "%s, rain %s", strings.Join(r.Nodes, ", "), r.Code)
	row("load", "%s", loadLine(r.Load))
	row("stopped", "%s after %.2f s", r.Stop, r.ElapsedS)
	row("answers/s", "%s  (%s answers; %s claims, %s/s)", Commas(int64(r.AnswersPerSec+0.5)), Commas(r.Answers),
		Commas(r.Claims), Commas(int64(r.ClaimsPerSec+0.5)))
	loadRows(row, r)
	row("exhausted", "%s", exhaustedLine(r))
	nodeRows(row, r)
	return tw.Flush()
}

func algorithmName(a rain.Algorithm) string {
	if a == "" {
		return string(rain.DoubleAverage)
	}
	return string(a)
}

func loadLine(l LoadSpec) string {
	s := fmt.Sprintf("%s users, %s loop, %d conns, balance %s", Commas(int64(l.Users)), l.Mode, l.Conns,
		cmp.Or(l.Balance, BalanceSticky))
	if l.Mode == "open" {
		s += fmt.Sprintf(" at %s taps/s", Commas(int64(l.Rate)))
	}
	return s + fmt.Sprintf(", at most %s", time.Duration(l.TimeS*float64(time.Second)).Round(time.Millisecond))
}

// nodeRows are a row per node: "node ID", or "node N" (from 1) when the id is unknown.
func nodeRows(row func(k, format string, args ...any), r *Results) {
	for i, n := range r.PerNode {
		row("node "+cmp.Or(n.ID, strconv.Itoa(i+1)), "%s", nodeLine(n))
	}
}

// exhaustedLine says when the first exhausted answer came and what was handed out before it.
func exhaustedLine(r *Results) string {
	of := ""
	if r.Rain.TotalCount > 0 {
		of = fmt.Sprintf(": %.1f%% of %s", r.BeforeExhaustedPct, Commas(r.Rain.TotalCount))
	}
	if r.FirstExhaustedS == nil {
		return fmt.Sprintf("never answered; %s packets handed out%s", Commas(r.BeforeExhausted), of)
	}
	return fmt.Sprintf("first at %.2f s; %s packets handed out before it%s", *r.FirstExhaustedS, Commas(r.BeforeExhausted), of)
}

// nodeLine is one node's row: its answers, its first exhausted, what it held at the end.
func nodeLine(n NodeResult) string {
	s := fmt.Sprintf("%s  ok %s (%s before the first exhausted)  exhausted %s", n.Addr, Commas(n.Claims),
		Commas(n.BeforeExhausted), Commas(n.Exhausted))
	if n.FirstExhaustedS != nil {
		s += fmt.Sprintf(" (first at %.2f s)", *n.FirstExhaustedS)
	}
	switch {
	case n.ViewError != "":
		s += "  remaining: " + n.ViewError
	case n.ID != "":
		s += fmt.Sprintf("  remaining %s packets / %s cents", Commas(n.RemainingCount), Commas(n.RemainingAmount))
	}
	if n.State != "" {
		s += fmt.Sprintf("  leftover %s  lost %s cents (%s)", Commas(n.LeftoverAmount), Commas(n.LostAmount), n.State)
	}
	return s
}

func statusLine(m map[string]int64) string {
	words := make([]string, 0, len(m))
	for w := range m {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if (words[i] == "ok") != (words[j] == "ok") {
			return words[i] == "ok"
		}
		if m[words[i]] != m[words[j]] {
			return m[words[i]] > m[words[j]]
		}
		return words[i] < words[j]
	})
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = w + " " + Commas(m[w])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "  ")
}

func latencyLine(l Latency) string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", Micros(l.P50), Micros(l.P90), Micros(l.P99),
		Micros(l.P999), Micros(l.Max))
}

func budgetLine(r *Results) string {
	s := fmt.Sprintf("clients got %s of %s cents (%.1f%%)", Commas(r.Amounts.Sum), Commas(r.Rain.TotalAmount),
		100*float64(r.Amounts.Sum)/float64(max(r.Rain.TotalAmount, 1)))
	if rep := r.Report; rep != nil {
		s += fmt.Sprintf("; report: claimed %s, leftover %s, lost %s, %s", Commas(rep.ClaimedAmount),
			Commas(rep.LeftoverAmount), Commas(rep.LostAmount), rep.Status)
	}
	return s
}

// Micros formats microseconds as µs below 1 ms, ms (2 decimals) below 1 s, s above.
func Micros(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%.2fs", float64(us)/1e6)
}

// Commas formats n with thousands separators: 1234567 -> "1,234,567".
func Commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
