package bench

import (
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func fakeRound(n int, side string, claims int64, elapsed, cpu float64, latencyUS int64, peak int64) *CompareRound {
	h := NewHistogram()
	for i := int64(0); i < claims; i++ {
		record(h, latencyUS)
	}
	f := SideFigures{Claims: claims, ElapsedS: elapsed, CPUSeconds: cpu, PeakBytes: peak, Packets: 1000, Verified: true}
	f.finish()
	return &CompareRound{Round: n, Side: side, Figures: f, latency: h}
}

// totals adds rounds up per side (rates over the summed time, CPU over the summed claims,
// latency over the merged histograms), and judges the targets from the ratios.
func TestCompareTotalsAndTargets(t *testing.T) {
	c := &comparer{o: CompareOptions{Nodes: 1, Pin: true, Load: LoadOptions{Conns: 64}}, res: &CompareResults{}}
	c.res.Rounds = []*CompareRound{
		fakeRound(1, SideOurs, 40_000, 1, 1.0, 1000, 10<<20),
		fakeRound(1, SideBaseline, 20_000, 1, 1.0, 4000, 20<<20),
		fakeRound(2, SideOurs, 60_000, 1, 1.0, 2000, 12<<20),
		fakeRound(2, SideBaseline, 20_000, 1, 1.0, 4000, 20<<20),
	}
	c.res.Prepare = &PrepareCompare{Count: 10_000_000, Ours: PrepareFigures{Seconds: 0.2, Nodes: 1}}
	c.totals()
	o, b, r := c.res.Ours, c.res.Baseline, c.res.Ratios
	if o.Claims != 100_000 || o.ClaimsPerSec != 50_000 || b.ClaimsPerSec != 20_000 || r.ClaimsPerSec != 2.5 {
		t.Fatalf("ours %+v baseline %+v ratios %+v", o, b, r)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(o.CPUPer1k, 0.02) || !near(b.CPUPer1k, 0.05) || !near(r.CPUPer1k, 0.4) || o.PeakBytes != 12<<20 {
		t.Fatalf("cpu ours %v baseline %v ratio %v peak %d", o.CPUPer1k, b.CPUPer1k, r.CPUPer1k, o.PeakBytes)
	}
	if o.P50US < 1990 || o.P50US > 2010 || b.P99US < 3990 || b.P99US > 4010 { // 60% of ours' claims took 2 ms
		t.Fatalf("p50 ours %d, p99 baseline %d", o.P50US, b.P99US)
	}
	met := map[string]bool{}
	for _, tg := range c.res.Targets {
		met[strings.Fields(tg.Name)[0]] = tg.Met
	}
	want := map[string]bool{"durable": true, "errors": true, "invariants": true, "CPU": true, "p99": true, "prepare": true}
	for k, v := range want {
		if met[k] != v {
			t.Errorf("target %s met %v, want %v (%+v)", k, met[k], v, c.res.Targets)
		}
	}
	// Unpinned, the same rounds but ours slower: 1.5x is missed, p99 over 3 ms too.
	c.o.Pin = false
	c.res.Rounds[2] = fakeRound(2, SideOurs, 10_000, 1, 1.0, 5000, 12<<20)
	c.totals()
	for _, tg := range c.res.Targets {
		if n := strings.Fields(tg.Name)[0]; (n == "durable" || n == "p99") && tg.Met {
			t.Errorf("target %+v met", tg)
		}
	}
	if !c.res.Verified {
		t.Fatal("all rounds verified, totals not")
	}
}

func TestErrorCount(t *testing.T) {
	by := map[string]int64{"ok": 10, "exhausted": 3, "user_limit": 4, "network": 2, "http_502": 1, "journal_unavailable": 5}
	if n := errorCount(by); n != 8 {
		t.Fatalf("errorCount = %d, want 8", n)
	}
}

// A process started inside spawnOn runs on the given cpu only; this process keeps its mask.
func TestSpawnOnPinsChildren(t *testing.T) {
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("allowed cpus %v: %v", cpus, err)
	}
	before := cpusAllowedList(os.Getpid())
	var out []byte
	err = spawnOn(cpus[len(cpus)-1:], func() (err error) {
		out, err = exec.Command("grep", "Cpus_allowed_list", "/proc/self/status").Output()
		return err
	})
	if got, want := strings.TrimSpace(string(out)), "Cpus_allowed_list:\t"+strconv.Itoa(cpus[len(cpus)-1]); err != nil || got != want {
		t.Fatalf("child: %q (%v), want %q", got, err, want)
	}
	if after := cpusAllowedList(os.Getpid()); after != before {
		t.Fatalf("this process's cpus %s, were %s", after, before)
	}
	out, err = exec.Command("grep", "Cpus_allowed_list", "/proc/self/status").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "Cpus_allowed_list:\t"+before {
		t.Fatalf("child started outside spawnOn: %q (%v), want %s", got, err, before)
	}
}

func TestProcCPUAndPeakRSS(t *testing.T) {
	pid := os.Getpid()
	c0, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for x := uint64(1); ; x = x*6364136223846793005 + 1 { // burn CPU until the kernel has counted a tick
		if x%(1<<20) == 0 {
			if c1, err := ProcCPU(pid); err != nil || c1 > c0 {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("ProcCPU did not grow while burning CPU")
			}
		}
	}
	big := make([]byte, 64<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	peak, err := ProcPeakRSS(pid)
	runtime.KeepAlive(big)
	if err != nil || peak < 64<<20 {
		t.Fatalf("peak RSS %d (%v), want >= 64 MiB", peak, err)
	}
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Fatal("ProcCPU of no process")
	}
}
