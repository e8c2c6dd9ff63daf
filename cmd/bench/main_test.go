package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/bench"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testredis"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

// `bench run` as a user runs it: the built binary starts a local 3-node cluster, drains a small
// rain, verifies every invariant, exits 0, writes results.json, and leaves nothing running.
func TestBenchRunLocal(t *testing.T) {
	bin := testcluster.Bin(t, "bench")
	out, dir := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// --time is only a cap (the run ends when the rain is drained): generous for a loaded machine.
	cmd := exec.CommandContext(ctx, bin, "run", "--nodes", "3", "--count", "3000", "--amount", "90000",
		"--max-per-user", "5", "--users", "1000", "--conns", "16", "--time", "90s", "--out", out, "--dir", dir,
		"--fast-gossip", "--progress", "plain", "--interval", "500ms")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("bench run: %v\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "invariants   verified") {
		t.Fatalf("table does not say verified")
	}
	var res bench.Results
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || !res.Drained || res.Claims != 3000 || res.Amounts.Sum != 90_000 || len(res.Nodes) != 3 {
		t.Fatalf("results.json: verified %v drained %v claims %d sum %d nodes %v violations %v", res.Verified, res.Drained,
			res.Claims, res.Amounts.Sum, res.Nodes, res.Violations)
	}
	// Nothing left running: the nodes' claim addresses refuse connections.
	for _, a := range res.Nodes {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("node %s still accepts connections after bench exited", a)
		}
	}
}

// `bench run --attack forged` on a tiny rain: the attack section is printed and written, no
// forged or foreign claim paid, every invariant verified, exit 0.
func TestBenchRunAttack(t *testing.T) {
	bin := testcluster.Bin(t, "bench")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--attack", "forged", "--attack-rate", "500", "--nodes", "1",
		"--count", "2000", "--amount", "40000", "--max-per-user", "5", "--users", "200", "--conns", "8", "--rate", "200",
		"--time", "3s", "--out", out, "--progress", "off", "--fast-gossip")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("bench run --attack forged: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"attack answers", "honest p99", "attack verdict  held", "invariants      verified"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	var res bench.Results
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		t.Fatal(err)
	}
	a := res.Attack
	if a == nil || a.Kind != "forged" || a.Requests == 0 || a.Packets != 0 || len(a.Violations) != 0 ||
		a.ByWord["bad_token"]+a.ByWord["wrong_room"]+a.ByWord["rate_limited"] != a.Requests || a.HonestOn == 0 || a.HonestOff == 0 {
		t.Fatalf("attack section %+v", a)
	}
	if !res.Verified || res.Claims == 0 || res.ByStatus["bad_token"] != 0 {
		t.Fatalf("results.json: verified %v claims %d by status %v", res.Verified, res.Claims, res.ByStatus)
	}
}

// `bench events` as a user runs it: viewers on a 2-node local cluster all hear the start,
// with a short claim load beside them, every invariant verified; events.json written.
func TestBenchEventsLocal(t *testing.T) {
	bin := testcluster.Bin(t, "bench")
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "events", "--subscribers", "200", "--nodes", "2", "--claim-time", "1s",
		"--users", "500", "--conns", "8", "--out", out, "--dir", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("bench events: %v\nstderr:\n%s", err, stderr.String())
	}
	var res bench.EventsResult
	b, err := os.ReadFile(filepath.Join(out, "events.json"))
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 200 || res.Received != 200 || res.PerNode != 100 || res.Latency.Count != 200 ||
		!res.Verified || len(res.ClaimRuns) != 3 || res.ClaimRuns[1] <= 0 || res.RSSAfter <= 0 {
		t.Fatalf("events.json: %+v", res)
	}
}

func TestDispatch(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--help"}, exitOK, "bench run [flags]"},
		{[]string{"help", "run"}, exitOK, "-max-per-user"},
		{[]string{"run", "--help"}, exitOK, "-coordinator"},
		{nil, exitUsage, ""},
		{[]string{"frobnicate"}, exitUsage, ""},
		{[]string{"run", "--nodes", "0"}, exitUsage, ""},
		{[]string{"run", "--bogus"}, exitUsage, ""},
		{[]string{"run", "--attack", "nuke"}, exitUsage, ""},
		{[]string{"run", "--coordinator", "http://127.0.0.1:1", "--redis", "redis://127.0.0.1:1"}, exitUsage, ""},
		{[]string{"run", "--coordinator", "http://127.0.0.1:1", "--admin-token", "t", "--redis", "redis://127.0.0.1:1",
			"--redis-cluster", "127.0.0.1:1"}, exitUsage, ""},
		{[]string{"run", "--coordinator", "http://127.0.0.1:1", "--admin-token", "t", "--redis-cluster", "local"}, exitUsage, ""},
		{[]string{"run", "--coordinator", "http://127.0.0.1:1", "--admin-token", "t"}, exitUsage, ""}, // no Redis to check
		{[]string{"--help"}, exitOK, "bench compare [flags]"},
		{[]string{"compare", "--help"}, exitOK, "-prepare-count"},
		{[]string{"help", "baseline"}, exitOK, "-max-per-user"},
		{[]string{"compare", "--nodes", "0"}, exitUsage, ""},
		{[]string{"compare", "--rounds", "0"}, exitUsage, ""},
		{[]string{"compare", "--prepare-count", "-1"}, exitUsage, ""},
		{[]string{"compare", "extra"}, exitUsage, ""},
		{[]string{"baseline", "--count", "-1"}, exitUsage, ""},
		{[]string{"baseline", "--redis", "redis://127.0.0.1:1/0"}, exitFailed, ""},
		{[]string{"help", "load"}, exitOK, "-cpuprofile"},
		{[]string{"load", "--code", "x"}, exitUsage, ""}, // no --nodes
		{[]string{"load", "--nodes", "127.0.0.1:1", "--code", "x", "--conns", "0"}, exitUsage, ""},
		{[]string{"run", "--help"}, exitOK, "-cpuprofile"},
		{[]string{"load", "--nodes", "127.0.0.1:1", "--code", "x", "--load-procs", "0"}, exitUsage, ""},
		{[]string{"run", "--load-procs", "-1"}, exitUsage, ""},
		{[]string{"--help"}, exitOK, "bench ceiling [flags]"},
		{[]string{"help", "ceiling"}, exitOK, "-http"},
		{[]string{"ceiling", "extra"}, exitUsage, ""},
		{[]string{"ceiling", "--http", "127.0.0.1:99999"}, exitFailed, ""},
		{[]string{"--help"}, exitOK, "bench events [flags]"},
		{[]string{"help", "events"}, exitOK, "-subscribers"},
		{[]string{"events", "--subscribers", "-1"}, exitUsage, ""},
		{[]string{"events", "--claim-time", "-1s"}, exitUsage, ""},
		{[]string{"events", "extra"}, exitUsage, ""},
	} {
		var stdout, stderr bytes.Buffer
		if got := dispatch(context.Background(), c.args, &stdout, &stderr); got != c.code || !strings.Contains(stdout.String(), c.out) {
			t.Errorf("bench %v: exit %d, want %d; stdout %q stderr %q", c.args, got, c.code, stdout.String(), stderr.String())
		}
	}
}

func TestParseRun(t *testing.T) {
	env := map[string]string{"REDRAIN_USERS": "777", "REDRAIN_ADMIN_TOKEN": "tok"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o, err := parseRun([]string{"--nodes", "5", "--users", "9", "--duration", "1500ms", "--rate", "2000"}, lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.LocalNodes != 5 || o.Load.Users != 9 || o.AdminToken != "tok" || o.Rain.DurationS != 2 || o.Load.Rate != 2000 {
		t.Fatalf("%+v", o)
	}
	o, err = parseRun([]string{"--coordinator", "http://c:9090", "--nodes", "http://a:1, b:2"}, lookup, nil)
	if err != nil || o.LocalNodes != 0 || strings.Join(o.NodeAddrs, " ") != "a:1 b:2" || o.Load.Users != 777 {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = parseRun([]string{"--coordinator", "http://c:9090"}, lookup, nil)
	if err != nil || len(o.NodeAddrs) != 0 || o.Load.Balance != bench.BalanceSticky {
		t.Fatalf("coordinator without --nodes: %+v %q %v", o.NodeAddrs, o.Load.Balance, err)
	}
	if o, err = parseRun([]string{"--balance", "skew"}, lookup, nil); err != nil || o.Load.Balance != bench.BalanceSkew {
		t.Fatalf("--balance skew: %q %v", o.Load.Balance, err)
	}
	env["REDRAIN_BALANCE"] = "one"
	if o, err = parseRun(nil, lookup, nil); err != nil || o.Load.Balance != bench.BalanceOne {
		t.Fatalf("REDRAIN_BALANCE=one: %q %v", o.Load.Balance, err)
	}
	delete(env, "REDRAIN_BALANCE")
	o, err = parseRun([]string{"--redis-cluster", "local"}, lookup, nil)
	if err != nil || !o.LocalRedisCluster || len(o.RedisCluster) != 0 {
		t.Fatalf("--redis-cluster local: %+v %v", o, err)
	}
	o, err = parseRun([]string{"--coordinator", "http://c:9090", "--redis-cluster", "r1:7000, r2:7000"}, lookup, nil)
	if err != nil || o.LocalRedisCluster || strings.Join(o.RedisCluster, " ") != "r1:7000 r2:7000" {
		t.Fatalf("--redis-cluster addresses: %+v %v", o, err)
	}
	for _, bad := range [][]string{
		{"--redis-cluster", "r1:7000,r1"},             // not host:port
		{"--nodes", "a:1,b:2"},                        // addresses without --coordinator
		{"--coordinator", "http://c", "--nodes", "3"}, // a count with --coordinator
		{"--nodes", "-1"},
		{"--duration", "-1s"},
		{"--balance", "fair"},
		{"extra"},
	} {
		if _, err := parseRun(bad, lookup, nil); err == nil {
			t.Errorf("parseRun(%v) accepted", bad)
		}
	}
	if _, err := parseRun([]string{"--users", "x"}, func(string) (string, bool) { return "", false }, nil); err == nil ||
		errors.Is(err, flag.ErrHelp) {
		t.Errorf("bad --users: %v", err)
	}
}

func TestParseCompare(t *testing.T) {
	env := map[string]string{"REDRAIN_CONNS": "32"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o, err := parseCompare([]string{"--nodes", "1", "--pin", "--rounds", "3", "--time", "2s", "--prepare-count", "0"}, lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Nodes != 1 || !o.Pin || o.Rounds != 3 || o.Load.Time != 2*time.Second || o.PrepareCount != 0 || o.Load.Conns != 32 ||
		o.Rain.TotalCount != 1_000_000 || o.Command != "bench compare --nodes 1 --pin --rounds 3 --time 2s --prepare-count 0" {
		t.Fatalf("%+v", o)
	}
	o, err = parseCompare(nil, func(string) (string, bool) { return "", false }, nil)
	if err != nil || o.Nodes != 3 || o.Rounds != 2 || o.PrepareCount != 10_000_000 || o.Load.Conns != 64 || o.Pin {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}

func TestParseBaseline(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	o, p, err := parseBaseline([]string{"--http", "127.0.0.1:0", "--count", "500", "--code", "demo"}, none, nil)
	if err != nil || o.HTTP != "127.0.0.1:0" || p.TotalCount != 500 || p.TotalAmount != 5000 || p.Code != "demo" || p.MaxPerUser != 50 {
		t.Fatalf("%+v %+v %v", o, p, err)
	}
}

// `bench load` against a running server: it drives the rain until the server is out of
// packets and prints what it saw and its own CPU per answer.
func TestBenchLoad(t *testing.T) {
	srv := testredis.New(t)
	ctx := context.Background()
	b, err := bench.NewBaseline(ctx, bench.BaselineOptions{HTTP: "127.0.0.1:0", RedisURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve()
	defer b.Close()
	if _, err := b.Prepare(ctx, bench.BaselinePrepare{Code: "demo", TotalAmount: 5000, TotalCount: 500, MaxPerUser: 50}); err != nil {
		t.Fatal(err)
	}
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	var stdout, stderr bytes.Buffer
	code := dispatch(ctx, []string{"load", "--nodes", b.Addr(), "--code", "demo", "--users", "50", "--conns", "4",
		"--time", "60s", "--cpuprofile", prof}, &stdout, &stderr)
	t.Logf("stdout:\n%s", stdout.String())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"stopped      drained", "claims, ", "answers      ok 500  exhausted", "load CPU"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("cpu profile: %v", err)
	}
}

// `bench baseline` as a user runs it for wrk: it prepares the rain it is told to before it
// answers /healthz, serves it until SIGTERM, then exits 0.
func TestBenchBaselineServes(t *testing.T) {
	bin := testcluster.Bin(t, "bench")
	srv := testredis.New(t)
	addr := testcluster.FreeAddr(t)
	p := testcluster.Start(t, "baseline", bin, []string{"baseline", "--http", addr, "--redis", srv.URL(), "--count", "20",
		"--amount", "400", "--code", "demo", "--max-per-user", "100"})
	testcluster.WaitHTTP(t, p, "http://"+addr+"/healthz", 30*time.Second)
	c := tap.NewClaimer(1)
	var got, sum int64
	for {
		a := c.Claim(addr, "demo", 1)
		if a.Status != 200 {
			if a.Error != "exhausted" {
				t.Fatalf("answer %+v", a)
			}
			break
		}
		got++
		sum += a.Amount
	}
	if got != 20 || sum != 400 {
		t.Fatalf("%d packets, %d cents; want 20, 400", got, sum)
	}
	if err := p.Term(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
