package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"redrain/bench"
	"redrain/internal/testcluster"
)

// bench scale's core with 10 nodes started in waves of 4: every figure is measured and sane,
// every check holds, results.json says the same.
func TestScaleSmall(t *testing.T) {
	bin := testcluster.Bin(t, "coordinator")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := t.TempDir()
	const n, packets = 10, 200_000
	res, err := bench.Scale(ctx, bench.ScaleOptions{Members: n, Packets: packets, BinDir: filepath.Dir(bin),
		Dir: t.TempDir(), Wave: 4, Reports: 3, Timeout: time.Minute, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil || !res.Verified || len(res.Violations) != 0 {
		t.Fatalf("not verified: %v", err)
	}
	if res.Members != n || res.Gossip != "lan" || res.Wave != 4 || res.Code == "" || res.Rain.TotalCount != packets ||
		res.Rain.TotalAmount != 10*packets {
		t.Errorf("header: %+v", res)
	}
	if res.LaunchS <= 0 || res.MembershipS <= 0 || res.MembershipAfterLaunchS <= 0 || res.MembershipAfterLaunchS > res.MembershipS {
		t.Errorf("launch %.3f s, membership %.3f s (%.3f s after the last wave)", res.LaunchS, res.MembershipS,
			res.MembershipAfterLaunchS)
	}
	if res.PrepareS <= 0 || res.PrepareCoordCPU < 0 || res.Slices != n || res.SlicesHeld != n {
		t.Errorf("prepare %.3f s (cpu %.3f s), %d slices, %d held", res.PrepareS, res.PrepareCoordCPU, res.Slices, res.SlicesHeld)
	}
	for name, r := range map[string]bench.Reach{"applied": res.StartApplied, "gossip": res.StartGossip} {
		if r.Reached != n || r.P99S < 0 || r.AllS < r.P99S || r.AllS > time.Minute.Seconds() {
			t.Errorf("start %s: %+v", name, r)
		}
	}
	if res.StartCallS <= 0 {
		t.Errorf("start call %.3f s", res.StartCallS)
	}
	rep := res.Report
	if res.Claims != n || rep == nil || len(rep.Problems()) != 0 || rep.ClaimedCount != n || len(rep.Nodes) != n ||
		rep.LostAmount != 0 || rep.ClaimedAmount+rep.LeftoverAmount != rep.TotalAmount || rep.TotalAmount != 10*packets {
		t.Errorf("claims %d, report %+v", res.Claims, rep)
	}
	if len(res.ReportS) != 3 {
		t.Errorf("report timings %v", res.ReportS)
	}
	for _, d := range res.ReportS {
		if d <= 0 {
			t.Errorf("report timings %v", res.ReportS)
		}
	}
	c := res.Coordinator
	if c.RSSBytes < 1<<20 || c.PeakRSSBytes < c.RSSBytes || c.HeapInuseBytes <= 0 || c.Goroutines <= 0 {
		t.Errorf("coordinator memory %+v", c)
	}
	if s := res.NodesSide; s.HeapInuseBytes <= 0 || s.RSSBytes <= 0 || s.Goroutines <= 0 {
		t.Errorf("nodes' process memory %+v", s)
	}
	if len(res.Targets) != 4 {
		t.Errorf("targets %+v", res.Targets)
	}
	var back bench.ScaleResults
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err == nil {
		err = json.Unmarshal(b, &back)
	}
	if err != nil || back.Code != res.Code || back.Members != n || !back.Verified || back.Report == nil ||
		back.StartApplied.AllS != res.StartApplied.AllS || len(back.StartGossip.Arrivals) != n {
		t.Fatalf("results.json: %v %+v", err, back)
	}
}

func TestScaleRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []bench.ScaleOptions{
		{Dir: dir},              // no members
		{Members: -1, Dir: dir}, // negative
		{Members: bench.MaxScaleMembers + 1, Dir: dir},
		{Members: 3},                        // no dir
		{Members: 3, Dir: dir, Packets: 2},  // fewer packets than members
		{Members: 3, Dir: dir, Wave: -1},    // negative wave
		{Members: 3, Dir: dir, Timeout: -1}, // negative timeout
		{Members: 3, Dir: dir, Amount: 1},   // fewer cents than packets
		{Members: 3, Dir: dir, Reports: -2}, // negative reports
	} {
		if _, err := bench.Scale(context.Background(), o); !errors.Is(err, bench.ErrScaleOptions) {
			t.Errorf("Scale(%+v) = %v, want ErrScaleOptions", o, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused options left %d entries in the dir", len(entries))
	}
}
