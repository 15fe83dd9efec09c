package rtmsim

import (
	"fmt"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// DropAll closes every client connection at once, as a gateway restart or
// network cut would, and returns how many it closed. Pushes in flight on
// them count as unanswered (and are redelivered if configured). Clients may
// reconnect at once.
func (s *Server) DropAll() int {
	s.mu.RLock()
	conns := append([]*simConn(nil), s.conns...)
	s.mu.RUnlock()
	for _, c := range conns {
		c.conn.Close()
	}
	s.log.Info("rtmsim: dropped all connections", "count", len(conns))
	return len(conns)
}

// SetPaused stops (true) or resumes (false) pushing messages: while paused,
// Publish and sendmsg hold their messages back (sendmsg is still answered),
// Generate waits, and redeliveries wait as orphans; on resume the held
// messages go out in order. Gateway pings continue.
func (s *Server) SetPaused(paused bool) {
	s.mu.Lock()
	if s.paused.Load() == paused {
		s.mu.Unlock()
		return
	}
	s.paused.Store(paused)
	if paused {
		s.resume = make(chan struct{})
		s.mu.Unlock()
		return
	}
	close(s.resume)
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, m := range held {
		s.publish(m, nil)
	}
	s.flushOrphans()
}

// RejectListen makes the next n listen quests (setlisten, addlisten,
// removelisten) that pass the signature check fail with the given error
// code, leaving the listen state unchanged, to test a client's retries. n
// <= 0 or code 0 cancels a previous call.
func (s *Server) RejectListen(code, n int) {
	if code == 0 || n <= 0 {
		s.rejectCode.Store(0)
		s.rejectLeft.Store(0)
		return
	}
	s.rejectLeft.Store(int64(n))
	s.rejectCode.Store(int64(code))
}

// SetAcceptDelay makes the server wait d after accepting a TCP connection
// before it reads anything from it (the handshake and every quest wait), to
// simulate a slow gateway; 0 turns it off. It applies to connections
// accepted afterwards.
func (s *Server) SetAcceptDelay(d time.Duration) { s.acceptDelay.Store(int64(max(d, 0))) }

// The kinds of malformed push [Server.SendMalformed] sends.
const (
	// MalformedMissingField is a pushmsg without mid.
	MalformedMissingField = "missing-field"
	// MalformedWrongType is a pushmsg whose from is a string.
	MalformedWrongType = "wrong-type"
	// MalformedGarbagePayload is a pushmsg with a valid header and a payload
	// that is not msgpack.
	MalformedGarbagePayload = "garbage-payload"
)

// SendMalformed pushes one malformed push of the given kind to every
// connection on which a listen quest has succeeded and returns how many it
// sent. The answers are counted in Stats (Malformed*): a good client answers
// with an error answer and keeps the connection.
func (s *Server) SendMalformed(kind string) (int, error) {
	method := "pushmsg"
	var payload []byte
	switch kind {
	case MalformedMissingField:
		payload = s.malformedPayload(false, true)
	case MalformedWrongType:
		payload = s.malformedPayload(true, false)
	case MalformedGarbagePayload:
		payload = []byte{0xc1, 0xc1, 0xff, 0x00, 'n', 'o', 't', ' ', 'm', 's', 'g', 'p', 'a', 'c', 'k'}
	default:
		return 0, fmt.Errorf("rtmsim: send malformed: unknown kind %q", kind)
	}
	s.mu.RLock()
	var conns []*simConn
	for _, c := range s.conns {
		if c.listened {
			conns = append(conns, c)
		}
	}
	s.mu.RUnlock()
	for _, c := range conns {
		s.st.malSent.Add(1)
		c.conn.Go(method, payload, s.cfg.AnswerTimeout+s.cfg.LateGrace, s.malformedDone)
	}
	return len(conns), nil
}

func (s *Server) malformedDone(_ []byte, err error) {
	switch {
	case err == nil:
		s.st.malOK.Add(1)
	case isErrorAnswer(err):
		s.st.malErrored.Add(1)
	default:
		s.st.malUnanswered.Add(1)
	}
}

// malformedPayload encodes a pushmsg payload with from as a string
// (fromStr) or without mid (noMID), keys sorted.
func (s *Server) malformedPayload(fromStr, noMID bool) []byte {
	n := 7
	if noMID {
		n--
	}
	b := mpack.AppendMapHeader(nil, n)
	b = mpack.AppendStr(mpack.AppendStr(b, "attrs"), "")
	b = mpack.AppendStr(b, "from")
	if fromStr {
		b = mpack.AppendStr(b, "424242")
	} else {
		b = mpack.AppendIntGo(b, 424242)
	}
	if !noMID {
		b = mpack.AppendIntGo(mpack.AppendStr(b, "mid"), 4545454545)
	}
	b = mpack.AppendStr(mpack.AppendStr(b, "msg"), "malformed")
	b = mpack.AppendIntGo(mpack.AppendStr(b, "mtime"), s.now().UnixMilli())
	b = mpack.AppendIntGo(mpack.AppendStr(b, "mtype"), 30)
	return mpack.AppendIntGo(mpack.AppendStr(b, "to"), 434343)
}
