package rtm

import (
	"fmt"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// ClientQuest is a quest we send to the gateway (setlisten, addlisten,
// removelisten, sendmsg…, *ping). It is the counterpart of [GatewayQuest]:
// a push cannot be sent by mistake.
type ClientQuest interface {
	// Method is the quest's FPNN method.
	Method() string
	// AppendPayload appends the msgpack payload, signed with s (unsigned
	// quests such as *ping ignore s), keys sorted bytewise.
	AppendPayload(dst []byte, s Signature) []byte
	clientQuest()
}

// AppendQuest appends q as a whole two-way msgpack quest frame with the
// given seq, signed with s.
func AppendQuest(dst []byte, seq uint32, q ClientQuest, s Signature) []byte {
	start := len(dst)
	dst, off := BeginFrame(dst, FlagMsgpack, TwoWay, 0, seq, q.Method())
	dst = q.AppendPayload(dst, s)
	return FinishFrame(dst, start, off)
}

// SendMsg is sendmsg, sendgroupmsg or sendroommsg (by Scope): a message
// from a uid to a uid, group or room (spec §7.5). Simulators and tools use
// it; the bridge only receives. The answer is a [SendMsgAnswer].
type SendMsg struct {
	Scope     Scope // ScopeP2P, ScopeGroup or ScopeRoom
	MType     int64
	From      int64
	To        int64 // uid, gid or rid
	MID       int64
	Msg       []byte
	MsgBinary bool   // send Msg as msgpack bin instead of str
	Attrs     string // always sent, "" when none
}

func (*SendMsg) clientQuest() {}

// Method returns sendmsg, sendgroupmsg or sendroommsg ("" for another
// scope).
func (q *SendMsg) Method() string {
	switch q.Scope {
	case ScopeP2P:
		return "sendmsg"
	case ScopeGroup:
		return "sendgroupmsg"
	case ScopeRoom:
		return "sendroommsg"
	}
	return ""
}

// AppendPayload appends the signed payload, keys sorted:
// attrs from [gid] mid msg mtype pid [rid] salt sign [to] ts.
func (q *SendMsg) AppendPayload(dst []byte, s Signature) []byte {
	dst = mpack.AppendMapHeader(dst, 10)
	dst = mpack.AppendStr(mpack.AppendStr(dst, "attrs"), q.Attrs)
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "from"), q.From)
	if q.Scope == ScopeGroup {
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "gid"), q.To)
	}
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "mid"), q.MID)
	dst = mpack.AppendStrOrBin(mpack.AppendStr(dst, "msg"), q.Msg, q.MsgBinary)
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "mtype"), q.MType)
	dst = s.appendPID(dst)
	if q.Scope == ScopeRoom {
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "rid"), q.To)
	}
	dst = s.appendSign(s.appendSalt(dst))
	if q.Scope != ScopeGroup && q.Scope != ScopeRoom {
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "to"), q.To)
	}
	return s.appendTS(dst)
}

// Decode reads the quest from a msgpack payload, ignoring the signing keys;
// Msg is copied. The scope follows from the target key present (to, gid or
// rid: exactly one is required), so a simulator should check that
// q.Method() equals the frame's method. from, mtype, mid and msg are
// required, attrs may be absent.
func (q *SendMsg) Decode(payload []byte) error {
	*q = SendMsg{}
	var seen uint
	targets := 0
	err := decodeMap("sendmsg", payload, func(r *msgReader, key []byte) (err error) {
		switch string(key) {
		case "from":
			q.From, err = r.int()
			seen |= 1
		case "to", "gid", "rid":
			q.To, err = r.int()
			q.Scope = scopeOfTarget(key)
			targets++
			seen |= 2
		case "mtype":
			q.MType, err = r.int()
			seen |= 4
		case "mid":
			q.MID, err = r.int()
			seen |= 8
		case "msg":
			var b []byte
			b, q.MsgBinary, err = r.bytes()
			q.Msg = append([]byte{}, b...)
			seen |= 16
		case "attrs":
			var b []byte
			b, _, err = r.bytes()
			q.Attrs = string(b)
		default:
			err = r.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if targets > 1 {
		return fmt.Errorf("rtm: sendmsg: more than one of the keys to, gid and rid")
	}
	if seen != 31 {
		return missingKey("sendmsg", []string{"from", "to", "mtype", "mid", "msg"}, seen)
	}
	return nil
}

func scopeOfTarget(key []byte) Scope {
	switch string(key) {
	case "gid":
		return ScopeGroup
	case "rid":
		return ScopeRoom
	}
	return ScopeP2P
}
