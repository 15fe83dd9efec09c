package rtmsim

import (
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// Encoding selects how the simulator encodes the payload of its pushes.
// Both are valid msgpack that every decoder must accept (spec §3.1).
type Encoding uint8

const (
	// EncodingGo encodes like the official Go encoder, keys sorted bytewise
	// (rtm.AppendPush; the frames of rtm_pushes.json). The default.
	EncodingGo Encoding = iota
	// EncodingCpp encodes like the C++ FPNN writer a C++ gateway uses: keys
	// in the gateway's insertion order (from, to|gid|rid, mtype, mid, msg,
	// attrs, mtime; pid, event, uid, time, endpoint, data) and non-negative
	// integers in the smallest unsigned format (the frames of
	// cpp_frames.json).
	EncodingCpp
)

// String returns "go" or "cpp".
func (e Encoding) String() string {
	if e == EncodingCpp {
		return "cpp"
	}
	return "go"
}

// pushPayload encodes the payload of p (a push with a valid scope).
func pushPayload(p *rtm.Push, enc Encoding) []byte {
	size := 96 + len(p.Msg) + len(p.Attrs) + len(p.Event) + len(p.Endpoint) + len(p.Data)
	if enc == EncodingCpp {
		return appendCppPush(make([]byte, 0, size), p)
	}
	frame := rtm.AppendPush(make([]byte, 0, rtm.HeaderSize+4+len(p.Method())+size), 0, p)
	return frame[rtm.HeaderSize+4+len(p.Method()):]
}

// appendCppPush appends p's payload as the C++ FPNN writer would.
func appendCppPush(dst []byte, p *rtm.Push) []byte {
	if p.Scope == rtm.ScopeEvent {
		n := 5
		if p.HasData {
			n++
		}
		dst = mpack.AppendMapHeader(dst, n)
		dst = mpack.AppendIntCompact(mpack.AppendStr(dst, "pid"), p.PID)
		dst = mpack.AppendStr(mpack.AppendStr(dst, "event"), p.Event)
		dst = mpack.AppendIntCompact(mpack.AppendStr(dst, "uid"), p.UID)
		dst = mpack.AppendIntCompact(mpack.AppendStr(dst, "time"), p.Time)
		dst = mpack.AppendStr(mpack.AppendStr(dst, "endpoint"), p.Endpoint)
		if p.HasData {
			dst = mpack.AppendStr(mpack.AppendStr(dst, "data"), p.Data)
		}
		return dst
	}
	target := "to"
	switch p.Scope {
	case rtm.ScopeGroup:
		target = "gid"
	case rtm.ScopeRoom:
		target = "rid"
	}
	dst = mpack.AppendMapHeader(dst, 7)
	dst = mpack.AppendIntCompact(mpack.AppendStr(dst, "from"), p.From)
	dst = mpack.AppendIntCompact(mpack.AppendStr(dst, target), p.To)
	dst = mpack.AppendIntCompact(mpack.AppendStr(dst, "mtype"), p.MType)
	dst = mpack.AppendIntCompact(mpack.AppendStr(dst, "mid"), p.MID)
	dst = mpack.AppendStrOrBin(mpack.AppendStr(dst, "msg"), p.Msg, p.MsgBinary)
	dst = mpack.AppendStr(mpack.AppendStr(dst, "attrs"), p.Attrs)
	return mpack.AppendIntCompact(mpack.AppendStr(dst, "mtime"), p.MTime)
}
