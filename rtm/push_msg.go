package rtm

// Decoding of the message pushes (pushmsg, pushgroupmsg, pushroommsg): spec
// §8.1. The keys every message push must carry, in the order their bits are
// numbered in the "seen" mask; index 1 is the target key of the scope.
var msgKeys = [...]string{"from", "to", "mtype", "mid", "msg", "attrs", "mtime"}

const (
	msgAllKeys = 1<<len(msgKeys) - 1
	evAllKeys  = 1<<len(evKeys) - 1
)

// targetKey is the key that carries a message push's target id.
func targetKey(s Scope) string {
	switch s {
	case ScopeGroup:
		return "gid"
	case ScopeRoom:
		return "rid"
	}
	return "to"
}

// pushMethod is the gateway method of a scope.
func pushMethod(s Scope) string {
	switch s {
	case ScopeP2P:
		return "pushmsg"
	case ScopeGroup:
		return "pushgroupmsg"
	case ScopeRoom:
		return "pushroommsg"
	case ScopeEvent:
		return "pushevent"
	}
	return ""
}

// scopeOfMethod maps a push method to its scope, 0 if it is not a push.
func scopeOfMethod(m []byte) Scope {
	switch string(m) {
	case "pushmsg":
		return ScopeP2P
	case "pushgroupmsg":
		return ScopeGroup
	case "pushroommsg":
		return ScopeRoom
	case "pushevent":
		return ScopeEvent
	}
	return 0
}

// msgField decodes the value of key into p for a message push. It returns
// the key's bit in the seen mask, 0 for a key that was skipped.
func msgField(r *msgReader, p *Push, key []byte) (bit uint, err error) {
	switch string(key) {
	case "from":
		p.From, err = r.int()
		return 1 << 0, err
	case "to", "gid", "rid":
		if string(key) != targetKey(p.Scope) {
			return 0, r.skip()
		}
		p.To, err = r.int()
		return 1 << 1, err
	case "mtype":
		p.MType, err = r.int()
		return 1 << 2, err
	case "mid":
		p.MID, err = r.int()
		return 1 << 3, err
	case "msg":
		p.Msg, p.MsgBinary, err = r.bytes()
		return 1 << 4, err
	case "attrs":
		p.Attrs, p.AttrsBinary, err = r.bytes()
		return 1 << 5, err
	case "mtime":
		p.MTime, err = r.int()
		return 1 << 6, err
	}
	return 0, r.skip()
}
