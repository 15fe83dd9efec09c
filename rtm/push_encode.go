package rtm

import "fmt"

// gatewayPingMethod is the gateway's liveness quest (no star; not FPNN's
// *ping).
const gatewayPingMethod = "ping"

// GatewayQuest is a quest the gateway sends to us: a [Push] or a
// [GatewayPing]. It is the counterpart of [ClientQuest], so that code which
// sends quests to the gateway cannot be handed a push by mistake.
type GatewayQuest interface {
	Method() string
	gatewayQuest()
}

// Method is the gateway method that carries p: pushmsg, pushgroupmsg,
// pushroommsg or pushevent ("" for an invalid scope).
func (p *Push) Method() string { return pushMethod(p.Scope) }

func (p *Push) gatewayQuest() {}

// GatewayPing is the gateway's "ping" quest: an empty map, answered with an
// empty map.
type GatewayPing struct{}

// Method returns "ping".
func (GatewayPing) Method() string { return gatewayPingMethod }

func (GatewayPing) gatewayQuest() {}

// AppendGatewayPing appends a whole "ping" quest frame with the given seq,
// as the gateway sends it; for simulators.
func AppendGatewayPing(dst []byte, seq uint32) []byte {
	start := len(dst)
	dst, off := BeginFrame(dst, FlagMsgpack, TwoWay, 0, seq, gatewayPingMethod)
	dst = append(dst, 0x80)
	return FinishFrame(dst, start, off)
}

// AppendPush appends p as a whole two-way msgpack quest frame with the given
// seq, encoded like the gateway (the official encoder's integer widths, keys
// sorted bytewise): the frames of rtm_pushes.json come out byte for byte.
// Msg is sent as bin when p.MsgBinary; data only when p.HasData. It is for
// simulators and tests, and panics on a push with an invalid Scope.
func AppendPush(dst []byte, seq uint32, p *Push) []byte {
	method := pushMethod(p.Scope)
	if method == "" {
		panic(fmt.Sprintf("rtm: AppendPush: invalid scope %d", p.Scope))
	}
	start := len(dst)
	dst, off := BeginFrame(dst, FlagMsgpack, TwoWay, 0, seq, method)
	dst = appendPushPayload(dst, p)
	return FinishFrame(dst, start, off)
}

func appendPushPayload(dst []byte, p *Push) []byte {
	if p.Scope == ScopeEvent {
		n := 5
		if p.HasData {
			n++
		}
		dst = appendMapHeader(dst, n)
		if p.HasData {
			dst = appendStrBytes(appendStr(dst, "data"), p.Data)
		}
		dst = appendStrBytes(appendStr(dst, "endpoint"), p.Endpoint)
		dst = appendStrBytes(appendStr(dst, "event"), p.Event)
		dst = appendInt(appendStr(dst, "pid"), p.PID)
		dst = appendInt(appendStr(dst, "time"), p.Time)
		return appendInt(appendStr(dst, "uid"), p.UID)
	}
	// Sorted: attrs from [gid] mid msg mtime mtype [rid] [to].
	dst = appendMapHeader(dst, 7)
	dst = appendStrBytes(appendStr(dst, "attrs"), p.Attrs)
	dst = appendInt(appendStr(dst, "from"), p.From)
	if p.Scope == ScopeGroup {
		dst = appendInt(appendStr(dst, "gid"), p.To)
	}
	dst = appendInt(appendStr(dst, "mid"), p.MID)
	dst = appendStr(dst, "msg")
	if p.MsgBinary {
		dst = appendBin(dst, p.Msg)
	} else {
		dst = appendStrBytes(dst, p.Msg)
	}
	dst = appendInt(appendStr(dst, "mtime"), p.MTime)
	dst = appendInt(appendStr(dst, "mtype"), p.MType)
	switch p.Scope {
	case ScopeRoom:
		dst = appendInt(appendStr(dst, "rid"), p.To)
	case ScopeP2P:
		dst = appendInt(appendStr(dst, "to"), p.To)
	}
	return dst
}
