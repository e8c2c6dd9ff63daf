package main

import (
	"bytes"
	"strings"
	"testing"

	"redrain/sim"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-seeds", "50", "-workers", "1"})
	if err != nil || o.seeds != 50 || o.workers != 1 || o.from != 1 || o.seed != 0 {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range [][]string{{"-seeds", "0"}, {"-workers", "0"}, {"-steps", "-1"}, {"stray"}, {"-seeds", "x"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A replay prints the seed's whole trace and its result; twice, the same bytes.
func TestReplay(t *testing.T) {
	var a, b bytes.Buffer
	if replay(&a, 7, sim.Config{}) != 0 || replay(&b, 7, sim.Config{}) != 0 {
		t.Fatalf("seed 7 failed:\n%s", a.String())
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two replays of seed 7 differ")
	}
	if out := a.String(); !strings.Contains(out, "seed 7: rain") || !strings.Contains(out, "every invariant held") {
		t.Fatalf("replay output:\n%s", out)
	}
}

// A sweep prints the summary: seeds, steps, faults by kind, violations.
func TestSweepSummary(t *testing.T) {
	var out bytes.Buffer
	if code := sweep(&out, 1, 30, 2, sim.Config{}, false); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	for _, want := range []string{"seeds 30 ", "faults injected:", "crash-between-pop-and-journal", "violations: 0"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// A sweep with a planted bug exits 1 and names the seed to replay.
func TestSweepViolation(t *testing.T) {
	var out bytes.Buffer
	if code := sweep(&out, 1, 10, 2, sim.Config{Bugs: sim.Bugs{SkipUserRebuild: true}}, false); code != 1 {
		t.Fatalf("exit %d with a planted bug:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "replay: make sim SEED=") {
		t.Fatalf("no replay line:\n%s", out.String())
	}
}
