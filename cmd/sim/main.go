// Command sim runs redrain's deterministic simulation (package sim): a sweep of seeds on every
// core with a progress bar and a summary (faults by kind, violations), or one seed replayed
// with its whole trace. It exits 1 if any invariant broke.
//
//	sim -seeds 100000        # seeds 1..100000
//	sim -seed 4242           # replay one seed: its trace, step by step, then its result
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"redrain/internal/cli"
	"redrain/internal/flagenv"
	"redrain/sim"
)

// options are the command's flags.
type options struct {
	seeds, workers int
	from, seed     uint64
	steps          int
	quiet          bool
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		cli.BadUsage("sim", err)
	}
	cfg := sim.Config{Steps: o.steps}
	if o.seed != 0 {
		os.Exit(replay(os.Stdout, o.seed, cfg))
	}
	os.Exit(sweep(os.Stdout, o.from, o.seeds, o.workers, cfg, !o.quiet))
}

// parseFlags reads the flags, each also settable as REDRAIN_<FLAG>.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.IntVar(&o.seeds, "seeds", 100000, "how many seeds to run, from -from")
	fs.Uint64Var(&o.from, "from", 1, "the first seed of a sweep")
	fs.Uint64Var(&o.seed, "seed", 0, "replay this one seed, printing its trace (0: sweep)")
	fs.IntVar(&o.steps, "steps", 0, "steps with faults per seed before it heals (0: the default)")
	fs.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	if err := flagenv.Parse(fs, args, "REDRAIN_"); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.seeds < 1 || o.seeds > 100_000_000:
		return o, fmt.Errorf("-seeds %d not in 1..100000000", o.seeds)
	case o.workers < 1 || o.workers > 1024:
		return o, fmt.Errorf("-workers %d not in 1..1024", o.workers)
	case o.steps < 0 || o.steps > 1_000_000:
		return o, fmt.Errorf("-steps %d not in 0..1000000", o.steps)
	}
	return o, nil
}

// replay runs one seed with its trace on w.
func replay(w io.Writer, seed uint64, cfg sim.Config) int {
	cfg.Trace = w
	r := sim.Run(seed, cfg)
	fmt.Fprintf(w, "seed %d: %d steps, %d claims answered 200, %d answers received, %d taps unanswered, rain %s, trace digest %016x\n",
		r.Seed, r.Steps, r.Claims, r.Answers, r.NoAnswer, r.Status, r.Digest)
	if r.Violation != nil {
		fmt.Fprintf(w, "VIOLATION: %v\n", r.Violation)
		return 1
	}
	fmt.Fprintln(w, "every invariant held")
	return 0
}

// sweep runs n seeds from first with a progress bar on stderr and prints the summary on w.
func sweep(w io.Writer, first uint64, n, workers int, cfg sim.Config, bar bool) int {
	var b *mpb.Bar
	var p *mpb.Progress
	var bad atomic.Int64 // read by the bar's goroutine
	if bar {
		p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond))
		b = p.AddBar(int64(n),
			mpb.PrependDecorators(decor.Elapsed(decor.ET_STYLE_MMSS), decor.CountersNoUnit("  seeds %d / %d")),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.AverageSpeed(0, "  %.0f seeds/s"),
				decor.Any(func(decor.Statistics) string { return fmt.Sprintf("  violations %d", bad.Load()) })))
	}
	sum := sim.Sweep(first, n, workers, cfg, func(r sim.Result) {
		if r.Violation != nil {
			bad.Add(1)
		}
		if b != nil {
			b.Increment()
		}
	})
	if p != nil {
		p.Wait()
	}
	fmt.Fprintf(w, "sim: seeds %d..%d on %d workers\n", first, first+uint64(n)-1, workers)
	sum.Print(w)
	if sum.Violations > 0 {
		return 1
	}
	return 0
}
