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
	"redrain/internal/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

// `bench run` as a user runs it: the built binary starts a local 3-node cluster, drains a small
// rain, verifies every invariant, exits 0, writes results.json, and leaves nothing running.
func TestBenchRunLocal(t *testing.T) {
	bin := testcluster.Bin(t, "bench")
	out, dir := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--nodes", "3", "--count", "3000", "--amount", "90000",
		"--max-per-user", "5", "--users", "1000", "--conns", "16", "--time", "20s", "--out", out, "--dir", dir,
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
		{[]string{"run", "--coordinator", "http://127.0.0.1:1", "--redis", "redis://127.0.0.1:1"}, exitUsage, ""},
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
	if err != nil || len(o.NodeAddrs) != 0 {
		t.Fatalf("coordinator without --nodes: %+v %v", o.NodeAddrs, err)
	}
	for _, bad := range [][]string{
		{"--nodes", "a:1,b:2"},                        // addresses without --coordinator
		{"--coordinator", "http://c", "--nodes", "3"}, // a count with --coordinator
		{"--nodes", "-1"},
		{"--duration", "-1s"},
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
