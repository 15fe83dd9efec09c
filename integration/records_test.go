package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// TestRecordsEveryScopeAndKind: every scope × kind (and events) lands on its
// topic with the right key, headers and value; binary bodies and ids above
// 2^53 are exact.
func TestRecordsEveryScopeAndKind(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	e.Start(nil)

	binBody := []byte{0xff, 0x00, 0xfe, 0x80, 'b', 'i', 'n', 0xc3, 0x28}
	var pushes []rtm.Push
	mid := int64(7201234567890300000)
	for _, scope := range []rtm.Scope{rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom} {
		for i, mtype := range []int64{30, 31, 32, 40, 41, 127} {
			mid++
			p := rtm.Push{Scope: scope, MType: mtype, MID: mid, From: 10001 + int64(i), To: 20000 + int64(scope)*100 + int64(i),
				MTime: 1717000000123 + int64(i)}
			switch mtype {
			case 30:
				p.Msg, p.Attrs = []byte("Hello, RTM! 你好 "+scope.String()), []byte(`{"lang":"en"}`)
			case 31:
				p.Msg = []byte(`{"sl":"zh-CN","rl":"zh-CN","rt":"今天天气不错","du":3210}`)
			case 32:
				p.Msg, p.MsgBinary = binBody, true // a binary cmd body
			case 40:
				p.Msg = []byte(`{"url":"https://files.example.com/a.jpg","size":12345,"surl":"https://files.example.com/a.thumb.jpg"}`)
				p.Attrs = []byte(`{"rtm":{"type":"image"},"custom":{"b":2,"a":1}}`)
			case 41:
				p.Msg = []byte(`{"url":"https://files.example.com/v1.amr","size":15360}`)
				p.Attrs = []byte(`{"rtm":{"type":"audiomsg","lang":"en-US","duration":5120,"codec":"amr-wb","srate":16000},"custom":"app"}`)
			case 127:
				// Custom type, binary body, ids above 2^53.
				p.Msg, p.MsgBinary = append([]byte{0xc1}, binBody...), true
				p.From, p.To, p.MID = 1<<60+int64(scope), 1<<62+int64(scope), math.MaxInt64-int64(scope)
			}
			p.Kind = rtm.KindOf(mtype)
			pushes = append(pushes, p)
		}
	}
	// A str body that is not valid UTF-8 must come back via msg_b64 too.
	pushes = append(pushes, rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, MType: 30, MID: 99, From: 5, To: 6,
		Msg: []byte{'a', 0xff, 'b'}, Attrs: []byte{0xfe}, MTime: 1717000000999})
	for i := range pushes {
		if n, err := e.Sim.Publish(&pushes[i]); err != nil || n != 1 {
			t.Fatalf("Publish %d: n=%d err=%v", i, n, err)
		}
	}
	type ev struct {
		name, endpoint, data string
		uid                  int64
	}
	events := []ev{{"login", "203.0.113.7:51234", `{"reason":"x"}`, 10001}, {"logout", "[2001:db8::1]:443", "", 1<<61 + 7}}
	for _, v := range events {
		if n := e.Sim.PublishEvent(v.name, v.uid, v.endpoint, v.data); n != 1 {
			t.Fatalf("PublishEvent %s: n=%d", v.name, n)
		}
	}
	want := len(pushes) + len(events)
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "answers", func() bool { return e.Ledger.Answered() >= want }); err != nil {
		t.Fatalf("%v (stats %+v)", err, e.Sim.Stats())
	}

	ex, recs := e.Check()
	t.Logf("sent %d, %s", want, ex)
	if ex.Found != want || ex.Duplicates != 0 || len(recs) != want {
		t.Errorf("want %d records, exactly once each: %s", want, ex)
	}
	byID := map[integration.MsgID]integration.Record{}
	evByUID := map[int64]integration.Record{}
	for _, r := range recs {
		id, _ := integration.RecordID(&r) // checked by e.check
		if id.Scope == rtm.ScopeEvent {
			evByUID[id.To] = r
		} else {
			byID[id] = r
		}
	}
	pidStr := strconv.FormatInt(integration.TestPID, 10)
	for _, p := range pushes {
		id := integration.MsgID{Scope: p.Scope, From: p.From, To: p.To, MID: p.MID}
		r, ok := byID[id]
		if !ok {
			t.Errorf("%v: no record", id)
			continue
		}
		name := fmt.Sprintf("%s mtype %d", p.Scope, p.MType)
		if wantTopic := e.Prefix + "." + p.Scope.String() + "." + p.Kind.String(); r.Topic != wantTopic {
			t.Errorf("%s: topic %s, want %s", name, r.Topic, wantTopic)
		}
		if r.Key != strconv.FormatInt(p.To, 10) {
			t.Errorf("%s: key %q, want %d", name, r.Key, p.To)
		}
		wantH := map[string]string{
			topics.HeaderScope: p.Scope.String(), topics.HeaderKind: p.Kind.String(),
			topics.HeaderMType: strconv.FormatInt(p.MType, 10), topics.HeaderFrom: strconv.FormatInt(p.From, 10),
			topics.HeaderTo: strconv.FormatInt(p.To, 10), topics.HeaderMID: strconv.FormatInt(p.MID, 10),
			topics.HeaderPID: pidStr,
		}
		if len(r.Headers) != len(wantH) {
			t.Errorf("%s: headers %v, want %v", name, r.Headers, wantH)
		}
		for k, v := range wantH {
			if r.Headers[k] != v {
				t.Errorf("%s: header %s=%q, want %q", name, k, r.Headers[k], v)
			}
		}
		v := r.Value
		if v.Scope != p.Scope.String() || v.Kind != p.Kind.String() || v.PID != integration.TestPID || v.From != p.From ||
			v.To != p.To || v.MType != p.MType || v.MID != p.MID || v.MTime != p.MTime || v.ReceivedAt <= 0 {
			t.Errorf("%s: value %s does not match the push %+v", name, r.Raw, p)
		}
		body, err := v.Body()
		if err != nil || !bytes.Equal(body, p.Msg) {
			t.Errorf("%s: body %q (%v), want %q", name, body, err, p.Msg)
		}
		if binary := v.MsgB64 != nil; binary != (p.MsgBinary || !utf8.Valid(p.Msg)) {
			t.Errorf("%s: msg_b64 used=%v, want %v", name, binary, !binary)
		}
		attrs, err := v.AttrsBytes()
		if err != nil || !bytes.Equal(attrs, p.Attrs) {
			t.Errorf("%s: attrs %q (%v), want %q", name, attrs, err, p.Attrs)
		}
		switch p.MType {
		case 31:
			var a map[string]any
			if err := json.Unmarshal(v.Audio, &a); err != nil || a["recognized_text"] != "今天天气不错" || a["duration_ms"] != float64(3210) {
				t.Errorf("%s: audio %s (%v)", name, v.Audio, err)
			}
		case 40:
			var f map[string]any
			if err := json.Unmarshal(v.File, &f); err != nil || f["url"] != "https://files.example.com/a.jpg" ||
				f["size"] != float64(12345) || f["surl"] != "https://files.example.com/a.thumb.jpg" || f["custom_attrs"] != `{"a":1,"b":2}` {
				t.Errorf("%s: file %s (%v)", name, v.File, err)
			}
		case 41:
			var f map[string]any
			if err := json.Unmarshal(v.File, &f); err != nil || f["is_rtm_audio"] != true || f["duration_ms"] != float64(5120) ||
				f["codec"] != "amr-wb" || f["srate"] != float64(16000) || f["custom_attrs"] != "app" {
				t.Errorf("%s: file %s (%v)", name, v.File, err)
			}
		default:
			if v.Audio != nil || v.File != nil {
				t.Errorf("%s: unexpected audio/file in %s", name, r.Raw)
			}
		}
	}
	for _, x := range events {
		r, ok := evByUID[x.uid]
		if !ok {
			t.Errorf("event %s uid %d: no record", x.name, x.uid)
			continue
		}
		if r.Topic != e.Prefix+".events" || r.Key != strconv.FormatInt(x.uid, 10) {
			t.Errorf("event %s: topic %s key %q", x.name, r.Topic, r.Key)
		}
		wantH := map[string]string{topics.HeaderScope: "event", topics.HeaderKind: "event", topics.HeaderEvent: x.name,
			topics.HeaderTo: strconv.FormatInt(x.uid, 10), topics.HeaderPID: pidStr}
		// The event id, recomputed from the value as a consumer could.
		ev := &rtm.Push{Scope: rtm.ScopeEvent, PID: r.Value.PID, UID: r.Value.UID, Time: r.Value.Time,
			Event: []byte(r.Value.Event), Endpoint: []byte(r.Value.Endpoint)}
		if r.Value.Data != nil {
			ev.Data, ev.HasData = []byte(*r.Value.Data), true
		}
		wantH[topics.HeaderEventID] = string(topics.AppendEventID(nil, ev))
		if len(r.Headers) != len(wantH) {
			t.Errorf("event %s: headers %v, want %v", x.name, r.Headers, wantH)
		}
		for k, v := range wantH {
			if r.Headers[k] != v {
				t.Errorf("event %s: header %s=%q, want %q", x.name, k, r.Headers[k], v)
			}
		}
		v := r.Value
		if v.Scope != "event" || v.Kind != "event" || v.Event != x.name || v.UID != x.uid || v.PID != integration.TestPID ||
			v.Endpoint != x.endpoint || v.Time <= 0 || v.ReceivedAt <= 0 {
			t.Errorf("event %s: value %s", x.name, r.Raw)
		}
		switch {
		case x.data == "" && (v.Data != nil || v.DataB64 != nil):
			t.Errorf("event %s: data present in %s, want absent", x.name, r.Raw)
		case x.data != "" && (v.Data == nil || *v.Data != x.data):
			t.Errorf("event %s: data in %s, want %q", x.name, r.Raw, x.data)
		}
	}
}
