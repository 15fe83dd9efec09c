package rtm

import (
	"fmt"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// SetListenAll is the set-all form of setlisten: receive all p2p, group,
// room messages and events of the project (spec §7.1). All four flags are
// always sent.
type SetListenAll struct {
	P2P, Group, Room, Ev bool
}

// SetListenIDs is the id-list form of setlisten, which replaces the
// connection's id lists (spec §7.2). All four keys are always sent, an empty
// list as an empty array, so the gateway ends up with exactly these lists.
type SetListenIDs struct {
	GIDs, RIDs, UIDs []int64
	Events           []string
}

// AddListen adds ids to the connection's lists (addlisten, spec §7.3). Only
// non-empty lists are sent, like the official SDK.
type AddListen struct {
	GIDs, RIDs, UIDs []int64
	Events           []string
}

// RemoveListen removes ids from the connection's lists (removelisten, spec
// §7.3). Only non-empty lists are sent, like the official SDK.
type RemoveListen struct {
	GIDs, RIDs, UIDs []int64
	Events           []string
}

// Method returns "setlisten".
func (*SetListenAll) Method() string { return "setlisten" }

// Method returns "setlisten".
func (*SetListenIDs) Method() string { return "setlisten" }

// Method returns "addlisten".
func (*AddListen) Method() string { return "addlisten" }

// Method returns "removelisten".
func (*RemoveListen) Method() string { return "removelisten" }

func (*SetListenAll) clientQuest() {}
func (*SetListenIDs) clientQuest() {}
func (*AddListen) clientQuest()    {}
func (*RemoveListen) clientQuest() {}

// AppendPayload appends the signed payload {ev, group, p2p, room} + signature.
func (q *SetListenAll) AppendPayload(dst []byte, s Signature) []byte {
	dst = mpack.AppendMapHeader(dst, 8)
	dst = mpack.AppendBool(mpack.AppendStr(dst, "ev"), q.Ev)
	dst = mpack.AppendBool(mpack.AppendStr(dst, "group"), q.Group)
	dst = mpack.AppendBool(mpack.AppendStr(dst, "p2p"), q.P2P)
	dst = s.appendPID(dst)
	dst = mpack.AppendBool(mpack.AppendStr(dst, "room"), q.Room)
	return s.appendTS(s.appendSign(s.appendSalt(dst)))
}

// Decode reads the quest from a msgpack payload, ignoring the signing keys;
// a flag that is absent stays false (the Python SDK sends only those given).
func (q *SetListenAll) Decode(payload []byte) error {
	*q = SetListenAll{}
	return decodeMap("setlisten", payload, func(r *msgReader, key []byte) (err error) {
		switch string(key) {
		case "p2p":
			q.P2P, err = r.bool()
		case "group":
			q.Group, err = r.bool()
		case "room":
			q.Room, err = r.bool()
		case "ev":
			q.Ev, err = r.bool()
		default:
			err = r.skip()
		}
		return err
	})
}

// AppendPayload appends the signed payload with all four lists.
func (q *SetListenIDs) AppendPayload(dst []byte, s Signature) []byte {
	return appendLists(dst, s, q.GIDs, q.RIDs, q.UIDs, q.Events, true)
}

// Decode reads the quest from a msgpack payload. An absent list stays nil,
// an empty one is a non-nil empty slice. A list sent as a map of ids (the
// official SDK's reconnect replay quirk, {id: {}}) is accepted: its keys are
// the ids, in wire order.
func (q *SetListenIDs) Decode(payload []byte) error {
	*q = SetListenIDs{}
	return decodeLists("setlisten", payload, &q.GIDs, &q.RIDs, &q.UIDs, &q.Events)
}

// AppendPayload appends the signed payload with the non-empty lists.
func (q *AddListen) AppendPayload(dst []byte, s Signature) []byte {
	return appendLists(dst, s, q.GIDs, q.RIDs, q.UIDs, q.Events, false)
}

// Decode reads the quest from a msgpack payload (see [SetListenIDs.Decode]).
func (q *AddListen) Decode(payload []byte) error {
	*q = AddListen{}
	return decodeLists("addlisten", payload, &q.GIDs, &q.RIDs, &q.UIDs, &q.Events)
}

// AppendPayload appends the signed payload with the non-empty lists.
func (q *RemoveListen) AppendPayload(dst []byte, s Signature) []byte {
	return appendLists(dst, s, q.GIDs, q.RIDs, q.UIDs, q.Events, false)
}

// Decode reads the quest from a msgpack payload (see [SetListenIDs.Decode]).
func (q *RemoveListen) Decode(payload []byte) error {
	*q = RemoveListen{}
	return decodeLists("removelisten", payload, &q.GIDs, &q.RIDs, &q.UIDs, &q.Events)
}

// appendLists appends {events, gids, pid, rids, salt, sign, ts, uids} in
// sorted order; empty lists are left out unless all is set.
func appendLists(dst []byte, s Signature, gids, rids, uids []int64, events []string, all bool) []byte {
	n := 4
	for _, l := range [...]int{len(gids), len(rids), len(uids), len(events)} {
		if all || l > 0 {
			n++
		}
	}
	dst = mpack.AppendMapHeader(dst, n)
	if all || len(events) > 0 {
		dst = appendStrs(mpack.AppendStr(dst, "events"), events)
	}
	if all || len(gids) > 0 {
		dst = appendInts(mpack.AppendStr(dst, "gids"), gids)
	}
	dst = s.appendPID(dst)
	if all || len(rids) > 0 {
		dst = appendInts(mpack.AppendStr(dst, "rids"), rids)
	}
	dst = s.appendTS(s.appendSign(s.appendSalt(dst)))
	if all || len(uids) > 0 {
		dst = appendInts(mpack.AppendStr(dst, "uids"), uids)
	}
	return dst
}

func decodeLists(method string, payload []byte, gids, rids, uids *[]int64, events *[]string) error {
	return decodeMap(method, payload, func(r *msgReader, key []byte) (err error) {
		switch string(key) {
		case "gids":
			*gids, err = readIDs(r)
		case "rids":
			*rids, err = readIDs(r)
		case "uids":
			*uids, err = readIDs(r)
		case "events":
			*events, err = readStrs(r)
		default:
			err = r.skip()
		}
		return err
	})
}

// readIDs reads an array of integers, or the keys of a map {id: any}.
func readIDs(r *msgReader) ([]int64, error) {
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	isMap := c&0xf0 == 0x80 || c == 0xde || c == 0xdf
	var n int
	if isMap {
		n, err = r.mapHeader()
	} else {
		n, err = r.arrayHeader()
	}
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, n)
	for i := range n {
		id, err := r.int()
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		ids = append(ids, id)
		if isMap {
			if err := r.skip(); err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
		}
	}
	return ids, nil
}

// readStrs reads an array of strings.
func readStrs(r *msgReader) ([]string, error) {
	n, err := r.arrayHeader()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for i := range n {
		s, _, err := r.bytes()
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, string(s))
	}
	return out, nil
}

// ListenQuests returns the quests that carry out c: one setlisten for
// OpSetAll and OpSet, one addlisten or removelisten for OpAdd and OpRemove,
// and none when an add or remove lists nothing (the official SDK would send
// an empty quest; there is nothing to ask). An unknown op yields none.
func ListenQuests(c ListenChange) []ClientQuest {
	switch c.Op {
	case OpSetAll:
		return []ClientQuest{&SetListenAll{P2P: c.P2P, Group: c.Group, Room: c.Room, Ev: c.Ev}}
	case OpSet:
		return []ClientQuest{&SetListenIDs{GIDs: c.GIDs, RIDs: c.RIDs, UIDs: c.UIDs, Events: c.Events}}
	}
	if len(c.GIDs)+len(c.RIDs)+len(c.UIDs)+len(c.Events) == 0 {
		return nil
	}
	switch c.Op {
	case OpAdd:
		return []ClientQuest{&AddListen{GIDs: c.GIDs, RIDs: c.RIDs, UIDs: c.UIDs, Events: c.Events}}
	case OpRemove:
		return []ClientQuest{&RemoveListen{GIDs: c.GIDs, RIDs: c.RIDs, UIDs: c.UIDs, Events: c.Events}}
	}
	return nil
}
