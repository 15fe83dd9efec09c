package rtm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// chatPayload builds a pushmsg payload with the given keys replaced or
// removed (nil value removes) — a small builder for negative tests.
type kv struct {
	k string
	v []byte // encoded value; nil drops the key
}

func buildMap(entries ...kv) []byte {
	n := 0
	for _, e := range entries {
		if e.v != nil {
			n++
		}
	}
	b := mpack.AppendMapHeader(nil, n)
	for _, e := range entries {
		if e.v != nil {
			b = append(mpack.AppendStr(b, e.k), e.v...)
		}
	}
	return b
}

func chatEntries() []kv {
	return []kv{
		{"attrs", mpack.AppendStr(nil, "")},
		{"from", mpack.AppendIntGo(nil, 10001)},
		{"mid", mpack.AppendIntGo(nil, 7201234567890300001)},
		{"msg", mpack.AppendStr(nil, "hi")},
		{"mtime", mpack.AppendIntGo(nil, 1717000000123)},
		{"mtype", mpack.AppendIntGo(nil, 30)},
		{"to", mpack.AppendIntGo(nil, 10002)},
	}
}

func with(entries []kv, k string, v []byte) []kv {
	out := append([]kv(nil), entries...)
	for i := range out {
		if out[i].k == k {
			out[i].v = v
			return out
		}
	}
	return append(out, kv{k, v})
}

func pushFrame(method string, payload []byte) *Frame {
	return &Frame{Flag: FlagMsgpack, Type: TwoWay, Seq: 7, Method: []byte(method), Payload: payload}
}

func TestCodecPushErrors(t *testing.T) {
	chat := chatEntries()
	cases := []struct {
		name    string
		method  string
		payload []byte
		want    string
	}{
		{"wrong type int", "pushmsg", buildMap(with(chat, "from", mpack.AppendStr(nil, "x"))...), `rtm: pushmsg: key "from": want integer, got str`},
		{"wrong type str", "pushmsg", buildMap(with(chat, "msg", mpack.AppendIntGo(nil, 5))...), `rtm: pushmsg: key "msg": want str or bin, got integer`},
		{"nil msg", "pushmsg", buildMap(with(chat, "msg", []byte{0xc0})...), `rtm: pushmsg: key "msg": want str or bin, got nil`},
		{"missing mid", "pushmsg", buildMap(with(chat, "mid", nil)...), `rtm: pushmsg: missing key "mid"`},
		{"missing gid", "pushgroupmsg", buildMap(chat...), `rtm: pushgroupmsg: missing key "gid"`},
		{"missing rid", "pushroommsg", buildMap(chat...), `rtm: pushroommsg: missing key "rid"`},
		{"uint64 overflow", "pushmsg", buildMap(with(chat, "mid", []byte{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0})...), `rtm: pushmsg: key "mid": integer overflows int64`},
		{"float not integral", "pushmsg", buildMap(with(chat, "from", []byte{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0})...), `rtm: pushmsg: key "from": float value is not an integer`},
		{"not a map", "pushmsg", mpack.AppendArrayHeader(nil, 0), `rtm: pushmsg: payload: want map, got array`},
		{"key not str", "pushmsg", append(mpack.AppendMapHeader(nil, 1), 0x01, 0x01), `rtm: pushmsg: map key: want str, got integer`},
		{"trailing", "pushmsg", append(buildMap(chat...), 0xc0), `rtm: pushmsg: 1 bytes after the payload map`},
		{"event missing uid", "pushevent", buildMap(kv{"pid", mpack.AppendIntGo(nil, 1)}, kv{"event", mpack.AppendStr(nil, "login")},
			kv{"time", mpack.AppendIntGo(nil, 1)}, kv{"endpoint", mpack.AppendStr(nil, "a:1")}), `rtm: pushevent: missing key "uid"`},
		{"unknown method", "pushfoo", buildMap(chat...), `rtm: push: unknown method "pushfoo"`},
		{"ping", "ping", []byte{0x80}, `rtm: push: unknown method "ping"`},
		{"ext where int", "pushmsg", buildMap(with(chat, "to", []byte{0xd4, 1, 2})...), `rtm: pushmsg: key "to": want integer, got ext`},
		{"c1", "pushmsg", buildMap(with(chat, "zzz", []byte{0xc1})...), `rtm: pushmsg: key "zzz": want a msgpack value, got invalid byte 0xc1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Push
			err := DecodePush(pushFrame(c.method, c.payload), nil, &p)
			if err == nil || err.Error() != c.want {
				t.Fatalf("err = %v\nwant %s", err, c.want)
			}
			if p.Err != err {
				t.Errorf("p.Err = %v", p.Err)
			}
		})
	}
	// The zip and encrypt flag bits are not used on TCP: such a push is not
	// decoded, and says why.
	for _, bit := range []byte{0x20, 0x10} {
		f := pushFrame("pushmsg", buildMap(chat...))
		f.Flag |= bit
		var p Push
		want := fmt.Sprintf("rtm: pushmsg: frame flag %#02x (zip 0x20 / encrypt 0x10) is not supported on TCP: payload not decoded", bit)
		if err := DecodePush(f, nil, &p); err == nil || err.Error() != want {
			t.Errorf("flag %#x: err = %v, want %s", bit, err, want)
		}
	}
	// A one-way pushmsg is not a push.
	f := pushFrame("pushmsg", buildMap(chat...))
	f.Type = OneWay
	if err := DecodePush(f, nil, new(Push)); err == nil || !strings.Contains(err.Error(), "want a two-way quest") {
		t.Errorf("one-way: %v", err)
	}
}

func TestCodecPushAcceptsEveryIntegerFormat(t *testing.T) {
	formats := map[string][]byte{
		"fixint": {0x05}, "uint8": {0xcc, 0x05}, "uint16": {0xcd, 0, 5}, "uint32": {0xce, 0, 0, 0, 5},
		"uint64": {0xcf, 0, 0, 0, 0, 0, 0, 0, 5}, "int8": {0xd0, 5}, "int16": {0xd1, 0, 5}, "int32": {0xd2, 0, 0, 0, 5},
		"int64": {0xd3, 0, 0, 0, 0, 0, 0, 0, 5}, "float32": {0xca, 0x40, 0xa0, 0, 0}, "float64": {0xcb, 0x40, 0x14, 0, 0, 0, 0, 0, 0},
	}
	for name, enc := range formats {
		var p Push
		if err := DecodePush(pushFrame("pushmsg", buildMap(with(chatEntries(), "from", enc)...)), nil, &p); err != nil || p.From != 5 {
			t.Errorf("%s: from %d, %v", name, p.From, err)
		}
	}
	negs := map[string][]byte{"negfixint": {0xfb}, "int8": {0xd0, 0xfb}, "int16": {0xd1, 0xff, 0xfb},
		"int32": {0xd2, 0xff, 0xff, 0xff, 0xfb}, "int64": {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb}}
	for name, enc := range negs {
		var p Push
		if err := DecodePush(pushFrame("pushmsg", buildMap(with(chatEntries(), "mtype", enc)...)), nil, &p); err != nil || p.MType != -5 {
			t.Errorf("%s: mtype %d, %v", name, p.MType, err)
		}
	}
	var p Push
	max := []byte{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if err := DecodePush(pushFrame("pushmsg", buildMap(with(chatEntries(), "mid", max)...)), nil, &p); err != nil || p.MID != math.MaxInt64 {
		t.Errorf("uint64 2^63-1: %d %v", p.MID, err)
	}
}

func TestCodecPushIgnoresUnknownKeys(t *testing.T) {
	nested := mpack.AppendMapHeader(nil, 2)
	nested = append(mpack.AppendStr(nested, "a"), mpack.AppendArrayHeader(nil, 3)...)
	nested = append(nested, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xd6, 1, 1, 2, 3, 4, 0xc7, 2, 9, 1, 2)
	nested = append(mpack.AppendStr(nested, "b"), 0xc0)
	e := with(chatEntries(), "zextra", nested)
	e = with(e, "gid", mpack.AppendIntGo(nil, 1)) // another scope's target key is ignored
	var p Push
	if err := DecodePush(pushFrame("pushmsg", buildMap(e...)), nil, &p); err != nil || p.To != 10002 || string(p.Msg) != "hi" {
		t.Fatalf("%v %+v", err, p)
	}
}

func TestCodecDepthLimit(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, maxDepth+5)
	deep = append(deep, 0xc0)
	err := DecodePush(pushFrame("pushmsg", buildMap(with(chatEntries(), "x", deep)...)), nil, new(Push))
	if !errors.Is(err, errTooDeep) {
		t.Fatalf("err = %v", err)
	}
	// Huge announced lengths fail before anything is allocated or read.
	for _, b := range [][]byte{{0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0xdb, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0x7f, 0, 0, 0}} {
		r := msgReader{b: b}
		if err := r.skip(); !errors.Is(err, errTruncated) {
			t.Errorf("%x: %v", b, err)
		}
	}
}

// Every strict prefix of every vector push must fail cleanly.
func TestCodecPushTruncatedAtEveryOffset(t *testing.T) {
	n := 0
	for _, raw := range pushFrames(t) {
		f, err := DecodeFrame(raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		payload := f.Payload
		for i := range len(payload) {
			g := *f
			g.Payload = payload[:i]
			var p Push
			if err := DecodePush(&g, raw, &p); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded", f.Method, i, len(payload))
			}
			n++
		}
		// And the frame itself, cut anywhere, is rejected by DecodeFrame.
		for i := range len(raw) {
			if _, err := DecodeFrame(raw[:i], 0); err == nil {
				t.Fatalf("frame prefix %d decoded", i)
			}
		}
	}
	t.Logf("%d truncated payloads rejected", n)
}

func TestCodecPushJSON(t *testing.T) {
	js := `{"from":10001,"to":4611686018427387904,"mtype":41,"mid":9223372036854775807,"mtime":1717000000123,` +
		`"msg":"{\"url\":\"u\",\"size\":3}","attrs":"{\"rtm\":{\"type\":\"audiomsg\",\"duration\":5.0e3,\"srate\":16000},\"custom\":{\"z\":1,\"a\":[1,2]}}","extra":[1.5,null,{"x":true}]}`
	f := &Frame{Flag: FlagJSON, Type: TwoWay, Seq: 3, Method: []byte("pushmsg"), Payload: []byte(js)}
	var p Push
	if err := DecodePush(f, nil, &p); err != nil {
		t.Fatal(err)
	}
	if p.To != 4611686018427387904 || p.MID != math.MaxInt64 || p.Kind != KindFile || p.File == nil {
		t.Fatalf("%+v", p)
	}
	want := FileInfo{URL: "u", Size: 3, Audio: true, Duration: 5000, SRate: 16000,
		RTMAttrs: `{"type":"audiomsg","duration":5.0e3,"srate":16000}`, CustomAttrs: `{"a":[1,2],"z":1}`}
	if *p.File != want {
		t.Errorf("file %+v\nwant %+v", *p.File, want)
	}
	f.Payload = []byte(`{"from":"10001"}`)
	if err := DecodePush(f, nil, &p); err == nil || err.Error() != `rtm: pushmsg: key "from": want integer, got str` {
		t.Errorf("%v", err)
	}
	f.Payload = []byte(`{"from":1} x`)
	if err := DecodePush(f, nil, &p); err == nil {
		t.Errorf("trailing JSON accepted")
	}
}

func TestCodecPushInfo(t *testing.T) {
	base := chatEntries()
	cases := []struct {
		name        string
		mtype       int64
		msg, attrs  string
		audio       *AudioInfo
		file        *FileInfo
		wantNothing bool
	}{
		{name: "audio31", mtype: 31, msg: `{"sl":"a","rl":"b","rt":"c","du":12}`, audio: &AudioInfo{"a", "b", "c", 12}},
		{name: "audio31 not json", mtype: 31, msg: `nope`, wantNothing: true},
		{name: "file not json", mtype: 40, msg: `nope`, wantNothing: true},
		{name: "file bad size", mtype: 40, msg: `{"url":"u","size":1.5}`, wantNothing: true},
		{name: "file attrs not json", mtype: 45, msg: `{"url":"u"}`, attrs: `x`, file: &FileInfo{URL: "u"}},
		{name: "custom string", mtype: 50, msg: `{}`, attrs: `{"custom":"s t"}`, file: &FileInfo{CustomAttrs: "s t"}},
		{name: "custom html", mtype: 50, msg: `{}`, attrs: `{"custom":{"b":"<&>","a":{"y":1,"x":2}}}`, file: &FileInfo{CustomAttrs: `{"a":{"x":2,"y":1},"b":"\u003c\u0026\u003e"}`}},
		{name: "rtm non audio", mtype: 42, msg: `{"size":2}`, attrs: `{"rtm":{"type":"video"}}`, file: &FileInfo{Size: 2, RTMAttrs: `{"type":"video"}`}},
		{name: "rtm not object", mtype: 42, msg: `{}`, attrs: `{"rtm":[1]}`, file: &FileInfo{RTMAttrs: `[1]`}},
		{name: "custom array", mtype: 42, msg: `{}`, attrs: `{"custom":[1, 2]}`, file: &FileInfo{CustomAttrs: `[1,2]`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := with(base, "mtype", mpack.AppendIntGo(nil, c.mtype))
			e = with(e, "msg", mpack.AppendStr(nil, c.msg))
			e = with(e, "attrs", mpack.AppendStr(nil, c.attrs))
			var p Push
			if err := DecodePush(pushFrame("pushmsg", buildMap(e...)), nil, &p); err != nil {
				t.Fatal(err)
			}
			if c.wantNothing && (p.Audio != nil || p.File != nil) {
				t.Fatalf("got %+v %+v", p.Audio, p.File)
			}
			if c.audio != nil && (p.Audio == nil || *p.Audio != *c.audio) {
				t.Errorf("audio %+v, want %+v", p.Audio, c.audio)
			}
			if c.file != nil && (p.File == nil || *p.File != *c.file) {
				t.Errorf("file %+v, want %+v", p.File, c.file)
			}
		})
	}
}

// The reused Push is fully reset, and Audio/File memory is recycled.
func TestCodecPushReuse(t *testing.T) {
	var p Push
	e := with(with(chatEntries(), "mtype", mpack.AppendIntGo(nil, 40)), "msg", mpack.AppendStr(nil, `{"url":"a"}`))
	if err := DecodePush(pushFrame("pushmsg", buildMap(e...)), nil, &p); err != nil || p.File == nil {
		t.Fatal(err)
	}
	fi := p.File
	if err := DecodePush(pushFrame("pushmsg", buildMap(chatEntries()...)), nil, &p); err != nil || p.File != nil {
		t.Fatalf("%v %+v", err, p.File)
	}
	p.File = fi
	if err := DecodePush(pushFrame("pushmsg", buildMap(e...)), nil, &p); err != nil || p.File != fi {
		t.Fatalf("file not recycled")
	}
	ev := buildMap(kv{"pid", mpack.AppendIntGo(nil, 1)}, kv{"event", mpack.AppendStr(nil, "login")}, kv{"uid", mpack.AppendIntGo(nil, 2)},
		kv{"time", mpack.AppendIntGo(nil, 3)}, kv{"endpoint", mpack.AppendStr(nil, "a:1")})
	if err := DecodePush(pushFrame("pushevent", ev), nil, &p); err != nil {
		t.Fatal(err)
	}
	if p.From != 0 || p.Msg != nil || p.File != nil || p.Kind != KindEvent || p.HasData {
		t.Errorf("not reset: %+v", p)
	}
}

func TestCodecDecodePushZeroAlloc(t *testing.T) {
	for _, raw := range pushFrames(t) {
		f, _ := DecodeFrame(raw, 0)
		var p Push
		if err := DecodePush(f, raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Kind == KindFile || p.Kind == KindAudio {
			continue // JSON bodies are parsed with encoding/json
		}
		if n := testing.AllocsPerRun(100, func() { _ = DecodePush(f, raw, &p) }); n != 0 {
			t.Errorf("%s %s: %.0f allocs per DecodePush", f.Method, p.Kind, n)
		}
	}
	var buf []byte
	if n := testing.AllocsPerRun(100, func() { buf = AppendAnswer(buf[:0], 1, FlagMsgpack) }); n != 0 {
		t.Errorf("AppendAnswer: %.0f allocs", n)
	}
}

func TestCodecErrorAnswers(t *testing.T) {
	for _, flag := range []byte{FlagMsgpack, FlagJSON} {
		raw := AppendErrorAnswer(nil, 9, flag, 20004, `bad "method" é`)
		f, err := DecodeFrame(raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Status != 1 || f.Seq != 9 || f.Flag != flag {
			t.Errorf("flag %#x: header %+v", flag, f)
		}
		if e := DecodeError(f); e.Code != 20004 || e.Ex != `bad "method" é` {
			t.Errorf("flag %#x: %+v", flag, e)
		}
	}
	raw := AppendAnswer(nil, 5, FlagJSON)
	if f, _ := DecodeFrame(raw, 0); string(f.Payload) != "{}" || f.Flag != FlagJSON {
		t.Errorf("json answer %x", raw)
	}
	bad := &Frame{Flag: FlagMsgpack, Type: Answer, Status: 1, Payload: []byte{0x81, 0xa4, 'c', 'o', 'd', 'e', 0xa1, 'x'}}
	if e := DecodeError(bad); e.Code != CodeDecoding || !strings.Contains(e.Ex, "want integer, got str") {
		t.Errorf("%+v", e)
	}
	// What can be kept is kept: the code with a nil or non-text ex, the ex
	// of an answer without a code.
	for _, c := range []struct {
		name    string
		payload []byte
		code    int
		ex      string
	}{
		{"nil ex", []byte{0x82, 0xa4, 'c', 'o', 'd', 'e', 0xcd, 0x4e, 0x24, 0xa2, 'e', 'x', 0xc0}, 20004, ""},
		{"int ex", []byte{0x82, 0xa2, 'e', 'x', 0x07, 0xa4, 'c', 'o', 'd', 'e', 0xcd, 0x4e, 0x24}, 20004, ""},
		{"bin ex", []byte{0x82, 0xa4, 'c', 'o', 'd', 'e', 0xcd, 0x4e, 0x24, 0xa2, 'e', 'x', 0xc4, 1, 'b'}, 20004, "b"},
		{"no code", []byte{0x81, 0xa2, 'e', 'x', 0xa2, 'n', 'o'}, CodeDecoding, "error answer without a code: no"},
		{"empty map", []byte{0x80}, CodeDecoding, "error answer without a code"},
	} {
		e := DecodeError(&Frame{Flag: FlagMsgpack, Type: Answer, Status: 1, Payload: c.payload})
		if e.Code != c.code || e.Ex != c.ex {
			t.Errorf("%s: %+v, want code %d ex %q", c.name, e, c.code, c.ex)
		}
	}
}

func TestSignSecretNeverPrinted(t *testing.T) {
	const key = "super-secret-key"
	s := Secret(key)
	sg := NewSigner(42, s)
	var logBuf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logBuf, nil))
	l.Info("x", "secret", s, "signer", sg)
	l.Info("y", slog.Any("s", s))
	outs := []string{logBuf.String()}
	for _, verb := range []string{"%v", "%s", "%#v", "%+v", "%q", "%x", "%X", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, sg), fmt.Sprintf(verb, struct{ G *Signer }{sg}),
			fmt.Sprintf(verb, struct{ S Secret }{s}), fmt.Sprintf(verb, []Secret{s}))
	}
	outs = append(outs, s.String(), sg.String(), fmt.Sprint(s), fmt.Sprintln(sg))
	for _, o := range outs {
		if strings.Contains(o, key) || strings.Contains(o, fmt.Sprintf("%x", key)) {
			t.Fatalf("secret leaked: %q", o)
		}
	}
	if fmt.Sprintf("%q", s) != `"[redacted]"` || fmt.Sprint(s) != "[redacted]" {
		t.Errorf("got %q", fmt.Sprintf("%q", s))
	}
}

func TestSignSaltsNeverRepeat(t *testing.T) {
	s := NewSigner(1, "k")
	now := time.Unix(1717000000, 0) // a frozen clock: only the counter moves
	const workers, per = 8, 2000
	salts := make(chan int64, workers*per)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				salts <- s.Sign("sendmsg", now).Salt
			}
		})
	}
	wg.Wait()
	close(salts)
	seen := make(map[int64]bool)
	for v := range salts {
		if seen[v] {
			t.Fatalf("salt %d repeated", v)
		}
		seen[v] = true
	}
	sig := s.Sign("setlisten", now)
	if sig.TS != now.Unix() || sig.PID != 1 || !s.Verify("setlisten", sig) || s.Verify("addlisten", sig) {
		t.Errorf("%+v", sig)
	}
	if sig.Salt < now.UnixMilli()<<20 {
		t.Errorf("salt %d is not time based", sig.Salt)
	}
	re := s.Resign("sendmsg", now)
	if re.TS != now.Unix()+5 || re.Salt <= sig.Salt {
		t.Errorf("resign %+v", re)
	}
	// A clock going backwards does not repeat salts either.
	if s.Sign("x", now.Add(-time.Hour)).Salt <= re.Salt {
		t.Errorf("salt went backwards")
	}
}

func TestListenQuests(t *testing.T) {
	sig := Signature{PID: 1, Salt: 2, TS: 3, Sign: strings.Repeat("A", 32)}
	cases := []struct {
		c    ListenChange
		want []ClientQuest
	}{
		{ListenChange{Op: OpSetAll, P2P: true, Ev: true}, []ClientQuest{&SetListenAll{P2P: true, Ev: true}}},
		{ListenChange{Op: OpSet}, []ClientQuest{&SetListenIDs{}}},
		{ListenChange{Op: OpAdd, UIDs: []int64{5}}, []ClientQuest{&AddListen{UIDs: []int64{5}}}},
		{ListenChange{Op: OpRemove, Events: []string{"login"}}, []ClientQuest{&RemoveListen{Events: []string{"login"}}}},
		{ListenChange{Op: OpAdd}, nil},
	}
	for _, c := range cases {
		got := ListenQuests(c.c)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: %+v, want %+v", c.c.Op, got, c.want)
		}
	}
	// setlisten ids always carries all four keys, even when empty.
	var back SetListenIDs
	if err := back.Decode((&SetListenIDs{}).AppendPayload(nil, sig)); err != nil ||
		back.GIDs == nil || back.RIDs == nil || back.UIDs == nil || back.Events == nil {
		t.Errorf("%+v %v", back, err)
	}
	// add/remove leave empty lists out.
	var add AddListen
	if err := add.Decode((&AddListen{GIDs: []int64{1}}).AppendPayload(nil, sig)); err != nil || add.UIDs != nil || len(add.GIDs) != 1 {
		t.Errorf("%+v %v", add, err)
	}
	if got, err := DecodeSignature((&Ping{}).AppendPayload(nil, sig)); err == nil {
		t.Errorf("*ping carries a signature: %+v", got)
	}
}

func TestCodecSendMsgRoundTrip(t *testing.T) {
	sig := Signature{PID: 11000001, Salt: -7, TS: 1 << 40, Sign: "S"}
	for _, q := range []SendMsg{
		{Scope: ScopeP2P, MType: 30, From: 1, To: math.MaxInt64, MID: math.MinInt64, Msg: []byte("x"), Attrs: "a"},
		{Scope: ScopeGroup, MType: -1, From: 128, To: 32768, MID: 1, Msg: bytes.Repeat([]byte{0xff}, 300), MsgBinary: true},
		{Scope: ScopeRoom, MType: 127, From: -129, To: -40000, MID: -3_000_000_000, Msg: []byte(strings.Repeat("é", 40000))},
	} {
		payload := q.AppendPayload(nil, sig)
		var back SendMsg
		if err := back.Decode(payload); err != nil || !reflect.DeepEqual(back, q) {
			t.Errorf("%s: %+v %v", q.Method(), back, err)
		}
		if got, err := DecodeSignature(payload); err != nil || got != sig {
			t.Errorf("signature %+v %v", got, err)
		}
	}
}

// One byte per Read must give the same frames as whole reads.
func TestFrameReaderOneBytePerRead(t *testing.T) {
	var stream []byte
	frames := allFrameHex(t)
	for _, f := range frames {
		stream = append(stream, f...)
	}
	fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(stream)), 1<<16)
	for i, want := range frames {
		if _, err := fr.Next(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(fr.Raw(), want) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	t.Logf("%d frames read one byte at a time", len(frames))
}

// Round trip through our encoders for pushes built in Go.
func TestPushAppendDecodeRoundTrip(t *testing.T) {
	pushes := []Push{
		{Scope: ScopeP2P, From: 1, To: 2, MType: 30, MID: 3, Msg: []byte("m"), Attrs: []byte("a"), MTime: 4},
		{Scope: ScopeGroup, From: -1, To: 1 << 62, MType: 51, MID: 3, Msg: []byte{0, 1}, MsgBinary: true, Attrs: []byte{}, MTime: 4},
		{Scope: ScopeRoom, From: 1, To: 2, MType: 32, MID: 3, Msg: bytes.Repeat([]byte("z"), 70000), Attrs: []byte("a"), MTime: 4},
		{Scope: ScopeEvent, PID: 1, Event: []byte("login"), UID: 5, Time: 6, Endpoint: []byte("[::1]:1"), Data: []byte("d"), HasData: true},
		{Scope: ScopeP2P, From: 1, To: 2, MType: 30, MID: 3, Msg: []byte("m"), Attrs: []byte("a"), AttrsBinary: true, MTime: 4},
		{Scope: ScopeEvent, PID: 1, Event: []byte("login"), UID: 5, Time: 6, Endpoint: []byte("e"), Data: []byte("d"), DataBinary: true, HasData: true},
	}
	for _, want := range pushes {
		raw := AppendPush(nil, 77, &want)
		f, err := DecodeFrame(raw, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var got Push
		if err := DecodePush(f, raw, &got); err != nil {
			t.Fatal(err)
		}
		if !pushFieldsEqual(&got, &want) || got.Seq != 77 {
			t.Errorf("%+v\nwant %+v", got, want)
		}
	}
}

// pushFieldsEqual compares the wire fields of two pushes.
func pushFieldsEqual(a, b *Push) bool {
	return a.Scope == b.Scope && a.From == b.From && a.To == b.To && a.MType == b.MType && a.MID == b.MID &&
		bytes.Equal(a.Msg, b.Msg) && a.MsgBinary == b.MsgBinary && bytes.Equal(a.Attrs, b.Attrs) && a.AttrsBinary == b.AttrsBinary && a.MTime == b.MTime &&
		a.PID == b.PID && bytes.Equal(a.Event, b.Event) && a.UID == b.UID && a.Time == b.Time &&
		bytes.Equal(a.Endpoint, b.Endpoint) && bytes.Equal(a.Data, b.Data) && a.DataBinary == b.DataBinary && a.HasData == b.HasData
}

func TestCodecSendMsgDecodeErrors(t *testing.T) {
	sig := Signature{PID: 1, Salt: 2, TS: 3, Sign: "S"}
	group := (&SendMsg{Scope: ScopeGroup, MType: 30, From: 1, To: 2, MID: 3, Msg: []byte("m")}).AppendPayload(nil, sig)
	var q SendMsg
	if err := q.Decode(group); err != nil || q.To != 2 || q.Scope != ScopeGroup || q.Method() != "sendgroupmsg" {
		t.Errorf("%+v %v", q, err)
	}
	noTarget := buildMap(kv{"from", mpack.AppendIntGo(nil, 1)}, kv{"mtype", mpack.AppendIntGo(nil, 1)}, kv{"mid", mpack.AppendIntGo(nil, 1)}, kv{"msg", mpack.AppendStr(nil, "")})
	if err := q.Decode(noTarget); err == nil || err.Error() != `rtm: sendmsg: missing key "to"` {
		t.Errorf("no target: %v", err)
	}
	two := buildMap(kv{"gid", mpack.AppendIntGo(nil, 1)}, kv{"rid", mpack.AppendIntGo(nil, 1)})
	if err := q.Decode(two); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("two targets: %v", err)
	}
	var a SendMsgAnswer
	if err := a.Decode([]byte{0x80}); err == nil || !strings.Contains(err.Error(), `missing key "mtime"`) {
		t.Errorf("empty answer: %v", err)
	}
	var ids SetListenIDs
	bad := buildMap(kv{"uids", append(mpack.AppendArrayHeader(nil, 1), mpack.AppendStr(nil, "x")...)})
	if err := ids.Decode(bad); err == nil || err.Error() != `rtm: setlisten: key "uids": item 0: want integer, got str` {
		t.Errorf("%v", err)
	}
}
