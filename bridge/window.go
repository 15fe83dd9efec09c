package bridge

import (
	"context"
	"sync"
)

// window bounds the records the bridge has handed to Kafka but not yet
// settled, by count and by bytes. It is the only place on the push path that
// blocks: acquire waits for room, release makes room. All operations are
// O(1); waiters sleep on a channel that release closes, so a wait can be
// cancelled by a context and no lock is held while waiting.
type window struct {
	maxRecords int
	maxBytes   int64

	mu      sync.Mutex
	records int
	bytes   int64
	stopped bool
	wake    chan struct{} // closed and replaced when room is made; nil when nobody waits
}

func newWindow(records int, bytes int64) *window {
	return &window{maxRecords: records, maxBytes: bytes}
}

// acquire takes room for one record of n bytes, waiting while the window is
// full. A record larger than the whole window is admitted alone, when the
// window is empty, so that it cannot wait forever. It fails with ctx.Err()
// when ctx ends first and with ErrClosed once the window has been stopped.
func (w *window) acquire(ctx context.Context, n int64) error {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.records == 0 || (w.records < w.maxRecords && w.bytes+n <= w.maxBytes) {
			w.records++
			w.bytes += n
			w.mu.Unlock()
			return nil
		}
		ch := w.waitChan()
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitChan returns the channel the next release closes; w.mu must be held.
func (w *window) waitChan() chan struct{} {
	if w.wake == nil {
		w.wake = make(chan struct{})
	}
	return w.wake
}

// release returns the room of one record of n bytes and wakes the waiters.
// It never blocks for longer than the window's mutex is held.
func (w *window) release(n int64) {
	w.mu.Lock()
	w.records--
	w.bytes -= n
	if w.wake != nil {
		close(w.wake)
		w.wake = nil
	}
	w.mu.Unlock()
}

// stop makes every later acquire fail with ErrClosed and wakes the current
// waiters so they fail too. Records already in the window stay until
// released.
func (w *window) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.wake != nil {
		close(w.wake)
		w.wake = nil
	}
	w.mu.Unlock()
}

// waitEmpty waits until no record is in the window, or ctx ends.
func (w *window) waitEmpty(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.records == 0 {
			w.mu.Unlock()
			return nil
		}
		ch := w.waitChan()
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inflight returns the records and bytes currently in the window.
func (w *window) inflight() (int, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.records, w.bytes
}
