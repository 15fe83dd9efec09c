package rtm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// AppendAnswer appends a whole answer frame with status 0 and an empty map
// payload for the quest with the given seq: msgpack 80, or {} when flag is
// FlagJSON (a peer answers in the encoding of the quest).
func AppendAnswer(dst []byte, seq uint32, flag byte) []byte {
	start := len(dst)
	if flag&FlagJSON != 0 {
		dst, off := BeginFrame(dst, FlagJSON, Answer, 0, seq, "")
		return FinishFrame(append(dst, '{', '}'), start, off)
	}
	dst, off := BeginFrame(dst, FlagMsgpack, Answer, 0, seq, "")
	return FinishFrame(append(dst, 0x80), start, off)
}

// AppendErrorAnswer appends a whole error answer frame (status 1) with the
// payload {code, ex} for the quest with the given seq, in msgpack or, when
// flag is FlagJSON, in JSON.
func AppendErrorAnswer(dst []byte, seq uint32, flag byte, code int, ex string) []byte {
	start := len(dst)
	if flag&FlagJSON != 0 {
		dst, off := BeginFrame(dst, FlagJSON, Answer, 1, seq, "")
		q, _ := json.Marshal(ex) // a string always marshals
		dst = fmt.Appendf(dst, `{"code":%d,"ex":%s}`, code, q)
		return FinishFrame(dst, start, off)
	}
	dst, off := BeginFrame(dst, FlagMsgpack, Answer, 1, seq, "")
	dst = mpack.AppendMapHeader(dst, 2)
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "code"), int64(code))
	dst = mpack.AppendStr(mpack.AppendStr(dst, "ex"), ex)
	return FinishFrame(dst, start, off)
}

// DecodeError reads {code, ex} from an error answer (msgpack or JSON),
// ignoring any other key (C++ peers add "raiser"). It keeps what it can: an
// ex that is nil or not a string leaves Ex empty (the code still counts),
// and an answer without a code gets code 20006 (decoding error) with its ex
// kept. An error answer whose payload cannot be read at all yields 20006
// with an ex that says why. Method is left empty for the caller to fill in.
func DecodeError(f *Frame) *Error {
	payload := f.Payload
	if f.Flag&FlagJSON != 0 {
		var err error
		if payload, err = jsonToMsgpack(payload); err != nil {
			return &Error{Code: CodeDecoding, Ex: "undecodable error answer: " + err.Error()}
		}
	}
	e := &Error{}
	r := msgReader{b: payload}
	n, err := r.mapHeader()
	var key []byte
	sawCode := false
	for i := 0; err == nil && i < n; i++ {
		if key, err = r.str(); err != nil {
			break
		}
		switch string(key) {
		case "code":
			var c int64
			c, err = r.int()
			e.Code, sawCode = int(c), err == nil
		case "ex":
			ex, _, berr := r.bytes()
			if te := (*typeError)(nil); errors.As(berr, &te) {
				err = r.skip() // nil or not text: no ex, the code still counts
				break
			}
			e.Ex, err = string(ex), berr
		default:
			err = r.skip()
		}
	}
	if err != nil {
		return &Error{Code: CodeDecoding, Ex: "undecodable error answer: " + err.Error()}
	}
	if !sawCode {
		return &Error{Code: CodeDecoding, Ex: strings.TrimSuffix("error answer without a code: "+e.Ex, ": ")}
	}
	return e
}

// SendMsgAnswer is the answer to sendmsg, sendgroupmsg and sendroommsg.
type SendMsgAnswer struct {
	MTime int64 // gateway time of the message, ms
}

// AppendPayload appends the answer's payload {mtime}.
func (a *SendMsgAnswer) AppendPayload(dst []byte) []byte {
	return mpack.AppendIntGo(mpack.AppendStr(mpack.AppendMapHeader(dst, 1), "mtime"), a.MTime)
}

// Decode reads the answer from a msgpack payload; mtime is required.
func (a *SendMsgAnswer) Decode(payload []byte) error {
	*a = SendMsgAnswer{}
	found := false
	err := decodeMap("sendmsg answer", payload, func(r *msgReader, key []byte) (err error) {
		if string(key) == "mtime" {
			a.MTime, err = r.int()
			found = true
			return err
		}
		return r.skip()
	})
	if err == nil && !found {
		err = fmt.Errorf("rtm: sendmsg answer: missing key %q", "mtime")
	}
	return err
}

// decodeMap walks a msgpack payload map, calling field for each key; field
// must consume the value. Errors name what and the key.
func decodeMap(what string, payload []byte, field func(r *msgReader, key []byte) error) error {
	r := msgReader{b: payload}
	n, err := r.mapHeader()
	if err != nil {
		return fmt.Errorf("rtm: %s: payload: %w", what, err)
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return fmt.Errorf("rtm: %s: map key: %w", what, err)
		}
		if err := field(&r, key); err != nil {
			return fmt.Errorf("rtm: %s: key %q: %w", what, key, err)
		}
	}
	if r.left() != 0 {
		return fmt.Errorf("rtm: %s: %d bytes after the payload map", what, r.left())
	}
	return nil
}
