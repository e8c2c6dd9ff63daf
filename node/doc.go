// Package node is the claim-serving process: fasthttp handlers wiring the in-memory shard, the
// bbolt journal and Redis flusher (ledger) and the gossip cluster, plus the internal endpoints
// the coordinator drives, metrics, recovery at start and graceful shutdown.
//
// The claim path: parse code and user without allocating, pop from the shard, journal the claim
// and wait for its fsync, then answer. A claim whose journal write fails is released back to
// the shard and answered 503: no packet is handed out unless its claim is durable.
package node
