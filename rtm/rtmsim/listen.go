package rtmsim

import (
	"context"
	"fmt"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// ListenStates returns the listen state of every live connection, in the
// order the connections were accepted; each is a copy.
func (s *Server) ListenStates() []rtm.ListenState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]rtm.ListenState, len(s.conns))
	for i, c := range s.conns {
		out[i] = c.state.Clone()
	}
	return out
}

// WaitListen waits until the listen state of some live connection
// satisfies ok, and returns nil; or ctx's error, or ErrServerClosed. ok is
// called with the server's lock held and must not call back into the
// Server.
func (s *Server) WaitListen(ctx context.Context, ok func(rtm.ListenState) bool) error {
	for {
		s.mu.RLock()
		for _, c := range s.conns {
			if ok(c.state) {
				s.mu.RUnlock()
				return nil
			}
		}
		ch := s.changed
		s.mu.RUnlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("rtmsim: wait for listen state: %w", ctx.Err())
		case <-s.ctx.Done():
			return ErrServerClosed
		}
	}
}
