package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Request states, guarded by request.mu: the writer takes a pending request;
// a synchronous Append whose context ends first cancels it.
const (
	statePending uint8 = iota
	stateTaken
	stateCancelled
)

// request carries one Append's records to the writer goroutine.
type request struct {
	recs  []Record    // copied Record headers; the byte slices are the caller's
	ch    chan error  // completion of a synchronous Append (buffered 1)
	cb    func(error) // completion of an AppendAsync
	mu    sync.Mutex  // guards state; held by the writer while it encodes recs
	state uint8
	err   error // result, set by the writer
}

const (
	// queueLen bounds the requests waiting for the writer goroutine, and so
	// the records one fsync can cover; appenders beyond it wait (for an
	// fsync at most). The bridge's window bounds the records behind them.
	queueLen   = 1024
	writeChunk = 4 << 20  // write buffered frames once this many bytes are pending
	maxKeptBuf = 16 << 20 // drop the encode buffer after a batch if it grew past this
	fullLogGap = 10 * time.Second
	ageWarnGap = time.Minute
	opAppend   = "spool: append"
)

// Append writes recs to the spool and returns nil once they are durable
// (written and fsynced). Concurrent calls share fsyncs (group commit). The
// records of one call are consecutive and in order, and calls are ordered as
// the writer receives them (for calls made one after another by one
// goroutine, in call order). A record with Time 0 is stamped with
// Options.Now.
//
// Errors: ErrFull (wrapped; nothing written) when the records would exceed
// the budget or the disk is full; ErrTooLarge for a record that can never
// fit; ErrClosed; the sticky error of an earlier failed fsync; or ctx's
// error. If ctx ends before the writer took the records, nothing is written;
// if it ends later, Append returns at once but the records may still become
// durable (the error says so). Append does not keep recs or their bytes
// after it returns.
func (s *Spool) Append(ctx context.Context, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: append: %w (nothing written)", err)
	}
	r := s.reqPool.Get().(*request)
	r.recs = append(r.recs[:0], recs...)
	if err := s.enqueue(ctx, r); err != nil {
		s.putRequest(r)
		return fmt.Errorf("spool: append: %w (nothing written)", err)
	}
	select {
	case err := <-r.ch:
		s.putRequest(r)
		return err
	case <-ctx.Done():
	}
	r.mu.Lock()
	if r.state == statePending {
		r.state = stateCancelled
		r.mu.Unlock()
		s.inflight.Add(-int64(len(recs))) // the writer skips a cancelled request
		return fmt.Errorf("spool: append: %w (nothing written)", ctx.Err())
	}
	r.mu.Unlock()
	// Taken: the writer has encoded recs and will complete r; r is
	// abandoned to it rather than reused.
	select {
	case err := <-r.ch:
		return err
	default:
		return fmt.Errorf("spool: append: %w (the records may still become durable)", ctx.Err())
	}
}

// AppendAsync hands recs to the writer and returns at once; done is called
// exactly once, from the writer goroutine, with Append's result once the
// records are durable or refused. done must not block and must not call
// Append or AppendAsync (the writer would wait for itself): settle the push
// and return. The records' byte slices (and the Topic and header strings) must
// not change until done is called; the recs slice itself is copied. ctx
// limits only the wait for room in the writer's queue: if AppendAsync returns
// an error, nothing was written and done is not called.
func (s *Spool) AppendAsync(ctx context.Context, recs []Record, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: append: %w (nothing written)", err)
	}
	r := s.reqPool.Get().(*request)
	r.recs = append(r.recs[:0], recs...)
	r.cb = done
	if err := s.enqueue(ctx, r); err != nil {
		s.putRequest(r)
		return fmt.Errorf("spool: append: %w (nothing written)", err)
	}
	return nil
}

// enqueue passes r to the writer goroutine and counts its records in
// inflight until the writer completes it.
func (s *Spool) enqueue(ctx context.Context, r *request) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.senders.Add(1)
	s.mu.Unlock()
	defer s.senders.Done()
	n := int64(len(r.recs))
	s.inflight.Add(n)
	select {
	case s.reqs <- r:
		return nil
	case <-ctx.Done():
		s.inflight.Add(-n)
		return ctx.Err()
	case <-s.closing:
		s.inflight.Add(-n)
		return ErrClosed
	}
}

func (s *Spool) putRequest(r *request) {
	clear(r.recs)
	r.recs = r.recs[:0]
	r.cb, r.err, r.state = nil, nil, statePending
	s.reqPool.Put(r)
}

// writer is the state of the one goroutine that writes and fsyncs segments.
type writer struct {
	s     *Spool
	timer *time.Timer

	active *segment // segment being appended to; nil until the first append
	wf     *os.File // its write handle
	wsize  int64    // bytes written to wf so far (published or not)

	nextSeq       uint64 // sequence number of the next record encoded
	buf           []byte // encoded frames not yet written
	pendRecs      uint64 // records written or buffered but not yet fsynced and published
	pendBytes     int64  // their encoded size
	pendFirstTime int64  // Time of the first of them

	batch   []*request // requests received for this round
	inBuf   []*request // accepted requests whose records are pending
	batchEr error      // once set, the rest of the batch fails with it
	err     error      // sticky: a failed fsync; every later request fails with it

	fullLoggedAt time.Time // last ErrFull log line
	fullQuiet    uint64    // rejections not logged since
	ageWarnedAt  time.Time // last MaxAge warning
}

func newWriter(s *Spool, next uint64) *writer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &writer{s: s, timer: t, nextSeq: next}
}

// run is the writer goroutine: collect what arrived, write it, fsync once,
// complete every request, repeat.
func (w *writer) run() {
	s := w.s
	defer close(s.writerDone)
	var ageTick <-chan time.Time
	if s.opts.MaxAge > 0 {
		t := time.NewTicker(min(max(s.opts.MaxAge/2, time.Second), ageWarnGap))
		defer t.Stop()
		ageTick = t.C
	}
	for {
		select {
		case r := <-s.reqs:
			w.batch = append(w.batch, r)
		case <-ageTick:
			w.checkAge()
			continue
		case <-s.stop:
			// Close: no sender is left; write what is queued, then exit.
			w.drainQueue()
			if len(w.batch) > 0 {
				w.process()
			}
			return
		}
		if d := s.opts.SyncInterval; d > 0 {
			w.timer.Reset(d)
		linger:
			for {
				select {
				case r := <-s.reqs:
					w.batch = append(w.batch, r)
				case <-w.timer.C:
					break linger
				case <-s.stop:
					w.timer.Stop()
					break linger
				}
			}
		}
		w.drainQueue()
		w.process()
	}
}

// drainQueue moves every request already queued into the batch.
func (w *writer) drainQueue() {
	for {
		select {
		case r := <-w.s.reqs:
			w.batch = append(w.batch, r)
		default:
			return
		}
	}
}

// process encodes, writes and fsyncs the batch, then completes its
// requests in the order they arrived.
func (w *writer) process() {
	for _, r := range w.batch {
		r.mu.Lock()
		if r.state == stateCancelled {
			r.mu.Unlock()
			continue
		}
		r.state = stateTaken
		r.err = w.encode(r)
		r.mu.Unlock()
	}
	w.flush()
	for i, r := range w.batch {
		w.batch[i] = nil
		if r.state == stateCancelled {
			continue // its Append has returned; nobody waits
		}
		w.s.inflight.Add(-int64(len(r.recs)))
		if r.cb != nil {
			cb, err := r.cb, r.err
			w.s.putRequest(r)
			cb(err)
		} else {
			r.ch <- r.err
		}
	}
	w.batch = w.batch[:0]
	w.batchEr = nil
	if cap(w.buf) > maxKeptBuf {
		w.buf = nil
	}
}

// encode checks r against the budget and the segment size and appends its
// frames to the buffer; a nil result means r waits for the flush.
func (w *writer) encode(r *request) error {
	s := w.s
	if w.err != nil {
		return w.err
	}
	if w.batchEr != nil {
		if errors.Is(w.batchEr, ErrFull) {
			w.noteFull(len(r.recs))
		}
		return w.batchEr
	}
	var size int64
	for i := range r.recs {
		n, err := frameSize(&r.recs[i])
		if err == nil && n > s.opts.SegmentBytes-segHdrLen {
			err = fmt.Errorf("record of %d bytes in segments of %d: %w", n, s.opts.SegmentBytes, ErrTooLarge)
		}
		if err != nil {
			return fmt.Errorf("%s: record %d of %d: %w", opAppend, i, len(r.recs), err)
		}
		size += n
	}
	if size > s.opts.SegmentBytes-segHdrLen {
		return fmt.Errorf("%s: %d records of %d bytes do not fit in one segment of %d: %w",
			opAppend, len(r.recs), size, s.opts.SegmentBytes, ErrTooLarge)
	}
	s.mu.Lock()
	live, empty := s.bytes, s.records == 0
	s.mu.Unlock()
	if total := live + w.pendBytes + size; total > s.opts.MaxBytes {
		// Once one request is refused, the rest of the batch is too, so that
		// a smaller later one does not overtake it.
		w.batchEr = fmt.Errorf("%s: %d records of %d bytes would take the spool to %d bytes, over its budget of %d: %w",
			opAppend, len(r.recs), size, total, s.opts.MaxBytes, ErrFull)
		w.noteFull(len(r.recs))
		return w.batchEr
	}
	roll := w.active == nil ||
		(w.wsize+int64(len(w.buf)) > segHdrLen && w.wsize+int64(len(w.buf))+size > s.opts.SegmentBytes) ||
		(empty && w.pendRecs == 0 && w.active.size > segHdrLen)
	if roll {
		w.flush()
		if w.err != nil {
			return w.err
		}
		if w.batchEr != nil {
			return w.batchEr
		}
		if err := w.roll(); err != nil {
			w.batchEr = err
			return err
		}
	}
	now := s.opts.Now().UnixMilli()
	for i := range r.recs {
		rec := &r.recs[i]
		t := rec.Time
		if t == 0 {
			t = now
		}
		if w.pendRecs == 0 {
			w.pendFirstTime = t
		}
		w.buf = appendFrame(w.buf, w.nextSeq, t, rec)
		w.nextSeq++
		w.pendRecs++
	}
	w.pendBytes += size
	w.inBuf = append(w.inBuf, r)
	if len(w.buf) >= writeChunk {
		w.write()
		return w.batchEr // nil unless the write failed, failing r with it
	}
	return nil
}

// write writes the buffered frames to the active segment without fsync. On
// failure it cuts the file back to its durable size and fails every pending
// request.
func (w *writer) write() {
	if len(w.buf) == 0 {
		return
	}
	_, err := w.wf.WriteAt(w.buf, w.wsize)
	if err == nil {
		w.wsize += int64(len(w.buf))
		w.buf = w.buf[:0]
		return
	}
	err = fmt.Errorf("%s: write %s: %w", opAppend, w.active.path, diskErr(err))
	if terr := w.wf.Truncate(w.active.size); terr != nil {
		w.fail(fmt.Errorf("%s: undo failed write of %s: %w (after %w)", opAppend, w.active.path, terr, err))
		return
	}
	w.failPending(err)
	w.batchEr = err
}

// flush writes and fsyncs the pending frames and publishes them to readers.
func (w *writer) flush() {
	w.write()
	if w.pendRecs == 0 || w.err != nil {
		return
	}
	start := time.Now()
	err := w.wf.Sync()
	d := time.Since(start)
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// nothing written since the last good fsync can be trusted, and a
		// retry could report success for data that is gone.
		w.fail(fmt.Errorf("%s: fsync %s: %w", opAppend, w.active.path, err))
		return
	}
	s := w.s
	s.mu.Lock()
	st := &s.st
	st.FsyncCount++
	st.LastFsync = d
	st.FsyncTotal += d
	st.FsyncMax = max(st.FsyncMax, d)
	st.FsyncHist[fsyncBucket(d)]++
	s.publishLocked(w.active, w.wsize, w.pendRecs, w.pendFirstTime)
	s.mu.Unlock()
	w.pendRecs, w.pendBytes = 0, 0
	clear(w.inBuf)
	w.inBuf = w.inBuf[:0]
}

// failPending fails the pending requests with err and forgets their
// records, which are not in the file (any more).
func (w *writer) failPending(err error) {
	for _, r := range w.inBuf {
		r.err = err
	}
	clear(w.inBuf)
	w.inBuf = w.inBuf[:0]
	w.nextSeq -= w.pendRecs
	w.pendRecs, w.pendBytes = 0, 0
	w.buf = w.buf[:0]
	if w.active != nil {
		w.wsize = w.active.size
	}
}

// fail makes err sticky: this and every later request fails with it.
func (w *writer) fail(err error) {
	w.failPending(err)
	w.err = err
	s := w.s
	s.mu.Lock()
	s.broken = err
	s.mu.Unlock()
	s.log.Error("spool: broken, every append fails until the spool is reopened", "dir", s.dir, "err", err)
}

// roll starts a new segment named by the next sequence number. When the
// spool is empty, the old segments (all trimmed) are deleted.
func (w *writer) roll() error {
	s := w.s
	sg := &segment{base: w.nextSeq, path: s.path(segName(w.nextSeq)), size: segHdrLen}
	f, err := os.OpenFile(sg.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("%s: new segment: %w", opAppend, diskErr(err))
	}
	_, err = f.WriteAt([]byte(segMagic), 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		_ = f.Close()          // the file is being abandoned
		_ = os.Remove(sg.path) // an unusable header-only file; Open would remove it too
		return fmt.Errorf("%s: new segment %s: %w", opAppend, sg.path, diskErr(err))
	}
	if w.wf != nil {
		if err := w.wf.Close(); err != nil {
			s.log.Warn("spool: close full segment", "file", w.active.path, "err", err)
		}
	}
	w.active, w.wf, w.wsize = sg, f, segHdrLen

	s.mu.Lock()
	var dead []*segment
	if s.records == 0 {
		dead, s.segs = s.segs, nil
	}
	s.segs = append(s.segs, sg)
	if len(s.segs) == 1 {
		s.headSeq, s.headOff = sg.base, segHdrLen
	}
	s.recountLocked()
	s.mu.Unlock()
	// The dead segments hold no untrimmed record, so no Peek reads them.
	removeSegments(s, dead)
	return nil
}

// removeSegments closes and deletes segments that hold no untrimmed record.
func removeSegments(s *Spool, dead []*segment) {
	for _, sg := range dead {
		s.mu.Lock()
		rf := sg.rf
		sg.rf = nil
		s.mu.Unlock()
		if rf != nil {
			_ = rf.Close() // read-only handle
		}
		if err := os.Remove(sg.path); err != nil {
			// Harmless: the checkpoint marks its records trimmed, and Open
			// deletes it.
			s.log.Warn("spool: remove trimmed segment", "file", sg.path, "err", err)
		}
	}
}

// noteFull counts refused records and logs, loudly but at most once per
// fullLogGap, that the spool is full.
func (w *writer) noteFull(n int) {
	s := w.s
	s.mu.Lock()
	s.st.Rejected += uint64(n)
	recs, bytes := s.records, s.bytes
	s.mu.Unlock()
	w.fullQuiet += uint64(n)
	if now := time.Now(); now.Sub(w.fullLoggedAt) >= fullLogGap {
		s.log.Error("spool: full, refusing records (backpressure on the gateway)", "dir", s.dir,
			"records", recs, "bytes", bytes, "max_bytes", s.opts.MaxBytes, "refused_records", w.fullQuiet)
		w.fullLoggedAt, w.fullQuiet = now, 0
	}
}

// checkAge warns, at most once per ageWarnGap, while the oldest record is
// older than MaxAge.
func (w *writer) checkAge() {
	s := w.s
	s.mu.Lock()
	age, recs := s.oldestAgeLocked(), s.records
	s.mu.Unlock()
	if age > s.opts.MaxAge && time.Since(w.ageWarnedAt) >= ageWarnGap {
		s.log.Warn("spool: oldest record is older than MaxAge; is Kafka reachable?", "dir", s.dir,
			"oldest_age", age.Round(time.Second).String(), "max_age", s.opts.MaxAge.String(), "records", recs)
		w.ageWarnedAt = time.Now()
	}
}

// close closes the active segment's write handle; everything in it was
// fsynced by the last flush.
func (w *writer) close() error {
	if w.wf == nil {
		return nil
	}
	err := w.wf.Close()
	w.wf = nil
	return err
}

// diskErr adds ErrFull to an out-of-space error, so that callers apply
// backpressure rather than treat it as fatal.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}
