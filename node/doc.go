// Package node is the claim-serving process: fasthttp handlers wiring the in-memory shard, the
// bbolt journal and Redis flusher (ledger) and the gossip cluster, plus the internal endpoints
// the coordinator drives, metrics, recovery at start and graceful shutdown.
//
// The claim path: parse code and user without allocating, pop from the shard, journal the claim
// and wait for its fsync, then answer. A claim whose journal write fails is answered 503. Its
// packet goes back to the shard only if nothing was written (ledger.ErrUnavailable); if its own
// commit failed (ledger.ErrCommit) it is held in limbo until a reopened journal says whether the
// claim reached the disk (repair.go). No packet is handed out unless its claim is durable, and
// none is handed out twice.
package node
