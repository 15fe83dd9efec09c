package spool

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults applied by Open for zero Options fields.
const (
	DefaultMaxBytes     = 1 << 30  // 1 GiB of untrimmed records
	DefaultSegmentBytes = 64 << 20 // 64 MiB per segment file
)

// Options configures a spool; the zero value is valid and every zero field
// means its documented default.
type Options struct {
	// MaxBytes is the disk budget: the most encoded bytes of untrimmed
	// records the spool holds before Append returns ErrFull. Default 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size at which the writer starts a new segment
	// file; it is capped at MaxBytes. Default 64 MiB. Whole segments are what
	// Trim deletes, so smaller segments give disk space back sooner.
	SegmentBytes int64
	// MaxAge, when positive, is how old the oldest untrimmed record may get
	// before the spool logs a warning (at most once a minute while it stays
	// too old). The spool never drops a record for its age. 0 means no check.
	MaxAge time.Duration
	// SyncInterval is the group-commit linger: after the first record of a
	// batch arrives, the writer waits this long for more before it writes and
	// fsyncs. 0 (the default) means no wait: each fsync starts as soon as the
	// previous one finished, taking whatever arrived meanwhile.
	SyncInterval time.Duration
	// Logger receives recovery reports, ErrFull bursts and age warnings.
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock used for OldestAge and for records with Time 0.
	// Default time.Now.
	Now func() time.Time
}

// withDefaults returns o with defaults filled in, or an error for a
// negative setting.
func (o Options) withDefaults() (Options, error) {
	if o.MaxBytes < 0 || o.SegmentBytes < 0 || o.MaxAge < 0 || o.SyncInterval < 0 {
		return o, fmt.Errorf("negative option in %+v", struct {
			MaxBytes, SegmentBytes int64
			MaxAge, SyncInterval   time.Duration
		}{o.MaxBytes, o.SegmentBytes, o.MaxAge, o.SyncInterval})
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes > o.MaxBytes {
		o.SegmentBytes = o.MaxBytes
	}
	if o.SegmentBytes < segHdrLen+frameHdr+fixedBody {
		return o, fmt.Errorf("SegmentBytes %d is smaller than one empty record", o.SegmentBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}
