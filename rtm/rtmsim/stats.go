package rtmsim

import (
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
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
	NotCovered  int64         // messages no connection listened to
	Held        int           // messages held back while paused

	PingsSent     int64 // gateway "ping" pushes sent
	PingsAnswered int64 // answered OK in time
	PingsFailed   int64 // error answer, timeout or lost connection

	MalformedSent       int64 // malformed pushes sent (SendMalformed)
	MalformedOK         int64 // answered OK (a client should rather answer an error)
	MalformedErrored    int64 // answered with an error answer
	MalformedUnanswered int64 // not answered within AnswerTimeout+LateGrace, or lost
}

// counters holds the live counters behind Stats.
type counters struct {
	accepted, quests, listens, sends             atomic.Int64
	sent, answered, errored, overdue, unanswered atomic.Int64
	redelivered, dropped, notCovered             atomic.Int64
	pingsSent, pingsAnswered, pingsFailed        atomic.Int64
	malSent, malOK, malErrored, malUnanswered    atomic.Int64
	codesMu                                      sync.Mutex
	codes                                        map[int]int64
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
	st.NotCovered = c.notCovered.Load()
	st.PingsSent = c.pingsSent.Load()
	st.PingsAnswered = c.pingsAnswered.Load()
	st.PingsFailed = c.pingsFailed.Load()
	st.MalformedOK = c.malOK.Load()
	st.MalformedErrored = c.malErrored.Load()
	st.MalformedUnanswered = c.malUnanswered.Load()
	st.MalformedSent = c.malSent.Load()
	return st
}

// LogValue makes slog print the connection and push counters as a group.
func (st Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("conns", st.Conns), slog.Int("listening", st.Listening),
		slog.Int64("sent", st.Sent), slog.Int64("answered", st.Answered), slog.Int64("errored", st.Errored),
		slog.Int64("overdue", st.Overdue), slog.Int64("unanswered", st.Unanswered), slog.Int64("pending", st.Pending),
		slog.Int64("redelivered", st.Redelivered), slog.Int64("not_covered", st.NotCovered),
		slog.Int64("pings_sent", st.PingsSent), slog.Int64("pings_answered", st.PingsAnswered),
	)
}
