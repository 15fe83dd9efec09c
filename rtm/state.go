package rtm

import (
	"fmt"
	"time"
)

// State is where a [Session]'s link to the gateway stands. Its numeric value
// is stable (it feeds a gauge): 0 Disconnected, 1 Connecting, 2 Connected,
// 3 Listening, 4 Stopped.
type State uint8

// The states of a [Session], in the order a healthy connect goes through
// them. Only Listening means pushes are flowing as configured.
const (
	// Disconnected: no connection; the session is waiting out its back-off
	// (or Run has not started yet). The reason says what went wrong.
	Disconnected State = iota
	// Connecting: dialling the gateway (TCP and, if configured, the
	// encryption handshake).
	Connecting
	// Connected: the connection is up and the listen state is being
	// replayed; pushes may already arrive.
	Connected
	// Listening: the gateway accepted the whole listen state.
	Listening
	// Stopped: Run has returned.
	Stopped
)

// String returns "disconnected", "connecting", "connected", "listening" or
// "stopped".
func (s State) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Listening:
		return "listening"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("state %d", uint8(s))
}

// StateChange is one transition of a [Session]'s state, as reported by
// [Session.State], [Session.Watch] and [WithStateHook].
type StateChange struct {
	State State
	// Reason says why, in words fit for an operator: the dial or gateway
	// error, "config error: …" with what to fix, the back-off before the
	// next attempt. Empty for a plain success. Never contains the secret.
	Reason string
	// Attempt is the number of the connection attempt in the current run of
	// failures: 1 for the first try after a healthy connection (or at
	// start), growing while attempts keep failing.
	Attempt int
	At      time.Time // when the change happened
}

// String formats the change for logs.
func (c StateChange) String() string {
	if c.Reason == "" {
		return fmt.Sprintf("%s (attempt %d)", c.State, c.Attempt)
	}
	return fmt.Sprintf("%s (attempt %d): %s", c.State, c.Attempt, c.Reason)
}

// watcher is one [Session.Watch] subscription: a channel of capacity 1 that
// always holds the latest change not yet received.
type watcher struct {
	ch chan StateChange
}

// setState records a transition and tells the observers: the state hook
// (synchronously, on the caller's goroutine) and every watcher (without
// blocking: a slow watcher finds only the latest change). No session lock is
// held while observers run. It is called only by the goroutine running
// [Session.Run], so transitions reach observers in order.
func (s *Session) setState(st State, reason string, attempt int) {
	c := StateChange{State: st, Reason: reason, Attempt: attempt, At: time.Now()}
	s.mu.Lock()
	s.state = c
	s.mu.Unlock()

	s.notifyMu.Lock()
	for w := range s.watchers {
		select {
		case w.ch <- c:
		default:
			// Full: replace the stale change with this one. Only setState
			// sends, under notifyMu, so after the drain there is room.
			select {
			case <-w.ch:
			default:
			}
			w.ch <- c
		}
	}
	s.notifyMu.Unlock()

	if s.opts.stateHook != nil {
		s.opts.stateHook(c)
	}
}

// State returns the session's current state.
func (s *Session) State() StateChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Watch subscribes to state changes. The channel first receives the current
// state, then every later change; if the receiver falls behind it finds only
// the latest change (intermediate ones are skipped), and the session never
// waits for it. cancel ends the subscription and closes the channel; call it
// when done (it is safe to call more than once).
func (s *Session) Watch() (<-chan StateChange, func()) {
	w := &watcher{ch: make(chan StateChange, 1)}
	s.notifyMu.Lock()
	w.ch <- s.State()
	s.watchers[w] = struct{}{}
	s.notifyMu.Unlock()
	var once bool
	return w.ch, func() {
		s.notifyMu.Lock()
		defer s.notifyMu.Unlock()
		if once {
			return
		}
		once = true
		delete(s.watchers, w)
		close(w.ch)
	}
}
