package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/poll"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/rain"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

const anchor = 31

// chromiumPath finds the browser: $REDRAIN_CHROMIUM, else chromium on PATH (Debian's package),
// else /usr/bin/chromium. Missing, the test fails (CI must run it) unless REDRAIN_SKIP_BROWSER=1
// on a developer's machine (CI=true refuses the skip).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("REDRAIN_SKIP_BROWSER") == "1" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REDRAIN_SKIP_BROWSER=1 is for developers' machines: CI runs the browser test")
		}
		t.Skip("REDRAIN_SKIP_BROWSER=1: the dashboard's browser test is skipped")
	}
	for _, p := range []string{os.Getenv("REDRAIN_CHROMIUM"), "chromium", "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if found, err := exec.LookPath(p); err == nil {
			return found
		}
	}
	t.Fatal("chromium not found: run scripts/ensure-chromium.sh as root (Debian's chromium package), " +
		"set REDRAIN_CHROMIUM=/path/to/chromium, or REDRAIN_SKIP_BROWSER=1 to skip this test")
	return ""
}

// page is one headless Chromium tab, with every console message it logged.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string // http://coordinator
	dir  string // screenshots go here

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

func openPage(t *testing.T, chromium, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	p := &page{t: t, ctx: ctx, base: base, dir: os.Getenv("REDRAIN_DASHBOARD_SHOTS")}
	if p.dir == "" {
		p.dir = t.TempDir()
	}
	msgs := chromedp.Console(ctx) // starts the browser
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.messages = append(p.messages, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
	})
	return p
}

// do runs browser actions, each bounded by 30 s.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// shot writes a PNG of the whole page into the screenshot directory.
func (p *page) shot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// view is what the page shows, read in one evaluation: the texts an operator reads.
type view struct {
	Login, App, Error, Rain             bool
	ErrorWord, ErrorMessage             string
	Code, Status, Meta                  string
	Claimed, Leftover, Lost, Sum, Total string
	Verdict, ClaimedCount, RateNow      string
	Points                              int
	Prepare, Start, Stop                bool // enabled
	Nodes, Rains, ReportNodes           [][]string
	URL, SessionToken, Cookies          string
	LocalStorage                        int
}

// The page's state, read with the DevTools protocol (Runtime.evaluate is not page script: the
// page's CSP does not apply to it, while every script of the page itself is held to it).
const readView = `(() => {
  const $ = id => document.getElementById(id);
  const text = id => ($(id) ? $(id).textContent.trim() : "");
  const shown = id => { const e = $(id); return !!e && !e.hidden && e.getClientRects().length > 0; };
  const rows = id => Array.from($(id).tBodies[0].rows, r => Array.from(r.cells, c => c.textContent.trim()));
  return {
    Login: shown("login"), App: shown("app"), Error: shown("error"), Rain: shown("rain"),
    ErrorWord: text("error-word"), ErrorMessage: text("error-message"),
    Code: text("rain-code"), Status: text("rain-status"), Meta: text("rain-meta"),
    Claimed: text("rep-claimed"), Leftover: text("rep-leftover"), Lost: text("rep-lost"),
    Sum: text("rep-sum"), Total: text("rep-total"), Verdict: text("rep-verdict"),
    ClaimedCount: text("rep-claimed-count"), RateNow: text("rate-now"),
    Points: Number($("rate-chart").dataset.points || 0),
    Prepare: !$("act-prepare").disabled, Start: !$("act-start").disabled, Stop: !$("act-stop").disabled,
    Nodes: rows("nodes"), Rains: rows("rains"), ReportNodes: rows("report-nodes"),
    URL: location.href, SessionToken: sessionStorage.getItem("redrain.adminToken") || "",
    Cookies: document.cookie, LocalStorage: localStorage.length,
  };
})()`

func (p *page) read() (view, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[view](readView))
}

// waitFor polls the page until cond holds, for at most timeout, and returns what it showed.
func (p *page) waitFor(what string, timeout time.Duration, cond func(v view) bool) view {
	p.t.Helper()
	var v view
	var err error
	if perr := poll.Until(p.ctx, timeout, 50*time.Millisecond, func() bool {
		v, err = p.read()
		return err == nil && cond(v)
	}); perr != nil {
		b, _ := json.MarshalIndent(v, "", " ")
		p.t.Fatalf("waiting for %s: %v (last read error %v); the page showed:\n%s", what, perr, err, b)
	}
	return v
}

// The columns of the report's node table.
const (
	colNode = iota
	colState
	colSlice
	colMovedIn
	colMovedOut
	colClaimedAmount
	colClaimed
	colRemaining
	colLeftover
	colLost
	colFlushed
	columns
)

// statusOf is the status the rain list shows for code ("" if it is not listed).
func statusOf(v view, code string) string {
	for _, row := range v.Rains {
		if row[0] == code {
			return row[1]
		}
	}
	return ""
}

// figure reads a figure as the page prints it ("1,234,567"), or -1.
func figure(s string) int64 {
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// num reads a figure as the page prints it, or fails the test.
func num(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("figure %q: %v", s, err)
	}
	return n
}

func fmtNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// apiError is what the API itself answers to a request: the words the page must show.
func apiError(t *testing.T, adm *cluster.Admin, method, path, body string) *cluster.APIError {
	t.Helper()
	var in any
	if body != "" {
		in = json.RawMessage(body)
	}
	err := adm.Do(context.Background(), method, path, in, nil)
	var e *cluster.APIError
	if !errors.As(err, &e) || e.Word == "" || e.Message == "" {
		t.Fatalf("%s %s %s: want an API error, got %v", method, path, body, err)
	}
	return e
}

func TestDashboard(t *testing.T) {
	chromium := chromiumPath(t)
	began := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 2})
	step("cluster up")
	base := "http://" + c.CoordHTTP
	adm := c.Admin()
	ctx := context.Background()
	p := openPage(t, chromium, base)

	// Two rains from before, so that the list has something in it: one cancelled, one run to the end.
	cancelled, err := adm.Create(ctx, rain.Config{AnchorID: anchor, RoomID: 3, TotalAmount: 5000, TotalCount: 50, MaxPerUser: 1, DurationS: 60, Remark: "called off"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, cancelled.Code, "stop", anchor); err != nil {
		t.Fatal(err)
	}
	earlier, err := adm.Create(ctx, rain.Config{AnchorID: anchor, RoomID: 3, TotalAmount: 20000, TotalCount: 100, MaxPerUser: 1, DurationS: 60})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"prepare", "start", "stop"} {
		if _, err := adm.Act(ctx, earlier.Code, op, anchor); err != nil {
			t.Fatal(err)
		}
	}

	// The page and its assets need no token; the page asks for it.
	p.do("open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("login")))
	p.shot("dashboard-login.png")
	step("page open")

	// A wrong token: the API's 401, in the API's words; still logged out.
	want := apiError(t, cluster.NewAdmin(c.CoordHTTP, "not-the-token"), "GET", "/v1/nodes", "")
	p.do("log in with a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-the-token"), chromedp.Click(chromedp.ID("login-submit")))
	v := p.waitFor("the 401 shown", 20*time.Second, func(v view) bool { return v.Error })
	if v.ErrorWord != want.Word || v.ErrorMessage != want.Message || !v.Login || v.App || v.SessionToken != "" {
		t.Fatalf("wrong token: page shows %q %q (login %v, app %v, stored %q), the API says %q %q",
			v.ErrorWord, v.ErrorMessage, v.Login, v.App, v.SessionToken, want.Word, want.Message)
	}

	// The right token: the app, the nodes and the rains; the token is in sessionStorage only.
	p.do("log in", chromedp.SetValue(chromedp.ID("token"), c.Opts.AdminToken),
		chromedp.Click(chromedp.ID("login-submit")))
	v = p.waitFor("logged in, two nodes alive, two rains listed", 20*time.Second, func(v view) bool {
		return v.App && !v.Login && !v.Error && len(v.Nodes) == 2 && len(v.Rains) == 2 &&
			v.Nodes[0][2] == "alive" && v.Nodes[1][2] == "alive" && statusOf(v, earlier.Code) == "settled" &&
			statusOf(v, cancelled.Code) == "cancelled"
	})
	if v.URL != base+"/" || v.SessionToken != c.Opts.AdminToken || v.Cookies != "" || v.LocalStorage != 0 {
		t.Fatalf("after login: URL %q, sessionStorage %q, cookies %q, localStorage %d items", v.URL, v.SessionToken, v.Cookies, v.LocalStorage)
	}
	p.shot("dashboard-rains.png")
	step("logged in")

	// A bad total: the API's 400 in its words, and nothing created.
	bad := fmt.Sprintf(`{"anchor_id":%d,"room_id":7,"total_amount":5,"total_count":10,"max_per_user":1,"duration_s":600,"min_claim_interval_ms":0,"algorithm":"double_average","remark":"browser test"}`, anchor)
	// (the body the page sends for the form below, field for field)
	want = apiError(t, adm, "POST", "/v1/rains", bad)
	fill := func(amount, count, maxPer string) {
		p.do("fill the create form",
			chromedp.SetValue(chromedp.ID("f-anchor_id"), strconv.Itoa(anchor)),
			chromedp.SetValue(chromedp.ID("f-room_id"), "7"),
			chromedp.SetValue(chromedp.ID("f-total_amount"), amount),
			chromedp.SetValue(chromedp.ID("f-total_count"), count),
			chromedp.SetValue(chromedp.ID("f-max_per_user"), maxPer),
			chromedp.SetValue(chromedp.ID("f-duration_s"), "600"),
			chromedp.SetValue(chromedp.ID("f-remark"), "browser test"),
			chromedp.Click(chromedp.ID("create-submit")))
	}
	fill("5", "10", "1")
	v = p.waitFor("the 400 shown", 20*time.Second, func(v view) bool { return v.Error })
	if v.ErrorWord != want.Word || v.ErrorMessage != want.Message || v.Rain {
		t.Fatalf("bad total: page shows %q %q (rain panel %v), the API says %q %q", v.ErrorWord, v.ErrorMessage, v.Rain, want.Word, want.Message)
	}
	var list struct{ Rains []adminapi.Rain }
	if err := adm.Do(ctx, "GET", "/v1/rains", nil, &list); err != nil || len(list.Rains) != 2 {
		t.Fatalf("after a refused create: %d rains (%v), want 2", len(list.Rains), err)
	}

	// A good rain: created, prepared, started from the page.
	const total, count, maxPer, users = 2_000_000, 200_000, 100, 5000
	fill(strconv.Itoa(total), strconv.Itoa(count), strconv.Itoa(maxPer))
	v = p.waitFor("the new rain, waiting", 20*time.Second, func(v view) bool {
		return v.Rain && !v.Error && v.Status == "waiting" && v.Prepare && len(v.Rains) == 3
	})
	code := v.Code
	step("rain created")
	r, err := adm.Get(ctx, code)
	if err != nil {
		t.Fatalf("the page's rain %q: %v", code, err)
	}
	if r.AnchorID != anchor || r.RoomID != 7 || r.TotalAmount != total || r.TotalCount != count || r.MaxPerUser != maxPer ||
		r.DurationS != 600 || r.Remark != "browser test" || r.Algorithm != rain.DoubleAverage {
		t.Fatalf("created from the page: %+v", r)
	}
	p.do("prepare", chromedp.Click(chromedp.ID("act-prepare")))
	v = p.waitFor("prepared, a slice on each node", 30*time.Second, func(v view) bool {
		return v.Status == "prepared" && v.Start && len(v.ReportNodes) == 2
	})
	p.do("start", chromedp.Click(chromedp.ID("act-start")))
	p.waitFor("raining", 20*time.Second, func(v view) bool { return v.Status == "raining" && v.Stop })

	// Claims rise on the page while a load runs, and the chart draws them.
	load := tap.StartTapper(c, code, users, 4)
	step("raining")
	stopped := false
	defer func() {
		if !stopped {
			load.Stop()
		}
	}()
	var first int64
	v = p.waitFor("claims on the page", 30*time.Second, func(v view) bool {
		first = figure(v.ClaimedCount)
		return first > 0
	})
	points := 6 // a poll a second
	if os.Getenv("REDRAIN_DASHBOARD_SHOTS") != "" {
		points = 25 // the README's chart: a longer line
	}
	v = p.waitFor("claims rising, the chart drawn", time.Duration(points+30)*time.Second, func(v view) bool {
		return figure(v.ClaimedCount) > first && v.Points >= points && figure(v.RateNow) > 0
	})
	for _, row := range v.ReportNodes {
		if row[colState] != "alive" || num(t, row[colClaimed]) <= 0 || num(t, row[colRemaining]) <= 0 || row[colLost] != "0" {
			t.Fatalf("a node's line while raining: %v", row)
		}
	}
	if v.Verdict != "balanced" {
		t.Fatalf("while raining the page says %q: %s + %s + %s = %s of %s", v.Verdict, v.Claimed, v.Leftover, v.Lost, v.Sum, v.Total)
	}
	p.shot("dashboard-live.png")
	step("claims rising on the page")

	// Stop from the page under load; then the report, settled, balances and matches the API's.
	p.do("stop", chromedp.Click(chromedp.ID("act-stop")))
	p.waitFor("finished", 20*time.Second, func(v view) bool { return v.Status == "finished" || v.Status == "settled" })
	answers := load.Stop()
	stopped = true
	rep := verify(t, c, code, answers, total, count, maxPer)
	step("stopped, verified")
	v = p.waitFor("the settled report, as the API has it", 30*time.Second, func(v view) bool {
		return v.Status == "settled" && statusOf(v, code) == "settled" && v.Claimed == fmtNum(rep.ClaimedAmount) && v.Leftover == fmtNum(rep.LeftoverAmount) &&
			v.Lost == fmtNum(rep.LostAmount)
	})
	if v.Total != fmtNum(total) || v.Sum != fmtNum(total) || v.Verdict != "balanced" || v.Lost != "0" ||
		num(t, v.Claimed) <= 0 || num(t, v.Leftover) <= 0 || v.ClaimedCount != fmtNum(rep.ClaimedCount) {
		t.Fatalf("settled: the page says %s + %s + %s = %s of %s, %q; the API %+v", v.Claimed, v.Leftover, v.Lost, v.Sum, v.Total, v.Verdict, rep)
	}
	for _, row := range v.ReportNodes {
		if len(row) != columns {
			t.Fatalf("node line %v: want %d columns", row, columns)
		}
		var n *adminapi.NodeReport
		for i := range rep.Nodes {
			if rep.Nodes[i].Node == row[colNode] {
				n = &rep.Nodes[i]
			}
		}
		if n == nil || row[colSlice] != fmtNum(n.SliceAmount) || row[colMovedIn] != fmtNum(n.MovedInAmount) ||
			row[colMovedOut] != fmtNum(n.MovedOutAmount) || row[colClaimedAmount] != fmtNum(n.ClaimedAmount) ||
			row[colClaimed] != fmtNum(n.ClaimedCount) || row[colLeftover] != fmtNum(n.LeftoverAmount) ||
			row[colLost] != fmtNum(n.LostAmount) || row[colFlushed] != fmtNum(n.FlushedAmount) ||
			row[colRemaining] != fmtNum(n.SliceCount+n.MovedInCount-n.MovedOutCount-n.ClaimedCount) {
			t.Fatalf("node line %v, the API's %+v", row, n)
		}
	}
	if v.Stop || v.Start || v.Prepare {
		t.Fatalf("a settled rain offers an action: prepare %v start %v stop %v", v.Prepare, v.Start, v.Stop)
	}
	p.shot("dashboard-settled.png")
	step("settled on the page")
	for _, other := range []string{earlier.Code, cancelled.Code} { // the rains made through the API balance too
		rep, err := adm.Report(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range check.Report(rep) {
			t.Errorf("rain %s: %s", other, s)
		}
	}

	p.checkConsole()
}

// checkConsole fails the test on any script error or CSP violation the page logged. Failed
// requests (the 401 and 400 above) are network entries, and expected.
func (p *page) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.messages {
		if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") ||
			(m.Type == chromedp.ConsoleError && m.Source != "network") {
			p.t.Errorf("the page logged: %s (source %q, %s:%d)", m.String(), m.Source, m.URL, m.Line)
		}
	}
}

// verify checks SPEC's invariants against what the clients were answered, once Redis holds
// every journaled claim, and the report's own; it returns the report.
func verify(t *testing.T, c *cluster.LocalCluster, code string, answers []check.Answer, total, count int64, maxPer int) *adminapi.Report {
	t.Helper()
	var rep *adminapi.Report
	testcluster.Eventually(t, 60*time.Second, "redis == journals", func() bool {
		r, err := c.Admin().Report(context.Background(), code)
		if err != nil {
			return false
		}
		for _, n := range r.Nodes {
			if n.State != "alive" {
				return false
			}
		}
		rep = r
		return r.CaughtUp()
	})
	credits, totals, nodes, err := check.ReadRedis(context.Background(), c.Client(), code)
	if err != nil {
		t.Fatal(err)
	}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: code, TotalAmount: total, TotalCount: count, MaxPerUser: maxPer})
	for _, s := range v.Violations {
		t.Error(s)
	}
	for _, s := range check.Report(rep) {
		t.Error(s)
	}
	if v.Answered == 0 || rep.ClaimedAmount < v.AnsweredAmount {
		t.Errorf("report claims %d cents, clients were paid %d in %d answers", rep.ClaimedAmount, v.AnsweredAmount, v.Answered)
	}
	t.Logf("%d claims answered (%d cents); report: claimed %d + leftover %d + lost %d = total %d",
		v.Answered, v.AnsweredAmount, rep.ClaimedAmount, rep.LeftoverAmount, rep.LostAmount, rep.TotalAmount)
	return rep
}
