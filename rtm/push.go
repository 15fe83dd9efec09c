package rtm

import "fmt"

// Scope says where a push belongs: a one-to-one message, a group, a room, or
// a project event.
type Scope uint8

// The scopes of a push. The zero Scope is invalid (a push that failed to
// decode before its method was known).
const (
	ScopeP2P   Scope = 1 // pushmsg
	ScopeGroup Scope = 2 // pushgroupmsg
	ScopeRoom  Scope = 3 // pushroommsg
	ScopeEvent Scope = 4 // pushevent
)

// String returns "p2p", "group", "room", "event" or "unknown".
func (s Scope) String() string {
	switch s {
	case ScopeP2P:
		return "p2p"
	case ScopeGroup:
		return "group"
	case ScopeRoom:
		return "room"
	case ScopeEvent:
		return "event"
	}
	return "unknown"
}

// Kind classifies a message by its mtype (spec §8.2).
type Kind uint8

// The kinds of a push. Events have KindEvent; the zero Kind is invalid.
const (
	KindChat    Kind = 1 // mtype 30
	KindAudio   Kind = 2 // mtype 31, legacy audio
	KindCmd     Kind = 3 // mtype 32
	KindFile    Kind = 4 // mtype 40..50
	KindMessage Kind = 5 // any other mtype: a custom message
	KindEvent   Kind = 6 // pushevent
)

// String returns "chat", "audio", "cmd", "file", "message", "event" or "unknown".
func (k Kind) String() string {
	switch k {
	case KindChat:
		return "chat"
	case KindAudio:
		return "audio"
	case KindCmd:
		return "cmd"
	case KindFile:
		return "file"
	case KindMessage:
		return "message"
	case KindEvent:
		return "event"
	}
	return "unknown"
}

// KindOf classifies a message type: 30 chat, 31 audio, 32 cmd, 40..50 file,
// anything else a custom message.
func KindOf(mtype int64) Kind {
	switch {
	case mtype == 30:
		return KindChat
	case mtype == 31:
		return KindAudio
	case mtype == 32:
		return KindCmd
	case mtype >= 40 && mtype <= 50:
		return KindFile
	}
	return KindMessage
}

// Push is one push from the gateway: a p2p, group or room message, or a
// project event. A Push handed to a [PushHandler] is reused for the next
// push: it and every slice in it are valid only until HandlePush returns, so
// a handler that needs them later must copy them.
//
// When Err is non-nil the push could not be decoded; Raw holds the frame and
// the other fields are whatever could be read before the failure.
type Push struct {
	Scope Scope // p2p, group, room or event
	Kind  Kind  // derived from MType for messages; KindEvent for events
	Seq   uint32

	// Messages (pushmsg, pushgroupmsg, pushroommsg).
	From        int64  // sender uid
	To          int64  // target: uid (p2p), gid (group) or rid (room)
	MType       int64  // message type as sent
	MID         int64  // message id
	Msg         []byte // body, exactly the bytes received
	MsgBinary   bool   // Msg arrived as msgpack bin rather than str: it need not be UTF-8
	Attrs       []byte // attrs string as received
	AttrsBinary bool   // Attrs arrived as msgpack bin rather than str
	MTime       int64  // gateway time of the message, ms

	Audio *AudioInfo // legacy audio (mtype 31) when Msg parsed as its JSON; else nil
	File  *FileInfo  // file messages (mtype 40..50) when Msg parsed as its JSON; else nil

	// Events (pushevent).
	PID        int64  // project id
	Event      []byte // "login", "logout", …
	UID        int64
	Time       int64 // seconds
	Endpoint   []byte
	Data       []byte
	DataBinary bool // Data arrived as msgpack bin rather than str
	HasData    bool // the optional data key was present

	Raw []byte // the whole frame as received (decrypted)
	Err error  // non-nil when decoding failed
}

// Target is the id a push is about: the message target (uid, gid, rid) or,
// for events, the uid.
func (p *Push) Target() int64 {
	if p.Scope == ScopeEvent {
		return p.UID
	}
	return p.To
}

// String summarises the push for logs; it never includes the body.
func (p *Push) String() string {
	if p.Err != nil {
		return fmt.Sprintf("invalid push seq=%d: %v", p.Seq, p.Err)
	}
	if p.Scope == ScopeEvent {
		return fmt.Sprintf("event %s uid=%d seq=%d", p.Event, p.UID, p.Seq)
	}
	return fmt.Sprintf("%s %s from=%d to=%d mid=%d seq=%d", p.Scope, p.Kind, p.From, p.To, p.MID, p.Seq)
}

// AudioInfo is the parsed body of a legacy audio message (mtype 31).
type AudioInfo struct {
	SourceLang     string `json:"sl"`
	RecognizedLang string `json:"rl"`
	RecognizedText string `json:"rt"`
	Duration       int64  `json:"du"` // ms
}

// FileInfo is the parsed body and attrs of a file message (mtype 40..50).
type FileInfo struct {
	URL   string `json:"url"`
	Size  int64  `json:"size"`
	SURL  string `json:"surl,omitempty"` // thumbnail (images)
	Audio bool   `json:"is_rtm_audio"`   // attrs.rtm.type == "audiomsg"
	// RTM voice message attributes (Audio true).
	Lang     string `json:"lang,omitempty"`
	Duration int64  `json:"duration,omitempty"` // ms
	Codec    string `json:"codec,omitempty"`
	SRate    int64  `json:"srate,omitempty"` // Hz
	// RTMAttrs is attrs.rtm as raw JSON, CustomAttrs the sender's own attrs
	// (attrs.custom: an object re-serialised as compact JSON with sorted keys,
	// or a string as is), like the official SDK.
	RTMAttrs    string `json:"rtm_attrs,omitempty"`
	CustomAttrs string `json:"custom_attrs"`
}
