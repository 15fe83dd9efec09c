package topics

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

var allScopes = []rtm.Scope{rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom}

var allKinds = []rtm.Kind{rtm.KindChat, rtm.KindAudio, rtm.KindCmd, rtm.KindFile, rtm.KindMessage}

func msgPush(s rtm.Scope, k rtm.Kind) *rtm.Push {
	return &rtm.Push{Scope: s, Kind: k, From: 10001, To: 10002, MType: 30, MID: 7}
}

func eventPush() *rtm.Push {
	return &rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 11000001, UID: 4242, Event: []byte("login"),
		Time: 1717000100, Endpoint: []byte("203.0.113.7:51234"), Data: []byte(`{"reason":"timeout"}`), HasData: true}
}

func mustInit(t *testing.T, r *Router) {
	t.Helper()
	if err := r.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

func TestTopicEveryScopeKind(t *testing.T) {
	want := map[string]bool{}
	for _, s := range allScopes {
		for _, k := range allKinds {
			want[fmt.Sprintf("%s.%s", s, k)] = true
		}
	}
	if len(want) != 15 {
		t.Fatalf("expected 15 scope×kind pairs, got %d", len(want))
	}
	for _, tc := range []struct {
		name   string
		router func() *Router
		prefix string
	}{
		{"zero value, no Init", func() *Router { return &Router{} }, "rtm"},
		{"zero value, Init", func() *Router { r := &Router{}; mustInit(t, r); return r }, "rtm"},
		{"prefix", func() *Router { r := &Router{Prefix: "prod-eu_1.chat"}; mustInit(t, r); return r }, "prod-eu_1.chat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.router()
			for _, s := range allScopes {
				for _, k := range allKinds {
					got := r.Topic(msgPush(s, k))
					exp := tc.prefix + "." + s.String() + "." + k.String()
					if got != exp {
						t.Errorf("Topic(%s %s) = %q, want %q", s, k, got, exp)
					}
				}
			}
			if got, exp := r.Topic(eventPush()), tc.prefix+".events"; got != exp {
				t.Errorf("Topic(event) = %q, want %q", got, exp)
			}
			if got, exp := r.DeadLetterTopic(), tc.prefix+".deadletter"; got != exp {
				t.Errorf("DeadLetterTopic = %q, want %q", got, exp)
			}
			if got, exp := r.ControlTopic(), tc.prefix+".control"; got != exp {
				t.Errorf("ControlTopic = %q, want %q", got, exp)
			}
			if got, exp := r.ControlResultsTopic(), tc.prefix+".control.results"; got != exp {
				t.Errorf("ControlResultsTopic = %q, want %q", got, exp)
			}
			all := r.Topics()
			if len(all) != 16 {
				t.Fatalf("Topics() has %d names, want 16: %q", len(all), all)
			}
			for _, name := range all[:15] {
				rest, ok := strings.CutPrefix(name, tc.prefix+".")
				if !ok || !want[rest] {
					t.Errorf("Topics() holds unexpected %q", name)
				}
			}
			if all[15] != tc.prefix+".events" {
				t.Errorf("Topics()[15] = %q, want the events topic", all[15])
			}
			if len(slices.Compact(slices.Sorted(slices.Values(all)))) != 16 {
				t.Errorf("Topics() has duplicates: %q", all)
			}
			all[0] = "mutated"
			if r.Topics()[0] == "mutated" {
				t.Error("Topics() returned the Router's own slice")
			}
		})
	}
}

func TestTopicInvalidPushGoesToDeadLetter(t *testing.T) {
	r := &Router{Prefix: "x"}
	mustInit(t, r)
	for _, p := range []*rtm.Push{
		{},                             // no scope
		{Scope: 9, Kind: rtm.KindChat}, // unknown scope
		{Scope: rtm.ScopeP2P},          // message without kind
		{Scope: rtm.ScopeGroup, Kind: rtm.KindEvent},
		{Scope: rtm.ScopeRoom, Kind: 42},
	} {
		if got := r.Topic(p); got != "x.deadletter" {
			t.Errorf("Topic(scope %d kind %d) = %q, want x.deadletter", p.Scope, p.Kind, got)
		}
	}
	var zero Router
	if got := zero.Topic(&rtm.Push{}); got != "rtm.deadletter" {
		t.Errorf("zero Router: Topic(invalid) = %q, want rtm.deadletter", got)
	}
	// An event routes by scope whatever its kind says.
	if got := r.Topic(&rtm.Push{Scope: rtm.ScopeEvent}); got != "x.events" {
		t.Errorf("Topic(event without kind) = %q, want x.events", got)
	}
}

func TestOverrides(t *testing.T) {
	r := &Router{
		Prefix: "pre",
		Overrides: map[string]string{
			"p2p.chat":        "chat-all",
			"group.chat":      "chat-all", // several data topics may share a name
			"room.file":       "files.room",
			"events":          "presence",
			"deadletter":      "dlq",
			"control":         "ops.ctl",
			"control.results": "ops.ctl-results",
		},
	}
	mustInit(t, r)
	cases := []struct {
		p    *rtm.Push
		want string
	}{
		{msgPush(rtm.ScopeP2P, rtm.KindChat), "chat-all"},
		{msgPush(rtm.ScopeGroup, rtm.KindChat), "chat-all"},
		{msgPush(rtm.ScopeRoom, rtm.KindChat), "pre.room.chat"},
		{msgPush(rtm.ScopeRoom, rtm.KindFile), "files.room"},
		{msgPush(rtm.ScopeP2P, rtm.KindFile), "pre.p2p.file"},
		{eventPush(), "presence"},
		{&rtm.Push{}, "dlq"},
	}
	for _, c := range cases {
		if got := r.Topic(c.p); got != c.want {
			t.Errorf("Topic(%v) = %q, want %q", c.p, got, c.want)
		}
	}
	if got := r.ControlTopic(); got != "ops.ctl" {
		t.Errorf("ControlTopic = %q", got)
	}
	if got := r.ControlResultsTopic(); got != "ops.ctl-results" {
		t.Errorf("ControlResultsTopic = %q", got)
	}
	all := r.Topics()
	if len(all) != 15 { // two data topics merged into one
		t.Fatalf("Topics() = %d names, want 15: %q", len(all), all)
	}
	if all[0] != "chat-all" || !slices.Contains(all, "presence") || !slices.Contains(all, "files.room") {
		t.Errorf("Topics() = %q", all)
	}
	if slices.Contains(all, "dlq") || slices.Contains(all, "ops.ctl") {
		t.Errorf("Topics() includes non-data topics: %q", all)
	}
	// Every one of the 19 override keys is accepted.
	keys := map[string]string{"events": "e", "deadletter": "d", "control": "c", "control.results": "cr"}
	for _, s := range allScopes {
		for _, k := range allKinds {
			keys[s.String()+"."+k.String()] = "t-" + s.String() + "-" + k.String()
		}
	}
	r2 := &Router{Overrides: keys}
	mustInit(t, r2)
	for _, s := range allScopes {
		for _, k := range allKinds {
			if got, want := r2.Topic(msgPush(s, k)), "t-"+s.String()+"-"+k.String(); got != want {
				t.Errorf("Topic(%s %s) = %q, want %q", s, k, got, want)
			}
		}
	}
}

func TestInitErrors(t *testing.T) {
	long := strings.Repeat("a", 250)
	cases := []struct {
		name string
		r    Router
		want []string // substrings of the error
	}{
		{"prefix with space", Router{Prefix: "my prefix"}, []string{`prefix "my prefix"`, `' '`, "[a-zA-Z0-9._-]"}},
		{"prefix with slash", Router{Prefix: "a/b"}, []string{`prefix "a/b"`, `'/'`}},
		{"prefix unicode", Router{Prefix: "prodü"}, []string{`prefix "prodü"`}},
		{"prefix too long", Router{Prefix: strings.Repeat("p", 240)}, []string{"characters", "249"}},
		{"unknown override key", Router{Overrides: map[string]string{"p2p.chta": "x"}}, []string{`override "p2p.chta"`, "unknown key"}},
		{"override scope event", Router{Overrides: map[string]string{"event.chat": "x"}}, []string{`override "event.chat"`, "unknown key"}},
		{"override bare scope", Router{Overrides: map[string]string{"p2p": "x"}}, []string{`override "p2p"`, "unknown key"}},
		{"override empty name", Router{Overrides: map[string]string{"p2p.chat": ""}}, []string{`override "p2p.chat"`, "empty"}},
		{"override dot", Router{Overrides: map[string]string{"events": "."}}, []string{`override "events"`, `"."`}},
		{"override dotdot", Router{Overrides: map[string]string{"events": ".."}}, []string{`override "events"`, `".."`}},
		{"override too long", Router{Overrides: map[string]string{"group.cmd": long}}, []string{`override "group.cmd"`, "250 characters"}},
		{"override bad char", Router{Overrides: map[string]string{"room.audio": "rooms:audio"}}, []string{`override "room.audio"`, `':'`, "at 5"}},
		{"unknown key strategy", Router{Key: 7}, []string{"key strategy 7"}},
		{"data on deadletter", Router{Overrides: map[string]string{"p2p.cmd": "rtm.deadletter"}}, []string{`"rtm.deadletter"`, "deadletter", "p2p.cmd"}},
		{"data on control", Router{Overrides: map[string]string{"events": "rtm.control"}}, []string{`"rtm.control"`, "events", "control"}},
		{"control twice", Router{Overrides: map[string]string{"control.results": "rtm.control"}}, []string{`"rtm.control"`, "control.results"}},
		{"dot underscore collision", Router{Overrides: map[string]string{"p2p.chat": "rtm_p2p_chat", "p2p.cmd": "rtm.p2p.chat"}}, []string{"collide", "'.' and '_'"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.r.Init()
			if err == nil {
				t.Fatalf("Init succeeded, want an error containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "topics: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestInitAcceptsEdgeNames(t *testing.T) {
	r := &Router{
		Prefix:    strings.Repeat("p", 249-len(".control.results")),
		Overrides: map[string]string{"p2p.chat": strings.Repeat("c", 249), "events": "A-Z_a-z.0-9"},
	}
	mustInit(t, r)
	if got := r.ControlResultsTopic(); len(got) != 249 {
		t.Errorf("ControlResultsTopic is %d chars, want 249", len(got))
	}
}

func TestUninitialisedNonDefaultPanics(t *testing.T) {
	for _, r := range []*Router{{Prefix: "x"}, {Overrides: map[string]string{"events": "e"}}} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "before Init") {
					t.Errorf("Router %+v used before Init: recovered %v, want a panic naming Init", *r, v)
				}
			}()
			r.Topic(eventPush())
		}()
	}
	// The key strategy alone needs no Init.
	r := &Router{Key: KeyFrom}
	if got := string(r.AppendKey(nil, msgPush(rtm.ScopeP2P, rtm.KindChat))); got != "10001" {
		t.Errorf("uninitialised KeyFrom Router: key %q, want 10001", got)
	}
}

func TestRouterCopyAfterInit(t *testing.T) {
	r := Router{Prefix: "copy"}
	mustInit(t, &r)
	c := r
	if got := c.Topic(eventPush()); got != "copy.events" {
		t.Errorf("copy routes to %q", got)
	}
}

func TestAppendKey(t *testing.T) {
	p2p := &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 9007199254740993, To: 10002}
	p2pRev := &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 10002, To: 9007199254740993}
	group := &rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindFile, From: 10003, To: 3001}
	room := &rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindMessage, From: 10005, To: 5001}
	neg := &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindCmd, From: -5, To: -9}
	ev := &rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, UID: 4242, PID: 1, From: 1, To: 2}
	bad := &rtm.Push{From: 1, To: 2}
	cases := []struct {
		key  KeyStrategy
		p    *rtm.Push
		want string
	}{
		{KeyTo, p2p, "10002"},
		{KeyTo, p2pRev, "9007199254740993"},
		{KeyTo, group, "3001"},
		{KeyTo, room, "5001"},
		{KeyTo, ev, "4242"},
		{KeyTo, bad, ""},
		{KeyConversation, p2p, "10002:9007199254740993"},
		{KeyConversation, p2pRev, "10002:9007199254740993"},
		{KeyConversation, neg, "-9:-5"},
		{KeyConversation, group, "3001"},
		{KeyConversation, room, "5001"},
		{KeyConversation, ev, "4242"},
		{KeyConversation, bad, ""},
		{KeyFrom, p2p, "9007199254740993"},
		{KeyFrom, group, "10003"},
		{KeyFrom, room, "10005"},
		{KeyFrom, ev, "4242"},
		{KeyFrom, bad, ""},
		{KeyNone, p2p, ""},
		{KeyNone, group, ""},
		{KeyNone, ev, ""},
	}
	for _, c := range cases {
		r := &Router{Key: c.key}
		mustInit(t, r)
		got := r.AppendKey(nil, c.p)
		if string(got) != c.want {
			t.Errorf("%s: AppendKey(%v) = %q, want %q", c.key, c.p, got, c.want)
		}
		if c.want == "" && got != nil {
			t.Errorf("%s: AppendKey(nil, %v) = %#v, want nil (no key)", c.key, c.p, got)
		}
		// Appends after existing content.
		if got := r.AppendKey([]byte("k="), c.p); string(got) != "k="+c.want {
			t.Errorf("%s: AppendKey(\"k=\", %v) = %q", c.key, c.p, got)
		}
	}
}

func TestKeyStrategyParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want KeyStrategy
	}{
		{"to", KeyTo}, {"", KeyTo}, {"conversation", KeyConversation}, {"from", KeyFrom},
		{"none", KeyNone}, {" From ", KeyFrom}, {"NONE", KeyNone},
	} {
		got, err := ParseKeyStrategy(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseKeyStrategy(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		var k KeyStrategy
		if err := k.UnmarshalText([]byte(c.in)); err != nil || k != c.want {
			t.Errorf("UnmarshalText(%q) = %v, %v", c.in, k, err)
		}
	}
	for _, in := range []string{"target", "uid", "to,from"} {
		if _, err := ParseKeyStrategy(in); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("ParseKeyStrategy(%q) error = %v, want one naming the input", in, err)
		}
		var k KeyStrategy = KeyFrom
		if err := k.UnmarshalText([]byte(in)); err == nil || k != KeyFrom {
			t.Errorf("UnmarshalText(%q) = %v, %v; want error and no change", in, k, err)
		}
	}
	for _, k := range []KeyStrategy{KeyTo, KeyConversation, KeyFrom, KeyNone} {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKeyStrategy(string(b))
		if err != nil || back != k {
			t.Errorf("round trip of %v via %q gave %v, %v", k, b, back, err)
		}
	}
	if _, err := KeyStrategy(9).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown strategy succeeded")
	}
	if got := KeyStrategy(9).String(); got != "KeyStrategy(9)" {
		t.Errorf("String = %q", got)
	}
}

func headerMap(t *testing.T, hs []Header) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, h := range hs {
		if _, dup := m[h.Key]; dup {
			t.Errorf("header %q appears twice", h.Key)
		}
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestAppendHeaders(t *testing.T) {
	big := &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 9007199254740993, To: 4611686018427387904, MType: 30, MID: 9223372036854775807}
	cases := []struct {
		name string
		p    *rtm.Push
		pid  int64
		want map[string]string
	}{
		{"p2p chat big ids", big, 11000001, map[string]string{
			"rtm-scope": "p2p", "rtm-kind": "chat", "rtm-mtype": "30", "rtm-from": "9007199254740993",
			"rtm-to": "4611686018427387904", "rtm-mid": "9223372036854775807", "rtm-pid": "11000001"}},
		{"group file", &rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindFile, From: 10003, To: 3001, MType: 40, MID: 5}, 7, map[string]string{
			"rtm-scope": "group", "rtm-kind": "file", "rtm-mtype": "40", "rtm-from": "10003", "rtm-to": "3001", "rtm-mid": "5", "rtm-pid": "7"}},
		{"room custom", &rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindMessage, From: 1, To: 5001, MType: 127, MID: 6}, 7, map[string]string{
			"rtm-scope": "room", "rtm-kind": "message", "rtm-mtype": "127", "rtm-from": "1", "rtm-to": "5001", "rtm-mid": "6", "rtm-pid": "7"}},
		{"event uses its own pid", &rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 11000001, UID: 10001, Event: []byte("logout")}, 99, map[string]string{
			"rtm-scope": "event", "rtm-kind": "event", "rtm-event": "logout", "rtm-to": "10001", "rtm-pid": "11000001",
			"rtm-event-id": "d5d3e5509bd20599e99ec097b6eb9810"}},
		{"undecodable", &rtm.Push{Err: fmt.Errorf("boom")}, 7, map[string]string{
			"rtm-scope": "unknown", "rtm-kind": "unknown", "rtm-pid": "7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pre := []Header{{Key: "keep", Value: []byte("me")}}
			hs, buf := AppendHeaders(pre, []byte("XY"), c.p, c.pid)
			if hs[0].Key != "keep" || string(hs[0].Value) != "me" {
				t.Errorf("existing header changed: %+v", hs[0])
			}
			if string(buf[:2]) != "XY" {
				t.Errorf("existing buf content changed: %q", buf[:2])
			}
			got := headerMap(t, hs[1:])
			if !maps.Equal(got, c.want) {
				t.Errorf("headers = %v\nwant      %v", got, c.want)
			}
			// Values are capacity-limited: appending to one never touches the next.
			for i := 1; i < len(hs); i++ {
				if cap(hs[i].Value) != len(hs[i].Value) {
					t.Errorf("header %q: cap %d > len %d", hs[i].Key, cap(hs[i].Value), len(hs[i].Value))
				}
			}
			buf = append(buf, "more bytes that must not leak into headers"...)
			if again := headerMap(t, hs[1:]); !maps.Equal(again, c.want) {
				t.Errorf("appending to buf changed headers: %v", again)
			}
		})
	}
}

func TestAppendHeadersOneBuffer(t *testing.T) {
	p := &rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindCmd, From: 10003, To: 3001, MType: 32, MID: 7201234567890300003}
	// Starting from a buffer too small for every value, the values must all
	// end up in the final buffer, not scattered over old backing arrays.
	hs, buf := AppendHeaders(nil, make([]byte, 0, 1), p, 11000001)
	for _, h := range hs {
		if len(h.Value) == 0 {
			t.Fatalf("header %q is empty", h.Key)
		}
		offsetIn(t, buf, h.Value)
	}
}

// offsetIn finds where v starts inside buf, comparing addresses.
func offsetIn(t *testing.T, buf, v []byte) int {
	t.Helper()
	for i := range buf {
		if &buf[i] == &v[0] {
			return i
		}
	}
	t.Errorf("value %q is not backed by the returned buffer", v)
	return -1
}

func TestNoAllocs(t *testing.T) {
	inited := &Router{Prefix: "pre", Key: KeyConversation}
	mustInit(t, inited)
	routers := map[string]*Router{"zero": {}, "initialised": inited}
	pushes := []*rtm.Push{eventPush(), {}}
	for _, s := range allScopes {
		for _, k := range allKinds {
			pushes = append(pushes, msgPush(s, k))
		}
	}
	key := make([]byte, 0, 64)
	hs := make([]Header, 0, 8)
	buf := make([]byte, 0, 256)
	for name, r := range routers {
		for _, p := range pushes {
			var sink string
			if n := testing.AllocsPerRun(100, func() { sink = r.Topic(p) }); n != 0 {
				t.Errorf("%s: Topic(%v) allocates %.1f times", name, p, n)
			}
			if sink == "" {
				t.Errorf("%s: empty topic", name)
			}
			if n := testing.AllocsPerRun(100, func() { key = r.AppendKey(key[:0], p) }); n != 0 {
				t.Errorf("%s: AppendKey(%v) allocates %.1f times", name, p, n)
			}
			if n := testing.AllocsPerRun(100, func() { hs, buf = AppendHeaders(hs[:0], buf[:0], p, 11000001) }); n != 0 {
				t.Errorf("AppendHeaders(%v) allocates %.1f times", p, n)
			}
		}
	}
}

func BenchmarkRoute(b *testing.B) {
	r := &Router{Key: KeyConversation}
	if err := r.Init(); err != nil {
		b.Fatal(err)
	}
	p := msgPush(rtm.ScopeP2P, rtm.KindChat)
	key := make([]byte, 0, 64)
	hs := make([]Header, 0, 8)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Topic(p)
		key = r.AppendKey(key[:0], p)
		hs, buf = AppendHeaders(hs[:0], buf[:0], p, 11000001)
	}
}

// The golden event ids below were computed independently of this package
// (Python's hashlib over the layout AppendEventID documents), so that a
// consumer in another language can check its own implementation against
// them; docs/records.md quotes the first.
func TestAppendEventIDGolden(t *testing.T) {
	base := func() *rtm.Push {
		return &rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 11000001, UID: 10001, Time: 1717000100,
			Event: []byte("login"), Endpoint: []byte("203.0.113.7:51234")}
	}
	withData := func(ev, data string) *rtm.Push {
		p := base()
		p.Event, p.Data, p.HasData = []byte(ev), []byte(data), true
		return p
	}
	cases := []struct {
		name string
		p    *rtm.Push
		want string
	}{
		{"logout with data", withData("logout", `{"reason":"timeout"}`), "dd1a52c823d29f97ca69eebfa9b9a124"},
		{"login without data", base(), "ea4eb9723f8f06db94e42fb8ccb88194"},
		{"login with empty data", withData("login", ""), "db3c3281e5c45d8ec46f180235e94172"},
	}
	for _, c := range cases {
		got := string(AppendEventID([]byte("x"), c.p))
		if got != "x"+c.want {
			t.Errorf("%s: AppendEventID = %q, want %q", c.name, got, "x"+c.want)
		}
		if len(got)-1 != EventIDLen {
			t.Errorf("%s: id length %d, want %d", c.name, len(got)-1, EventIDLen)
		}
	}
}

func TestAppendEventIDTellsFieldsApart(t *testing.T) {
	base := rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 11000001, UID: 10001, Time: 1717000100,
		Event: []byte("login"), Endpoint: []byte("203.0.113.7:51234"), Data: []byte("d"), HasData: true}
	id := func(p rtm.Push) string { return string(AppendEventID(nil, &p)) }
	want := id(base)

	// A redelivery carries the same fields, read into different buffers, at
	// another time and seq: the same id.
	again := base
	again.Event, again.Endpoint, again.Data = []byte("login"), []byte("203.0.113.7:51234"), []byte("d")
	again.Seq = 99
	if got := id(again); got != want {
		t.Errorf("redelivery: id %s, want %s", got, want)
	}

	changes := map[string]func(p *rtm.Push){
		"pid":                   func(p *rtm.Push) { p.PID++ },
		"uid":                   func(p *rtm.Push) { p.UID++ },
		"time":                  func(p *rtm.Push) { p.Time++ },
		"event":                 func(p *rtm.Push) { p.Event = []byte("logout") },
		"endpoint port":         func(p *rtm.Push) { p.Endpoint = []byte("203.0.113.7:51235") },
		"data":                  func(p *rtm.Push) { p.Data = []byte("e") },
		"data absent":           func(p *rtm.Push) { p.Data, p.HasData = nil, false },
		"data empty":            func(p *rtm.Push) { p.Data = []byte{} },
		"event/endpoint split":  func(p *rtm.Push) { p.Event, p.Endpoint = []byte("login2"), []byte("03.0.113.7:51234") },
		"endpoint/data split":   func(p *rtm.Push) { p.Endpoint, p.Data = []byte("203.0.113.7:5123"), []byte("4d") },
		"negative uid":          func(p *rtm.Push) { p.UID = -10001 },
		"absent vs empty split": func(p *rtm.Push) { p.Endpoint, p.Data, p.HasData = []byte("203.0.113.7:51234\x00"), nil, false },
	}
	seen := map[string]string{want: "base"}
	for name, change := range changes {
		p := base
		change(&p)
		got := id(p)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: id %s equals that of %s", name, got, prev)
		}
		seen[got] = name
	}
}

func TestAppendEventIDOnlyForEvents(t *testing.T) {
	for _, p := range []*rtm.Push{msgPush(rtm.ScopeP2P, rtm.KindChat), {}} {
		if got := AppendEventID([]byte("x"), p); string(got) != "x" {
			t.Errorf("AppendEventID(%v) = %q, want nothing appended", p, got)
		}
		hs, _ := AppendHeaders(nil, nil, p, 1)
		if _, ok := headerMap(t, hs)[HeaderEventID]; ok {
			t.Errorf("%v: has an %s header", p, HeaderEventID)
		}
	}
}

// The bridge keeps at most 8 headers inline in a record; more would cost an
// allocation per record. maxHeaders must also bound what AppendHeaders
// writes, since it sizes AppendHeaders' own span array.
func TestHeaderCountFitsInline(t *testing.T) {
	const bridgeInline = 8
	if maxHeaders > bridgeInline {
		t.Fatalf("maxHeaders = %d > %d", maxHeaders, bridgeInline)
	}
	pushes := []*rtm.Push{eventPush(), {}, {Scope: rtm.ScopeEvent, HasData: true, Data: []byte("x")}}
	for _, s := range allScopes {
		for _, k := range allKinds {
			pushes = append(pushes, msgPush(s, k))
		}
	}
	for _, p := range pushes {
		hs, _ := AppendHeaders(nil, nil, p, 1)
		if len(hs) > maxHeaders {
			t.Errorf("%v: %d headers > maxHeaders %d", p, len(hs), maxHeaders)
		}
	}
}
