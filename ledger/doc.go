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
//     writes them as one checksummed frame to the write-ahead log (one pwrite into a file that
//     was preallocated with zeros, then one fdatasync: no file metadata changes, so one device
//     flush) and only then answers the waiters. There is no timer: an idle node answers after
//     one fdatasync, and batches grow with load. A failed write or sync fails every waiter of its
//     batch with ErrCommit, and the journal then refuses every later write (fail closed: an fsync
//     error cannot be retried safely); the node answers 503 and must reopen the journal.
//  2. The applier moves logged records into bbolt in large background transactions (every
//     Options.ApplyEvery, or once Options.ApplyRecords wait), with their rains' totals and the
//     last sequence; bbolt fsyncs each. The log has two files: when the active one is full the
//     writer switches to the other, whose records must all be in bbolt first (if the applier is
//     behind, the writer applies them itself), and starts it over with a new generation. Open
//     replays into bbolt every logged record past bbolt's last sequence: reading a file stops at
//     the first frame whose checksum or generation does not match, so a torn tail or a stale frame
//     of an older generation is never replayed, and a sequence gap refuses to open. A failed
//     apply fails the journal like a failed commit (the log still holds the records; Reopen
//     replays them). The flusher reads records not yet in bbolt from memory.
//  3. Rain metadata (PutRain) and slice assignments (PutSlice) are committed before the node
//     acknowledges them, so a restarted node knows every slice it ever accepted. Each such bbolt
//     transaction first moves every logged record into bbolt, so metadata is never ordered
//     before a claim logged earlier (a DropRain cannot lose or resurrect a record).
//  4. The Flusher reads, per rain, the Redis marker redrain:{CODE}:flushed field
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
// # In-memory stand-ins
//
// The flusher reads a Source (a *Journal) and writes to a Sink (a RedisClient, on go-redis).
// MemJournal and MemRedis keep the same rules in memory, for unit tests of their callers (a
// node built from fakes needs no file, redis-server or fsync); the tests compare each with the
// real one call by call (TestMemJournalMatchesJournal, TestMemRedisMatchesRedis). Durability is
// not among those rules: a MemJournal survives no process.
//
// # Layout (bbolt buckets)
//
//	meta       incarnation, node id, format version, last sequence
//	rains      code -> RainMeta (JSON; with a Tombstone once compacted)
//	slices     code/ -> epoch(8)|slice id(4) -> rain.Slice (JSON)
//	claims     code/ -> seq(8, big-endian) -> EncodeRecord (fixed RecordSize bytes)
//	totals     code -> count, amount, max, last seq (updated in every apply)
//
// Beside the bbolt file: <path>.wal0 and <path>.wal1, the write-ahead log (see wal.go).
package ledger
