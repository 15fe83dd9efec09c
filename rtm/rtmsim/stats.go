package rtmsim

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the simulator's counters since New. Push counts
// cover message and event pushes (first deliveries and redeliveries), not
// pings or malformed pushes, which have their own counters. Every push ends
// in exactly one of Answered, Errored, Overdue and Unanswered; until then it
// is Pending.
type Stats struct {
	Accepted  int64 // client connections accepted (before any handshake)
	Conns     int   // live client connections now
	Listening int   // live connections on which a listen quest succeeded

	Quests      int64         // signed RTM quests received (listen and send)
	Listens     int64         // listen quests applied
	Sends       int64         // sendmsg / sendgroupmsg / sendroommsg accepted
	ErrorCodes  map[int]int64 // error answers the simulator sent, by code
	Sent        int64         // pushes sent
	Answered    int64         // answered OK within AnswerTimeout
	Errored     int64         // answered with an error within AnswerTimeout
	Overdue     int64         // answered (OK or error) after AnswerTimeout
	Unanswered  int64         // never answered: LateGrace passed or the connection died
	Pending     int64         // sent, no outcome yet
	Redelivered int64         // redeliveries among Sent (Config.Redeliver)
	Dropped     int64         // redeliveries given up: too many orphans, or Close
	NoListener  int64         // messages no live connection's listen state covered: never pushed (a failover gap)
	NotCovered  int64         // the same count as NoListener (its older name)
	Held        int           // messages held back while paused

	PingsSent     int64 // gateway "ping" pushes sent
	PingsAnswered int64 // answered OK in time
	PingsFailed   int64 // error answer, timeout or lost connection

	MalformedSent       int64 // malformed pushes sent (SendMalformed)
	MalformedOK         int64 // answered OK (a client should rather answer an error)
	MalformedErrored    int64 // answered with an error answer
	MalformedUnanswered int64 // not answered within AnswerTimeout+LateGrace, or lost

	// ByConn counts pushes per connection, for every connection that was
	// ever registered (closed ones too), in accept order.
	ByConn []ConnStats
}

// ConnStats counts the message and event pushes of one connection; as in
// [Stats], every push ends in exactly one of Answered, Errored, Overdue
// and Unanswered, and is Pending until then.
type ConnStats struct {
	Conn       uint64 // the connection's number (see [Quest.Conn])
	Live       bool   // still connected
	Listening  bool   // its listen state covers something now (false once closed)
	Sent       int64
	Answered   int64 // OK within AnswerTimeout
	Errored    int64 // an error answer within AnswerTimeout
	Overdue    int64 // answered after AnswerTimeout
	Unanswered int64 // no answer within AnswerTimeout+LateGrace, or the connection died
	Pending    int64
	// LastOKSent is when the most recently sent push this connection
	// answered OK (in time or late) was sent; zero if none. A test fencing
	// a zombie checks that it is before the moment the zombie lost its
	// role.
	LastOKSent time.Time
}

// outcomes counts settled pushes by outcome; the server, each connection
// and each load run keep one.
type outcomes struct {
	answered, errored, overdue, unanswered atomic.Int64
}

// count adds one push's outcome: never answered, answered after the answer
// timeout (overdue), answered OK, or answered with an error.
func (o *outcomes) count(answered, ok, late bool) {
	switch {
	case !answered:
		o.unanswered.Add(1)
	case late:
		o.overdue.Add(1)
	case ok:
		o.answered.Add(1)
	default:
		o.errored.Add(1)
	}
}

// connCounters holds the live counters behind a ConnStats.
type connCounters struct {
	id   uint64
	sent atomic.Int64
	outcomes
	lastOKSent atomic.Int64 // unix nanos
}

func (cc *connCounters) settle(sent time.Time, answered, ok, late bool) {
	cc.count(answered, ok, late)
	if ok {
		n := sent.UnixNano()
		for {
			cur := cc.lastOKSent.Load()
			if cur >= n || cc.lastOKSent.CompareAndSwap(cur, n) {
				break
			}
		}
	}
}

func (cc *connCounters) snapshot() ConnStats {
	st := ConnStats{Conn: cc.id}
	st.Answered = cc.answered.Load()
	st.Errored = cc.errored.Load()
	st.Overdue = cc.overdue.Load()
	st.Unanswered = cc.unanswered.Load()
	st.Sent = cc.sent.Load()
	st.Pending = st.Sent - st.Answered - st.Errored - st.Overdue - st.Unanswered
	if n := cc.lastOKSent.Load(); n != 0 {
		st.LastOKSent = time.Unix(0, n)
	}
	return st
}

// ConnStats returns the push counts of connection conn (live or closed),
// and false if no connection of that number was ever registered.
func (s *Server) ConnStats(conn uint64) (ConnStats, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cc := s.connCounts[conn]
	if cc == nil {
		return ConnStats{}, false
	}
	return s.connStatsLocked(cc), true
}

// connStatsLocked snapshots cc with its liveness; s.mu must be held.
func (s *Server) connStatsLocked(cc *connCounters) ConnStats {
	st := cc.snapshot()
	if c := s.connLocked(cc.id); c != nil {
		st.Live = true
		st.Listening = !c.state.Empty()
	}
	return st
}

// counters holds the live counters behind Stats.
type counters struct {
	accepted, quests, listens, sends atomic.Int64
	sent                             atomic.Int64
	outcomes
	redelivered, dropped, notCovered          atomic.Int64
	pingsSent, pingsAnswered, pingsFailed     atomic.Int64
	malSent, malOK, malErrored, malUnanswered atomic.Int64
	codesMu                                   sync.Mutex
	codes                                     map[int]int64
}

func (c *counters) countCode(code int) {
	c.codesMu.Lock()
	c.codes[code]++
	c.codesMu.Unlock()
}

// Stats returns a snapshot of the counters. Counters are read one by one,
// so a snapshot taken while pushes are in flight may be off by the pushes
// that settled during the call.
func (s *Server) Stats() Stats {
	var st Stats
	c := &s.st
	s.mu.RLock()
	st.Conns = len(s.conns)
	for _, sc := range s.conns {
		if sc.listened {
			st.Listening++
		}
	}
	st.Held = len(s.held)
	st.ByConn = make([]ConnStats, 0, len(s.connOrder))
	for _, cc := range s.connOrder {
		st.ByConn = append(st.ByConn, s.connStatsLocked(cc))
	}
	s.mu.RUnlock()
	c.codesMu.Lock()
	st.ErrorCodes = maps.Clone(c.codes)
	c.codesMu.Unlock()
	st.Accepted = c.accepted.Load()
	st.Quests = c.quests.Load()
	st.Listens = c.listens.Load()
	st.Sends = c.sends.Load()
	// Outcomes before Sent, so that Pending is never negative.
	st.Answered = c.answered.Load()
	st.Errored = c.errored.Load()
	st.Overdue = c.overdue.Load()
	st.Unanswered = c.unanswered.Load()
	st.Sent = c.sent.Load()
	st.Pending = st.Sent - st.Answered - st.Errored - st.Overdue - st.Unanswered
	st.Redelivered = c.redelivered.Load()
	st.Dropped = c.dropped.Load()
	st.NoListener = c.notCovered.Load()
	st.NotCovered = st.NoListener
	st.PingsSent = c.pingsSent.Load()
	st.PingsAnswered = c.pingsAnswered.Load()
	st.PingsFailed = c.pingsFailed.Load()
	st.MalformedOK = c.malOK.Load()
	st.MalformedErrored = c.malErrored.Load()
	st.MalformedUnanswered = c.malUnanswered.Load()
	st.MalformedSent = c.malSent.Load()
	return st
}

// LogValue makes slog print the connection and push counters as a group;
// per_conn lists the live connections and the closed ones that were sent
// pushes as "<conn>[*]:sent/answered/overdue/unanswered" ("*": listening
// now; "x": closed).
func (st Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("conns", st.Conns), slog.Int("listening", st.Listening),
		slog.Int64("sent", st.Sent), slog.Int64("answered", st.Answered), slog.Int64("errored", st.Errored),
		slog.Int64("overdue", st.Overdue), slog.Int64("unanswered", st.Unanswered), slog.Int64("pending", st.Pending),
		slog.Int64("redelivered", st.Redelivered), slog.Int64("no_listener", st.NoListener),
		slog.Int64("pings_sent", st.PingsSent), slog.Int64("pings_answered", st.PingsAnswered),
		slog.String("per_conn", st.perConn()),
	)
}

// perConn formats ByConn for the log line.
func (st Stats) perConn() string {
	var sb strings.Builder
	for _, c := range st.ByConn {
		if !c.Live && c.Sent == 0 {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		mark := ""
		switch {
		case !c.Live:
			mark = "x"
		case c.Listening:
			mark = "*"
		}
		fmt.Fprintf(&sb, "%d%s:%d/%d/%d/%d", c.Conn, mark, c.Sent, c.Answered, c.Overdue, c.Unanswered)
	}
	return sb.String()
}
