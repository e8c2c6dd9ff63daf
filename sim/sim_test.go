package sim

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// shortSeeds is how many seeds `make test` runs (SIM_SEEDS overrides it).
const shortSeeds = 1000

func seedCount(t *testing.T) int {
	if s := os.Getenv("SIM_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SIM_SEEDS=%q: want a count >= 1", s)
		}
		return n
	}
	return shortSeeds
}

// report fails t with each violation: seed, step, invariant, the trace's last lines, and the
// command that replays it.
func report(t *testing.T, vs []*Violation) {
	t.Helper()
	for _, v := range vs {
		t.Errorf("%v\n  replay: make sim SEED=%d\n  last steps:\n    %s", v, v.Seed, strings.Join(v.Tail, "    "))
	}
}

// The short run of `make test`: shortSeeds seeds on both cores, no violation, and every kind of
// fault injected somewhere.
func TestSeeds(t *testing.T) {
	n := seedCount(t)
	sum := Sweep(1, n, 2, Config{}, nil)
	report(t, sum.First)
	for i, k := range sum.Faults {
		if k == 0 {
			t.Errorf("no %s fault in %d seeds", FaultNames[i], n)
		}
	}
	if sum.Claims < 10*n {
		t.Errorf("only %d claims answered 200 in %d seeds: the runs hardly rain", sum.Claims, n)
	}
	t.Logf("%d seeds, %d steps, %d claims answered 200, %d faults, in %v", sum.Seeds, sum.Steps, sum.Claims,
		sumFaults(sum.Faults), sum.Elapsed)
}

func sumFaults(f [NumFaults]int) (n int) {
	for _, k := range f {
		n += k
	}
	return n
}

// A seed replays exactly: two runs print byte-identical traces, and a run inside a parallel
// sweep ends with the same digest as one alone.
func TestReplayIsExact(t *testing.T) {
	digests := map[uint64]uint64{}
	for seed := uint64(1); seed <= 20; seed++ {
		var a, b bytes.Buffer
		ra, rb := Run(seed, Config{Trace: &a}), Run(seed, Config{Trace: &b})
		if !bytes.Equal(a.Bytes(), b.Bytes()) || ra.Digest != rb.Digest {
			t.Fatalf("seed %d: two runs differ (digests %x %x, %d and %d trace bytes)", seed, ra.Digest, rb.Digest, a.Len(), b.Len())
		}
		if a.Len() < 1000 || ra.Steps < 600 {
			t.Fatalf("seed %d: a %d-byte trace of %d steps", seed, a.Len(), ra.Steps)
		}
		digests[seed] = ra.Digest
	}
	Sweep(1, 20, 2, Config{}, func(r Result) {
		if r.Digest != digests[r.Seed] {
			t.Errorf("seed %d in a sweep: digest %x, alone %x", r.Seed, r.Digest, digests[r.Seed])
		}
	})
	if Run(1, Config{}).Digest == Run(2, Config{}).Digest {
		t.Fatal("seeds 1 and 2 have the same trace")
	}
}

// firstCaught runs seeds 1.. with bugs planted until one breaks an invariant.
func firstCaught(t *testing.T, bugs Bugs, within int) *Violation {
	t.Helper()
	for seed := uint64(1); seed <= uint64(within); seed++ {
		if r := Run(seed, Config{Bugs: bugs}); r.Violation != nil {
			return r.Violation
		}
	}
	t.Fatalf("%+v: not caught within %d seeds", bugs, within)
	return nil
}

// Each planted bug is caught within 1,000 seeds, by the invariant it breaks.
func TestPlantedBugsAreCaught(t *testing.T) {
	for _, tc := range []struct {
		name string
		bugs Bugs
		want []string // invariants that may catch it
	}{
		{"a flush that ignores the marker", Bugs{FlushIgnoresMarker: true}, []string{"credited-once", "redis-totals"}},
		{"a release of a packet whose commit reached the file", Bugs{ReleaseReached: true},
			[]string{"conservation", "packet-once"}},
		{"a recovery that skips the per-user rebuild", Bugs{SkipUserRebuild: true}, []string{"cap"}},
		{"a node back from a graceful stop serving before it clears its leftover record", Bugs{SkipLeftoverHold: true},
			[]string{"leftover"}},
		{"a donor that delivers a move before journaling it", Bugs{DeliverBeforeJournal: true},
			[]string{"packet-once", "conservation", "recovery", "report"}},
		{"a receiver that serves and acknowledges a move before journaling it", Bugs{ServeBeforeJournal: true},
			[]string{"move-durable", "recovery", "conservation"}},
		{"a recovery that forgets the moves out", Bugs{ForgetMovesOut: true}, []string{"packet-once", "conservation"}},
		{"an owner that answers before journaling its reservation", Bugs{OwnerAnswersFirst: true}, []string{"cap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := firstCaught(t, tc.bugs, 1000)
			if !slices.Contains(tc.want, v.Invariant) {
				t.Fatalf("caught by %v, want one of %v", v, tc.want)
			}
			t.Logf("caught: %v", v)
			if again := Run(v.Seed, Config{Bugs: tc.bugs}); again.Violation == nil || again.Violation.Error() != v.Error() {
				t.Fatalf("the replay of seed %d does not fail the same way: %v", v.Seed, again.Violation)
			}
		})
	}
}

// TestTrace prints one seed's trace: SIM_SEED=S go test -run TestTrace -v ./sim.
func TestTrace(t *testing.T) {
	s, err := strconv.ParseUint(os.Getenv("SIM_SEED"), 10, 64)
	if err != nil {
		t.Skip("SIM_SEED not set")
	}
	r := Run(s, Config{Trace: os.Stdout})
	if r.Violation != nil {
		t.Fatal(r.Violation)
	}
}

// Seeds that found real bugs replay clean once fixed (each names the fix).
func TestFoundSeeds(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		bug  string
	}{
		{893, "node.assign kept the holders of the first prepare a node was given a slice of: after an abandoned " +
			"prepare, nodes disagreed on a user's owner and paid the user twice its cap"},
	} {
		if r := Run(tc.seed, Config{}); r.Violation != nil {
			t.Errorf("seed %d (%s): %v", tc.seed, tc.bug, r.Violation)
		}
		if r := Run(tc.seed, Config{Bugs: Bugs{HoldersOfFirstPrepare: true}}); r.Violation == nil || r.Violation.Invariant != "cap" {
			t.Errorf("seed %d with the bug back: %v, want a cap violation", tc.seed, r.Violation)
		}
	}
}
