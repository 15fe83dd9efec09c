package rtm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// DecodePush fills p from f, a two-way quest from the gateway whose method is
// pushmsg, pushgroupmsg, pushroommsg or pushevent; raw is the whole frame as
// received and is kept in p.Raw. p is reset first, so it can be reused from
// push to push; a previous p.Audio or p.File is recycled.
//
// For msgpack frames the slices in p (Msg, Attrs, Event, Endpoint, Data)
// alias f.Payload and decoding a chat push allocates nothing. Integers may
// use any msgpack integer format; a float holding a whole number is accepted
// for an integer field, as the official Go SDK does. Unknown keys are
// ignored. Every required key of spec §8.1 must be present with the right
// type, otherwise DecodePush returns an error (and stores it in p.Err), e.g.
// `rtm: pushmsg: key "from": want integer, got str` or
// `rtm: pushmsg: missing key "mid"`; the fields read before the failure stay
// set. JSON-flag frames are decoded too (their slices do not alias f).
//
// The JSON bodies of legacy audio (mtype 31) and file messages (40..50) are
// parsed into p.Audio and p.File; a body that does not parse leaves them nil
// and is not an error. The gateway's "ping" is not a push: see
// [IsGatewayPing].
func DecodePush(f *Frame, raw []byte, p *Push) error {
	audio, file := p.Audio, p.File
	*p = Push{Seq: f.Seq, Raw: raw}
	if err := decodePush(f, p); err != nil {
		p.Err = err
		return err
	}
	if p.Scope != ScopeEvent {
		parseInfo(p, audio, file)
	}
	return nil
}

// IsGatewayPing reports whether f is the gateway's liveness "ping" quest
// (no star), which is answered with an empty map and is not a [Push].
func IsGatewayPing(f *Frame) bool {
	return f.Type == TwoWay && string(f.Method) == gatewayPingMethod
}

// IsPushMethod reports whether method names one of the four push quests
// that [DecodePush] decodes.
func IsPushMethod(method []byte) bool { return scopeOfMethod(method) != 0 }

func decodePush(f *Frame, p *Push) error {
	scope := scopeOfMethod(f.Method)
	if scope == 0 {
		return fmt.Errorf("rtm: push: unknown method %q", f.Method)
	}
	method := pushMethod(scope)
	if f.Type != TwoWay {
		return fmt.Errorf("rtm: %s: want a two-way quest, got %s", method, f.Type)
	}
	p.Scope = scope
	if scope == ScopeEvent {
		p.Kind = KindEvent
	}
	if z := f.Flag & (flagZip | flagEncrypt); z != 0 {
		// Not used on TCP (spec §2): the payload cannot be read as is.
		return fmt.Errorf("rtm: %s: frame flag %#02x (zip 0x20 / encrypt 0x10) is not supported on TCP: payload not decoded", method, z)
	}
	payload := f.Payload
	if f.Flag&FlagJSON != 0 {
		var err error
		if payload, err = jsonToMsgpack(payload); err != nil {
			return fmt.Errorf("rtm: %s: json payload: %w", method, err)
		}
	}
	r := msgReader{b: payload}
	n, err := r.mapHeader()
	if err != nil {
		return fmt.Errorf("rtm: %s: payload: %w", method, err)
	}
	var seen uint
	for range n {
		key, err := r.str()
		if err != nil {
			return fmt.Errorf("rtm: %s: map key: %w", method, err)
		}
		var bit uint
		if scope == ScopeEvent {
			bit, err = eventField(&r, p, key)
		} else {
			bit, err = msgField(&r, p, key)
		}
		if err != nil {
			return fmt.Errorf("rtm: %s: key %q: %w", method, key, err)
		}
		seen |= bit
	}
	if r.left() != 0 {
		return fmt.Errorf("rtm: %s: %d bytes after the payload map", method, r.left())
	}
	if scope == ScopeEvent {
		if seen != evAllKeys {
			return missingKey(method, evKeys[:], seen)
		}
		return nil
	}
	if seen != msgAllKeys {
		keys := msgKeys
		keys[1] = targetKey(scope)
		return missingKey(method, keys[:], seen)
	}
	p.Kind = KindOf(p.MType)
	return nil
}

func missingKey(method string, keys []string, seen uint) error {
	for i, k := range keys {
		if seen&(1<<i) == 0 {
			return fmt.Errorf("rtm: %s: missing key %q", method, k)
		}
	}
	return nil
}

// jsonToMsgpack re-encodes a JSON payload as msgpack so that JSON frames go
// through the same decoder. Numbers keep their precision: integers become
// msgpack integers (uint64 above the int64 range), other numbers float64.
func jsonToMsgpack(js []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return appendAny(nil, v, 0)
}

func appendAny(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	var err error
	switch v := v.(type) {
	case nil:
		return mpack.AppendNil(dst), nil
	case bool:
		return mpack.AppendBool(dst, v), nil
	case string:
		return mpack.AppendStr(dst, v), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return mpack.AppendIntGo(dst, i), nil
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return mpack.AppendUint64(dst, u), nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, err
		}
		return mpack.AppendFloat64(dst, f), nil
	case []any:
		dst = mpack.AppendArrayHeader(dst, len(v))
		for _, e := range v {
			if dst, err = appendAny(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = mpack.AppendMapHeader(dst, len(v))
		for _, k := range keys {
			dst = mpack.AppendStr(dst, k)
			if dst, err = appendAny(dst, v[k], depth+1); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	return nil, fmt.Errorf("unexpected JSON value %T", v)
}
