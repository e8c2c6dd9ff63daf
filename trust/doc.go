// Package trust holds redrain's process-level trust tests (no code of its own): with real node
// and coordinator binaries, a process without the cluster secret can neither join, steer nor read
// the cluster, a captured internal request cannot be replayed, every admin action is audited, and
// no secret reaches a log or a metric.
package trust
