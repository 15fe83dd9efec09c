package rtm

import (
	"bytes"
	"encoding/json"
	"math"
)

// parseInfo derives p.Audio (legacy audio, mtype 31) and p.File (file
// messages, mtype 40..50) from the JSON in p.Msg and p.Attrs (spec §8.3).
// audio and file are the previous push's values, recycled when non-nil. A
// body that is not the expected JSON leaves the field nil; it never fails the
// push.
func parseInfo(p *Push, audio *AudioInfo, file *FileInfo) {
	switch p.Kind {
	case KindAudio:
		if audio == nil {
			audio = new(AudioInfo)
		}
		if parseAudio(p.Msg, audio) {
			p.Audio = audio
		}
	case KindFile:
		if file == nil {
			file = new(FileInfo)
		}
		if parseFile(p.Msg, p.Attrs, file) {
			p.File = file
		}
	}
}

// parseAudio parses a legacy audio body {"sl", "rl", "rt", "du"}.
func parseAudio(msg []byte, a *AudioInfo) bool {
	var v struct {
		SL string      `json:"sl"`
		RL string      `json:"rl"`
		RT string      `json:"rt"`
		DU json.Number `json:"du"`
	}
	if json.Unmarshal(msg, &v) != nil {
		return false
	}
	du, ok := jsonInt(v.DU)
	if !ok {
		return false
	}
	*a = AudioInfo{SourceLang: v.SL, RecognizedLang: v.RL, RecognizedText: v.RT, Duration: du}
	return true
}

// parseFile parses a file body {"url", "size", "surl"} and its attrs
// {"rtm": {...}, "custom": ...}. It reports false, leaving the push without
// file info, only when the body is not such a JSON object; attrs that are not
// JSON just leave the attrs-derived fields empty, as in the official SDK.
//
// Unlike the official Go SDK (which only looks at attrs.rtm for mtype 41 and
// always reports 0 for duration and srate), attrs.rtm is read for every file
// type and its numbers are read as numbers.
func parseFile(msg, attrs []byte, f *FileInfo) bool {
	var body struct {
		URL  string      `json:"url"`
		Size json.Number `json:"size"`
		SURL string      `json:"surl"`
	}
	if json.Unmarshal(msg, &body) != nil {
		return false
	}
	size, ok := jsonInt(body.Size)
	if !ok {
		return false
	}
	*f = FileInfo{URL: body.URL, Size: size, SURL: body.SURL}

	var at struct {
		RTM    json.RawMessage `json:"rtm"`
		Custom json.RawMessage `json:"custom"`
	}
	if json.Unmarshal(attrs, &at) != nil {
		return true
	}
	f.CustomAttrs = customAttrs(at.Custom)
	if len(at.RTM) == 0 || string(at.RTM) == "null" {
		return true
	}
	f.RTMAttrs = string(at.RTM)
	var rtm struct {
		Type     string      `json:"type"`
		Lang     string      `json:"lang"`
		Duration json.Number `json:"duration"`
		Codec    string      `json:"codec"`
		SRate    json.Number `json:"srate"`
	}
	if json.Unmarshal(at.RTM, &rtm) != nil {
		return true // not an object of the known shape: kept raw only
	}
	if rtm.Type == "audiomsg" {
		f.Audio = true
		f.Lang = rtm.Lang
		f.Codec = rtm.Codec
		f.Duration, _ = jsonInt(rtm.Duration)
		f.SRate, _ = jsonInt(rtm.SRate)
	}
	return true
}

// customAttrs renders attrs.custom like the official SDK: an object
// re-serialised as compact JSON with sorted keys, a string as is, and ""
// when absent or null. Other JSON values (arrays, numbers, booleans) are kept
// as compact JSON.
func customAttrs(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case '{':
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) != nil {
			return ""
		}
		b, err := json.Marshal(m)
		if err != nil {
			return ""
		}
		return string(b)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return ""
	}
	return buf.String()
}

// jsonInt converts a JSON number to int64; an empty number (member absent)
// is 0. Whole floats are accepted; anything else is not.
func jsonInt(n json.Number) (int64, bool) {
	if n == "" {
		return 0, true
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}
