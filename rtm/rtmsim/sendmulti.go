package rtmsim

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// sendMulti is a sendmsgs or broadcastmsg quest as the official server
// SDKs send it: {mtype, from, tos, mid, msg, attrs} plus the signing keys;
// broadcastmsg has no tos.
type sendMulti struct {
	from, mtype, mid int64
	tos              []int64
	msg              []byte
	msgBinary        bool
	attrs            []byte
}

// errMissingKey marks a required key that is absent (answered 10009).
var errMissingKey = errors.New("missing key")

// decodeSendMulti reads a sendmsgs (withTos) or broadcastmsg payload.
// Integers may use any msgpack integer format; msg may be str or bin;
// attrs may be absent; unknown keys are skipped.
func decodeSendMulti(method string, payload []byte, withTos bool) (sendMulti, error) {
	var q sendMulti
	dec := msgpack.NewDecoder(bytes.NewReader(payload))
	n, err := dec.DecodeMapLen()
	if err != nil || n < 0 {
		return q, fmt.Errorf("rtmsim: %s: payload is not a map", method)
	}
	seen := map[string]bool{}
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return q, fmt.Errorf("rtmsim: %s: key: %w", method, err)
		}
		switch k {
		case "from":
			q.from, err = dec.DecodeInt64()
		case "mtype":
			q.mtype, err = dec.DecodeInt64()
		case "mid":
			q.mid, err = dec.DecodeInt64()
		case "tos":
			var l int
			if l, err = dec.DecodeArrayLen(); err == nil {
				if l < 0 {
					err = errors.New("nil array")
				}
				for i := 0; i < l && err == nil; i++ {
					var id int64
					id, err = dec.DecodeInt64()
					q.tos = append(q.tos, id)
				}
			}
		case "msg", "attrs":
			var c byte
			if c, err = dec.PeekCode(); err != nil {
				break
			}
			bin := msgpcode.IsBin(c)
			if !bin && !msgpcode.IsString(c) {
				err = fmt.Errorf("want str or bin, got code 0x%02x", c)
				break
			}
			var b []byte
			if b, err = dec.DecodeBytes(); err != nil {
				break
			}
			if k == "msg" {
				q.msg, q.msgBinary = b, bin
			} else {
				q.attrs = b
			}
		default:
			err = dec.Skip()
		}
		if err != nil {
			return q, fmt.Errorf("rtmsim: %s: %s: %w", method, k, err)
		}
		seen[k] = true
	}
	req := []string{"from", "mtype", "mid", "msg"}
	if withTos {
		req = append(req, "tos")
	}
	for _, k := range req {
		if !seen[k] {
			return q, fmt.Errorf("rtmsim: %s: %w %q", method, errMissingKey, k)
		}
	}
	return q, nil
}

// broadcastTo is the to of the pushes a broadcastmsg makes. How the real
// gateway pushes a broadcast to a listening server is unconfirmed; the
// simulator sends one pushmsg with to 0, covered by a p2p listener (P2P
// flag, or the sender's uid in its uid list).
const broadcastTo = 0

// handleSendMulti serves sendmsgs and broadcastmsg: it answers {mtime} and
// pushes the message to every covering connection, as pushmsg — for
// sendmsgs once per uid in tos (each a separate message, same mid), for
// broadcastmsg once with to 0 ([broadcastTo]).
func (c *simConn) handleSendMulti(sq Quest, payload []byte, r rtm.Reply) {
	s := c.s
	q, err := decodeSendMulti(sq.Method, payload, sq.Method == "sendmsgs")
	if err != nil {
		sq.Code = codeTypeConv
		if errors.Is(err, errMissingKey) {
			sq.Code = codeKeyNotFound
		}
		s.onQuest(sq)
		s.answerError(r, sq.Code, err.Error())
		return
	}
	mtime := s.now().UnixMilli()
	s.st.sends.Add(1)
	s.onQuest(sq)
	ans := rtm.SendMsgAnswer{MTime: mtime}
	if err := rtm.AnswerPayload(r, ans.AppendPayload(nil)); err != nil {
		s.log.Debug("rtmsim: send answer not sent", "conn", c.id, "err", err)
	}
	tos := q.tos
	if sq.Method == "broadcastmsg" {
		tos = []int64{broadcastTo}
	}
	for _, to := range tos {
		p := rtm.Push{
			Scope: rtm.ScopeP2P, From: q.from, To: to, MType: q.mtype, MID: q.mid,
			Msg: q.msg, MsgBinary: q.msgBinary, Attrs: q.attrs, MTime: mtime,
		}
		s.publish(newMessage(&p, s.cfg.Encoding), nil)
	}
}
