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
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"redrain/internal/cli"
	"redrain/sim"
)

func main() {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	seeds := fs.Int("seeds", 100000, "how many seeds to run, from -from")
	from := fs.Uint64("from", 1, "the first seed of a sweep")
	seed := fs.Uint64("seed", 0, "replay this one seed, printing its trace (0: sweep)")
	steps := fs.Int("steps", 0, "steps with faults per seed before it heals (0: the default)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	quiet := fs.Bool("quiet", false, "no progress bar")
	err := fs.Parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil && (*seeds < 1 || *workers < 1 || *steps < 0) {
		err = errors.New("-seeds and -workers must be >= 1, -steps >= 0")
	}
	if err != nil {
		cli.BadUsage("sim", err)
	}
	cfg := sim.Config{Steps: *steps}
	if *seed != 0 {
		os.Exit(replay(os.Stdout, *seed, cfg))
	}
	os.Exit(sweep(os.Stdout, *from, *seeds, *workers, cfg, !*quiet))
}

// replay runs one seed with its trace on w.
func replay(w io.Writer, seed uint64, cfg sim.Config) int {
	cfg.Trace = w
	r := sim.Run(seed, cfg)
	fmt.Fprintf(w, "seed %d: %d steps, %d claims answered 200, %d answers received, rain %s, trace digest %016x\n",
		r.Seed, r.Steps, r.Claims, r.Answers, r.Status, r.Digest)
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
	var bad int
	if bar {
		p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond))
		b = p.AddBar(int64(n),
			mpb.PrependDecorators(decor.Elapsed(decor.ET_STYLE_MMSS), decor.CountersNoUnit("  seeds %d / %d")),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.AverageSpeed(0, "  %.0f seeds/s"),
				decor.Any(func(decor.Statistics) string { return fmt.Sprintf("  violations %d", bad) })))
	}
	sum := sim.Sweep(first, n, workers, cfg, func(r sim.Result) {
		if r.Violation != nil {
			bad++
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
