package rtm

import (
	"fmt"
	"slices"
)

// ListenState is what a connection listens to: the four set-all flags and the
// four id lists. The flags and the lists combine as a union: a group message
// is pushed when Group is set or its gid is in GIDs.
//
// Lists are kept sorted and free of duplicates by [ListenState.Apply].
type ListenState struct {
	P2P    bool     `json:"p2p"`
	Group  bool     `json:"group"`
	Room   bool     `json:"room"`
	Ev     bool     `json:"ev"`
	GIDs   []int64  `json:"gids"`
	RIDs   []int64  `json:"rids"`
	UIDs   []int64  `json:"uids"`
	Events []string `json:"events"`
}

// ListenOp says how a [ListenChange] modifies a [ListenState].
type ListenOp uint8

// The listen operations, matching the gateway's quests.
const (
	// OpSetAll replaces the four flags (setlisten with p2p/group/room/ev).
	OpSetAll ListenOp = 1
	// OpAdd adds ids to the lists (addlisten).
	OpAdd ListenOp = 2
	// OpRemove removes ids from the lists (removelisten).
	OpRemove ListenOp = 3
	// OpSet replaces all four lists (setlisten with gids/rids/uids/events);
	// a nil list clears that list.
	OpSet ListenOp = 4
)

// String returns "set_all", "add", "remove" or "set".
func (o ListenOp) String() string {
	switch o {
	case OpSetAll:
		return "set_all"
	case OpAdd:
		return "add"
	case OpRemove:
		return "remove"
	case OpSet:
		return "set"
	}
	return fmt.Sprintf("listen op %d", uint8(o))
}

// ListenChange is one change to a listen state. For OpSetAll only the flags
// matter; for the other ops only the lists.
type ListenChange struct {
	Op                   ListenOp
	P2P, Group, Room, Ev bool
	GIDs, RIDs, UIDs     []int64
	Events               []string
}

// Clone returns a deep copy of s.
func (s ListenState) Clone() ListenState {
	s.GIDs = slices.Clone(s.GIDs)
	s.RIDs = slices.Clone(s.RIDs)
	s.UIDs = slices.Clone(s.UIDs)
	s.Events = slices.Clone(s.Events)
	return s
}

// Apply returns the state after c; s is not modified.
func (s ListenState) Apply(c ListenChange) ListenState {
	n := s.Clone()
	switch c.Op {
	case OpSetAll:
		n.P2P, n.Group, n.Room, n.Ev = c.P2P, c.Group, c.Room, c.Ev
	case OpAdd:
		n.GIDs = union(n.GIDs, c.GIDs)
		n.RIDs = union(n.RIDs, c.RIDs)
		n.UIDs = union(n.UIDs, c.UIDs)
		n.Events = union(n.Events, c.Events)
	case OpRemove:
		n.GIDs = minus(n.GIDs, c.GIDs)
		n.RIDs = minus(n.RIDs, c.RIDs)
		n.UIDs = minus(n.UIDs, c.UIDs)
		n.Events = minus(n.Events, c.Events)
	case OpSet:
		n.GIDs = union(nil, c.GIDs)
		n.RIDs = union(nil, c.RIDs)
		n.UIDs = union(nil, c.UIDs)
		n.Events = union(nil, c.Events)
	}
	return n
}

// Empty reports whether s listens to nothing at all.
func (s ListenState) Empty() bool {
	return !s.P2P && !s.Group && !s.Room && !s.Ev && len(s.GIDs) == 0 && len(s.RIDs) == 0 && len(s.UIDs) == 0 && len(s.Events) == 0
}

// Equal reports whether two states listen to the same things.
func (s ListenState) Equal(o ListenState) bool {
	return s.P2P == o.P2P && s.Group == o.Group && s.Room == o.Room && s.Ev == o.Ev &&
		slices.Equal(s.GIDs, o.GIDs) && slices.Equal(s.RIDs, o.RIDs) &&
		slices.Equal(s.UIDs, o.UIDs) && slices.Equal(s.Events, o.Events)
}

// CoversMessage reports whether a message of the given scope from → to
// (uid, gid or rid) is pushed to a connection in state s. A p2p message is
// covered by the P2P flag or when either party is in UIDs.
func (s *ListenState) CoversMessage(scope Scope, from, to int64) bool {
	switch scope {
	case ScopeP2P:
		return s.P2P || contains(s.UIDs, from) || contains(s.UIDs, to)
	case ScopeGroup:
		return s.Group || contains(s.GIDs, to)
	case ScopeRoom:
		return s.Room || contains(s.RIDs, to)
	}
	return false
}

// CoversEvent reports whether an event of the given name is pushed to a
// connection in state s.
func (s *ListenState) CoversEvent(event string) bool {
	return s.Ev || contains(s.Events, event)
}

func contains[T int64 | string](sorted []T, v T) bool {
	_, ok := slices.BinarySearch(sorted, v)
	return ok
}

func union[T int64 | string](a, b []T) []T {
	if len(b) == 0 {
		return a
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func minus[T int64 | string](a, b []T) []T {
	if len(b) == 0 || len(a) == 0 {
		return a
	}
	drop := slices.Clone(b)
	slices.Sort(drop)
	return slices.DeleteFunc(a, func(v T) bool { return contains(drop, v) })
}
