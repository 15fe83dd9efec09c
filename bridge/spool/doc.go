// Package spool is rtm2kafka's durable local spool: an append-only,
// checksummed, segmented log on local disk that holds records the bridge
// could not get acknowledged by Kafka in time, so that a push can still be
// answered within the gateway's patience while Kafka is slow or down.
//
// # How the bridge uses it
//
// When Kafka does not ack a record within its budget, the bridge appends the
// record with [Spool.Append] (or [Spool.AppendAsync]) and answers the push
// only once that call reports success: the record is then on disk and fsynced.
// From the first spilled record on, the bridge sends every new record to the
// spool too, for as long as [Spool.Empty] is false (untrimmed records, or
// appends not yet completed), so that nothing overtakes what is spooled. One drainer goroutine moves records back to Kafka in order:
//
//	for {
//		if err := sp.Wait(ctx); err != nil {
//			return err // ctx done or spool closed
//		}
//		batch, err := sp.Peek(0, 0) // oldest records, defaults: 1024 records / 1 MiB
//		if err != nil {
//			return err
//		}
//		// produce batch in order, wait until Kafka acked all of it …
//		if err := sp.Trim(batch[len(batch)-1].Pos); err != nil {
//			return err
//		}
//	}
//
// At start the bridge opens the spool before it takes pushes and drains what
// a previous run left behind before anything else.
//
// # Guarantees
//
//   - Durability: Append returns nil only after the records' bytes and the
//     file's metadata are fsynced. Concurrent appends share one fsync (group
//     commit); one goroutine owns every segment write and fsync.
//   - Order: records come back from Peek in the order they were appended
//     (the order of Append calls as the writer goroutine received them; the
//     records of one call stay together and in order).
//   - At least once, not exactly once: the trim point is persisted by Trim
//     before it returns, but a crash between Kafka's ack and Trim (or a lost
//     checkpoint file) makes the next run re-send records that Kafka already
//     has. Consumers must tolerate these duplicates; the bridge's records carry
//     the push's message id for that.
//   - A torn tail never stops Open: a record cut short by a crash, or one
//     whose CRC does not match, ends its segment; the file is truncated to the
//     last good record, the cut is logged and reported in [Stats.Recovered].
//     Records after a corrupt one in the same segment are lost with it (a
//     corrupt length field leaves no reliable way to find the next record);
//     the report estimates how many.
//   - Disk budget: Append refuses with [ErrFull], writing nothing, when the
//     untrimmed records plus the new ones would exceed [Options.MaxBytes]. The
//     files on disk can exceed the budget by at most one segment: the trimmed
//     prefix of the oldest one (a drained spool keeps its last segment until
//     the next append starts a new one), plus an 8-byte header per file.
//   - One process per directory: Open takes an exclusive flock(2) on
//     dir/LOCK and fails with [ErrLocked] while another open spool holds it,
//     in this process or another.
//
// # Format
//
// We use our own small format rather than an embedded log library. The
// candidate checked, github.com/tidwall/wal (v1.2.1 in the Go module proxy),
// frames entries with a bare uvarint length and no checksum, so it cannot
// tell a torn or bit-flipped tail from data; it fails Open with ErrCorrupt on
// a torn tail instead of cutting it (its issue #21, "Needs to recover from
// corrupted tail", is open); it fsyncs inside every write under a mutex, so
// concurrent writers do not share an fsync; and it cannot truncate the log to
// empty ("at least one entry exists following a truncate"), which a drained
// spool is most of the time. The format below takes about 200 lines of code,
// and the tests cut and flip its bytes.
//
// A spool directory holds:
//
//	LOCK                       flock(2) target; holds the owner's pid for the error message
//	CHECKPOINT                 trim point: "r2kckpt\x01" | u64 seq | u32 CRC-32C of the previous 16 bytes
//	NNNNNNNNNNNNNNNNNNNN.seg   segments, named by the sequence number of their first record (20 digits)
//
// A segment starts with the 8-byte magic "r2kspl\x00\x01" (the last byte is
// the format version) followed by records, each:
//
//	u32 body length | u32 CRC-32C (Castagnoli) of the body | body
//
//	body: u64 seq | i64 time (unix ms) | u16 len | topic | u32 len | key
//	      | u16 header count | { u16 len | header key | u32 len | header value }
//	      | u32 len | value
//
// All integers are little-endian. A u32 length of 0xFFFFFFFF stands for a nil
// key, header value or value (Kafka tells a null key or a null value
// — a tombstone — from an empty one). Sequence numbers are consecutive within
// a segment and increase across segments; a gap between segments is what a
// cut leaves behind. The writer fills a segment up to [Options.SegmentBytes]
// (the records of one Append never straddle two segments), starts a new one
// on every Open and whenever it appends to a spool that has been drained
// empty, and Trim deletes segments as soon as all their records are trimmed.
// The checkpoint is written to CHECKPOINT.tmp, fsynced, renamed over
// CHECKPOINT and the directory fsynced; a missing or invalid checkpoint
// means "nothing trimmed" (more duplicates, never a loss).
package spool
