// Package ledger makes claims durable and gets them to Redis: a bbolt journal with a group-commit
// writer, the node's recovery from it, and the exactly-once flusher that adds totals and the
// credit stream to Redis; DecodeCredits is the wallet's reader of that stream.
//
// # Durability order
//
// A claim is answered only after its journal record is fsynced; Redis learns of it later, exactly
// once.
//
//  1. Journal.Append hands the record to the single writer goroutine and waits. The writer takes
//     everything queued (up to Options.MaxBatch records), assigns each the next sequence number,
//     puts them in one bbolt transaction and commits it (bbolt fsyncs; NoSync is never set). Only
//     then are the waiters answered. There is no timer: an idle node answers after one fsync, and
//     batches grow with load. A failed commit fails every waiter of its batch with ErrCommit, and
//     the journal then refuses every later write (fail closed: an fsync error cannot be retried
//     safely); the node answers 503 and must reopen the journal.
//  2. Rain metadata (PutRain) and slice assignments (PutSlice) are committed before the node
//     acknowledges them, so a restarted node knows every slice it ever accepted.
//  3. The Flusher reads, per rain, the Redis marker redrain:{CODE}:flushed field
//     "<node>.<incarnation>" (the last sequence applied; missing means 0), scans the rain's
//     records after it (up to FlusherOptions.MaxBatch) and applies them as one batch with one Lua
//     script: the totals, the node's fields, one credit-stream entry holding the batch's claims
//     (DecodeCredits reads it) and the marker. The script applies the batch only if the marker
//     still holds the value the batch was read after (so it refuses any batch starting at or
//     below the marker) and moves the marker to the batch's last sequence in the same atomic
//     step. Because the flusher always resumes at the marker, never at a local cursor, a crash
//     between the apply and the cursor advance, a retried EVALSHA, a wiped Redis or a Redis restored
//     from an older snapshot (totals and marker roll back together) all end with every claim counted
//     exactly once. Appending never waits on Redis.
//
// Sequences are global to the journal and are never reused: the last one is stored in every commit,
// also after DropRain. With the journal's random incarnation (drawn when the file is created) they
// make claim IDs unique for ever: "<node>-<incarnation hex>-<seq>".
//
// # Retention
//
// A rain's claim records are the only durable copy of its claims until the wallet has them. The
// node compacts a rain only once it is settled, flushed (Flusher.FlushRain returned nil after the
// last claim was journaled), past its retention, and WalletAcked says the wallet's consumer group
// has acknowledged every credit entry. DropRain then deletes the rain's claim records, slices and
// totals and stores the RainMeta with a Tombstone (count, amount, max, last sequence, leftover) in
// one transaction; the node never serves the rain again, and Reassert puts the tombstone back
// into Redis (totals, nodes hash, leftover, marker: not the credit entries, which the wallet
// has) whenever Redis lost it. A rain that is never settled, or whose credits the wallet has not
// acknowledged, keeps its records.
//
// # Leftover records
//
// A node that leaves gracefully records its unclaimed remainder of each rain (RecordLeftover:
// "<node>:leftover_amount", stamped "<node>:leftover_at" with the claimed count it had flushed).
// Every flush batch deletes the record, and NodeTotals.Leftover reads it as current only while the
// node's count has not moved, so a node that came back and served can never have its old record
// counted against packets it paid.
//
// # Layout (bbolt buckets)
//
//	meta       incarnation, node id, format version, last sequence
//	rains      code -> RainMeta (JSON; with a Tombstone once compacted)
//	slices     code/ -> epoch(8)|slice id(4) -> rain.Slice (JSON)
//	claims     code/ -> seq(8, big-endian) -> EncodeRecord (fixed RecordSize bytes)
//	totals     code -> count, amount, max, last seq (updated in every commit)
package ledger
