package rtmsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// Quest is one RTM quest a client sent (listen or send), as
// [Config.OnQuest] and a [Server.SetRejectFunc] function see it.
type Quest struct {
	// Conn is the connection's number: 1 for the first connection the
	// server accepted, 2 for the next, … (refused ones count too).
	Conn uint64
	// Method is the quest's method, e.g. "setlisten".
	Method string
	// Form tells a setlisten's form: "all" (flags), "ids" (lists) or
	// "all+ids" (both); "" for other methods or an undecodable payload.
	Form string
	// Sig is the signing keys as sent (zero if they did not decode).
	Sig rtm.Signature
	// At is when the quest arrived (the machine's clock).
	At time.Time
	// N is how many quests of this method came before it on this
	// connection.
	N int
	// Code is the answer: 0 for OK, else the error code. A reject
	// function sees 0.
	Code int
}

// ErrNoConn is returned by the per-connection calls ([Server.Call],
// [Server.Send], [Server.PushTo], [Server.Drop]) when the connection
// numbered so is not live.
var ErrNoConn = errors.New("rtmsim: no such live connection")

// SetRejectFunc makes fn decide, for every RTM quest that passed the
// signature checks, whether to refuse it: a non-zero code is answered as an
// error with ex, and the listen state stays unchanged. It runs on the
// connection's reader goroutine, before the quest is applied, and must not
// block or call back into the Server. nil removes it. [Server.RejectListen]
// is checked after it.
func (s *Server) SetRejectFunc(fn func(q Quest) (code int, ex string)) {
	if fn == nil {
		s.rejectFn.Store(nil)
		return
	}
	s.rejectFn.Store(&fn)
}

// SetRefuse makes the server close every new connection right after
// accepting it (true), as a gateway that is up but refuses clients does,
// or serve them again (false). Connections already served stay up.
func (s *Server) SetRefuse(refuse bool) { s.refuse.Store(refuse) }

// AcceptTimes returns when each connection was accepted, in accept order
// (index i is connection number i+1), refused ones included.
func (s *Server) AcceptTimes() []time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]time.Time(nil), s.acceptTimes...)
}

// ListenOf returns the listen state of live connection conn, and whether
// it is live.
func (s *Server) ListenOf(conn uint64) (rtm.ListenState, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.connLocked(conn); c != nil {
		return c.state.Clone(), true
	}
	return rtm.ListenState{}, false
}

// Drop closes live connection conn, as [Server.DropAll] does for all.
func (s *Server) Drop(conn uint64) error {
	s.mu.RLock()
	c := s.connLocked(conn)
	s.mu.RUnlock()
	if c == nil {
		return fmt.Errorf("rtmsim: drop %d: %w", conn, ErrNoConn)
	}
	c.conn.Close()
	return nil
}

// Go sends a two-way quest with a raw payload to live connection conn and
// returns at once: the quest is queued on the connection before Go returns
// (so quests of successive calls go out in order), and its outcome arrives
// on the returned channel: nil for OK, the *rtm.Error of an error answer,
// or why there was none (a timeout after AnswerTimeout + LateGrace, a
// closed connection, [ErrNoConn]). Nothing is counted in [Stats]. It is
// for tests of a client: a gateway ping ("ping", nil), a push the
// simulator would not make, an unknown method.
func (s *Server) Go(conn uint64, method string, payload []byte) <-chan error {
	done := make(chan error, 1)
	s.mu.RLock()
	c := s.connLocked(conn)
	s.mu.RUnlock()
	if c == nil {
		done <- fmt.Errorf("rtmsim: %s on %d: %w", method, conn, ErrNoConn)
		return done
	}
	c.conn.Go(method, payload, s.cfg.AnswerTimeout+s.cfg.LateGrace, func(_ []byte, err error) { done <- err })
	return done
}

// GoPush encodes p as [Server.Publish] does and pushes it with [Server.Go]
// to live connection conn only, whatever its listen state (not counted in
// [Stats], never redelivered).
func (s *Server) GoPush(conn uint64, p *rtm.Push) <-chan error {
	switch p.Scope {
	case rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom, rtm.ScopeEvent:
	default:
		done := make(chan error, 1)
		done <- fmt.Errorf("rtmsim: push to %d: invalid scope %d", conn, p.Scope)
		return done
	}
	m := newMessage(p, s.cfg.Encoding)
	return s.Go(conn, m.method, m.payload)
}

// Call is [Server.Go] that waits for the outcome, or for ctx.
func (s *Server) Call(ctx context.Context, conn uint64, method string, payload []byte) error {
	select {
	case err := <-s.Go(conn, method, payload):
		return err
	case <-ctx.Done():
		return fmt.Errorf("rtmsim: call %s on %d: %w", method, conn, ctx.Err())
	}
}

// Send sends a one-way quest with a raw payload to live connection conn.
func (s *Server) Send(conn uint64, method string, payload []byte) error {
	s.mu.RLock()
	c := s.connLocked(conn)
	s.mu.RUnlock()
	if c == nil {
		return fmt.Errorf("rtmsim: send %s to %d: %w", method, conn, ErrNoConn)
	}
	if err := c.conn.Send(method, payload); err != nil {
		return fmt.Errorf("rtmsim: send %s to %d: %w", method, conn, err)
	}
	return nil
}

// connLocked returns live connection id, or nil. s.mu must be held.
func (s *Server) connLocked(id uint64) *simConn {
	for _, c := range s.conns {
		if c.id == id {
			return c
		}
	}
	return nil
}

// setlistenForm names the form of a setlisten payload (see [Quest.Form]).
func setlistenForm(payload []byte) string {
	keys, err := payloadKeys(payload)
	if err != nil {
		return ""
	}
	all := keys["p2p"] || keys["group"] || keys["room"] || keys["ev"]
	ids := keys["gids"] || keys["rids"] || keys["uids"] || keys["events"]
	switch {
	case all && ids:
		return "all+ids"
	case all:
		return "all"
	case ids:
		return "ids"
	}
	return ""
}
