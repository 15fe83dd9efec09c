package spool

import "errors"

// ErrFull is returned (wrapped) by Append when the records would take the
// untrimmed spool over [Options.MaxBytes], or when the disk itself is full.
// Nothing of that call was written; the caller should apply backpressure
// (leave the push unanswered) and retry after the drainer has trimmed.
var ErrFull = errors.New("spool full")

// ErrTooLarge is returned (wrapped) by Append for a record that can never be
// spooled: larger than one segment or the whole budget, or with a topic,
// header key or header count beyond the format's u16 limits.
var ErrTooLarge = errors.New("record too large for the spool")

// ErrClosed is returned by every method called after [Spool.Close].
var ErrClosed = errors.New("spool closed")

// ErrLocked is returned (wrapped) by Open when another open spool, in this
// process or another, holds the directory's lock.
var ErrLocked = errors.New("spool dir locked")

// ErrCorrupt is returned (wrapped) by Peek when a record that passed its
// check at Open no longer does: the disk changed underneath the spool.
// Reopening the spool cuts the segment at that record.
var ErrCorrupt = errors.New("spool record corrupt")
