package rtmsim

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// FPNN codes the simulator answers for quests it cannot use.
const (
	codeNotSupported = 10002 // JSON payloads
	codeKeyNotFound  = 10009 // a required key is missing
	codeTypeConv     = 10010 // a value of the wrong type, or not a map
)

// HandleQuest serves one quest from a client; it runs on the connection's
// reader goroutine, in arrival order. It implements [rtm.QuestHandler].
func (c *simConn) HandleQuest(_ context.Context, f *rtm.Frame, _ []byte, r rtm.Reply) {
	s := c.s
	if f.Type != rtm.TwoWay {
		s.log.Debug("rtmsim: one-way quest ignored", "conn", c.id, "method", string(f.Method))
		return
	}
	method := string(f.Method)
	switch method {
	case "setlisten", "addlisten", "removelisten", "sendmsg", "sendgroupmsg", "sendroommsg", "sendmsgs", "broadcastmsg":
	default:
		s.answerError(r, rtm.CodeUnknownMethod, "Method function is unconfiged.")
		return
	}
	if f.Flag&rtm.FlagJSON != 0 {
		s.answerError(r, codeNotSupported, "rtmsim: JSON payloads are not supported")
		return
	}
	s.st.quests.Add(1)
	q := Quest{Conn: c.id, Method: method, At: time.Now(), N: c.counts[method]}
	c.counts[method]++
	if method == "setlisten" {
		q.Form = setlistenForm(f.Payload)
	}
	q.Sig, _ = rtm.DecodeSignature(f.Payload) // a bad one fails verify below
	code, ex := s.verify(method, f.Payload)
	if fn := s.rejectFn.Load(); code == 0 && fn != nil {
		code, ex = (*fn)(q)
	}
	if code != 0 {
		q.Code = code
		s.onQuest(q)
		s.answerError(r, code, ex)
		return
	}
	switch method {
	case "setlisten", "addlisten", "removelisten":
		c.handleListen(q, f.Payload, r)
	case "sendmsgs", "broadcastmsg":
		c.handleSendMulti(q, f.Payload, r)
	default:
		c.handleSend(q, f.Payload, r)
	}
}

// onQuest reports q to Config.OnQuest, if set.
func (s *Server) onQuest(q Quest) {
	if s.cfg.OnQuest != nil {
		s.cfg.OnQuest(q)
	}
}

// answerError answers r with {code, ex} and counts the code.
func (s *Server) answerError(r rtm.Reply, code int, ex string) {
	s.st.countCode(code)
	if err := r.Error(code, ex); err != nil {
		s.log.Debug("rtmsim: error answer not sent", "code", code, "err", err)
	}
}

// decodeCode maps a decode error of the rtm codec to an FPNN code.
func decodeCode(err error) int {
	if strings.Contains(err.Error(), "missing key") {
		return codeKeyNotFound
	}
	return codeTypeConv
}

// verify checks the signing keys of an RTM quest (spec §6): pid, sign, ts
// within ClockSkew, and that (salt, sign) was not seen before. It returns
// the RTM error code and explanation, or 0.
func (s *Server) verify(method string, payload []byte) (int, string) {
	sig, err := rtm.DecodeSignature(payload)
	if err != nil {
		return decodeCode(err), err.Error()
	}
	if sig.PID != s.cfg.PID {
		return rtm.CodeInvalidSign, "invalid pid or sign"
	}
	if !s.signer.Verify(method, sig) {
		return rtm.CodeInvalidSign, "invalid pid or sign"
	}
	now := s.now()
	if skew := s.cfg.ClockSkew; skew > 0 {
		d := time.Duration(sig.TS-now.Unix()) * time.Second
		if d < -skew || d > skew {
			return rtm.CodeInvalidTime, fmt.Sprintf("invalid server time: ts %d is %s from gateway time", sig.TS, d)
		}
	}
	if !s.replay.add(sig.Salt, sig.Sign, sig.TS, now.Unix(), s.replayWindow()) {
		return rtm.CodeSameSign, "same sign"
	}
	return 0, ""
}

// replayWindow is how long a signature is remembered beyond its ts.
func (s *Server) replayWindow() int64 {
	return int64(max(s.cfg.ClockSkew, time.Minute) / time.Second)
}

// replayCache remembers recent signatures for the 200006 check.
type replayCache struct {
	mu        sync.Mutex
	seen      map[replayKey]int64 // → expiry, Unix seconds of the simulator clock
	nextPrune int
}

type replayKey struct {
	salt int64
	sign string
}

func (rc *replayCache) init() {
	rc.seen = make(map[replayKey]int64)
	rc.nextPrune = 1024
}

// add records (salt, sign) and reports whether it was new. Entries expire
// window seconds after max(ts, now); they are pruned when the map doubles.
func (rc *replayCache) add(salt int64, sign string, ts, now, window int64) bool {
	k := replayKey{salt, sign}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if exp, ok := rc.seen[k]; ok && exp >= now {
		return false
	}
	rc.seen[k] = max(ts, now) + window
	if len(rc.seen) >= rc.nextPrune {
		for k, exp := range rc.seen {
			if exp < now {
				delete(rc.seen, k)
			}
		}
		rc.nextPrune = max(1024, 2*len(rc.seen))
	}
	return true
}

// payloadKeys returns the top-level keys of a msgpack map payload.
func payloadKeys(payload []byte) (map[string]bool, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(payload))
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	keys := make(map[string]bool, max(n, 0))
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, err
		}
		keys[k] = true
		if err := dec.Skip(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// handleListen applies setlisten / addlisten / removelisten to the
// connection's listen state, then answers.
func (c *simConn) handleListen(q Quest, payload []byte, r rtm.Reply) {
	s := c.s
	method := q.Method
	if code := s.rejectCode.Load(); code != 0 {
		if s.rejectLeft.Add(-1) >= 0 {
			q.Code = int(code)
			s.onQuest(q)
			s.answerError(r, int(code), "rtmsim: listen quest rejected by RejectListen")
			return
		}
		s.rejectCode.CompareAndSwap(code, 0)
	}
	change, err := s.decodeListen(c, method, payload)
	if err != nil {
		q.Code = decodeCode(err)
		s.onQuest(q)
		s.answerError(r, q.Code, err.Error())
		return
	}
	s.mu.Lock()
	st := c.state
	for _, ch := range change {
		st = st.Apply(ch)
	}
	c.state = st
	c.listened = true
	s.notifyLocked()
	s.mu.Unlock()
	s.st.listens.Add(1)
	s.onQuest(q)
	if err := r.OK(); err != nil {
		s.log.Debug("rtmsim: listen answer not sent", "conn", c.id, "err", err)
	}
	s.log.Debug("rtmsim: listen", "conn", c.id, "method", method, "state", fmt.Sprintf("%+v", st))
	s.flushOrphans()
}

// decodeListen turns a listen quest into the changes it makes. A setlisten
// may carry flags (set-all form), lists (id-list form) or both; absent flags
// keep their value, absent lists keep theirs unless AbsentListClears.
func (s *Server) decodeListen(c *simConn, method string, payload []byte) ([]rtm.ListenChange, error) {
	switch method {
	case "addlisten":
		var q rtm.AddListen
		if err := q.Decode(payload); err != nil {
			return nil, err
		}
		return []rtm.ListenChange{{Op: rtm.OpAdd, GIDs: q.GIDs, RIDs: q.RIDs, UIDs: q.UIDs, Events: q.Events}}, nil
	case "removelisten":
		var q rtm.RemoveListen
		if err := q.Decode(payload); err != nil {
			return nil, err
		}
		return []rtm.ListenChange{{Op: rtm.OpRemove, GIDs: q.GIDs, RIDs: q.RIDs, UIDs: q.UIDs, Events: q.Events}}, nil
	}
	keys, err := payloadKeys(payload)
	if err != nil {
		return nil, fmt.Errorf("rtm: setlisten: payload: %w", err)
	}
	s.mu.RLock()
	cur := c.state.Clone()
	s.mu.RUnlock()
	var out []rtm.ListenChange
	if keys["p2p"] || keys["group"] || keys["room"] || keys["ev"] {
		var q rtm.SetListenAll
		if err := q.Decode(payload); err != nil {
			return nil, err
		}
		ch := rtm.ListenChange{Op: rtm.OpSetAll, P2P: cur.P2P, Group: cur.Group, Room: cur.Room, Ev: cur.Ev}
		if keys["p2p"] {
			ch.P2P = q.P2P
		}
		if keys["group"] {
			ch.Group = q.Group
		}
		if keys["room"] {
			ch.Room = q.Room
		}
		if keys["ev"] {
			ch.Ev = q.Ev
		}
		out = append(out, ch)
	}
	if keys["gids"] || keys["rids"] || keys["uids"] || keys["events"] {
		var q rtm.SetListenIDs
		if err := q.Decode(payload); err != nil {
			return nil, err
		}
		ch := rtm.ListenChange{Op: rtm.OpSet, GIDs: q.GIDs, RIDs: q.RIDs, UIDs: q.UIDs, Events: q.Events}
		if !s.cfg.AbsentListClears {
			if !keys["gids"] {
				ch.GIDs = cur.GIDs
			}
			if !keys["rids"] {
				ch.RIDs = cur.RIDs
			}
			if !keys["uids"] {
				ch.UIDs = cur.UIDs
			}
			if !keys["events"] {
				ch.Events = cur.Events
			}
		}
		out = append(out, ch)
	}
	return out, nil
}

// handleSend serves sendmsg / sendgroupmsg / sendroommsg from an SDK
// client: it answers {mtime} and pushes the message to every covering
// connection.
func (c *simConn) handleSend(sq Quest, payload []byte, r rtm.Reply) {
	s := c.s
	method := sq.Method
	var q rtm.SendMsg
	if err := q.Decode(payload); err != nil {
		sq.Code = decodeCode(err)
		s.onQuest(sq)
		s.answerError(r, sq.Code, err.Error())
		return
	}
	if q.Method() != method {
		sq.Code = codeKeyNotFound
		s.onQuest(sq)
		s.answerError(r, codeKeyNotFound, fmt.Sprintf("rtmsim: %s: missing key %q", method, targetKey(method)))
		return
	}
	mtime := s.now().UnixMilli()
	s.st.sends.Add(1)
	s.onQuest(sq)
	ans := rtm.SendMsgAnswer{MTime: mtime}
	if err := rtm.AnswerPayload(r, ans.AppendPayload(nil)); err != nil {
		s.log.Debug("rtmsim: send answer not sent", "conn", c.id, "err", err)
	}
	p := rtm.Push{
		Scope: q.Scope, From: q.From, To: q.To, MType: q.MType, MID: q.MID,
		Msg: q.Msg, MsgBinary: q.MsgBinary, Attrs: []byte(q.Attrs), MTime: mtime,
	}
	s.publish(newMessage(&p, s.cfg.Encoding), nil)
}

// targetKey is the key naming the target of a send quest.
func targetKey(method string) string {
	switch method {
	case "sendgroupmsg":
		return "gid"
	case "sendroommsg":
		return "rid"
	}
	return "to"
}
