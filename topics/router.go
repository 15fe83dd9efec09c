package topics

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// DefaultPrefix is the topic prefix a Router uses when its Prefix is empty.
const DefaultPrefix = "rtm"

// maxTopicLen is Kafka's limit on the length of a topic name.
const maxTopicLen = 249

// KeyStrategy selects what a record's key is made of, and so which records
// share a partition and keep their relative order.
type KeyStrategy uint8

// The key strategies. The zero value, KeyTo, is the default.
const (
	// KeyTo keys a message by its target (the receiving uid, the gid or the
	// rid) and an event by its uid: everything sent to one target is ordered.
	KeyTo KeyStrategy = iota
	// KeyConversation keys a p2p message by "min:max" of its two uids, a
	// group or room message by its gid or rid, and an event by its uid: both
	// directions of a p2p conversation are ordered together.
	KeyConversation
	// KeyFrom keys a message by its sender uid and an event by its uid.
	KeyFrom
	// KeyNone writes no key: the producer spreads records over partitions
	// and no order is kept between them.
	KeyNone
)

// String returns "to", "conversation", "from" or "none", the names
// [ParseKeyStrategy] accepts; other values print as "KeyStrategy(n)".
func (k KeyStrategy) String() string {
	switch k {
	case KeyTo:
		return "to"
	case KeyConversation:
		return "conversation"
	case KeyFrom:
		return "from"
	case KeyNone:
		return "none"
	}
	return "KeyStrategy(" + strconv.Itoa(int(k)) + ")"
}

// ParseKeyStrategy parses "to", "conversation", "from" or "none" (in any
// case, surrounding spaces ignored); the empty string means the default,
// [KeyTo].
func ParseKeyStrategy(s string) (KeyStrategy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "to":
		return KeyTo, nil
	case "conversation":
		return KeyConversation, nil
	case "from":
		return KeyFrom, nil
	case "none":
		return KeyNone, nil
	}
	return 0, fmt.Errorf("topics: unknown key strategy %q: want to, conversation, from or none", s)
}

// MarshalText returns the strategy's name, so that configs can print it.
func (k KeyStrategy) MarshalText() ([]byte, error) {
	if k > KeyNone {
		return nil, fmt.Errorf("topics: unknown key strategy %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses a strategy name as [ParseKeyStrategy] does, so that
// configs (environment variables, flags) can hold a KeyStrategy directly.
func (k *KeyStrategy) UnmarshalText(b []byte) error {
	v, err := ParseKeyStrategy(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// The keys of [Router.Overrides] that are not "<scope>.<kind>" pairs.
const (
	OverrideEvents         = "events"
	OverrideDeadLetter     = "deadletter"
	OverrideControl        = "control"
	OverrideControlResults = "control.results"
)

// table holds every topic name of an initialised Router. It is never
// modified after Init builds it.
type table struct {
	msg            [3][5]string // [scope-1][kind-1], scopes p2p, group, room
	events         string
	deadLetter     string
	control        string
	controlResults string
	data           []string // distinct data topics, in routing order
}

// Router maps pushes to Kafka topics, record keys and record headers.
//
// The zero Router routes to "rtm.<scope>.<kind>" and "rtm.events", keyed by
// target, and needs no [Router.Init]. Any other Router must be initialised
// with Init once, after its fields are set and before it is used; Init is not
// safe to call concurrently with anything, and the fields must not change
// afterwards. An initialised Router is safe for concurrent use and may be
// copied. Using a Router with a Prefix or Overrides before Init panics.
type Router struct {
	// Prefix starts every topic name: "<prefix>.<scope>.<kind>". Empty means
	// [DefaultPrefix].
	Prefix string
	// Key selects the record key; the zero value is [KeyTo].
	Key KeyStrategy
	// Overrides replaces single topic names. Keys are "<scope>.<kind>" for
	// scope p2p, group or room and kind chat, audio, cmd, file or message
	// (e.g. "group.file"), or "events", "deadletter", "control" or
	// "control.results"; values are full topic names, not prefixed. Several
	// data topics may share one name.
	Overrides map[string]string

	tab *table
}

// Init validates the Router's fields and precomputes its topic names. The
// error names the offending prefix, override key or topic name and says what
// is wrong with it: a name must be 1..249 characters of [a-zA-Z0-9._-] and
// not "." or "..", names differing only in '.' versus '_' collide in Kafka,
// and data, dead-letter and control topics must be distinct.
func (r *Router) Init() error {
	prefix := r.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if i, c, ok := badChar(prefix); ok {
		return fmt.Errorf("topics: prefix %q: invalid character %q at %d: Kafka topic names use only [a-zA-Z0-9._-]", prefix, c, i)
	}
	if r.Key > KeyNone {
		return fmt.Errorf("topics: unknown key strategy %d", uint8(r.Key))
	}
	t := &table{
		events:         prefix + ".events",
		deadLetter:     prefix + ".deadletter",
		control:        prefix + ".control",
		controlResults: prefix + ".control.results",
	}
	for s := rtm.ScopeP2P; s <= rtm.ScopeRoom; s++ {
		for k := rtm.KindChat; k <= rtm.KindMessage; k++ {
			t.msg[s-rtm.ScopeP2P][k-rtm.KindChat] = prefix + "." + s.String() + "." + k.String()
		}
	}
	for key, name := range r.Overrides {
		slot := t.slot(key)
		if slot == nil {
			return fmt.Errorf("topics: override %q: unknown key: want <scope>.<kind> (scope p2p, group or room; kind chat, audio, cmd, file or message), events, deadletter, control or control.results", key)
		}
		if err := validName(name); err != nil {
			return fmt.Errorf("topics: override %q: %w", key, err)
		}
		*slot = name
	}

	// Every name, with the override key (or "") that produced it.
	type named struct{ key, name string }
	all := make([]named, 0, 19)
	for s := rtm.ScopeP2P; s <= rtm.ScopeRoom; s++ {
		for k := rtm.KindChat; k <= rtm.KindMessage; k++ {
			all = append(all, named{s.String() + "." + k.String(), t.msg[s-rtm.ScopeP2P][k-rtm.KindChat]})
		}
	}
	all = append(all,
		named{OverrideEvents, t.events},
		named{OverrideDeadLetter, t.deadLetter},
		named{OverrideControl, t.control},
		named{OverrideControlResults, t.controlResults})
	for _, n := range all {
		if err := validName(n.name); err != nil {
			return fmt.Errorf("topics: %s topic: %w", n.key, err)
		}
	}
	// Roles: data topics may share names among themselves, nothing else may.
	role := func(key string) string {
		switch key {
		case OverrideDeadLetter, OverrideControl, OverrideControlResults:
			return key
		}
		return "data"
	}
	seen := make(map[string]named, len(all))    // by exact name
	collide := make(map[string]named, len(all)) // by name with '.' as '_'
	for _, n := range all {
		if prev, ok := seen[n.name]; ok {
			if role(prev.key) != role(n.key) || role(n.key) != "data" {
				return fmt.Errorf("topics: topic %q is used for both %s and %s", n.name, prev.key, n.key)
			}
			continue
		}
		seen[n.name] = n
		folded := strings.ReplaceAll(n.name, ".", "_")
		if prev, ok := collide[folded]; ok {
			return fmt.Errorf("topics: topics %q (%s) and %q (%s) collide: Kafka treats '.' and '_' alike in topic names", prev.name, prev.key, n.name, n.key)
		}
		collide[folded] = n
		if role(n.key) == "data" {
			t.data = append(t.data, n.name)
		}
	}
	r.tab = t
	return nil
}

// slot returns the table entry an override key replaces, or nil.
func (t *table) slot(key string) *string {
	switch key {
	case OverrideEvents:
		return &t.events
	case OverrideDeadLetter:
		return &t.deadLetter
	case OverrideControl:
		return &t.control
	case OverrideControlResults:
		return &t.controlResults
	}
	scope, kind, ok := strings.Cut(key, ".")
	if !ok {
		return nil
	}
	for s := rtm.ScopeP2P; s <= rtm.ScopeRoom; s++ {
		if s.String() != scope {
			continue
		}
		for k := rtm.KindChat; k <= rtm.KindMessage; k++ {
			if k.String() == kind {
				return &t.msg[s-rtm.ScopeP2P][k-rtm.KindChat]
			}
		}
	}
	return nil
}

// badChar reports the first character of s that Kafka does not allow in a
// topic name.
func badChar(s string) (int, byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return i, c, true
		}
	}
	return 0, 0, false
}

// validName checks name against Kafka's rules for topic names.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic %q: \".\" and \"..\" are not allowed", name)
	case len(name) > maxTopicLen:
		return fmt.Errorf("topic %q: %d characters, Kafka allows at most %d", name, len(name), maxTopicLen)
	}
	if i, c, ok := badChar(name); ok {
		return fmt.Errorf("topic %q: invalid character %q at %d: Kafka topic names use only [a-zA-Z0-9._-]", name, c, i)
	}
	return nil
}

// isDefault reports whether r may be used without Init.
func (r *Router) isDefault() bool {
	return r.Prefix == "" && len(r.Overrides) == 0
}

// mustTable returns the precomputed names, or nil for an uninitialised
// default Router; it panics on an uninitialised non-default Router.
func (r *Router) mustTable() *table {
	if r.tab == nil && !r.isDefault() {
		panic("topics: Router with Prefix or Overrides used before Init")
	}
	return r.tab
}

// Topic returns the topic for p: "<prefix>.<scope>.<kind>" for a p2p, group
// or room message, "<prefix>.events" for an event (or the overrides for
// them). A push with no valid scope, or a message with no valid kind, goes to
// [Router.DeadLetterTopic]. It does not allocate.
func (r *Router) Topic(p *rtm.Push) string {
	t := r.mustTable()
	switch p.Scope {
	case rtm.ScopeEvent:
		if t == nil {
			return "rtm.events"
		}
		return t.events
	case rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom:
		if p.Kind < rtm.KindChat || p.Kind > rtm.KindMessage {
			break
		}
		if t == nil {
			return defaultTopic(p.Scope, p.Kind)
		}
		return t.msg[p.Scope-rtm.ScopeP2P][p.Kind-rtm.KindChat]
	}
	return r.DeadLetterTopic()
}

// defaultTopic returns the zero Router's topic for a message scope and kind.
func defaultTopic(s rtm.Scope, k rtm.Kind) string {
	switch s {
	case rtm.ScopeP2P:
		switch k {
		case rtm.KindChat:
			return "rtm.p2p.chat"
		case rtm.KindAudio:
			return "rtm.p2p.audio"
		case rtm.KindCmd:
			return "rtm.p2p.cmd"
		case rtm.KindFile:
			return "rtm.p2p.file"
		case rtm.KindMessage:
			return "rtm.p2p.message"
		}
	case rtm.ScopeGroup:
		switch k {
		case rtm.KindChat:
			return "rtm.group.chat"
		case rtm.KindAudio:
			return "rtm.group.audio"
		case rtm.KindCmd:
			return "rtm.group.cmd"
		case rtm.KindFile:
			return "rtm.group.file"
		case rtm.KindMessage:
			return "rtm.group.message"
		}
	case rtm.ScopeRoom:
		switch k {
		case rtm.KindChat:
			return "rtm.room.chat"
		case rtm.KindAudio:
			return "rtm.room.audio"
		case rtm.KindCmd:
			return "rtm.room.cmd"
		case rtm.KindFile:
			return "rtm.room.file"
		case rtm.KindMessage:
			return "rtm.room.message"
		}
	}
	return "rtm.deadletter"
}

// Topics returns every distinct data topic the Router routes to: the 15
// message topics and the events topic (fewer when overrides merge some), in
// a fixed order. The dead-letter and control topics are not included. The
// slice is the caller's.
func (r *Router) Topics() []string {
	t := r.mustTable()
	if t == nil {
		out := make([]string, 0, 16)
		for s := rtm.ScopeP2P; s <= rtm.ScopeRoom; s++ {
			for k := rtm.KindChat; k <= rtm.KindMessage; k++ {
				out = append(out, defaultTopic(s, k))
			}
		}
		return append(out, "rtm.events")
	}
	return append([]string(nil), t.data...)
}

// DeadLetterTopic returns the topic for pushes that could not be decoded or
// encoded: "<prefix>.deadletter" unless overridden.
func (r *Router) DeadLetterTopic() string {
	if t := r.mustTable(); t != nil {
		return t.deadLetter
	}
	return "rtm.deadletter"
}

// ControlTopic returns the topic the bridge reads listen commands from:
// "<prefix>.control" unless overridden.
func (r *Router) ControlTopic() string {
	if t := r.mustTable(); t != nil {
		return t.control
	}
	return "rtm.control"
}

// ControlResultsTopic returns the topic the bridge writes control command
// results to: "<prefix>.control.results" unless overridden.
func (r *Router) ControlResultsTopic() string {
	if t := r.mustTable(); t != nil {
		return t.controlResults
	}
	return "rtm.control.results"
}

// AppendKey appends p's record key, chosen by r.Key, to dst and returns the
// extended slice. Ids are written in decimal:
//
//   - KeyTo: the target (p.To: uid, gid or rid); for events the uid.
//   - KeyConversation: "min:max" of p.From and p.To for p2p, the gid or rid
//     for group and room, the uid for events.
//   - KeyFrom: p.From; for events the uid.
//   - KeyNone: nothing.
//
// Nothing is appended either for a push without a valid scope. When the
// returned slice is empty the record must be produced with a nil key, so
// that the producer balances it over partitions. It does not allocate when
// dst has 41 bytes of spare capacity.
func (r *Router) AppendKey(dst []byte, p *rtm.Push) []byte {
	if p.Scope == rtm.ScopeEvent {
		if r.Key == KeyNone || r.Key > KeyNone {
			return dst
		}
		return strconv.AppendInt(dst, p.UID, 10)
	}
	if p.Scope < rtm.ScopeP2P || p.Scope > rtm.ScopeRoom {
		return dst
	}
	switch r.Key {
	case KeyTo:
		return strconv.AppendInt(dst, p.To, 10)
	case KeyConversation:
		if p.Scope != rtm.ScopeP2P {
			return strconv.AppendInt(dst, p.To, 10)
		}
		lo, hi := p.From, p.To
		if hi < lo {
			lo, hi = hi, lo
		}
		dst = strconv.AppendInt(dst, lo, 10)
		dst = append(dst, ':')
		return strconv.AppendInt(dst, hi, 10)
	case KeyFrom:
		return strconv.AppendInt(dst, p.From, 10)
	}
	return dst
}

// Header is one Kafka record header. It has the same fields as kafka-go's
// kafka.Header, so a value converts with kafka.Header(h).
type Header struct {
	Key   string
	Value []byte
}

// The header names [AppendHeaders] writes. Every value is ASCII text; ids
// are decimal.
const (
	HeaderScope = "rtm-scope" // "p2p", "group", "room" or "event"
	HeaderKind  = "rtm-kind"  // "chat", "audio", "cmd", "file", "message" or "event"
	HeaderMType = "rtm-mtype" // messages: the mtype
	HeaderFrom  = "rtm-from"  // messages: the sender uid
	HeaderTo    = "rtm-to"    // messages: uid, gid or rid; events: the uid
	HeaderMID   = "rtm-mid"   // messages: the message id (with from and to, identifies a redelivery)
	HeaderPID   = "rtm-pid"   // the project id
	HeaderEvent = "rtm-event" // events: the event name ("login", "logout", …)
	// HeaderEventID is an event's deterministic id, [AppendEventID]: 32
	// lowercase hex digits, the same for every delivery of the same event.
	HeaderEventID = "rtm-event-id"
)

// maxHeaders is the most headers AppendHeaders writes for one push: 7 for a
// message, 6 for an event, 3 for a push without a valid scope. The bridge
// keeps up to 8 headers inline in a record; a test holds this below that.
const maxHeaders = 7

// EventIDLen is the length of an event id in bytes: 16 bytes of SHA-256 in
// hex.
const EventIDLen = 32

// eventIDDomain starts the hashed text, so that an event id can never equal
// a hash of anything else and a future layout can change the version.
const eventIDDomain = "rtm-event-id/v1\x00"

// AppendEventID appends the deterministic id of the event p (scope
// [rtm.ScopeEvent]) to dst as 32 lowercase hex digits and returns the
// extended slice. Events carry no message id; this one stands in for it, so
// that a consumer can drop a redelivered copy of an event the way it drops a
// redelivered message by (scope, from, to, mid).
//
// The id is the first 16 bytes of SHA-256 over, in this order:
//
//	"rtm-event-id/v1" and one 0x00 byte
//	pid, uid, time           each as a signed 64-bit big-endian integer
//	event, endpoint          each as a 32-bit big-endian length, then its bytes
//	data                     0x00 when absent; 0x01, a 32-bit big-endian length, its bytes when present
//
// so every field the gateway sends takes part, absent data differs from
// empty data, and no two field splits hash alike; received_at (the bridge's
// clock) does not. Two deliveries of one event therefore share an id, and
// so do two distinct events whose fields are all equal: the same user, the
// same event name, in the same second (time has a resolution of one
// second), from the same endpoint address and port, with the same data. A
// consumer that deduplicates on the id keeps one of those. The id says
// nothing about order.
//
// Lengths fit in 32 bits: the frame reader refuses larger frames first. It
// does not allocate when dst has 32 bytes of spare capacity. For a push that
// is not an event it appends nothing.
func AppendEventID(dst []byte, p *rtm.Push) []byte {
	if p.Scope != rtm.ScopeEvent {
		return dst
	}
	// One scratch array and direct calls on h keep this free of allocations
	// (a helper taking h as a hash.Hash makes both escape).
	h := sha256.New()
	var b [8*3 + 1 + 4]byte
	h.Write([]byte(eventIDDomain))
	binary.BigEndian.PutUint64(b[0:], uint64(p.PID))
	binary.BigEndian.PutUint64(b[8:], uint64(p.UID))
	binary.BigEndian.PutUint64(b[16:], uint64(p.Time))
	binary.BigEndian.PutUint32(b[24:], uint32(len(p.Event)))
	h.Write(b[:28])
	h.Write(p.Event)
	binary.BigEndian.PutUint32(b[0:], uint32(len(p.Endpoint)))
	h.Write(b[:4])
	h.Write(p.Endpoint)
	if p.HasData {
		b[0] = 1
		binary.BigEndian.PutUint32(b[1:], uint32(len(p.Data)))
		h.Write(b[:5])
		h.Write(p.Data)
	} else {
		b[0] = 0
		h.Write(b[:1])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return hex.AppendEncode(dst, sum[:EventIDLen/2])
}

// AppendHeaders appends p's record headers to dst and their values to buf,
// and returns both extended slices. Every header value is a slice of the
// returned buf (capacity-limited, so later appends to buf never change it),
// so one buffer backs them all and nothing is allocated when dst and buf
// have room (7 headers, 128 bytes plus the event name).
//
// A message gets rtm-scope, rtm-kind, rtm-mtype, rtm-from, rtm-to, rtm-mid
// and rtm-pid, where pid is the bridge's project id. An event gets
// rtm-scope=event, rtm-kind=event, rtm-event (its name), rtm-to (its uid),
// rtm-pid (p.PID, the pid the gateway sent) and rtm-event-id
// ([AppendEventID]); it has no rtm-from, rtm-mtype or rtm-mid, since an
// event has no sender or message. A push without a valid
// scope gets rtm-scope and rtm-kind ("unknown" when not known) and rtm-pid.
func AppendHeaders(dst []Header, buf []byte, p *rtm.Push, pid int64) ([]Header, []byte) {
	var spans [maxHeaders]struct {
		key        string
		start, end int
	}
	n := 0
	add := func(key string, start int) {
		spans[n].key, spans[n].start, spans[n].end = key, start, len(buf)
		n++
	}
	switch p.Scope {
	case rtm.ScopeEvent:
		s := len(buf)
		buf = append(buf, "event"...)
		add(HeaderScope, s)
		s = len(buf)
		buf = append(buf, "event"...)
		add(HeaderKind, s)
		s = len(buf)
		buf = append(buf, p.Event...)
		add(HeaderEvent, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, p.UID, 10)
		add(HeaderTo, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, p.PID, 10)
		add(HeaderPID, s)
		s = len(buf)
		buf = AppendEventID(buf, p)
		add(HeaderEventID, s)
	case rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom:
		s := len(buf)
		buf = append(buf, p.Scope.String()...)
		add(HeaderScope, s)
		s = len(buf)
		buf = append(buf, p.Kind.String()...)
		add(HeaderKind, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, p.MType, 10)
		add(HeaderMType, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, p.From, 10)
		add(HeaderFrom, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, p.To, 10)
		add(HeaderTo, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, p.MID, 10)
		add(HeaderMID, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, pid, 10)
		add(HeaderPID, s)
	default:
		s := len(buf)
		buf = append(buf, p.Scope.String()...)
		add(HeaderScope, s)
		s = len(buf)
		buf = append(buf, p.Kind.String()...)
		add(HeaderKind, s)
		s = len(buf)
		buf = strconv.AppendInt(buf, pid, 10)
		add(HeaderPID, s)
	}
	for _, sp := range spans[:n] {
		dst = append(dst, Header{Key: sp.key, Value: buf[sp.start:sp.end:sp.end]})
	}
	return dst, buf
}
