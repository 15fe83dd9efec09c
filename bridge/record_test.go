package bridge

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

const (
	recTestPID        = 11000001
	recTestReceivedAt = 1717000009999
)

// recRepoFile returns the path of a file relative to the repository root.
func recRepoFile(t testing.TB, rel string) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	return filepath.Join(filepath.Dir(self), "..", rel)
}

// recVectorsDir is where the golden vectors live: shared/protocol/vectors,
// next to the repository, as for the rtm tests.
func recVectorsDir(t testing.TB) string {
	t.Helper()
	return recRepoFile(t, filepath.Join("..", "shared", "protocol", "vectors"))
}

// recNode is a typed payload node of the golden vectors.
type recNode struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Hex   string `json:"hex"`
}

type recFrameVec struct {
	Name     string `json:"name"`
	Method   string `json:"method"`
	FrameHex string `json:"frame_hex"`
	Payload  struct {
		Entries []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"entries"`
	} `json:"payload"`
}

// recVector is one push vector: its frame and its payload as typed nodes.
type recVector struct {
	name   string
	method string
	frame  []byte
	fields map[string]recNode
	// dispatch is the official SDK's FileInfo for file messages (rtm_pushes.json only).
	fileInfo map[string]any
}

// recLoadVectors returns every push (not ping) in rtm_pushes.json (Go
// encoder) and cpp_frames.json (C++ encoder).
func recLoadVectors(t *testing.T) []recVector {
	t.Helper()
	var out []recVector
	add := func(source string, fv recFrameVec, fileInfo map[string]any) {
		if !strings.HasPrefix(fv.Method, "push") {
			return
		}
		frame, err := hex.DecodeString(fv.FrameHex)
		if err != nil {
			t.Fatalf("%s %s: frame_hex: %v", source, fv.Name, err)
		}
		v := recVector{name: source + "/" + fv.Name, method: fv.Method, frame: frame, fields: map[string]recNode{}, fileInfo: fileInfo}
		for _, e := range fv.Payload.Entries {
			var n recNode
			if err := json.Unmarshal(e.Value, &n); err != nil {
				t.Fatalf("%s: key %s: %v", v.name, e.Key, err)
			}
			v.fields[e.Key] = n
		}
		out = append(out, v)
	}

	var pushes struct {
		Vectors []struct {
			Push     recFrameVec `json:"push"`
			Dispatch []struct {
				Fields struct {
					FileInfo map[string]any `json:"FileInfo"`
				} `json:"fields"`
			} `json:"official_sdk_dispatch"`
		} `json:"vectors"`
	}
	recReadJSON(t, filepath.Join(recVectorsDir(t), "rtm_pushes.json"), &pushes)
	for _, v := range pushes.Vectors {
		var fi map[string]any
		if len(v.Dispatch) > 0 {
			fi = v.Dispatch[0].Fields.FileInfo
		}
		add("rtm_pushes", v.Push, fi)
	}
	var cpp struct {
		Vectors []recFrameVec `json:"vectors"`
	}
	recReadJSON(t, filepath.Join(recVectorsDir(t), "cpp_frames.json"), &cpp)
	for _, v := range cpp.Vectors {
		add("cpp_frames", v, nil)
	}
	if len(out) < 30 {
		t.Fatalf("found only %d push vectors in %s", len(out), recVectorsDir(t))
	}
	return out
}

func recReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

// recDecodeVector decodes a vector's frame with the rtm codec.
func recDecodeVector(t *testing.T, v recVector) *rtm.Push {
	t.Helper()
	f, err := rtm.DecodeFrame(v.frame, 0)
	if err != nil {
		t.Fatalf("%s: DecodeFrame: %v", v.name, err)
	}
	p := new(rtm.Push)
	if err := rtm.DecodePush(f, v.frame, p); err != nil {
		t.Fatalf("%s: DecodePush: %v", v.name, err)
	}
	return p
}

// recDecodeJSON parses a record keeping numbers exact.
func recDecodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("record is not valid JSON: %s", b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode record: %v\n%s", err, b)
	}
	if d.More() {
		t.Fatalf("trailing data after the record: %s", b)
	}
	return m
}

// recNum returns m[key] as an exact int64.
func recNum(t testing.TB, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%q is %T (%v), want a JSON number", key, m[key], m[key])
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		t.Fatalf("%q = %s is not an int64: %v", key, n, err)
	}
	return v
}

func recStr(t testing.TB, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q is %T (%v), want a string", key, m[key], m[key])
	}
	return s
}

// recBytes returns the text or base64 form of a byte field, checking that
// exactly one is present.
func recBytes(t testing.TB, m map[string]any, key string) (b []byte, isB64 bool) {
	t.Helper()
	txt, hasTxt := m[key]
	b64, hasB64 := m[key+"_b64"]
	if hasTxt == hasB64 {
		t.Fatalf("want exactly one of %q and %q, record has %v and %v", key, key+"_b64", hasTxt, hasB64)
	}
	if hasTxt {
		s, ok := txt.(string)
		if !ok {
			t.Fatalf("%q is %T, want string", key, txt)
		}
		return []byte(s), false
	}
	s, ok := b64.(string)
	if !ok {
		t.Fatalf("%q is %T, want string", key+"_b64", b64)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", key+"_b64", err)
	}
	return raw, true
}

func recNodeInt(t *testing.T, v recVector, key string) int64 {
	t.Helper()
	n, ok := v.fields[key]
	if !ok || n.Type != "int" {
		t.Fatalf("%s: payload has no int %q", v.name, key)
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", v.name, key, err)
	}
	return i
}

// recNodeBytes returns a str or bin node's bytes and whether it was bin.
func recNodeBytes(t *testing.T, v recVector, key string) ([]byte, bool) {
	t.Helper()
	n, ok := v.fields[key]
	if !ok {
		t.Fatalf("%s: payload has no %q", v.name, key)
	}
	switch n.Type {
	case "str":
		return []byte(n.Value), false
	case "bin":
		b, err := hex.DecodeString(n.Hex)
		if err != nil {
			t.Fatal(err)
		}
		return b, true
	}
	t.Fatalf("%s: %q is %s", v.name, key, n.Type)
	return nil, false
}

// TestRecordJSONVectors encodes every push vector and checks each field of
// the record against the vector's own payload (not against the decoder's
// output), and the record against docs/record.schema.json.
func TestRecordJSONVectors(t *testing.T) {
	schema := recLoadSchema(t)
	scopes := map[string]string{"pushmsg": "p2p", "pushgroupmsg": "group", "pushroommsg": "room", "pushevent": "event"}
	targets := map[string]string{"pushmsg": "to", "pushgroupmsg": "gid", "pushroommsg": "rid"}
	var sawBinary, sawBigID, sawFile, sawAudio, sawNoData bool
	for _, v := range recLoadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			p := recDecodeVector(t, v)
			rec := AppendRecord(nil, FormatJSON, p, recTestPID, recTestReceivedAt)
			m := recDecodeJSON(t, rec)
			if err := schema.validate(m); err != nil {
				t.Errorf("record does not match the schema: %v\n%s", err, rec)
			}
			if got := recStr(t, m, "scope"); got != scopes[v.method] {
				t.Errorf("scope = %q, want %q", got, scopes[v.method])
			}
			if got := recNum(t, m, "received_at"); got != recTestReceivedAt {
				t.Errorf("received_at = %d", got)
			}
			if v.method == "pushevent" {
				if got := recStr(t, m, "kind"); got != "event" {
					t.Errorf("kind = %q, want event", got)
				}
				for _, k := range []string{"pid", "uid", "time"} {
					if got, want := recNum(t, m, k), recNodeInt(t, v, k); got != want {
						t.Errorf("%s = %d, want %d", k, got, want)
					}
				}
				for _, k := range []string{"event", "endpoint"} {
					want, _ := recNodeBytes(t, v, k)
					if got := recStr(t, m, k); got != string(want) {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				if _, ok := v.fields["data"]; ok {
					want, _ := recNodeBytes(t, v, "data")
					got, _ := recBytes(t, m, "data")
					if !bytes.Equal(got, want) {
						t.Errorf("data = %q, want %q", got, want)
					}
				} else {
					sawNoData = true
					if _, ok := m["data"]; ok {
						t.Errorf("record has data, the push had none: %s", rec)
					}
					if _, ok := m["data_b64"]; ok {
						t.Errorf("record has data_b64, the push had none: %s", rec)
					}
				}
				return
			}
			mtype := recNodeInt(t, v, "mtype")
			if got, want := recStr(t, m, "kind"), rtm.KindOf(mtype).String(); got != want {
				t.Errorf("kind = %q, want %q", got, want)
			}
			if got := recNum(t, m, "pid"); got != recTestPID {
				t.Errorf("pid = %d, want %d", got, recTestPID)
			}
			for rk, vk := range map[string]string{"from": "from", "to": targets[v.method], "mtype": "mtype", "mid": "mid", "mtime": "mtime"} {
				want := recNodeInt(t, v, vk)
				got := recNum(t, m, rk)
				if got != want {
					t.Errorf("%s = %d, want %d", rk, got, want)
				}
				if want > 1<<53 {
					sawBigID = true
				}
			}
			wantMsg, wasBin := recNodeBytes(t, v, "msg")
			gotMsg, isB64 := recBytes(t, m, "msg")
			if !bytes.Equal(gotMsg, wantMsg) {
				t.Errorf("msg = %q, want %q", gotMsg, wantMsg)
			}
			if isB64 != (wasBin || !utf8.Valid(wantMsg)) {
				t.Errorf("msg_b64 used = %v, body bin = %v", isB64, wasBin)
			}
			if wasBin {
				sawBinary = true
			}
			wantAttrs, _ := recNodeBytes(t, v, "attrs")
			if gotAttrs, _ := recBytes(t, m, "attrs"); !bytes.Equal(gotAttrs, wantAttrs) {
				t.Errorf("attrs = %q, want %q", gotAttrs, wantAttrs)
			}
			recCheckDerived(t, m, p, v)
			sawAudio = sawAudio || m["audio"] != nil
			sawFile = sawFile || m["file"] != nil
		})
	}
	if !sawBinary || !sawBigID || !sawFile || !sawAudio || !sawNoData {
		t.Errorf("vectors did not cover binary=%v bigID=%v file=%v audio=%v event-without-data=%v", sawBinary, sawBigID, sawFile, sawAudio, sawNoData)
	}
}

// recCheckDerived compares the audio and file objects with the decoder's
// derived values and, for files, with what the official SDK derived.
func recCheckDerived(t *testing.T, m map[string]any, p *rtm.Push, v recVector) {
	t.Helper()
	if (p.Audio != nil) != (m["audio"] != nil) {
		t.Errorf("push Audio %v, record audio %v", p.Audio, m["audio"])
	}
	if p.Kind == rtm.KindAudio && p.Audio == nil {
		t.Errorf("legacy audio vector decoded without audio info")
	}
	if a := p.Audio; a != nil {
		am, ok := m["audio"].(map[string]any)
		if !ok {
			t.Fatalf("audio is %T", m["audio"])
		}
		for k, want := range map[string]string{"source_lang": a.SourceLang, "recognized_lang": a.RecognizedLang, "recognized_text": a.RecognizedText} {
			if got := recStr(t, am, k); got != want {
				t.Errorf("audio.%s = %q, want %q", k, got, want)
			}
		}
		if got := recNum(t, am, "duration_ms"); got != a.Duration || got == 0 {
			t.Errorf("audio.duration_ms = %d, want %d (non-zero)", got, a.Duration)
		}
	}
	if (p.File != nil) != (m["file"] != nil) {
		t.Errorf("push File %v, record file %v", p.File, m["file"])
	}
	if p.Kind == rtm.KindFile && p.File == nil {
		t.Errorf("file vector decoded without file info")
	}
	if f := p.File; f != nil {
		fm, ok := m["file"].(map[string]any)
		if !ok {
			t.Fatalf("file is %T", m["file"])
		}
		for k, want := range map[string]string{"url": f.URL, "surl": f.SURL, "lang": f.Lang, "codec": f.Codec, "rtm_attrs": f.RTMAttrs, "custom_attrs": f.CustomAttrs} {
			if got := recStr(t, fm, k); got != want {
				t.Errorf("file.%s = %q, want %q", k, got, want)
			}
		}
		for k, want := range map[string]int64{"size": f.Size, "duration_ms": f.Duration, "srate": f.SRate} {
			if got := recNum(t, fm, k); got != want {
				t.Errorf("file.%s = %d, want %d", k, got, want)
			}
		}
		if got, ok := fm["is_rtm_audio"].(bool); !ok || got != f.Audio {
			t.Errorf("file.is_rtm_audio = %v, want %v", fm["is_rtm_audio"], f.Audio)
		}
		if fi := v.fileInfo; fi != nil {
			// What the official SDK derived (its duration and srate are
			// always 0 because of a bug, spec §8.3, so they are not compared).
			if recStr(t, fm, "url") != fi["Url"] || recStr(t, fm, "surl") != fi["Surl"] ||
				recStr(t, fm, "lang") != fi["Lang"] || recStr(t, fm, "codec") != fi["Codec"] ||
				strconv.FormatInt(recNum(t, fm, "size"), 10) != fi["FileSize"] || fm["is_rtm_audio"] != fi["IsRTMaudio"] {
				t.Errorf("file = %v, official SDK derived %v", fm, fi)
			}
		}
	}
}

// TestRecordMsgpackVectors checks that the msgpack record of every vector
// holds the same object as the JSON record, with bodies as bin or str.
func TestRecordMsgpackVectors(t *testing.T) {
	for _, v := range recLoadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			p := recDecodeVector(t, v)
			recCheckMsgpackMatchesJSON(t, p)
		})
	}
}

func recCheckMsgpackMatchesJSON(t *testing.T, p *rtm.Push) {
	t.Helper()
	jm := recDecodeJSON(t, AppendRecord(nil, FormatJSON, p, recTestPID, recTestReceivedAt))
	raw := AppendRecord(nil, FormatMsgpack, p, recTestPID, recTestReceivedAt)
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	mm, err := dec.DecodeMap()
	if err != nil {
		t.Fatalf("msgpack record does not decode: %v (%x)", err, raw)
	}
	if _, err := dec.DecodeInterface(); err == nil {
		t.Fatalf("trailing data after the msgpack record")
	}
	want := recNormJSON(jm)
	got := recNormMsgpack(t, mm)
	if !recDeepEqual(got, want) {
		t.Errorf("msgpack record differs from the JSON record\nmsgpack: %v\njson:    %v", got, want)
	}
	// The msgpack types say text or binary.
	for _, k := range []string{"msg", "attrs", "data"} {
		jsonB64 := jm[k+"_b64"] != nil
		switch mm[k].(type) {
		case []byte:
			if !jsonB64 {
				t.Errorf("msgpack %s is bin, JSON wrote it as text", k)
			}
		case string:
			if jsonB64 {
				t.Errorf("msgpack %s is str, JSON wrote it as base64", k)
			}
		}
	}
}

// recNormJSON turns a JSON record into a comparable form: numbers as
// int64, *_b64 fields as "key" with raw bytes in a string.
func recNormJSON(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch x := v.(type) {
		case json.Number:
			i, _ := strconv.ParseInt(string(x), 10, 64)
			out[k] = i
		case map[string]any:
			out[k] = recNormJSON(x)
		case string:
			if base, ok := strings.CutSuffix(k, "_b64"); ok {
				b, _ := base64.StdEncoding.DecodeString(x)
				out[base] = string(b)
			} else {
				out[k] = x
			}
		default:
			out[k] = v
		}
	}
	return out
}

func recNormMsgpack(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range m {
		switch x := v.(type) {
		case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
			i, err := strconv.ParseInt(fmt.Sprint(x), 10, 64)
			if err != nil {
				t.Errorf("%s: %v", k, err)
			}
			out[k] = i
		case map[string]any:
			out[k] = recNormMsgpack(t, x)
		case []byte:
			out[k] = string(x)
		default:
			out[k] = v
		}
	}
	return out
}

func recDeepEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok {
			return false
		}
		am, aIsMap := av.(map[string]any)
		bm, bIsMap := bv.(map[string]any)
		if aIsMap || bIsMap {
			if !aIsMap || !bIsMap || !recDeepEqual(am, bm) {
				return false
			}
			continue
		}
		if av != bv {
			return false
		}
	}
	return true
}

// recHandPushes are pushes the vectors do not cover.
func recHandPushes() map[string]*rtm.Push {
	return map[string]*rtm.Push{
		"binary flag on valid UTF-8": {Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 3,
			Msg: []byte("looks like text"), MsgBinary: true, Attrs: []byte(""), MTime: 4},
		"str body with invalid UTF-8": {Scope: rtm.ScopeRoom, Kind: rtm.KindMessage, From: 1, To: 2, MType: 99, MID: 3,
			Msg: []byte{'a', 0xff, 0xfe, 'b', 0xc3}, Attrs: []byte{0xed, 0xa0, 0x80}, MTime: 4},
		"control characters and quotes": {Scope: rtm.ScopeGroup, Kind: rtm.KindCmd, From: 1, To: 2, MType: 32, MID: 3,
			Msg: []byte("\x00\x01\x1f\"\\/\n\r\t\x7f \u2028 \U0001F30F</script>"), Attrs: []byte(`{"k":"v\"q"}`), MTime: 4},
		"empty body": {Scope: rtm.ScopeP2P, Kind: rtm.KindMessage, MType: 0},
		"extreme ids": {Scope: rtm.ScopeP2P, Kind: rtm.KindMessage, From: math.MinInt64, To: math.MaxInt64, MType: -1, MID: -9007199254740993,
			Msg: []byte("x"), MTime: math.MaxInt64},
		"legacy audio": {Scope: rtm.ScopeP2P, Kind: rtm.KindAudio, From: 1, To: 2, MType: 31, MID: 3, Msg: []byte(`{"du":5}`),
			Audio: &rtm.AudioInfo{SourceLang: "zh-CN", RecognizedLang: "en", RecognizedText: "tab\there \"quoted\" 天气", Duration: 3210}},
		"file with everything": {Scope: rtm.ScopeGroup, Kind: rtm.KindFile, From: 1, To: 2, MType: 41, MID: 3, Msg: []byte(`{}`),
			File: &rtm.FileInfo{URL: "https://x/y?a=1&b=2", Size: 1 << 40, SURL: "s", Audio: true, Lang: "en-US", Duration: 1500,
				Codec: "amr-wb", SRate: 16000, RTMAttrs: `{"type":"audiomsg"}`, CustomAttrs: "plain \"custom\""}},
		"long fields (str16/str32 sizes)": {Scope: rtm.ScopeP2P, Kind: rtm.KindChat, MType: 30,
			Msg: bytes.Repeat([]byte("é"), 40000), Attrs: bytes.Repeat([]byte{'a'}, 300)},
		"event with data": {Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 11000001, Event: []byte("logout"), UID: 10001,
			Time: 1717000100, Endpoint: []byte("[2001:db8::1]:443"), Data: []byte(`{"reason":"timeout"}`), HasData: true},
		"event with empty data": {Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 1, Event: []byte("login"), UID: 2, Time: 3,
			Endpoint: []byte("1.2.3.4:5"), HasData: true},
		"event without data": {Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 1, Event: []byte("login"), UID: 2, Time: 3,
			Endpoint: []byte("1.2.3.4:5"), Data: []byte("ignored"), HasData: false},
		"event with binary data": {Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 1, Event: []byte("x"), UID: 2, Time: 3,
			Endpoint: []byte("e"), Data: []byte{0x80, 0x81}, HasData: true},
		"event with data sent as bin, valid UTF-8": {Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 1, Event: []byte("x"), UID: 2, Time: 3,
			Endpoint: []byte("e"), Data: []byte(`{"a":1}`), DataBinary: true, HasData: true},
		"attrs sent as bin, valid UTF-8": {Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 3,
			Msg: []byte("hi"), Attrs: []byte("abc"), AttrsBinary: true, MTime: 4},
	}
}

func TestRecordJSONHandPushes(t *testing.T) {
	schema := recLoadSchema(t)
	for name, p := range recHandPushes() {
		t.Run(name, func(t *testing.T) {
			rec := AppendRecord([]byte("prefix"), FormatJSON, p, 77, recTestReceivedAt)
			if !bytes.HasPrefix(rec, []byte("prefix")) {
				t.Fatal("AppendRecord overwrote dst")
			}
			m := recDecodeJSON(t, rec[len("prefix"):])
			if err := schema.validate(m); err != nil {
				t.Errorf("schema: %v\n%s", err, rec)
			}
			if p.Scope == rtm.ScopeEvent {
				if recNum(t, m, "pid") != p.PID || recNum(t, m, "uid") != p.UID || recNum(t, m, "time") != p.Time ||
					recStr(t, m, "event") != string(p.Event) || recStr(t, m, "endpoint") != string(p.Endpoint) {
					t.Errorf("event fields differ: %s", rec)
				}
				_, hasData := m["data"]
				_, hasB64 := m["data_b64"]
				if (hasData || hasB64) != p.HasData {
					t.Errorf("data present = %v, HasData = %v", hasData || hasB64, p.HasData)
				}
				if p.HasData {
					got, isB64 := recBytes(t, m, "data")
					if !bytes.Equal(got, p.Data) || isB64 != (p.DataBinary || !utf8.Valid(p.Data)) {
						t.Errorf("data = %q (b64 %v), want %q", got, isB64, p.Data)
					}
				}
				return
			}
			for k, want := range map[string]int64{"pid": 77, "from": p.From, "to": p.To, "mtype": p.MType, "mid": p.MID, "mtime": p.MTime} {
				if got := recNum(t, m, k); got != want {
					t.Errorf("%s = %d, want %d", k, got, want)
				}
			}
			msg, isB64 := recBytes(t, m, "msg")
			if !bytes.Equal(msg, p.Msg) {
				t.Errorf("msg = %q, want %q", msg, p.Msg)
			}
			if isB64 != (p.MsgBinary || !utf8.Valid(p.Msg)) {
				t.Errorf("msg_b64 = %v for MsgBinary %v, valid %v", isB64, p.MsgBinary, utf8.Valid(p.Msg))
			}
			attrs, attrsB64 := recBytes(t, m, "attrs")
			if !bytes.Equal(attrs, p.Attrs) || attrsB64 != (p.AttrsBinary || !utf8.Valid(p.Attrs)) {
				t.Errorf("attrs = %q (b64 %v), want %q", attrs, attrsB64, p.Attrs)
			}
			recCheckDerived(t, m, p, recVector{})
		})
	}
}

func TestRecordMsgpackHandPushes(t *testing.T) {
	for name, p := range recHandPushes() {
		t.Run(name, func(t *testing.T) { recCheckMsgpackMatchesJSON(t, p) })
	}
}

func TestRecordDeadLetter(t *testing.T) {
	schema := recLoadSchema(t)
	raw := []byte{'F', 'P', 'N', 'N', 1, 0x80, 1, 7, 0, 0xff, 0x00, '"'}
	cases := []struct {
		name      string
		p         *rtm.Push
		reason    error
		wantErr   string
		wantScope string
		wantKind  string
	}{
		{"reason given", &rtm.Push{Raw: raw, Seq: 4294967295, Scope: rtm.ScopeP2P, Kind: rtm.KindChat, Err: errors.New("ignored")},
			errors.New("bridge: produce rtm.p2p.chat: \"quoted\"\nline"), "bridge: produce rtm.p2p.chat: \"quoted\"\nline", "p2p", "chat"},
		{"push error", &rtm.Push{Raw: raw, Seq: 12, Scope: rtm.ScopeGroup, Err: errors.New(`rtm: pushgroupmsg: key "mtype": want integer, got str`)},
			nil, `rtm: pushgroupmsg: key "mtype": want integer, got str`, "group", ""},
		{"unknown method", &rtm.Push{Raw: raw, Seq: 1, Err: errors.New("rtm: push: unknown method \"pushx\xff\"")},
			nil, "rtm: push: unknown method \"pushx\ufffd\"", "", ""},
		{"event", &rtm.Push{Raw: raw, Scope: rtm.ScopeEvent, Kind: rtm.KindEvent}, errors.New("e"), "e", "event", "event"},
		{"no error at all", &rtm.Push{}, nil, "unknown error", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := AppendDeadLetter(nil, c.p, c.reason, 1717000000999)
			m := recDecodeJSON(t, rec)
			if err := schema.validateDef("dead_letter", m); err != nil {
				t.Errorf("schema: %v\n%s", err, rec)
			}
			if err := schema.validate(m); err == nil {
				t.Errorf("a dead letter validates as a data record: %s", rec)
			}
			if got := recStr(t, m, "error"); got != c.wantErr {
				t.Errorf("error = %q, want %q", got, c.wantErr)
			}
			gotRaw, err := base64.StdEncoding.DecodeString(recStr(t, m, "raw_b64"))
			if err != nil || !bytes.Equal(gotRaw, c.p.Raw) {
				t.Errorf("raw_b64 decodes to %x, %v; want %x", gotRaw, err, c.p.Raw)
			}
			if got := recNum(t, m, "at"); got != 1717000000999 {
				t.Errorf("at = %d", got)
			}
			if got := recNum(t, m, "seq"); got != int64(c.p.Seq) {
				t.Errorf("seq = %d, want %d", got, c.p.Seq)
			}
			for k, want := range map[string]string{"scope": c.wantScope, "kind": c.wantKind} {
				got, ok := m[k]
				if want == "" && ok {
					t.Errorf("%s = %v, want it absent", k, got)
				}
				if want != "" && got != want {
					t.Errorf("%s = %v, want %q", k, got, want)
				}
			}
		})
	}
}

// TestRecordDeadLetterOfBrokenVector feeds a vector frame, truncated so
// it fails to decode, through the dead-letter path: the raw frame survives.
func TestRecordDeadLetterOfBrokenVector(t *testing.T) {
	v := recLoadVectors(t)[0]
	f, err := rtm.DecodeFrame(v.frame, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Payload = f.Payload[:len(f.Payload)/2]
	var p rtm.Push
	if err := rtm.DecodePush(f, v.frame, &p); err == nil {
		t.Fatal("a truncated payload decoded without error")
	}
	m := recDecodeJSON(t, AppendDeadLetter(nil, &p, nil, 5))
	if recStr(t, m, "error") != p.Err.Error() {
		t.Errorf("error = %q, want %q", m["error"], p.Err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(recStr(t, m, "raw_b64")); !bytes.Equal(raw, v.frame) {
		t.Error("raw_b64 is not the frame")
	}
}

func TestRecordParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"json": FormatJSON, "": FormatJSON, " JSON ": FormatJSON, "msgpack": FormatMsgpack, "MsgPack": FormatMsgpack} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
		var f Format
		if err := f.UnmarshalText([]byte(in)); err != nil || f != want {
			t.Errorf("UnmarshalText(%q) = %v, %v", in, f, err)
		}
	}
	for _, in := range []string{"avro", "msg-pack", "protobuf"} {
		if _, err := ParseFormat(in); err == nil || !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseFormat(%q) error = %v, want one naming the input", in, err)
		}
		f := FormatMsgpack
		if err := f.UnmarshalText([]byte(in)); err == nil || f != FormatMsgpack {
			t.Errorf("UnmarshalText(%q) = %v, %v; want error and no change", in, f, err)
		}
	}
	for _, f := range []Format{FormatJSON, FormatMsgpack} {
		b, err := f.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseFormat(string(b)); err != nil || back != f {
			t.Errorf("round trip of %v via %q: %v, %v", f, b, back, err)
		}
	}
	if _, err := Format(5).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown format succeeded")
	}
	if got := Format(5).String(); got != "Format(5)" {
		t.Errorf("String = %q", got)
	}
}

func TestRecordNoAllocs(t *testing.T) {
	ps := recHandPushes()
	dst := make([]byte, 0, 256<<10)
	for name, p := range ps {
		for _, f := range []Format{FormatJSON, FormatMsgpack} {
			if n := testing.AllocsPerRun(50, func() { dst = AppendRecord(dst[:0], f, p, 1, 2) }); n != 0 {
				t.Errorf("%s, %v: AppendRecord allocates %.1f times", name, f, n)
			}
		}
	}
	p := &rtm.Push{Raw: bytes.Repeat([]byte{1}, 1000), Scope: rtm.ScopeP2P}
	reason := errors.New("boom")
	if n := testing.AllocsPerRun(50, func() { dst = AppendDeadLetter(dst[:0], p, reason, 1) }); n != 0 {
		t.Errorf("AppendDeadLetter allocates %.1f times", n)
	}
}

func TestRecordAppendJSONString(t *testing.T) {
	cases := map[string]string{
		"":                      `""`,
		"plain":                 `"plain"`,
		"q\"b\\s/":              `"q\"b\\s/"`,
		"\n\r\t":                `"\n\r\t"`,
		"\x00\x01\x08\x0b\x1f":  `"\u0000\u0001\u0008\u000b\u001f"`,
		"\x7f":                  "\"\x7f\"",
		"héllo 世界 🌏":            `"héllo 世界 🌏"`,
		"bad \xff byte":         `"bad \ufffd byte"`,
		"\xed\xa0\x80":          `"\ufffd\ufffd\ufffd"`, // surrogate: 3 invalid bytes
		"\xc0\xaf":              `"\ufffd\ufffd"`,       // overlong
		"\xf4\x90\x80\x80":      `"\ufffd\ufffd\ufffd\ufffd"`,
		"truncated \xe4\xb8":    `"truncated \ufffd\ufffd"`,
		"<script>&\u2028\u2029": "\"<script>&\u2028\u2029\"",
	}
	for in, want := range cases {
		if got := string(recAppendJSONString(nil, in)); got != want {
			t.Errorf("string %q: got %s, want %s", in, got, want)
		}
		if got := string(recAppendJSONString(nil, []byte(in))); got != want {
			t.Errorf("[]byte %q: got %s, want %s", in, got, want)
		}
	}
}

// FuzzAppendJSONString checks that the output is always valid JSON, that it
// decodes back to the input when the input is valid UTF-8 (and otherwise to
// the input with each invalid byte replaced by U+FFFD), that the string and
// []byte versions agree (and with recAppendJSONValid on valid UTF-8), and
// that recRuneLen agrees with utf8.DecodeRune.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f\x7f", "héllo 🌏", "\xff", "\xed\xa0\x80", "\xf0\x9f\x8c", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := recAppendJSONString([]byte("x"), in)
		if out[0] != 'x' {
			t.Fatal("dst prefix lost")
		}
		out = out[1:]
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q for input %q", out, in)
		}
		if s := recAppendJSONString(nil, string(in)); !bytes.Equal(s, out) {
			t.Fatalf("string version %q differs from []byte version %q", s, out)
		}
		if utf8.Valid(in) {
			if v := recAppendJSONValid(nil, in); !bytes.Equal(v, out) {
				t.Fatalf("recAppendJSONValid gave %q, recAppendJSONString %q", v, out)
			}
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		want := string(in)
		if !utf8.Valid(in) {
			var sb strings.Builder
			for _, r := range string(in) { // invalid bytes range as U+FFFD, one each
				sb.WriteRune(r)
			}
			want = sb.String()
		}
		if back != want {
			t.Fatalf("round trip of %q gave %q, want %q", in, back, want)
		}
		for i := 0; i < len(in); i++ {
			if in[i] < utf8.RuneSelf {
				continue
			}
			r, size := utf8.DecodeRune(in[i:])
			n := recRuneLen(in[i:])
			if r == utf8.RuneError && size == 1 {
				size = 0
			}
			if n != size {
				t.Fatalf("recRuneLen(%x) = %d, utf8.DecodeRune says %d", in[i:], n, size)
			}
		}
	})
}

// FuzzAppendRecordText checks that arbitrary body, attrs and event bytes
// always give a valid JSON record that keeps them byte-exact, and a msgpack
// record that decodes to the same bytes.
func FuzzAppendRecordText(f *testing.F) {
	f.Add([]byte("hello"), []byte(""), false)
	f.Add([]byte{0, 0xff, 0x80}, []byte("\xc3"), true)
	f.Fuzz(func(t *testing.T, msg, attrs []byte, isBin bool) {
		p := &rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindMessage, Msg: msg, MsgBinary: isBin, Attrs: attrs}
		m := recDecodeJSON(t, AppendRecord(nil, FormatJSON, p, 1, 2))
		if got, _ := recBytes(t, m, "msg"); !bytes.Equal(got, msg) {
			t.Fatalf("msg %q came back as %q", msg, got)
		}
		if got, _ := recBytes(t, m, "attrs"); !bytes.Equal(got, attrs) {
			t.Fatalf("attrs %q came back as %q", attrs, got)
		}
		ev := &rtm.Push{Scope: rtm.ScopeEvent, Event: msg, Endpoint: attrs, Data: msg, HasData: true}
		em := recDecodeJSON(t, AppendRecord(nil, FormatJSON, ev, 1, 2))
		if got, _ := recBytes(t, em, "data"); !bytes.Equal(got, msg) {
			t.Fatalf("data %q came back as %q", msg, got)
		}
		var mm map[string]any
		if err := msgpack.Unmarshal(AppendRecord(nil, FormatMsgpack, p, 1, 2), &mm); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(mm["msg"]) != fmt.Sprint(recAsMsgpackValue(msg, isBin)) {
			t.Fatalf("msgpack msg = %v, want %q", mm["msg"], msg)
		}
	})
}

func recAsMsgpackValue(b []byte, isBin bool) any {
	if recIsText(b, isBin) {
		return string(b)
	}
	return b
}

// ---- a small JSON Schema (2020-12) checker for docs/record.schema.json ----
//
// It implements exactly the keywords the schema uses and fails on any other,
// so the schema cannot silently say more than this test checks.

type recSchema struct {
	root map[string]any
}

func recLoadSchema(t testing.TB) *recSchema {
	t.Helper()
	b, err := os.ReadFile(recRepoFile(t, "docs/record.schema.json"))
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var root map[string]any
	if err := d.Decode(&root); err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("schema dialect is %v", root["$schema"])
	}
	return &recSchema{root: root}
}

func (s *recSchema) validate(v any) error { return s.check(s.root, v, "$") }

func (s *recSchema) validateDef(name string, v any) error {
	def, err := s.resolve("#/$defs/" + name)
	if err != nil {
		return err
	}
	return s.check(def, v, "$")
}

func (s *recSchema) resolve(ref string) (map[string]any, error) {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	defs, _ := s.root["$defs"].(map[string]any)
	def, ok := defs[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q: no such definition", ref)
	}
	return def, nil
}

func (s *recSchema) check(sch map[string]any, v any, path string) error {
	for kw, arg := range sch {
		var err error
		switch kw {
		case "$schema", "$id", "$defs", "title", "description", "contentEncoding", "properties", "additionalProperties":
			// annotations, or handled with "type": "object" below
		case "$ref":
			var def map[string]any
			if def, err = s.resolve(arg.(string)); err == nil {
				err = s.check(def, v, path)
			}
		case "oneOf":
			n := 0
			for _, sub := range arg.([]any) {
				if s.check(sub.(map[string]any), v, path) == nil {
					n++
				}
			}
			if n != 1 {
				err = fmt.Errorf("%s: %d oneOf branches match, want exactly 1", path, n)
			}
		case "allOf":
			for _, sub := range arg.([]any) {
				if err = s.check(sub.(map[string]any), v, path); err != nil {
					break
				}
			}
		case "not":
			if s.check(arg.(map[string]any), v, path) == nil {
				err = fmt.Errorf("%s: matches a \"not\" schema", path)
			}
		case "type":
			err = recCheckType(arg.(string), v, path)
			if err == nil && arg == "object" {
				err = s.checkObject(sch, v.(map[string]any), path)
			}
		case "required":
			if m, ok := v.(map[string]any); ok {
				for _, k := range arg.([]any) {
					if _, ok := m[k.(string)]; !ok {
						err = fmt.Errorf("%s: missing required %q", path, k)
						break
					}
				}
			}
		case "const":
			if v != arg {
				err = fmt.Errorf("%s: %v, want const %v", path, v, arg)
			}
		case "enum":
			found := false
			for _, e := range arg.([]any) {
				found = found || e == v
			}
			if !found {
				err = fmt.Errorf("%s: %v is not one of %v", path, v, arg)
			}
		case "minimum", "maximum":
			if n, ok := v.(json.Number); ok {
				x, _ := new(big.Int).SetString(string(n), 10)
				lim, _ := new(big.Int).SetString(string(arg.(json.Number)), 10)
				if x == nil || lim == nil {
					err = fmt.Errorf("%s: %s or its %s %s is not an integer", path, n, kw, arg)
				} else if c := x.Cmp(lim); kw == "minimum" && c < 0 || kw == "maximum" && c > 0 {
					err = fmt.Errorf("%s: %s is beyond the %s %s", path, n, kw, arg)
				}
			}
		case "pattern":
			if str, ok := v.(string); ok && !regexp.MustCompile(arg.(string)).MatchString(str) {
				err = fmt.Errorf("%s: %q does not match %s", path, str, arg)
			}
		default:
			err = fmt.Errorf("schema keyword %q at %s is not supported by this checker", kw, path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *recSchema) checkObject(sch map[string]any, m map[string]any, path string) error {
	props, _ := sch["properties"].(map[string]any)
	for k, val := range m {
		sub, ok := props[k].(map[string]any)
		if !ok {
			if sch["additionalProperties"] == false {
				return fmt.Errorf("%s: unexpected property %q", path, k)
			}
			continue
		}
		if err := s.check(sub, val, path+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func recCheckType(typ string, v any, path string) error {
	ok := false
	switch typ {
	case "object":
		_, ok = v.(map[string]any)
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "integer":
		n, isNum := v.(json.Number)
		ok = isNum && !strings.ContainsAny(string(n), ".eE")
	default:
		return fmt.Errorf("%s: type %q not supported by this checker", path, typ)
	}
	if !ok {
		return fmt.Errorf("%s: %T (%v) is not %s", path, v, v, typ)
	}
	return nil
}

func TestRecordSchemaCheckerRejects(t *testing.T) {
	schema := recLoadSchema(t)
	good := func() map[string]any {
		return recDecodeJSON(t, AppendRecord(nil, FormatJSON, recHandPushes()["file with everything"], 1, 2))
	}
	if err := schema.validate(good()); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}
	mutations := map[string]func(m map[string]any){
		"missing mid":       func(m map[string]any) { delete(m, "mid") },
		"mid as string":     func(m map[string]any) { m["mid"] = "7" },
		"mid as float":      func(m map[string]any) { m["mid"] = json.Number("7.5") },
		"mid beyond int64":  func(m map[string]any) { m["mid"] = json.Number("9223372036854775808") },
		"msg and msg_b64":   func(m map[string]any) { m["msg_b64"] = "AA==" },
		"no msg":            func(m map[string]any) { delete(m, "msg") },
		"bad base64":        func(m map[string]any) { delete(m, "msg"); m["msg_b64"] = "not base64!" },
		"unknown scope":     func(m map[string]any) { m["scope"] = "event" },
		"extra key":         func(m map[string]any) { m["extra"] = true },
		"file missing size": func(m map[string]any) { delete(m["file"].(map[string]any), "size") },
		"file bool type":    func(m map[string]any) { m["file"].(map[string]any)["is_rtm_audio"] = "yes" },
	}
	for name, mutate := range mutations {
		m := good()
		mutate(m)
		if err := schema.validate(m); err == nil {
			t.Errorf("%s: schema accepted %v", name, m)
		}
	}
	ev := recDecodeJSON(t, AppendRecord(nil, FormatJSON, recHandPushes()["event with data"], 1, 2))
	ev["data_b64"] = "AA=="
	if err := schema.validate(ev); err == nil {
		t.Error("schema accepted an event with both data and data_b64")
	}
}

// TestRefusalDeadLetterSchema checks the dead letter of a record Kafka
// refused against #/$defs/dead_letter: with its value when it fits, its
// size only when not, and without a key when the record had none.
func TestRefusalDeadLetterSchema(t *testing.T) {
	schema := recLoadSchema(t)
	const batch = 64 << 10
	limit := refusalValueMax(batch)
	for _, c := range []struct {
		name     string
		kr       kgo.Record
		withBody bool
	}{
		{"fits", kgo.Record{Topic: "rtm.p2p.chat", Key: []byte("10002"), Value: bytes.Repeat([]byte("v"), limit)}, true},
		{"too large to keep", kgo.Record{Topic: "rtm.p2p.chat", Key: []byte("10002"), Value: bytes.Repeat([]byte("v"), limit+1)}, false},
		{"no key", kgo.Record{Topic: "rtm.events", Value: []byte(`{"x":1}`)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := appendRefusal(nil, &c.kr, reasonTooLarge, kerr.MessageTooLarge, 1717000000999, limit)
			if len(v) > batch-1024 {
				t.Errorf("dead letter of %d bytes does not fit a %d-byte batch with room for headers", len(v), batch)
			}
			m := recDecodeJSON(t, v)
			if err := schema.validateDef("dead_letter", m); err != nil {
				t.Errorf("schema: %v", err)
			}
			if _, ok := m["value_b64"]; ok != c.withBody || recNum(t, m, "value_bytes") != int64(len(c.kr.Value)) {
				t.Errorf("value_b64 present %v (want %v), value_bytes %v", ok, c.withBody, m["value_bytes"])
			}
			if _, ok := m["key_b64"]; ok != (c.kr.Key != nil) {
				t.Errorf("key_b64 present %v for key %q", ok, c.kr.Key)
			}
		})
	}
}
