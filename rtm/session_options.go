package rtm

import (
	"log/slog"
	"time"
)

// SessionOption configures a [Session]; pass them to [NewSession].
type SessionOption func(*sessionOptions)

// sessionOptions holds every Session setting; defaultSessionOptions sets the
// defaults in one place.
type sessionOptions struct {
	listen      ListenState
	connOpts    []ConnOption
	backoff     Backoff
	dedupWindow time.Duration
	dedupMax    int
	logger      *slog.Logger
	stateHook   func(StateChange)
	flash       time.Duration
	now         func() int64      // monotonic ns for the duplicate filter; nil: real time
	randN       func(int64) int64 // back-off jitter; nil: math/rand/v2
}

func defaultSessionOptions() sessionOptions {
	return sessionOptions{
		dedupWindow: DefaultDedupWindow,
		dedupMax:    DefaultDedupMaxEntries,
		flash:       FlashDisconnect,
	}
}

// WithListen sets the initial desired listen state, replayed on every
// connect; its lists are sorted and de-duplicated. Default: listen to
// nothing.
func WithListen(s ListenState) SessionOption {
	n := ListenState{P2P: s.P2P, Group: s.Group, Room: s.Room, Ev: s.Ev}.Apply(ListenChange{
		Op: OpSet, GIDs: s.GIDs, RIDs: s.RIDs, UIDs: s.UIDs, Events: s.Events,
	})
	return func(o *sessionOptions) { o.listen = n.Clone() }
}

// WithConnOptions passes options to every [Dial] the session makes
// (timeouts, keepalive, maximum payload, encryption). The session's logger
// is passed first, so a [WithLogger] here overrides it.
func WithConnOptions(opts ...ConnOption) SessionOption {
	return func(o *sessionOptions) { o.connOpts = append(o.connOpts, opts...) }
}

// WithBackoff sets the exponential part of the reconnect back-off: the first
// delay (and lower bound) min and the cap max; zero keeps the default (500 ms,
// 30 s). The first [DefaultBackoffFastTries] consecutive failures are still
// retried within [DefaultBackoffFastJitter]; see [Backoff].
func WithBackoff(minDelay, maxDelay time.Duration) SessionOption {
	return func(o *sessionOptions) { o.backoff.Min, o.backoff.Max = minDelay, maxDelay }
}

// WithReconnectSchedule sets the whole reconnect schedule, fast tries
// included; it overrides [WithBackoff].
func WithReconnectSchedule(b Backoff) SessionOption {
	return func(o *sessionOptions) { o.backoff = b }
}

// WithDedup sets the duplicate filter: a message answered OK is remembered
// for window, at most maxEntries of them (the oldest go first), and a
// redelivery within that time is answered at once without reaching the
// handler. Default: on, 300 s, 100,000 entries (about 15 MB when full).
// A window ≤ 0 switches the filter off (WithDedup(0, 0)); maxEntries ≤ 0
// with a positive window means the default 100,000.
func WithDedup(window time.Duration, maxEntries int) SessionOption {
	return func(o *sessionOptions) {
		if maxEntries <= 0 {
			maxEntries = DefaultDedupMaxEntries
		}
		o.dedupWindow, o.dedupMax = window, maxEntries
	}
}

// WithSessionLogger sets the logger for connection events and errors
// (default: discard). It is also given to each connection.
func WithSessionLogger(l *slog.Logger) SessionOption {
	return func(o *sessionOptions) { o.logger = l }
}

// WithStateHook registers fn to be called with every state change, in
// order, on the session's goroutine and with no lock held. fn must return
// quickly (set a gauge, log); use [Session.Watch] for anything slower.
func WithStateHook(fn func(StateChange)) SessionOption {
	return func(o *sessionOptions) { o.stateHook = fn }
}

// WithFlashDisconnect sets how long a connection must stay listening for
// its loss to reset the failure count (default [FlashDisconnect], 1.5 s):
// a connection lost sooner counts as one more failure, so a gateway that
// accepts and drops at once meets a growing back-off.
func WithFlashDisconnect(d time.Duration) SessionOption {
	return func(o *sessionOptions) {
		if d > 0 {
			o.flash = d
		}
	}
}
