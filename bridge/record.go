package bridge

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// Format selects how a push is encoded as a Kafka record value. Both formats
// carry the same object, documented in docs/records.md and
// docs/record.schema.json.
type Format uint8

// The record value formats. The zero value, FormatJSON, is the default.
const (
	FormatJSON    Format = iota // one JSON object per record
	FormatMsgpack               // the same object as a msgpack map
)

// String returns "json" or "msgpack", the names [ParseFormat] accepts; other
// values print as "Format(n)".
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatMsgpack:
		return "msgpack"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat parses "json" or "msgpack" (in any case, surrounding spaces
// ignored); the empty string means the default, [FormatJSON].
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "json":
		return FormatJSON, nil
	case "msgpack":
		return FormatMsgpack, nil
	}
	return 0, fmt.Errorf("bridge: unknown record format %q: want json or msgpack", s)
}

// MarshalText returns the format's name, so that configs can print it.
func (f Format) MarshalText() ([]byte, error) {
	if f > FormatMsgpack {
		return nil, fmt.Errorf("bridge: unknown record format %d", uint8(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText parses a format name as [ParseFormat] does, so that configs
// (environment variables, flags) can hold a Format directly.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// AppendRecord appends the record value for p, a push that decoded (p.Err
// nil), to dst in format f and returns the extended slice. pid is the
// bridge's project id, written as "pid" of a message (an event carries its
// own p.PID); receivedAtMs is when the bridge read the push, in Unix ms.
//
// A message becomes {scope, kind, pid, from, to, mtype, mid, msg, attrs,
// mtime, received_at} plus "audio" or "file" when p.Audio or p.File is set;
// an event becomes {scope: "event", kind: "event", pid, event, uid, time,
// endpoint, data (only when present), received_at}. In JSON a body that
// arrived as msgpack bin or is not valid UTF-8 is written base64-encoded as
// "msg_b64" instead of "msg", so no byte is lost; "attrs" and "data" follow
// the same rule ("attrs_b64", "data_b64"). In msgpack the key stays "msg"
// (and "attrs", "data") and the value is bin instead of str. Ids are
// integers in both formats.
//
// AppendRecord allocates nothing when dst has room for the record.
func AppendRecord(dst []byte, f Format, p *rtm.Push, pid int64, receivedAtMs int64) []byte {
	if f == FormatMsgpack {
		return recAppendMsgpack(dst, p, pid, receivedAtMs)
	}
	return recAppendJSON(dst, p, pid, receivedAtMs)
}

// recIsText reports whether b may be written as a text string: it did not
// arrive as bin and it is valid UTF-8.
func recIsText(b []byte, isBin bool) bool {
	return !isBin && utf8.Valid(b)
}

func recAppendJSON(dst []byte, p *rtm.Push, pid, receivedAtMs int64) []byte {
	if p.Scope == rtm.ScopeEvent {
		dst = append(dst, `{"scope":"event","kind":"event","pid":`...)
		dst = strconv.AppendInt(dst, p.PID, 10)
		dst = append(dst, `,"event":`...)
		dst = recAppendJSONString(dst, p.Event)
		dst = append(dst, `,"uid":`...)
		dst = strconv.AppendInt(dst, p.UID, 10)
		dst = append(dst, `,"time":`...)
		dst = strconv.AppendInt(dst, p.Time, 10)
		dst = append(dst, `,"endpoint":`...)
		dst = recAppendJSONString(dst, p.Endpoint)
		if p.HasData {
			dst = recAppendJSONBytes(dst, "data", p.Data, p.DataBinary)
		}
		dst = append(dst, `,"received_at":`...)
		dst = strconv.AppendInt(dst, receivedAtMs, 10)
		return append(dst, '}')
	}
	dst = append(dst, `{"scope":`...)
	dst = recAppendJSONString(dst, p.Scope.String())
	dst = append(dst, `,"kind":`...)
	dst = recAppendJSONString(dst, p.Kind.String())
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, pid, 10)
	dst = append(dst, `,"from":`...)
	dst = strconv.AppendInt(dst, p.From, 10)
	dst = append(dst, `,"to":`...)
	dst = strconv.AppendInt(dst, p.To, 10)
	dst = append(dst, `,"mtype":`...)
	dst = strconv.AppendInt(dst, p.MType, 10)
	dst = append(dst, `,"mid":`...)
	dst = strconv.AppendInt(dst, p.MID, 10)
	dst = recAppendJSONBytes(dst, "msg", p.Msg, p.MsgBinary)
	dst = recAppendJSONBytes(dst, "attrs", p.Attrs, p.AttrsBinary)
	dst = append(dst, `,"mtime":`...)
	dst = strconv.AppendInt(dst, p.MTime, 10)
	dst = append(dst, `,"received_at":`...)
	dst = strconv.AppendInt(dst, receivedAtMs, 10)
	if a := p.Audio; a != nil {
		dst = append(dst, `,"audio":{"source_lang":`...)
		dst = recAppendJSONString(dst, a.SourceLang)
		dst = append(dst, `,"recognized_lang":`...)
		dst = recAppendJSONString(dst, a.RecognizedLang)
		dst = append(dst, `,"recognized_text":`...)
		dst = recAppendJSONString(dst, a.RecognizedText)
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendInt(dst, a.Duration, 10)
		dst = append(dst, '}')
	}
	if fi := p.File; fi != nil {
		dst = append(dst, `,"file":{"url":`...)
		dst = recAppendJSONString(dst, fi.URL)
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, fi.Size, 10)
		dst = append(dst, `,"surl":`...)
		dst = recAppendJSONString(dst, fi.SURL)
		dst = append(dst, `,"is_rtm_audio":`...)
		dst = strconv.AppendBool(dst, fi.Audio)
		dst = append(dst, `,"lang":`...)
		dst = recAppendJSONString(dst, fi.Lang)
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendInt(dst, fi.Duration, 10)
		dst = append(dst, `,"codec":`...)
		dst = recAppendJSONString(dst, fi.Codec)
		dst = append(dst, `,"srate":`...)
		dst = strconv.AppendInt(dst, fi.SRate, 10)
		dst = append(dst, `,"rtm_attrs":`...)
		dst = recAppendJSONString(dst, fi.RTMAttrs)
		dst = append(dst, `,"custom_attrs":`...)
		dst = recAppendJSONString(dst, fi.CustomAttrs)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// recAppendJSONBytes appends `,"name":"text"` when b is text, else
// `,"name_b64":"base64"`.
func recAppendJSONBytes(dst []byte, name string, b []byte, isBin bool) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	if recIsText(b, isBin) {
		dst = append(dst, `":`...)
		return recAppendJSONValid(dst, b)
	}
	dst = append(dst, `_b64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

const recHex = "0123456789abcdef"

// recAppendJSONString appends s as a JSON string: '"' and '\' are escaped,
// \n, \r and \t by their short forms, other control characters below 0x20 as
// \u00XX, and each byte of an invalid UTF-8 sequence becomes \ufffd.
// Everything else, including non-ASCII text, is copied as is. For valid UTF-8
// the output decodes back to exactly s.
func recAppendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = recAppendEscape(dst, c)
			i++
			start = i
			continue
		}
		n := recRuneLen(s[i:])
		if n == 0 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// recAppendJSONValid is recAppendJSONString for b already known to be valid
// UTF-8: only ASCII bytes are looked at. Eight bytes at a time are skipped
// when none of them needs escaping (the usual chat text), which makes the
// body's scan several times cheaper than byte by byte.
func recAppendJSONValid(dst, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		end := len(b)
		if i+8 <= len(b) {
			if !recWordNeedsEscape(binary.LittleEndian.Uint64(b[i:])) {
				i += 8
				continue
			}
			end = i + 8 // look at these eight one by one
		}
		for ; i < end; i++ {
			if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
				dst = append(dst, b[start:i]...)
				dst = recAppendEscape(dst, c)
				start = i + 1
			}
		}
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}

// recWordNeedsEscape reports whether one of the eight bytes of w may need a
// JSON escape: a control character below 0x20, '"' or '\\'. It may say so
// for a word that needs none (a borrow across bytes), never the other way
// round; bytes of 0x80 and above are never flagged.
func recWordNeedsEscape(w uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := w ^ (lo * '"')
	bs := w ^ (lo * '\\')
	return ((w-lo*0x20)&^w|(q-lo)&^q|(bs-lo)&^bs)&hi != 0
}

// recAppendEscape appends the JSON escape of c, one of '"', '\\' and the
// control characters below 0x20.
func recAppendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', recHex[c>>4], recHex[c&0xf])
}

// recRuneLen returns the length of the valid UTF-8 encoding of a non-ASCII
// rune at the start of s, or 0 if s does not start with one. It accepts what
// utf8.DecodeRune accepts (no surrogates, nothing above U+10FFFF, no overlong
// forms) and works on strings and byte slices alike without converting.
func recRuneLen[T string | []byte](s T) int {
	cont := func(i int, lo, hi byte) bool { return i < len(s) && s[i] >= lo && s[i] <= hi }
	switch c := s[0]; {
	case c >= 0xC2 && c <= 0xDF:
		if cont(1, 0x80, 0xBF) {
			return 2
		}
	case c >= 0xE0 && c <= 0xEF:
		lo, hi := byte(0x80), byte(0xBF)
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
		if cont(1, lo, hi) && cont(2, 0x80, 0xBF) {
			return 3
		}
	case c >= 0xF0 && c <= 0xF4:
		lo, hi := byte(0x80), byte(0xBF)
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
		if cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) {
			return 4
		}
	}
	return 0
}

// AppendDeadLetter appends the JSON dead-letter record for p, a push that
// could not be decoded or produced, to dst and returns the extended slice:
// {"error": reason (or p.Err when reason is nil), "raw_b64": p.Raw in
// base64, "at": atMs, "seq": p.Seq, "scope" and "kind" when known}. The raw
// frame lets an operator decode the push again later; nothing else of it is
// trusted. Dead letters are always JSON, whatever the record format.
func AppendDeadLetter(dst []byte, p *rtm.Push, reason error, atMs int64) []byte {
	if reason == nil {
		reason = p.Err
	}
	msg := "unknown error"
	if reason != nil {
		msg = reason.Error()
	}
	dst = append(dst, `{"error":`...)
	dst = recAppendJSONString(dst, msg)
	dst = append(dst, `,"raw_b64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, p.Raw)
	dst = append(dst, `","at":`...)
	dst = strconv.AppendInt(dst, atMs, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, uint64(p.Seq), 10)
	if p.Scope >= rtm.ScopeP2P && p.Scope <= rtm.ScopeEvent {
		dst = append(dst, `,"scope":`...)
		dst = recAppendJSONString(dst, p.Scope.String())
	}
	if p.Kind >= rtm.KindChat && p.Kind <= rtm.KindEvent {
		dst = append(dst, `,"kind":`...)
		dst = recAppendJSONString(dst, p.Kind.String())
	}
	return append(dst, '}')
}

// recAppendMsgpack appends p's record in msgpack (see AppendRecord), integers
// in the smallest format (mpack.AppendIntCompact).
func recAppendMsgpack(dst []byte, p *rtm.Push, pid, receivedAtMs int64) []byte {
	if p.Scope == rtm.ScopeEvent {
		n := 8
		if p.HasData {
			n++
		}
		dst = mpack.AppendMapHeader(dst, n)
		dst = mpack.AppendStr(dst, "scope")
		dst = mpack.AppendStr(dst, "event")
		dst = mpack.AppendStr(dst, "kind")
		dst = mpack.AppendStr(dst, "event")
		dst = mpack.AppendStr(dst, "pid")
		dst = mpack.AppendIntCompact(dst, p.PID)
		dst = mpack.AppendStr(dst, "event")
		dst = mpack.AppendStr(dst, p.Event)
		dst = mpack.AppendStr(dst, "uid")
		dst = mpack.AppendIntCompact(dst, p.UID)
		dst = mpack.AppendStr(dst, "time")
		dst = mpack.AppendIntCompact(dst, p.Time)
		dst = mpack.AppendStr(dst, "endpoint")
		dst = mpack.AppendStr(dst, p.Endpoint)
		if p.HasData {
			dst = mpack.AppendStr(dst, "data")
			dst = recMPText(dst, p.Data, p.DataBinary)
		}
		dst = mpack.AppendStr(dst, "received_at")
		return mpack.AppendIntCompact(dst, receivedAtMs)
	}
	n := 11
	if p.Audio != nil {
		n++
	}
	if p.File != nil {
		n++
	}
	dst = mpack.AppendMapHeader(dst, n)
	dst = mpack.AppendStr(dst, "scope")
	dst = mpack.AppendStr(dst, p.Scope.String())
	dst = mpack.AppendStr(dst, "kind")
	dst = mpack.AppendStr(dst, p.Kind.String())
	dst = mpack.AppendStr(dst, "pid")
	dst = mpack.AppendIntCompact(dst, pid)
	dst = mpack.AppendStr(dst, "from")
	dst = mpack.AppendIntCompact(dst, p.From)
	dst = mpack.AppendStr(dst, "to")
	dst = mpack.AppendIntCompact(dst, p.To)
	dst = mpack.AppendStr(dst, "mtype")
	dst = mpack.AppendIntCompact(dst, p.MType)
	dst = mpack.AppendStr(dst, "mid")
	dst = mpack.AppendIntCompact(dst, p.MID)
	dst = mpack.AppendStr(dst, "msg")
	dst = recMPText(dst, p.Msg, p.MsgBinary)
	dst = mpack.AppendStr(dst, "attrs")
	dst = recMPText(dst, p.Attrs, p.AttrsBinary)
	dst = mpack.AppendStr(dst, "mtime")
	dst = mpack.AppendIntCompact(dst, p.MTime)
	dst = mpack.AppendStr(dst, "received_at")
	dst = mpack.AppendIntCompact(dst, receivedAtMs)
	if a := p.Audio; a != nil {
		dst = mpack.AppendStr(dst, "audio")
		dst = mpack.AppendMapHeader(dst, 4)
		dst = mpack.AppendStr(dst, "source_lang")
		dst = mpack.AppendStr(dst, a.SourceLang)
		dst = mpack.AppendStr(dst, "recognized_lang")
		dst = mpack.AppendStr(dst, a.RecognizedLang)
		dst = mpack.AppendStr(dst, "recognized_text")
		dst = mpack.AppendStr(dst, a.RecognizedText)
		dst = mpack.AppendStr(dst, "duration_ms")
		dst = mpack.AppendIntCompact(dst, a.Duration)
	}
	if fi := p.File; fi != nil {
		dst = mpack.AppendStr(dst, "file")
		dst = mpack.AppendMapHeader(dst, 10)
		dst = mpack.AppendStr(dst, "url")
		dst = mpack.AppendStr(dst, fi.URL)
		dst = mpack.AppendStr(dst, "size")
		dst = mpack.AppendIntCompact(dst, fi.Size)
		dst = mpack.AppendStr(dst, "surl")
		dst = mpack.AppendStr(dst, fi.SURL)
		dst = mpack.AppendStr(dst, "is_rtm_audio")
		dst = mpack.AppendBool(dst, fi.Audio)
		dst = mpack.AppendStr(dst, "lang")
		dst = mpack.AppendStr(dst, fi.Lang)
		dst = mpack.AppendStr(dst, "duration_ms")
		dst = mpack.AppendIntCompact(dst, fi.Duration)
		dst = mpack.AppendStr(dst, "codec")
		dst = mpack.AppendStr(dst, fi.Codec)
		dst = mpack.AppendStr(dst, "srate")
		dst = mpack.AppendIntCompact(dst, fi.SRate)
		dst = mpack.AppendStr(dst, "rtm_attrs")
		dst = mpack.AppendStr(dst, fi.RTMAttrs)
		dst = mpack.AppendStr(dst, "custom_attrs")
		dst = mpack.AppendStr(dst, fi.CustomAttrs)
	}
	return dst
}

// recMPText appends b as a msgpack str when it is text, else as bin.
func recMPText(dst, b []byte, isBin bool) []byte {
	return mpack.AppendStrOrBin(dst, b, !recIsText(b, isBin))
}
