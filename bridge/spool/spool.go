package spool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Spool is an open spool directory. Append, AppendAsync, Len, Empty, Bytes,
// OldestAge, Wait and Stats may be called from any number of goroutines; Peek and Trim are meant for one drainer
// (they are safe to call concurrently, but serialise). A Spool holds the
// directory's lock until Close.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *dirLock

	reqs       chan *request  // Append → writer goroutine
	closing    chan struct{}  // closed by Close: refuse new appends, wake waiters
	stop       chan struct{}  // closed by Close once no sender is left: the writer drains and exits
	writerDone chan struct{}  // closed by the writer goroutine when it has exited
	senders    sync.WaitGroup // appenders between their closed check and their send
	reqPool    sync.Pool      // *request, reused by synchronous Appends
	inflight   atomic.Int64   // records handed to Append/AppendAsync and not yet completed
	w          *writer        // state owned by the writer goroutine

	readMu sync.Mutex // serialises Peek and Trim, which own the segments' read handles' use

	mu       sync.Mutex // guards everything below; never held during a data write or fsync
	closed   bool
	segs     []*segment    // oldest first; segs[0] holds the head unless the spool is empty
	headSeq  uint64        // sequence number of the oldest untrimmed record (or the next one to come)
	headOff  int64         // its offset in segs[0]
	headTime int64         // its Time (unix ms), valid when records > 0
	records  int64         // untrimmed durable records
	bytes    int64         // their encoded size
	notify   chan struct{} // closed and replaced whenever records are published
	broken   error         // sticky: set by a failed fsync, returned by every later Append
	st       Stats         // counters; Records, Bytes, OldestAgeMs, Segments, DiskBytes filled by Stats
}

// segment is one segment file. Its size and count only grow, and only the
// writer goroutine changes them, under Spool.mu.
type segment struct {
	base  uint64   // sequence number of its first record, its file name
	path  string   // full path
	size  int64    // durable bytes: header and complete, fsynced records
	count uint64   // durable records; their sequence numbers are base … base+count-1
	rf    *os.File // read handle, opened lazily by Peek/Trim under Spool.mu
}

func segName(base uint64) string { return fmt.Sprintf("%020d.seg", base) }

// Open opens (creating if needed) the spool in dir. It takes the directory's
// lock, reads the checkpoint, verifies every record of every segment, cuts a
// torn or corrupt tail at the last good record (reported in
// Stats().Recovered and logged, never an error), deletes segments that are
// fully trimmed, and starts the writer goroutine. Errors are I/O failures,
// a held lock (ErrLocked), invalid options, or a file that is not a segment
// of this format version.
func Open(dir string, opts Options) (*Spool, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	s := &Spool{
		dir:        dir,
		opts:       o,
		log:        o.Logger,
		lock:       lk,
		reqs:       make(chan *request, queueLen),
		closing:    make(chan struct{}),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		notify:     make(chan struct{}),
	}
	s.reqPool.New = func() any { return &request{ch: make(chan error, 1)} }
	next, err := s.recover()
	if err != nil {
		s.closeReadHandles()
		_ = lk.release() // the recovery error is the one to report
		return nil, fmt.Errorf("spool: open %s: %w", dir, err)
	}
	s.w = newWriter(s, next)
	go s.w.run()
	return s, nil
}

// Close stops the spool: appends already handed to the writer are written
// and fsynced, later ones fail with ErrClosed, files are closed and the lock
// is released. Records stay on disk for the next Open. Close is idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	s.senders.Wait()
	close(s.stop)
	<-s.writerDone
	s.readMu.Lock()
	s.closeReadHandles()
	s.readMu.Unlock()
	err := s.w.close()
	if lerr := s.lock.release(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

func (s *Spool) closeReadHandles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sg := range s.segs {
		if sg.rf != nil {
			_ = sg.rf.Close() // read-only handle: nothing to lose
			sg.rf = nil
		}
	}
}

// Len returns the number of untrimmed, durable records (see also Empty).
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.records)
}

// Empty reports whether the spool holds no untrimmed record and no append
// is in progress. This, not Len, is the test for sending a new record
// straight to Kafka: a record whose append has not completed yet is not in
// Len but must not be overtaken either.
func (s *Spool) Empty() bool {
	// inflight first: the writer publishes records before it counts them out
	// of inflight, so a zero here means Len already includes them.
	if s.inflight.Load() != 0 {
		return false
	}
	return s.Len() == 0
}

// Bytes returns the encoded size of the untrimmed records, the amount that
// MaxBytes limits.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// OldestAge returns how long ago (by Options.Now) the oldest untrimmed
// record was received, by its Time; 0 when the spool is empty.
func (s *Spool) OldestAge() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oldestAgeLocked()
}

func (s *Spool) oldestAgeLocked() time.Duration {
	if s.records == 0 {
		return 0
	}
	age := s.opts.Now().Sub(time.UnixMilli(s.headTime))
	return max(age, 0)
}

// Wait blocks until the spool holds at least one durable record, and
// returns nil; or until ctx is done (ctx.Err()) or the spool is closed
// (ErrClosed). It is how the drainer sleeps while there is nothing to drain.
func (s *Spool) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.records > 0 {
			s.mu.Unlock()
			return nil
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		}
	}
}

// Stats returns a snapshot of the spool's state and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Records = s.records
	st.Bytes = s.bytes
	st.OldestAgeMs = s.oldestAgeLocked().Milliseconds()
	st.Segments = len(s.segs)
	for _, sg := range s.segs {
		st.DiskBytes += sg.size
	}
	if s.broken != nil {
		st.Broken = s.broken.Error()
	}
	st.Recovered.Cuts = append([]Cut(nil), s.st.Recovered.Cuts...)
	return st
}

// recountLocked recomputes records and bytes from the segments and the head.
func (s *Spool) recountLocked() {
	var recs, bytes int64
	for _, sg := range s.segs {
		recs += int64(sg.count)
		bytes += sg.size - segHdrLen
	}
	if len(s.segs) > 0 {
		recs -= int64(s.headSeq - s.segs[0].base)
		bytes -= s.headOff - segHdrLen
	}
	s.records, s.bytes = recs, bytes
}

// publishLocked makes n records of sz bytes, just fsynced at the end of sg,
// visible to readers; first is the Time of the first of them.
func (s *Spool) publishLocked(sg *segment, newSize int64, n uint64, first int64) {
	wasEmpty := s.records == 0
	sg.size = newSize
	sg.count += n
	s.recountLocked()
	if wasEmpty && s.records > 0 {
		s.headTime = first
	}
	s.st.Appended += n
	if wasEmpty {
		// Wait only ever waits on an empty spool.
		close(s.notify)
		s.notify = make(chan struct{})
	}
}

func (s *Spool) path(name string) string { return filepath.Join(s.dir, name) }
