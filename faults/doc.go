// Package faults holds redrain's fault suite: tests that run redis-server, the coordinator and
// three nodes as real processes, keep claims flowing, inject crashes, Redis loss and node loss,
// and then check SPEC.md's invariants against what the clients were actually answered.
package faults
