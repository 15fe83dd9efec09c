package spool

import "time"

// FsyncBuckets is the number of buckets in [Stats.FsyncHist].
const FsyncBuckets = 14

// FsyncBucketBounds returns the upper bounds of the first FsyncBuckets-1
// buckets of [Stats.FsyncHist]; the last bucket has no upper bound.
func FsyncBucketBounds() [FsyncBuckets - 1]time.Duration {
	return [FsyncBuckets - 1]time.Duration{
		100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second,
	}
}

// fsyncBucket returns the FsyncHist index for one fsync's duration.
func fsyncBucket(d time.Duration) int {
	b := FsyncBucketBounds()
	for i, ub := range b {
		if d <= ub {
			return i
		}
	}
	return len(b)
}

// Stats is a snapshot of the spool's state and counters since Open, for
// metrics and /status.
type Stats struct {
	Records     int64 // untrimmed records on disk (durable, waiting to be drained)
	Bytes       int64 // their encoded size, what MaxBytes limits
	OldestAgeMs int64 // age of the oldest untrimmed record by its Time, 0 when empty
	Segments    int   // segment files
	DiskBytes   int64 // size of all segment files, trimmed prefix included

	Appended uint64 // records durably appended since Open
	Trimmed  uint64 // records trimmed since Open
	Rejected uint64 // records refused with ErrFull since Open

	FsyncCount uint64               // group-commit fsyncs of segment data since Open
	LastFsync  time.Duration        // duration of the latest of them
	FsyncTotal time.Duration        // sum of their durations (with FsyncCount: the mean)
	FsyncMax   time.Duration        // the slowest of them
	FsyncHist  [FsyncBuckets]uint64 // their count per duration bucket, bounds from FsyncBucketBounds
	Broken     string               // non-empty once a failed fsync made every later Append fail

	Recovered RecoveryReport // what Open found and repaired
}

// RecoveryReport says what Open found in the directory and what it cut.
type RecoveryReport struct {
	Segments       int    // segment files found
	Records        int64  // untrimmed records found (to be drained)
	Bytes          int64  // their encoded size
	CheckpointSeq  uint64 // trim point read from CHECKPOINT (0 if none)
	CheckpointBad  bool   // CHECKPOINT existed but was unreadable; nothing counted as trimmed
	TruncatedBytes int64  // bytes cut from segment tails
	DroppedRecords int64  // records lost with the cuts: the torn or corrupt one plus whole ones found after it (estimate)
	Cuts           []Cut  // one per cut segment, oldest first
}

// Cut describes one segment truncated by Open.
type Cut struct {
	File    string // segment file name
	Offset  int64  // new file size: the end of the last good record
	Bytes   int64  // bytes removed
	Dropped int64  // records lost (estimate, see RecoveryReport.DroppedRecords)
	Reason  string // why the record at Offset was rejected
}
