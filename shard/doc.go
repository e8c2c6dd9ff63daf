// Package shard is a node's in-memory store of rain slices: lock-free packet pops, per-user caps
// and rate limits, recovery from journaled claims. It does no I/O and has no clock or goroutines.
//
// Memory per packet: its amount (4 bytes; 8 only when a slice's total exceeds 2^32-1 cents) plus,
// for a slice recovered with journaled claims, one bitmap bit: 4.125 bytes. Per user and rain:
// one 24-byte slot in a hash table kept at most 3/4 full, held only while the user's count is
// above zero (an entry falling back to 0 is deleted, its rate-limit time with it). So entries <=
// packets handed out and not released + Claims in flight + users restored from the journal; a
// table does not shrink, so that bound holds at its peak. Released packets wait on a per-slice
// stack, 4 bytes each, never more than the packets handed out.
package shard
