// Package chaos owns the chaos scenario (`bench chaos`, faults' TestBenchChaos): a rain on a local
// cluster through a node crash, a Redis loss and a node leaving, then every invariant checked.
package chaos
