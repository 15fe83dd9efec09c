package rtmsim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// TestFanOutPerConn: two connections covering the same messages both get
// each push; answered, overdue and unanswered are counted per connection,
// OnOutcome reports every push once, and LastOKSent tells when the last
// push a connection answered OK was sent.
func TestFanOutPerConn(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var mu sync.Mutex
	outcomes := map[uint64]int{}
	s := startServer(t, Config{PID: testPID, Secret: testSecret, AnswerTimeout: timeout, LateGrace: 5 * timeout,
		OnOutcome: func(o Outcome) {
			mu.Lock()
			outcomes[o.Conn]++
			mu.Unlock()
		}})
	ok := dial(t, s)
	ok.mustCall(&rtm.SetListenAll{P2P: true})
	silent := dial(t, s)
	silent.setAnswer(func(got, rtm.Reply) {}) // never answers
	silent.mustCall(&rtm.SetListenAll{P2P: true})
	late := dial(t, s)
	late.setAnswer(func(_ got, r rtm.Reply) { time.AfterFunc(timeout+50*time.Millisecond, func() { _ = r.OK() }) })
	late.mustCall(&rtm.SetListenIDs{UIDs: []int64{2}})
	notListening := dial(t, s)
	notListening.mustCall(&rtm.SetListenIDs{})

	before := time.Now()
	const n = 5
	for i := range n {
		if got, err := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MType: 30, MID: int64(i + 1), Msg: []byte("x")}); err != nil || got != 3 {
			t.Fatalf("Publish reached %d connections (%v), want 3", got, err)
		}
	}
	after := time.Now()
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Pending == 0 }, "every push settled")
	st := s.Stats()
	if st.Sent != 3*n || st.Answered != n || st.Overdue != n || st.Unanswered != n || st.NoListener != 0 {
		t.Errorf("stats %+v", st)
	}
	if len(st.ByConn) != 4 {
		t.Fatalf("ByConn %+v, want 4 connections", st.ByConn)
	}
	want := []ConnStats{
		{Conn: 1, Live: true, Listening: true, Sent: n, Answered: n},
		{Conn: 2, Live: true, Listening: true, Sent: n, Unanswered: n},
		{Conn: 3, Live: true, Listening: true, Sent: n, Overdue: n},
		{Conn: 4, Live: true, Listening: false},
	}
	for i, w := range want {
		g := st.ByConn[i]
		last := g.LastOKSent
		g.LastOKSent = time.Time{}
		if g != w {
			t.Errorf("conn %d: %+v, want %+v", i+1, g, w)
		}
		if (w.Answered+w.Overdue > 0) != !last.IsZero() || (!last.IsZero() && (last.Before(before) || last.After(after))) {
			t.Errorf("conn %d: LastOKSent %v, want within [%v, %v] when it answered", i+1, last, before, after)
		}
		if cs, found := s.ConnStats(w.Conn); !found || cs.Sent != w.Sent {
			t.Errorf("ConnStats(%d) = %+v, %v", w.Conn, cs, found)
		}
	}
	mu.Lock()
	if outcomes[1] != n || outcomes[2] != n || outcomes[3] != n || outcomes[4] != 0 {
		t.Errorf("OnOutcome per connection %v", outcomes)
	}
	mu.Unlock()
	if _, found := s.ConnStats(99); found {
		t.Error("ConnStats(99) found")
	}

	// A closed connection keeps its counts and shows as not live.
	if err := s.Drop(1); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, waitFor, func() bool { cs, _ := s.ConnStats(1); return !cs.Live }, "conn 1 closed")
	if cs, _ := s.ConnStats(1); cs.Sent != n || cs.Answered != n || cs.Listening {
		t.Errorf("closed conn 1: %+v", cs)
	}
	if line := st.perConn(); line != "1*:5/5/0/0 2*:5/0/0/5 3*:5/0/5/0 4:0/0/0/0" {
		t.Errorf("per_conn log %q", line)
	}
}

// TestWaitFirstListenerOnly: a load run with WaitListener waits for the
// first connection that listens to anything, then never again: messages no
// connection covers (here the only listener has a uid list the load never
// uses) are counted as NoListener and the run ends.
func TestWaitFirstListenerOnly(t *testing.T) {
	s := startServer(t, Config{})
	type result struct {
		res LoadResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.Generate(t.Context(), LoadConfig{Total: 50, Keys: 5, WaitListener: true})
		done <- result{res, err}
	}()
	// A connection listening to nothing does not start the run.
	idle := dial(t, s)
	idle.mustCall(&rtm.SetListenIDs{})
	if err := s.WaitConns(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("the run ended before any connection listened: %+v, %v", r.res, r.err)
	default:
	}
	if st := s.Stats(); st.NoListener != 0 || st.Sent != 0 {
		t.Fatalf("counted before the first listener: %+v", st)
	}
	ids := dial(t, s)
	ids.mustCall(&rtm.SetListenIDs{UIDs: []int64{1}}) // no load message is from or to uid 1
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.Messages != 50 || r.res.NoListener != 50 || r.res.Pushes != 0 {
		t.Errorf("result %+v", r.res)
	}
	if st := s.Stats(); st.NoListener != 50 || st.NotCovered != 50 {
		t.Errorf("stats no_listener %d not_covered %d, want 50", st.NoListener, st.NotCovered)
	}

	// Without a listener the wait ends with the context.
	s2 := startServer(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s2.Generate(ctx, LoadConfig{Total: 1, WaitListener: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate without a listener, cancelled: %v", err)
	}
}

// TestGapCountedNotStalled: with WaitListener, messages generated while the
// only listener is gone are NoListener and the run carries on when a new
// connection listens.
func TestGapCountedNotStalled(t *testing.T) {
	s := startServer(t, Config{})
	a := dial(t, s)
	a.mustCall(&rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true})
	done := make(chan LoadResult, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		res, _ := s.Generate(ctx, LoadConfig{Rate: 2000, Duration: time.Hour, Keys: 5, WaitListener: true})
		done <- res
	}()
	a.waitPushes(20)
	_ = a.conn.Close()
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().NoListener >= 20 }, "no_listener counted while nobody listens")
	b := dial(t, s)
	b.mustCall(&rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true})
	b.waitPushes(20)
	cancel()
	res := <-done
	if res.NoListener < 20 || res.Messages < res.NoListener+40 {
		t.Errorf("result %+v", res)
	}
}

// TestSendMulti: sendmsgs pushes one pushmsg per uid in tos to the
// covering connections; broadcastmsg one pushmsg with to 0; both answer
// {mtime}; a missing or mistyped key is refused.
func TestSendMulti(t *testing.T) {
	s := startServer(t, Config{})
	all := dial(t, s)
	all.mustCall(&rtm.SetListenAll{P2P: true})
	uid8 := dial(t, s)
	uid8.mustCall(&rtm.SetListenIDs{UIDs: []int64{8}})
	sdk := dial(t, s)
	call := func(method string, m map[string]any) ([]byte, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return sdk.conn.Call(ctx, method, rawPayload(t, sdk.signer, method, m))
	}
	ans, err := call("sendmsgs", map[string]any{"mtype": 30, "from": 5, "tos": []int64{7, 8}, "mid": 77, "msg": "hi", "attrs": "a"})
	var sa rtm.SendMsgAnswer
	if err != nil || sa.Decode(ans) != nil || sa.MTime == 0 {
		t.Fatalf("sendmsgs: %x, %v", ans, err)
	}
	if _, err := call("broadcastmsg", map[string]any{"mtype": 51, "from": 6, "mid": 78, "msg": []byte{0xff}, "attrs": ""}); err != nil {
		t.Fatalf("broadcastmsg: %v", err)
	}
	gs := all.waitPushes(3)
	if gs[0].to != 7 || gs[1].to != 8 || gs[0].mid != 77 || gs[1].from != 5 || string(gs[1].msg) != "hi" || gs[1].attrs != "a" {
		t.Errorf("sendmsgs pushes %+v", gs[:2])
	}
	if g := gs[2]; g.scope != rtm.ScopeP2P || g.from != 6 || g.to != broadcastTo || g.mid != 78 || !g.msgBinary || !bytes.Equal(g.msg, []byte{0xff}) {
		t.Errorf("broadcast push %+v", g)
	}
	if gs := uid8.waitPushes(1); gs[0].to != 8 {
		t.Errorf("uid-8 listener got %+v", gs)
	}
	for _, tc := range []struct {
		method string
		m      map[string]any
		code   int
	}{
		{"sendmsgs", map[string]any{"mtype": 30, "from": 5, "mid": 1, "msg": "x"}, codeKeyNotFound},
		{"sendmsgs", map[string]any{"mtype": 30, "from": 5, "tos": "7", "mid": 1, "msg": "x"}, codeTypeConv},
		{"broadcastmsg", map[string]any{"mtype": 30, "mid": 1, "msg": "x"}, codeKeyNotFound},
		{"broadcastmsg", map[string]any{"mtype": 30, "from": 5, "mid": 1, "msg": 3}, codeTypeConv},
	} {
		if _, err := call(tc.method, tc.m); codeOf(err) != tc.code {
			t.Errorf("%s %v: %v, want code %d", tc.method, tc.m, err, tc.code)
		}
	}
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Answered == 4 }, "answers")
	if st := s.Stats(); st.Sends != 2 || st.Sent != 4 {
		t.Errorf("stats %+v", st)
	}
	if len(sdk.got()) != 0 {
		t.Errorf("the sender got pushes: %+v", sdk.got())
	}
}

// TestParseServerKeyPEM reads keys as openssl writes them (testdata, made
// with `openssl ecparam -name <curve> -genkey [-noout]` and `openssl
// genpkey -algorithm EC -pkeyopt ec_paramgen_curve:<curve>`): the public
// half equals `openssl pkey -pubout`, and a client encrypts against it.
func TestParseServerKeyPEM(t *testing.T) {
	files, err := filepath.Glob("testdata/*.pem")
	if err != nil || len(files) < 5 {
		t.Fatalf("testdata keys: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			key, err := ParseServerKeyPEM(data)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := os.ReadFile(strings.TrimSuffix(f, ".pem") + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key.PublicPEM(), pub) {
				t.Errorf("public key\n%s\nopenssl says\n%s", key.PublicPEM(), pub)
			}
			if strings.Contains(key.String(), "PRIVATE KEY") {
				t.Errorf("String shows key material: %s", key)
			}
			if key.Curve() == "secp224r1" {
				return // the SDKs' zero-padded 224-bit keys are refused (spec §10.6)
			}
			s := startServer(t, Config{PID: testPID, Secret: testSecret, ServerKey: key})
			cpub, err := rtm.ParseServerKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, s, rtm.WithEncryption(cpub, 128))
			c.mustCall(&rtm.SetListenAll{Ev: true})
			s.PublishEvent("login", 5, "[::1]:80", "")
			c.waitPushes(1)
		})
	}
	pubOnly, _ := os.ReadFile("testdata/genpkey_p256.pub")
	k256, _ := os.ReadFile("testdata/ecparam_k256.pem")
	p256, _ := os.ReadFile("testdata/ecparam_p256.pem")
	// An unknown block type.
	mixed := strings.Replace(string(p256), "EC PRIVATE KEY", "X", 2)
	for name, data := range map[string][]byte{
		"public key only": pubOnly,
		"garbage":         []byte("not a pem"),
		"wrong block":     []byte(mixed),
		"truncated":       k256[:len(k256)/2],
		"encrypted":       []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
	} {
		if _, err := ParseServerKeyPEM(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix(" p2p=1, group=2.5,chat=1 ")
	if err != nil || m != (Mix{P2P: 1, Group: 2.5, Chat: 1}) || m.String() != "p2p=1,group=2.5,chat=1" {
		t.Errorf("ParseMix: %+v %v (%s)", m, err, m)
	}
	if m, err := ParseMix(""); err != nil || m != (Mix{}) {
		t.Errorf("ParseMix empty: %+v %v", m, err)
	}
	for _, bad := range []string{"p2p", "p2p=-1", "p2p=x", "mars=1", "p2p=1,p2p=2", "p2p=NaN"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q): no error", bad)
		}
	}
	// The parsed mix drives the generator: only group messages.
	s := startServer(t, Config{})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true})
	m, _ = ParseMix("group=1,cmd=1")
	res, err := s.Generate(t.Context(), LoadConfig{Total: 30, Mix: m, WaitListener: true})
	if err != nil || res.ByScope[rtm.ScopeGroup] != 30 || res.ByKind[rtm.KindCmd] != 30 {
		t.Errorf("generate with %s: %+v %v", m, res, err)
	}
}
