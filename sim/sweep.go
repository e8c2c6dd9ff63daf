package sim

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// MaxViolationsKept bounds the violations a Summary keeps.
const MaxViolationsKept = 20

// Summary adds up a sweep of seeds.
type Summary struct {
	Seeds, Steps, Claims int
	Faults               [NumFaults]int
	Violations           int
	First                []*Violation // the first MaxViolationsKept, by seed
	Elapsed              time.Duration
}

func (s *Summary) add(r Result) {
	s.Seeds++
	s.Steps += r.Steps
	s.Claims += r.Claims
	for i, n := range r.Faults {
		s.Faults[i] += n
	}
	if r.Violation != nil {
		s.Violations++
		s.First = append(s.First, r.Violation)
	}
}

// Sweep runs seeds from, from+1, ... (n of them) on workers goroutines (each seed on one, start
// to end: a seed's run does not depend on the others or on scheduling), calls done after each
// (from one goroutine at a time, in no fixed order) and returns the summary.
func Sweep(from uint64, n, workers int, cfg Config, done func(Result)) Summary {
	start := time.Now()
	workers = max(1, workers)
	seeds := make(chan uint64)
	results := make(chan Result, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seeds {
				results <- Run(s, cfg)
			}
		}()
	}
	go func() {
		for i := range n {
			seeds <- from + uint64(i)
		}
		close(seeds)
		wg.Wait()
		close(results)
	}()
	var sum Summary
	for r := range results {
		sum.add(r)
		if done != nil {
			done(r)
		}
	}
	sortViolations(sum.First)
	if len(sum.First) > MaxViolationsKept {
		sum.First = sum.First[:MaxViolationsKept]
	}
	sum.Elapsed = time.Since(start)
	return sum
}

func sortViolations(v []*Violation) {
	slices.SortFunc(v, func(a, b *Violation) int { return cmp.Compare(a.Seed, b.Seed) })
}

// Print writes the summary: seeds, steps, claims, faults by kind, violations (each with its
// seed, step and invariant, and how to replay it).
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "seeds %d  steps %d  claims answered 200: %d  in %s\n", s.Seeds, s.Steps, s.Claims,
		s.Elapsed.Round(time.Millisecond))
	fmt.Fprintln(w, "faults injected:")
	total := 0
	for i, n := range s.Faults {
		fmt.Fprintf(w, "  %-32s %d\n", FaultNames[i], n)
		total += n
	}
	fmt.Fprintf(w, "  %-32s %d\n", "total", total)
	fmt.Fprintf(w, "violations: %d\n", s.Violations)
	for _, v := range s.First {
		fmt.Fprintf(w, "  %v\n    replay: make sim SEED=%d\n", v, v.Seed)
	}
}
