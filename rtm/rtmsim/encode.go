package rtmsim

import (
	"encoding/binary"
	"math"

	"github.com/rtm2kafka/rtm2kafka/rtm"
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
		dst = append(dst, 0x80|byte(n))
		dst = cppInt(cppStr(dst, "pid"), p.PID)
		dst = cppBytes(cppStr(dst, "event"), p.Event)
		dst = cppInt(cppStr(dst, "uid"), p.UID)
		dst = cppInt(cppStr(dst, "time"), p.Time)
		dst = cppBytes(cppStr(dst, "endpoint"), p.Endpoint)
		if p.HasData {
			dst = cppBytes(cppStr(dst, "data"), p.Data)
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
	dst = append(dst, 0x87)
	dst = cppInt(cppStr(dst, "from"), p.From)
	dst = cppInt(cppStr(dst, target), p.To)
	dst = cppInt(cppStr(dst, "mtype"), p.MType)
	dst = cppInt(cppStr(dst, "mid"), p.MID)
	dst = cppStr(dst, "msg")
	if p.MsgBinary {
		dst = cppBin(dst, p.Msg)
	} else {
		dst = cppBytes(dst, p.Msg)
	}
	dst = cppBytes(cppStr(dst, "attrs"), p.Attrs)
	return cppInt(cppStr(dst, "mtime"), p.MTime)
}

// cppInt appends v as msgpack-c does: the smallest unsigned format for
// non-negative values, the smallest signed one for negative values.
func cppInt(dst []byte, v int64) []byte {
	if v >= 0 {
		u := uint64(v)
		switch {
		case u <= 0x7f:
			return append(dst, byte(u))
		case u <= math.MaxUint8:
			return append(dst, 0xcc, byte(u))
		case u <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(u))
		case u <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(u))
		}
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), u)
	}
	switch {
	case v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func cppStrHeader(dst []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
}

func cppStr(dst []byte, s string) []byte   { return append(cppStrHeader(dst, len(s)), s...) }
func cppBytes(dst []byte, b []byte) []byte { return append(cppStrHeader(dst, len(b)), b...) }

func cppBin(dst []byte, b []byte) []byte {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}
