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
// Stock moves and per-user owners (issue 17) are actors too. A node asks another holder for
// stock (and a claim that finds its node empty while a reachable holder has stock waits up to
// stockWait for a move, trying again as moves arrive: node.claimAfterWait); the donor cuts with
// the real shard.Store.CutMost, journals the move in its RainMeta.MovesOut before it sends it,
// and delivers it until acknowledged (a restart puts the moves out of an unsettled rain back as
// undelivered); the receiver dedups by move id, journals RainMeta.MovesIn, then serves it with
// shard.Store.AddWindow and acknowledges. Recovery rebuilds the windows with the real shard.RestoreWindows, as node.recoverWindows
// does. Crashes are injected at both failpoints (a donor after journaling a move out, a
// receiver after journaling a move in). Each (rain, user) is counted by its owner
// (rain.OwnerOf over the journaled holders): a claim popped elsewhere asks the owner over the
// network; the owner counts (shard.Store.ReserveUser), journals the reservation in its owners
// journal and only then answers; a no or no answer within ownerTimeout releases the packet; a
// reservation whose claim was never written is released with one message, never resent; a
// restart rebuilds the counts from both journals. Owners crash after journaling, before
// answering; claimants crash while they wait.
//
// The invariants with moves and owners: a packet (rain, epoch, slice, index) journaled once
// on one node; per node, share = slices + moved in - moved out (as journaled) = unserved +
// journaled + in flight; a move acknowledged is in the receiver's journal; max_per_user over
// every client answer and every journal, cluster-wide, whatever the routing (taps go to a
// random node, or to a fixed node per user); user_limit only from a node (or owner) counting
// the cap; exhausted only from a node with nothing left (after its wait); and the report
// pairs moves as coordinator.pairMoves does (what a receiver never got is its loss).
//
// What is modelled rather than run: the node's glue (node.go's assign/start/stop/discard,
// recovery, the claim handler's pop-owner-journal-answer order, the failed-commit limbo of
// repair.go, moves.go's give/deliver/accept and owner_*.go's reserve/release) is mirrored in
// node.go, moves.go and owners.go here, because the real node runs goroutines and fasthttp;
// the coordinator's lifecycle mirrors coordinator/lifecycle.go and loop.go; bbolt is a list
// of records (the journal's applied prefix) in front of which the two log files are byte
// slices written with ledger.AppendWALFrame and read back with ledger.ReadWAL. The owners
// journal is a durable list of records (it never fails here); gossip's stock hints and
// liveness are exact and instant; the moves Redis records (RecordMoves) are not modelled (the
// report reads the nodes' journals).
package sim
