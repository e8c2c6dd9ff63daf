package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/bench"
	"redrain/internal/testcluster"
	"redrain/rain"
)

// A tiny bench compare, one round each and a small prepare: both sides drain the same rain,
// ours verified; results.json holds both sides, the ratios and the prepare; the chart is a PNG.
func TestCompareTiny(t *testing.T) {
	bin := testcluster.Bin(t, "bench")
	testcluster.Bin(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()
	dir := t.TempDir()
	res, err := bench.Compare(ctx, bench.CompareOptions{Nodes: 2, Rounds: 1, BinDir: filepath.Dir(bin), Dir: dir,
		FastGossip: true, Rain: rain.Config{TotalAmount: 30_000, TotalCount: 3000, MaxPerUser: 5},
		Load:         bench.LoadOptions{Users: 1000, Conns: 8, Time: 30 * time.Second, Interval: 100 * time.Millisecond},
		PrepareCount: 20_000, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	var back bench.CompareResults
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err == nil {
		err = json.Unmarshal(b, &back)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !back.Verified || len(back.Rounds) != 2 || back.Rounds[0].Side != bench.SideOurs || back.Rounds[1].Side != bench.SideBaseline {
		for _, r := range back.Rounds {
			if r.Results != nil {
				t.Errorf("round %d %s: verified %v, violations %q", r.Round, r.Side, r.Results.Verified, r.Results.Violations)
			}
		}
		logStockLines(t, dir)
		t.Fatalf("verified %v, rounds %d", back.Verified, len(back.Rounds))
	}
	for _, f := range []bench.SideFigures{back.Ours, back.Baseline} {
		if f.Claims != 3000 || f.ClaimsPerSec <= 0 || f.P99US <= 0 || f.CPUSeconds <= 0 || f.PeakBytes <= 0 || f.Errors != 0 || !f.Verified {
			t.Fatalf("side figures %+v", f)
		}
		if f.ServerCPUSeconds <= 0 || f.ServerCPUSeconds >= f.CPUSeconds || f.RedisCPUSeconds <= 0 || f.LoadCPUSeconds <= 0 ||
			f.ServerUSPerClaim <= 0 || f.RedisUSPerClaim <= 0 || f.LoadUSPerClaim <= 0 || f.RedisAbsorbs <= 0 {
			t.Fatalf("cost figures %+v", f)
		}
	}
	for _, r := range back.Rounds {
		if r.Results == nil || !r.Results.Drained || len(r.Results.Series) == 0 || len(r.Processes) < 2 {
			t.Fatalf("round %d %s: %+v", r.Round, r.Side, r.Results)
		}
	}
	if r := back.Ratios; r.ClaimsPerSec <= 0 || r.P99 <= 0 || r.CPUPer1k <= 0 || r.BytesPerPacket <= 0 {
		t.Fatalf("ratios %+v", r)
	}
	if p := back.Prepare; p == nil || p.Count != 20_000 || p.Ours.Seconds <= 0 || p.Baseline.Seconds <= 0 ||
		p.Ours.BytesPerPacket <= 0 || p.Baseline.BytesPerPacket <= 0 || p.Ratio <= 0 || p.Ours.Nodes != 2 {
		t.Fatalf("prepare %+v", back.Prepare)
	}
	if len(back.Targets) != 8 || back.Chart != filepath.Join(out, "compare.png") {
		t.Fatalf("targets %+v chart %q", back.Targets, back.Chart)
	}
	png, err := os.ReadFile(back.Chart)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("chart: %v, %d bytes", err, len(png))
	}
	var table bytes.Buffer
	bench.CompareTable(&table, res)
	for _, want := range []string{"ours/baseline", "prepare 20,000 packets", "targets:", "chart: " + back.Chart,
		"one Redis absorbs", "load µs/claim"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestCompareRefusesBadOptions(t *testing.T) {
	for _, o := range []bench.CompareOptions{
		{Rounds: -1},
		{PrepareCount: -5},
		{PrepareCount: rain.MaxTotalCount + 1},
		{Progress: "fancy"},
		{Load: bench.LoadOptions{Conns: -1}},
	} {
		if _, err := bench.Compare(context.Background(), o); err == nil || !strings.Contains(err.Error(), "bad compare options") {
			t.Errorf("Compare(%+v) = %v, want ErrCompareOptions", o, err)
		}
	}
}

// logStockLines logs what the nodes' logs under dir say of stock moves, members and warnings:
// what a failed drain needs to be understood.
func logStockLines(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "n*.log"))
	more, _ := filepath.Glob(filepath.Join(dir, "n*.log"))
	for _, p := range append(logs, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "stock") || strings.Contains(line, "member") || strings.Contains(line, `"WARN"`) ||
				strings.Contains(line, `"ERROR"`) {
				t.Logf("%s: %s", filepath.Base(p), line)
			}
		}
	}
}
