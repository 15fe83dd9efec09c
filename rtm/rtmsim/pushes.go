package rtmsim

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// message is one message or event to push, encoded once and shared by every
// connection it goes to (and by its redeliveries). It is immutable.
type message struct {
	scope   rtm.Scope
	method  string
	from    int64
	to      int64 // uid, gid, rid; the uid for events
	mid     int64
	event   string // events only, for coverage
	payload []byte
	gen     *generation // the load run that made it, or nil
}

// newMessage encodes p into a message. p must have a valid scope.
func newMessage(p *rtm.Push, enc Encoding) *message {
	m := &message{
		scope:   p.Scope,
		method:  p.Method(),
		from:    p.From,
		to:      p.Target(),
		mid:     p.MID,
		payload: pushPayload(p, enc),
	}
	if p.Scope == rtm.ScopeEvent {
		m.from, m.mid = 0, 0
		m.event = string(p.Event)
	}
	return m
}

// isDead reports whether c's connection has died (it may still be
// registered for a moment).
func isDead(c *simConn) bool {
	select {
	case <-c.conn.Done():
		return true
	default:
		return false
	}
}

// covers reports whether a connection in state st receives m.
func covers(st *rtm.ListenState, m *message) bool {
	if m.scope == rtm.ScopeEvent {
		return st.CoversEvent(m.event)
	}
	return st.CoversMessage(m.scope, m.from, m.to)
}

// Publish pushes p to every connection whose listen state covers it, like
// the gateway does when a message is sent, and returns the number of pushes
// sent. A zero MTime becomes the simulator's time; for events a zero PID
// becomes Config.PID and a zero Time the simulator's time in seconds. p is
// encoded before Publish returns and may be reused. While the server is
// paused ([Server.SetPaused]) the push is held back and 0 is returned.
func (s *Server) Publish(p *rtm.Push) (int, error) {
	q := *p
	switch q.Scope {
	case rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom:
		if q.MTime == 0 {
			q.MTime = s.now().UnixMilli()
		}
	case rtm.ScopeEvent:
		if q.PID == 0 {
			q.PID = s.cfg.PID
		}
		if q.Time == 0 {
			q.Time = s.now().Unix()
		}
	default:
		return 0, fmt.Errorf("rtmsim: publish: invalid scope %d", q.Scope)
	}
	return s.publish(newMessage(&q, s.cfg.Encoding), nil), nil
}

// PublishEvent pushes a project event (pushevent) to every connection that
// listens to it and returns the number of pushes sent; data is sent only
// when not empty.
func (s *Server) PublishEvent(event string, uid int64, endpoint, data string) int {
	p := rtm.Push{
		Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: s.cfg.PID, Event: []byte(event), UID: uid,
		Time: s.now().Unix(), Endpoint: []byte(endpoint), Data: []byte(data), HasData: data != "",
	}
	return s.publish(newMessage(&p, s.cfg.Encoding), nil)
}

// publish fans m out to the covering connections (or holds it while
// paused) and returns the number of pushes sent.
func (s *Server) publish(m *message, gen *generation) int {
	if gen == nil && s.paused.Load() {
		s.mu.Lock()
		if s.paused.Load() {
			s.held = append(s.held, m)
			s.mu.Unlock()
			return 0
		}
		s.mu.Unlock()
	}
	var buf [8]*simConn
	targets := buf[:0]
	s.mu.RLock()
	for _, c := range s.conns {
		if covers(&c.state, m) && !isDead(c) {
			targets = append(targets, c)
		}
	}
	s.mu.RUnlock()
	if len(targets) == 0 {
		s.st.notCovered.Add(1)
	}
	for _, c := range targets {
		s.push(c, m, 0)
	}
	return len(targets)
}

// Outcome is the fate of one message or event push, as [Config.OnOutcome]
// reports it.
type Outcome struct {
	Conn          uint64    // the connection it was pushed to
	Scope         rtm.Scope // for events From and MID are 0 and To is the uid
	From, To, MID int64
	Sent          time.Time // when it was queued on the connection
	At            time.Time // when the outcome was known
	Answered      bool      // an answer came (OK or error, in time or late)
	OK            bool      // the answer was OK
	Late          bool      // it came after AnswerTimeout
	Redelivery    bool      // a redelivery (Config.Redeliver), not a first delivery
}

// States of a pending push, for redelivery.
const (
	pendingOpen       = 0 // no answer yet, not redelivered
	pendingSettled    = 1 // answered in time
	pendingRedelivery = 2 // timed out or lost: a redelivery has been made (or skipped)
)

// pending is one push in flight on one connection.
type pending struct {
	s     *Server
	c     *simConn
	m     *message
	sent  time.Time
	tries int // redeliveries before this push
	state atomic.Uint32
}

// push sends m to c as a two-way quest and tracks its answer.
func (s *Server) push(c *simConn, m *message, tries int) {
	p := &pending{s: s, c: c, m: m, sent: time.Now(), tries: tries}
	s.st.sent.Add(1)
	c.cnt.sent.Add(1)
	if m.gen != nil {
		m.gen.add(1)
		if tries > 0 {
			m.gen.redelivered.Add(1)
		}
	}
	if s.cfg.Redeliver {
		s.sweepMu.Lock()
		s.sweepQ = append(s.sweepQ, p)
		s.sweepMu.Unlock()
	}
	c.conn.Go(m.method, m.payload, s.cfg.AnswerTimeout+s.cfg.LateGrace, p.done)
}

// done is the completion of one push: it counts the outcome, reports it and
// queues a redelivery when configured. It runs on a reader, timer or closing
// goroutine, so it never pushes itself.
func (p *pending) done(answer []byte, err error) {
	s, m := p.s, p.m
	late := time.Since(p.sent) > s.cfg.AnswerTimeout
	// A push is answered OK with an empty map, status 0 (spec §8): any
	// other payload is counted as an error answer.
	ok := err == nil && len(answer) == 1 && answer[0] == 0x80
	answered := err == nil || isErrorAnswer(err)
	if answered && !late {
		p.state.CompareAndSwap(pendingOpen, pendingSettled)
	} else if s.cfg.Redeliver && p.state.CompareAndSwap(pendingOpen, pendingRedelivery) {
		s.queueRedelivery(p)
	}
	s.st.count(answered, ok, late)
	p.c.cnt.settle(p.sent, answered, ok, late)
	if answered && s.cfg.OnAnswered != nil {
		s.cfg.OnAnswered(m.scope, m.from, m.to, m.mid, ok, late)
	}
	if s.cfg.OnOutcome != nil {
		s.cfg.OnOutcome(Outcome{Conn: p.c.id, Scope: m.scope, From: m.from, To: m.to, MID: m.mid,
			Sent: p.sent, At: time.Now(), Answered: answered, OK: ok, Late: late, Redelivery: p.tries > 0})
	}
	if m.gen != nil {
		m.gen.settle(p.tries == 0, answered, ok, late)
	}
}

// isErrorAnswer reports whether err is the peer's error answer (as opposed
// to a timeout or a lost connection).
func isErrorAnswer(err error) bool {
	var rerr *rtm.Error
	return errors.As(err, &rerr)
}

// queueRedelivery hands p to the sweep goroutine for redelivery; the queued
// item keeps its load run waiting.
func (s *Server) queueRedelivery(p *pending) {
	if p.m.gen != nil {
		p.m.gen.add(1)
	}
	s.sweepMu.Lock()
	s.redeliverQ = append(s.redeliverQ, p)
	s.sweepMu.Unlock()
}

// redeliver pushes p's message again: to the same connection if it is
// alive and still covers it, else to the first live connection that covers
// it, else it waits as an orphan until one does. It runs on the sweep
// goroutine and consumes the hold queueRedelivery took.
func (s *Server) redeliver(p *pending) {
	gen := p.m.gen
	if s.cfg.MaxRedeliveries > 0 && p.tries >= s.cfg.MaxRedeliveries {
		s.st.dropped.Add(1)
		if gen != nil {
			gen.add(-1)
		}
		return
	}
	if c := s.redeliveryTarget(p.c, p.m); c != nil {
		s.st.redelivered.Add(1)
		s.push(c, p.m, p.tries+1)
		if gen != nil {
			gen.add(-1)
		}
		return
	}
	s.mu.Lock()
	if s.closed || len(s.orphans) >= s.cfg.MaxOrphans {
		s.mu.Unlock()
		s.st.dropped.Add(1)
		if gen != nil {
			gen.add(-1)
		}
		return
	}
	s.orphans = append(s.orphans, p) // keeps the hold
	s.mu.Unlock()
}

// redeliveryTarget picks the connection for a redelivery: prev if it is
// live and covers m, else the first live covering one; nil if none, or while
// paused.
func (s *Server) redeliveryTarget(prev *simConn, m *message) *simConn {
	if s.paused.Load() {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var first *simConn
	for _, c := range s.conns {
		if !covers(&c.state, m) || isDead(c) {
			continue
		}
		if c == prev {
			return c
		}
		if first == nil {
			first = c
		}
	}
	return first
}

// flushOrphans redelivers the orphans that a live connection now covers.
func (s *Server) flushOrphans() {
	if s.paused.Load() {
		return
	}
	s.mu.Lock()
	if len(s.orphans) == 0 {
		s.mu.Unlock()
		return
	}
	type job struct {
		c *simConn
		p *pending
	}
	var jobs []job
	kept := s.orphans[:0]
	for _, p := range s.orphans {
		var target *simConn
		for _, c := range s.conns {
			if covers(&c.state, p.m) && !isDead(c) {
				target = c
				break
			}
		}
		if target == nil {
			kept = append(kept, p)
			continue
		}
		jobs = append(jobs, job{target, p})
	}
	clear(s.orphans[len(kept):])
	s.orphans = kept
	s.mu.Unlock()
	for _, j := range jobs {
		s.st.redelivered.Add(1)
		s.push(j.c, j.p.m, j.p.tries+1)
		if j.p.m.gen != nil {
			j.p.m.gen.add(-1) // the orphan's hold, now carried by the push
		}
	}
}

// dropQueued forgets every queued redelivery and every orphan, counting
// them as dropped; used by Close.
func (s *Server) dropQueued() {
	s.sweepMu.Lock()
	queued := s.redeliverQ
	s.redeliverQ = nil
	s.sweepMu.Unlock()
	s.mu.Lock()
	orphans := s.orphans
	s.orphans = nil
	s.mu.Unlock()
	for _, p := range append(queued, orphans...) {
		s.st.dropped.Add(1)
		if p.m.gen != nil {
			p.m.gen.add(-1)
		}
	}
}

// sweepLoop finds pushes that have been waiting longer than AnswerTimeout
// and redelivers them (Redeliver only). Pushes time out in send order, so
// the queue is swept from its head.
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	tick := min(max(s.cfg.AnswerTimeout/10, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var due []*pending
	for {
		select {
		case <-s.ctx.Done():
			s.dropQueued()
			return
		case <-t.C:
		}
		now := time.Now()
		due = due[:0]
		s.sweepMu.Lock()
		i := 0
		for ; i < len(s.sweepQ); i++ {
			p := s.sweepQ[i]
			if now.Sub(p.sent) < s.cfg.AnswerTimeout {
				break
			}
			if p.state.CompareAndSwap(pendingOpen, pendingRedelivery) {
				if p.m.gen != nil {
					p.m.gen.add(1) // released by redeliver
				}
				due = append(due, p)
			}
		}
		n := copy(s.sweepQ, s.sweepQ[i:])
		clear(s.sweepQ[n:])
		s.sweepQ = s.sweepQ[:n]
		due = append(due, s.redeliverQ...)
		clear(s.redeliverQ)
		s.redeliverQ = s.redeliverQ[:0]
		s.sweepMu.Unlock()
		for _, p := range due {
			s.redeliver(p)
		}
		clear(due)
		s.flushOrphans()
	}
}

// pingPayload is the empty map of the gateway's "ping".
var pingPayload = []byte{0x80}

// pingLoop sends the gateway's "ping" to every connection each
// PingInterval.
func (s *Server) pingLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.RLock()
		conns := append([]*simConn(nil), s.conns...)
		s.mu.RUnlock()
		for _, c := range conns {
			s.st.pingsSent.Add(1)
			c.conn.Go("ping", pingPayload, s.cfg.AnswerTimeout, s.pingDone)
		}
	}
}

func (s *Server) pingDone(_ []byte, err error) {
	if err == nil {
		s.st.pingsAnswered.Add(1)
	} else {
		s.st.pingsFailed.Add(1)
	}
}
