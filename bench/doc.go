// Package bench is redrain's load harness: it starts or targets a cluster, drives claims from
// simulated users, records every answer, and checks SPEC.md's invariants against Redis and the
// nodes' journals; it also serves the Redis-list baseline for comparison.
package bench
