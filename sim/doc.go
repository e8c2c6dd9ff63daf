// Package sim is redrain's deterministic simulation of the money: one seed drives a whole rain
// in one goroutine on simulated time (rain.Rand, never math/rand or the clock) through a
// coordinator's lifecycle decisions, nodes built on the real core (shard.Store, rain.Generate
// and rain.Plan, the ledger's record and write-ahead-log frame format, its log reader and
// replay rule, ledger.MemJournal's recovery, the real ledger.Flusher stepped by Pass), a Redis
// model with the apply script's rules (ledger.MemRedis, which can be wiped, rolled back to a
// snapshot, refuse writes or lose a reply), a network that delays, drops, duplicates,
// reorders and partitions, and faults at any step: a node crash between pop and journal,
// during a commit (the unsynced frame lost, torn or kept), between the Redis apply and the
// cursor advance; a failed fsync; a coordinator crash mid-prepare and mid-rain; a graceful
// stop that records the node's leftover in Redis (and a return that must clear it first).
//
// Two rains run in every seed: the main one, driven through its whole lifecycle by the
// coordinator, and a side rain every node serves from its first boot, so that journal frames
// mix rains and a rain's sequences have gaps (the flusher's "resume at marker + 1" across them).
//
// After every step the invariants of SPEC.md are checked against the clients' answers and the
// model's state (never overpay, no packet or claim_id twice, every 200 durable and, once the
// run heals, credited exactly once, caps, conservation per node), and at the end the
// coordinator's report (adminapi.Report.Problems). A failure names the seed, the step and the
// invariant; Run with the same seed replays it exactly (same trace, byte for byte).
//
// What is modelled rather than run: the node's glue (node.go's assign/start/stop/discard,
// recovery, the claim handler's pop-journal-answer order and the failed-commit limbo of
// repair.go) is mirrored in node.go here, because the real node runs goroutines and fasthttp;
// the coordinator's lifecycle mirrors coordinator/lifecycle.go and loop.go; bbolt is a list
// of records (the journal's applied prefix) in front of which the two log files are byte
// slices written with ledger.AppendWALFrame and read back with ledger.ReadWAL.
//
// # Adding actors (issue 17: stock moves, cluster-wide owners)
//
// An actor is a case in World.stepOnce (or injectFault, for a fault) that calls the real code
// and sends its messages through w.net, so they can be delayed, dropped or duplicated. A stock
// move would cut a donor's tail with shard.Store.CutTail, journal the cut, and send the range
// to a recipient; checker.conserved then needs the moved-out packets as a fourth term (the
// store's Progress already leaves cut packets out of its remaining), while packet-once keys on
// (rain, epoch, slice, index) and so already catches a moved packet paid on both sides.
// Cluster-wide owners make the cluster-wide cap hold for every routing: drop the
// w.routeByUser condition in checker.received, and count checker.journalUser per rain across
// nodes instead of per node.
package sim
