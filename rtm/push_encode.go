package rtm

import (
	"fmt"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

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
		dst = mpack.AppendMapHeader(dst, n)
		if p.HasData {
			dst = mpack.AppendStrOrBin(mpack.AppendStr(dst, "data"), p.Data, p.DataBinary)
		}
		dst = mpack.AppendStr(mpack.AppendStr(dst, "endpoint"), p.Endpoint)
		dst = mpack.AppendStr(mpack.AppendStr(dst, "event"), p.Event)
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "pid"), p.PID)
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "time"), p.Time)
		return mpack.AppendIntGo(mpack.AppendStr(dst, "uid"), p.UID)
	}
	// Sorted: attrs from [gid] mid msg mtime mtype [rid] [to].
	dst = mpack.AppendMapHeader(dst, 7)
	dst = mpack.AppendStrOrBin(mpack.AppendStr(dst, "attrs"), p.Attrs, p.AttrsBinary)
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "from"), p.From)
	if p.Scope == ScopeGroup {
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "gid"), p.To)
	}
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "mid"), p.MID)
	dst = mpack.AppendStrOrBin(mpack.AppendStr(dst, "msg"), p.Msg, p.MsgBinary)
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "mtime"), p.MTime)
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "mtype"), p.MType)
	switch p.Scope {
	case ScopeRoom:
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "rid"), p.To)
	case ScopeP2P:
		dst = mpack.AppendIntGo(mpack.AppendStr(dst, "to"), p.To)
	}
	return dst
}
