package rtmsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

const (
	testPID    = 11000001
	testSecret = rtm.Secret("s3cr:et key")
	// waitFor bounds every wait on a condition; generous for a loaded machine.
	waitFor = 10 * time.Second
)

// testServer is a simulator with the signer its test clients share: two
// rtm.Signers of one project issue equal salts within the same millisecond,
// which the simulator rightly rejects as a replay (200006).
type testServer struct {
	*Server
	signer *rtm.Signer
}

// startServer starts a simulator on a loopback port; it is closed when the
// test ends.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.PID == 0 {
		cfg.PID = testPID
		cfg.Secret = testSecret
	}
	s := New(cfg)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &testServer{s, rtm.NewSigner(testPID, testSecret)}
}

// got is one push a test client received, copied out of the reused Push.
type got struct {
	scope     rtm.Scope
	kind      rtm.Kind
	from, to  int64
	mtype     int64
	mid       int64
	msg       []byte
	msgBinary bool
	attrs     string
	event     string
	uid       int64
	data      string
	err       error
}

// client is a raw test client: an rtm.Conn plus a QuestHandler that records
// every push and answers it as answer says (OK at once by default).
type client struct {
	t      *testing.T
	conn   *rtm.Conn
	signer *rtm.Signer

	mu     sync.Mutex
	pushes []got
	pings  int
	wake   chan struct{}
	answer func(g got, r rtm.Reply) // nil: r.OK() at once
}

func dial(t *testing.T, s *testServer, opts ...rtm.ConnOption) *client {
	t.Helper()
	c := &client{t: t, signer: s.signer, wake: make(chan struct{}, 1)}
	conn, err := rtm.Dial(t.Context(), s.Addr(), c, append([]rtm.ConnOption{rtm.WithKeepalive(0, 0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.conn = conn
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *client) setAnswer(fn func(g got, r rtm.Reply)) {
	c.mu.Lock()
	c.answer = fn
	c.mu.Unlock()
}

func (c *client) HandleQuest(_ context.Context, f *rtm.Frame, raw []byte, r rtm.Reply) {
	if rtm.IsGatewayPing(f) {
		c.mu.Lock()
		c.pings++
		c.mu.Unlock()
		_ = r.OK()
		return
	}
	var p rtm.Push
	err := rtm.DecodePush(f, raw, &p)
	g := got{scope: p.Scope, kind: p.Kind, from: p.From, to: p.To, mtype: p.MType, mid: p.MID,
		msg: bytes.Clone(p.Msg), msgBinary: p.MsgBinary, attrs: string(p.Attrs), event: string(p.Event),
		uid: p.UID, data: string(p.Data), err: err}
	c.mu.Lock()
	c.pushes = append(c.pushes, g)
	answer := c.answer
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	switch {
	case err != nil:
		_ = r.Error(rtm.CodeDecoding, err.Error())
	case answer != nil:
		answer(g, r)
	default:
		_ = r.OK()
	}
}

func (c *client) got() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pushes)
}

// waitPushes waits until the client has received n pushes.
func (c *client) waitPushes(n int) []got {
	c.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if g := c.got(); len(g) >= n {
			return g
		}
		select {
		case <-c.wake:
		case <-deadline.C:
			c.t.Fatalf("timed out waiting for %d pushes, have %d", n, len(c.got()))
		}
	}
}

// call signs q and sends it.
func (c *client) call(q rtm.ClientQuest) error {
	return c.callSigned(q.Method(), q.AppendPayload(nil, c.signer.Sign(q.Method(), time.Now())))
}

func (c *client) callSigned(method string, payload []byte) error {
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	_, err := c.conn.Call(ctx, method, payload)
	return err
}

func (c *client) mustCall(q rtm.ClientQuest) {
	c.t.Helper()
	if err := c.call(q); err != nil {
		c.t.Fatalf("%s: %v", q.Method(), err)
	}
}

func codeOf(err error) int {
	var e *rtm.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// rawPayload encodes a signed quest payload from a map (for shapes the rtm
// encoders do not produce), signing it for method.
func rawPayload(t *testing.T, signer *rtm.Signer, method string, m map[string]any) []byte {
	t.Helper()
	sig := signer.Sign(method, time.Now())
	m["pid"], m["salt"], m["ts"], m["sign"] = sig.PID, sig.Salt, sig.TS, sig.Sign
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestListenSemantics(t *testing.T) {
	type step struct {
		method string
		q      rtm.ClientQuest // or raw
		raw    map[string]any
	}
	ids := func(gids, rids, uids []int64, events []string) *rtm.SetListenIDs {
		return &rtm.SetListenIDs{GIDs: gids, RIDs: rids, UIDs: uids, Events: events}
	}
	tests := []struct {
		name         string
		absentClears bool
		steps        []step
		want         rtm.ListenState
	}{
		{"set-all all four", false,
			[]step{{q: &rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true}}},
			rtm.ListenState{P2P: true, Group: true, Room: true, Ev: true}},
		{"set-all overwrites the four flags", false,
			[]step{{q: &rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true}}, {q: &rtm.SetListenAll{Room: true}}},
			rtm.ListenState{Room: true}},
		{"set-all with only p2p keeps the other flags (python SDK)", false,
			[]step{{q: &rtm.SetListenAll{Group: true, Ev: true}}, {method: "setlisten", raw: map[string]any{"p2p": true}}},
			rtm.ListenState{P2P: true, Group: true, Ev: true}},
		{"id lists", false,
			[]step{{q: ids([]int64{7, 5}, []int64{9}, []int64{1 << 60}, []string{"login"})}},
			rtm.ListenState{GIDs: []int64{5, 7}, RIDs: []int64{9}, UIDs: []int64{1 << 60}, Events: []string{"login"}}},
		{"id lists overwrite, empty list clears", false,
			[]step{{q: ids([]int64{5}, []int64{9}, []int64{3}, []string{"login"})}, {q: ids([]int64{6}, nil, []int64{4}, nil)}},
			rtm.ListenState{GIDs: []int64{6}, UIDs: []int64{4}}},
		{"absent list keeps by default", false,
			[]step{{q: ids([]int64{5}, []int64{9}, []int64{3}, []string{"login"})}, {method: "setlisten", raw: map[string]any{"gids": []int64{8}}}},
			rtm.ListenState{GIDs: []int64{8}, RIDs: []int64{9}, UIDs: []int64{3}, Events: []string{"login"}}},
		{"absent list clears with AbsentListClears", true,
			[]step{{q: ids([]int64{5}, []int64{9}, []int64{3}, []string{"login"})}, {method: "setlisten", raw: map[string]any{"gids": []int64{8}}}},
			rtm.ListenState{GIDs: []int64{8}}},
		{"flags and lists are a union", false,
			[]step{{q: &rtm.SetListenAll{P2P: true}}, {q: ids([]int64{5}, nil, nil, nil)}},
			rtm.ListenState{P2P: true, GIDs: []int64{5}}},
		{"addlisten and removelisten", false,
			[]step{
				{q: ids([]int64{1}, nil, nil, nil)},
				{q: &rtm.AddListen{GIDs: []int64{2, 3}, RIDs: []int64{4}, Events: []string{"logout"}}},
				{q: &rtm.RemoveListen{GIDs: []int64{1, 3, 99}, Events: []string{"logout"}}},
			},
			rtm.ListenState{GIDs: []int64{2}, RIDs: []int64{4}}},
		{"official SDK replay quirk: ids as a map", false,
			[]step{{method: "setlisten", raw: map[string]any{"gids": map[int64]struct{}{5: {}, 6: {}}}}},
			rtm.ListenState{GIDs: []int64{5, 6}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Config{PID: testPID, Secret: testSecret, AbsentListClears: tc.absentClears})
			c := dial(t, s)
			for _, st := range tc.steps {
				var err error
				if st.q != nil {
					err = c.call(st.q)
				} else {
					err = c.callSigned(st.method, rawPayload(t, c.signer, st.method, st.raw))
				}
				if err != nil {
					t.Fatalf("%s: %v", st.method, err)
				}
			}
			states := s.ListenStates()
			if len(states) != 1 {
				t.Fatalf("ListenStates: %d states, want 1", len(states))
			}
			if !states[0].Equal(tc.want) {
				t.Errorf("state = %+v, want %+v", states[0], tc.want)
			}
		})
	}
}

func TestSignVerification(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	q := &rtm.SetListenAll{P2P: true}
	now := time.Now()

	good := q.AppendPayload(nil, c.signer.Sign("setlisten", now))
	if err := c.callSigned("setlisten", good); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	if got := codeOf(c.callSigned("setlisten", good)); got != rtm.CodeSameSign {
		t.Errorf("replayed signature: code %d, want %d", got, rtm.CodeSameSign)
	}
	wrongSecret := rtm.NewSigner(testPID, "other secret")
	if got := codeOf(c.callSigned("setlisten", q.AppendPayload(nil, wrongSecret.Sign("setlisten", now)))); got != rtm.CodeInvalidSign {
		t.Errorf("bad sign: code %d, want %d", got, rtm.CodeInvalidSign)
	}
	wrongPID := rtm.NewSigner(testPID+1, testSecret)
	if got := codeOf(c.callSigned("setlisten", q.AppendPayload(nil, wrongPID.Sign("setlisten", now)))); got != rtm.CodeInvalidSign {
		t.Errorf("wrong pid: code %d, want %d", got, rtm.CodeInvalidSign)
	}
	// Signed for another method: the sign does not match.
	if got := codeOf(c.callSigned("setlisten", q.AppendPayload(nil, c.signer.Sign("addlisten", now)))); got != rtm.CodeInvalidSign {
		t.Errorf("sign of another method: code %d, want %d", got, rtm.CodeInvalidSign)
	}
	old := c.signer.SignAt("setlisten", 12345, now.Add(-10*time.Minute).Unix())
	if got := codeOf(c.callSigned("setlisten", q.AppendPayload(nil, old))); got != rtm.CodeInvalidTime {
		t.Errorf("ts 10 min old: code %d, want %d", got, rtm.CodeInvalidTime)
	}
	future := c.signer.SignAt("setlisten", 12346, now.Add(10*time.Minute).Unix())
	if got := codeOf(c.callSigned("setlisten", q.AppendPayload(nil, future))); got != rtm.CodeInvalidTime {
		t.Errorf("ts 10 min ahead: code %d, want %d", got, rtm.CodeInvalidTime)
	}
	// The official re-sign after 200006 (ts = now + 5 s) is accepted.
	if err := c.callSigned("setlisten", q.AppendPayload(nil, c.signer.Resign("setlisten", now))); err != nil {
		t.Errorf("re-signed quest: %v", err)
	}
	if got := codeOf(c.callSigned("setlisten", []byte{0x81, 0xa3, 'p', '2', 'p', 0xc3})); got != codeKeyNotFound {
		t.Errorf("unsigned quest: code %d, want %d", got, codeKeyNotFound)
	}
	if got := codeOf(c.callSigned("getmsg", good)); got != rtm.CodeUnknownMethod {
		t.Errorf("unknown method: code %d, want %d", got, rtm.CodeUnknownMethod)
	}
	// Only the good quest and the re-signed one were applied.
	st := s.Stats()
	if st.Listens != 2 {
		t.Errorf("Listens = %d, want 2", st.Listens)
	}
	want := map[int]int64{rtm.CodeSameSign: 1, rtm.CodeInvalidSign: 3, rtm.CodeInvalidTime: 2, codeKeyNotFound: 1, rtm.CodeUnknownMethod: 1}
	for code, n := range want {
		if st.ErrorCodes[code] != n {
			t.Errorf("ErrorCodes[%d] = %d, want %d (all: %v)", code, st.ErrorCodes[code], n, st.ErrorCodes)
		}
	}
}

func TestClockOffset(t *testing.T) {
	// A gateway whose clock is 10 minutes ahead rejects our honest ts.
	s := startServer(t, Config{ClockOffset: 10 * time.Minute})
	c := dial(t, s)
	if got := codeOf(c.call(&rtm.SetListenAll{P2P: true})); got != rtm.CodeInvalidTime {
		t.Errorf("code %d, want %d", got, rtm.CodeInvalidTime)
	}
}

func TestPushCoverage(t *testing.T) {
	s := startServer(t, Config{})
	group5 := dial(t, s)
	group5.mustCall(&rtm.SetListenIDs{GIDs: []int64{5}, Events: []string{"login"}})
	allP2P := dial(t, s)
	allP2P.mustCall(&rtm.SetListenAll{P2P: true})
	uid7 := dial(t, s)
	uid7.mustCall(&rtm.SetListenIDs{UIDs: []int64{7}})
	if err := s.WaitListen(t.Context(), func(st rtm.ListenState) bool { return len(st.UIDs) == 1 }); err != nil {
		t.Fatal(err)
	}

	publish := func(p rtm.Push, want int) {
		t.Helper()
		n, err := s.Publish(&p)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("Publish(%s to %d) reached %d connections, want %d", p.Scope, p.To, n, want)
		}
	}
	publish(rtm.Push{Scope: rtm.ScopeGroup, From: 1, To: 5, MType: 30, MID: 100, Msg: []byte("g5")}, 1)
	publish(rtm.Push{Scope: rtm.ScopeGroup, From: 1, To: 6, MType: 30, MID: 101, Msg: []byte("g6")}, 0)
	publish(rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MType: 30, MID: 102, Msg: []byte("p")}, 1)
	publish(rtm.Push{Scope: rtm.ScopeP2P, From: 7, To: 2, MType: 30, MID: 103, Msg: []byte("from 7")}, 2)
	publish(rtm.Push{Scope: rtm.ScopeP2P, From: 3, To: 7, MType: 30, MID: 104, Msg: []byte("to 7")}, 2)
	publish(rtm.Push{Scope: rtm.ScopeRoom, From: 1, To: 5, MType: 30, MID: 105, Msg: []byte("r5")}, 0)
	if n := s.PublishEvent("login", 42, "10.0.0.1:5000", ""); n != 1 {
		t.Errorf("login event reached %d, want 1", n)
	}
	if n := s.PublishEvent("logout", 42, "10.0.0.1:5000", ""); n != 0 {
		t.Errorf("logout event reached %d, want 0", n)
	}

	// An SDK client's sendgroupmsg is answered {mtime} and pushed.
	sdk := dial(t, s)
	send := &rtm.SendMsg{Scope: rtm.ScopeGroup, MType: 51, From: 9, To: 5, MID: 106, Msg: []byte{0xff, 0x00}, MsgBinary: true, Attrs: "a"}
	ans, err := sdk.conn.Call(t.Context(), send.Method(), send.AppendPayload(nil, sdk.signer.Sign(send.Method(), time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	var sa rtm.SendMsgAnswer
	if err := sa.Decode(ans); err != nil || sa.MTime < time.Now().Add(-time.Minute).UnixMilli() {
		t.Errorf("sendgroupmsg answer %x: %v, mtime %d", ans, err, sa.MTime)
	}
	// sendroommsg with a "to" instead of "rid" is refused.
	bad := &rtm.SendMsg{Scope: rtm.ScopeP2P, MType: 30, From: 9, To: 5, MID: 107, Msg: []byte("x")}
	if got := codeOf(sdk.callSigned("sendroommsg", bad.AppendPayload(nil, sdk.signer.Sign("sendroommsg", time.Now())))); got != codeKeyNotFound {
		t.Errorf("sendroommsg without rid: code %d, want %d", got, codeKeyNotFound)
	}

	mids := func(gs []got) []int64 {
		var out []int64
		for _, g := range gs {
			out = append(out, g.mid)
		}
		return out
	}
	g5 := group5.waitPushes(3)
	if want := []int64{100, 0, 106}; !slices.Equal(mids(g5), want) {
		t.Errorf("group-5 listener got mids %v, want %v", mids(g5), want)
	}
	if g5[1].scope != rtm.ScopeEvent || g5[1].event != "login" || g5[1].uid != 42 {
		t.Errorf("group-5 listener's event: %+v", g5[1])
	}
	if g := g5[2]; g.scope != rtm.ScopeGroup || g.from != 9 || g.to != 5 || g.mtype != 51 || !g.msgBinary || !bytes.Equal(g.msg, []byte{0xff, 0}) || g.attrs != "a" {
		t.Errorf("pushed sendgroupmsg: %+v", g)
	}
	if got, want := mids(allP2P.waitPushes(3)), []int64{102, 103, 104}; !slices.Equal(got, want) {
		t.Errorf("all-p2p listener got mids %v, want %v", got, want)
	}
	if got, want := mids(uid7.waitPushes(2)), []int64{103, 104}; !slices.Equal(got, want) {
		t.Errorf("uid-7 listener got mids %v, want %v", got, want)
	}
	testkit.Eventually(t, waitFor, func() bool { st := s.Stats(); return st.Answered == 8 }, "all answers")
	st := s.Stats()
	if st.Sent != 8 || st.NotCovered != 3 || st.Sends != 1 || st.Pending != 0 {
		t.Errorf("stats: %+v", st)
	}
	if len(sdk.got()) != 0 {
		t.Errorf("the non-listening SDK client got pushes: %+v", sdk.got())
	}
}

func TestAnswerCounting(t *testing.T) {
	type outcome struct {
		mid      int64
		ok, late bool
	}
	var mu sync.Mutex
	var outcomes []outcome
	s := startServer(t, Config{
		PID: testPID, Secret: testSecret,
		AnswerTimeout: 300 * time.Millisecond, LateGrace: time.Second,
		OnAnswered: func(scope rtm.Scope, from, to, mid int64, ok, late bool) {
			mu.Lock()
			outcomes = append(outcomes, outcome{mid, ok, late})
			mu.Unlock()
		},
	})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true})
	release := make(chan struct{})
	c.setAnswer(func(g got, r rtm.Reply) {
		switch g.mid {
		case 1:
			_ = r.OK()
		case 2:
			_ = r.Error(20001, "no")
		case 3: // answered after AnswerTimeout: overdue
			go func() {
				<-release
				_ = r.OK()
			}()
		case 4: // never answered
		}
	})
	for mid := int64(1); mid <= 4; mid++ {
		if _, err := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MType: 30, MID: mid}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitPushes(4)
	testkit.Eventually(t, waitFor, func() bool { st := s.Stats(); return st.Answered == 1 && st.Errored == 1 }, "answers 1 and 2")
	time.Sleep(350 * time.Millisecond) // past AnswerTimeout (300 ms) on purpose: the next answer must be late
	close(release)
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Overdue == 1 }, "overdue answer")
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Unanswered == 1 }, "unanswered push")
	st := s.Stats()
	if st.Sent != 4 || st.Answered != 1 || st.Errored != 1 || st.Overdue != 1 || st.Unanswered != 1 || st.Pending != 0 || st.Redelivered != 0 {
		t.Errorf("stats: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []outcome{{1, true, false}, {2, false, false}, {3, true, true}}
	if !slices.Equal(outcomes, want) {
		t.Errorf("OnAnswered outcomes %v, want %v", outcomes, want)
	}
	if got := len(c.got()); got != 4 {
		t.Errorf("client got %d pushes, want 4 (no redelivery by default)", got)
	}
}

func TestRedeliverAfterTimeout(t *testing.T) {
	s := startServer(t, Config{PID: testPID, Secret: testSecret, AnswerTimeout: 300 * time.Millisecond, LateGrace: 100 * time.Millisecond, Redeliver: true})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{Group: true})
	seen := 0
	c.setAnswer(func(g got, r rtm.Reply) {
		seen++ // reader goroutine only
		if seen > 1 {
			_ = r.OK()
		}
	})
	if _, err := s.Publish(&rtm.Push{Scope: rtm.ScopeGroup, From: 1, To: 2, MType: 30, MID: 77, Msg: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	gs := c.waitPushes(2)
	if gs[0].mid != 77 || gs[1].mid != 77 || !bytes.Equal(gs[0].msg, gs[1].msg) {
		t.Errorf("redelivery differs: %+v", gs)
	}
	testkit.Eventually(t, waitFor, func() bool { st := s.Stats(); return st.Answered == 1 && st.Unanswered == 1 }, "outcomes")
	if st := s.Stats(); st.Sent != 2 || st.Redelivered != 1 || st.Pending != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestRedeliverAfterDrop(t *testing.T) {
	s := startServer(t, Config{PID: testPID, Secret: testSecret, AnswerTimeout: time.Second, Redeliver: true})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenIDs{RIDs: []int64{3}})
	c.setAnswer(func(got, rtm.Reply) {}) // never answers
	if _, err := s.Publish(&rtm.Push{Scope: rtm.ScopeRoom, From: 1, To: 3, MType: 30, MID: 88}); err != nil {
		t.Fatal(err)
	}
	c.waitPushes(1)
	if n := s.DropAll(); n != 1 {
		t.Fatalf("DropAll closed %d, want 1", n)
	}
	<-c.conn.Done()
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Unanswered == 1 }, "orphaned push")
	// A new connection that listens to room 3 gets the message again.
	c2 := dial(t, s)
	c2.mustCall(&rtm.SetListenIDs{RIDs: []int64{3}})
	if g := c2.waitPushes(1); g[0].mid != 88 || g[0].scope != rtm.ScopeRoom {
		t.Errorf("redelivered %+v", g[0])
	}
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Answered == 1 }, "answer")
	if st := s.Stats(); st.Redelivered != 1 || st.Sent != 2 {
		t.Errorf("stats: %+v", st)
	}
}

func TestDropAll(t *testing.T) {
	s := startServer(t, Config{})
	a, b := dial(t, s), dial(t, s)
	a.mustCall(&rtm.SetListenAll{P2P: true})
	b.mustCall(&rtm.SetListenAll{Room: true})
	if err := s.WaitConns(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if n := s.DropAll(); n != 2 {
		t.Errorf("DropAll = %d, want 2", n)
	}
	for _, c := range []*client{a, b} {
		select {
		case <-c.conn.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("client connection still alive after DropAll")
		}
	}
	if err := s.WaitConns(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if st := s.ListenStates(); len(st) != 0 {
		t.Errorf("listen states after DropAll: %+v", st)
	}
	// Listen state is per connection: a new one starts empty.
	c := dial(t, s)
	if err := s.WaitConns(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if st := s.ListenStates(); len(st) != 1 || !st[0].Equal(rtm.ListenState{}) {
		t.Errorf("new connection's state %+v", st)
	}
	if n, _ := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MID: 1}); n != 0 {
		t.Errorf("published to %d connections, want 0", n)
	}
	_ = c
}

func TestEncryptedStreamMode(t *testing.T) {
	for _, tc := range []struct {
		curve string
		bits  int
	}{{"secp256r1", 256}, {"secp256k1", 128}} {
		t.Run(fmt.Sprintf("%s/%d", tc.curve, tc.bits), func(t *testing.T) {
			key, err := rtm.GenerateServerKey(tc.curve, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := startServer(t, Config{PID: testPID, Secret: testSecret, ServerKey: key})
			pub, err := rtm.ParseServerKey(key.PublicPEM())
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, s, rtm.WithEncryption(pub, tc.bits))
			c.mustCall(&rtm.SetListenAll{Ev: true})
			s.PublishEvent("logout", 5, "[::1]:80", "bye")
			g := c.waitPushes(1)[0]
			if g.event != "logout" || g.uid != 5 || g.data != "bye" {
				t.Errorf("event %+v", g)
			}
			testkit.Eventually(t, waitFor, func() bool { return s.Stats().Answered == 1 }, "answer")
			// A plaintext client still works on the same server.
			p := dial(t, s)
			p.mustCall(&rtm.SetListenAll{Ev: true})
		})
	}
}

func TestEncryptedPackageMode(t *testing.T) {
	key, err := rtm.GenerateServerKey("secp256r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Config{PID: testPID, Secret: testSecret, ServerKey: key})
	kx, err := rtm.NewKeyExchange(key.Public(), 128, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	// The Python SDK's *key: 64-byte key, streamMode false, bits 128.
	var kb bytes.Buffer
	enc := msgpack.NewEncoder(&kb)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(map[string]any{"publicKey": kx.PublicKey(), "bits": 128, "streamMode": false}); err != nil {
		t.Fatal(err)
	}
	keyFrame := rtm.AppendFrame(nil, &rtm.Frame{Type: rtm.TwoWay, Seq: 1, Method: []byte("*key"), Payload: kb.Bytes()})
	if _, err := nc.Write(keyFrame); err != nil {
		t.Fatal(err)
	}
	pw, err := rtm.NewPackageWriter(nc, kx.Key(), kx.IV(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := rtm.NewPackageReader(nc, kx.Key(), kx.IV(), 0)
	if err != nil {
		t.Fatal(err)
	}
	fr := rtm.NewFrameReader(pr, 0)
	next := func() *rtm.Frame { t.Helper(); return nextFrame(t, fr) }
	if f := next(); f.Type != rtm.Answer || f.Seq != 1 || f.IsError() {
		t.Fatalf("*key answer: %+v", f)
	}
	signer := rtm.NewSigner(testPID, testSecret)
	q := &rtm.SetListenIDs{UIDs: []int64{99}}
	if _, err := pw.Write(rtm.AppendQuest(nil, 2, q, signer.Sign(q.Method(), time.Now()))); err != nil {
		t.Fatal(err)
	}
	if f := next(); f.Type != rtm.Answer || f.Seq != 2 || f.IsError() {
		t.Fatalf("setlisten answer: %+v (%v)", f, rtm.DecodeError(f))
	}
	if n, _ := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 99, To: 1, MType: 30, MID: 5, Msg: []byte("hi")}); n != 1 {
		t.Fatalf("published to %d, want 1", n)
	}
	f := next()
	var p rtm.Push
	if err := rtm.DecodePush(f, fr.Raw(), &p); err != nil || p.MID != 5 || string(p.Msg) != "hi" {
		t.Fatalf("push: %+v, %v", p, err)
	}
	if _, err := pw.Write(rtm.AppendAnswer(nil, f.Seq, rtm.FlagMsgpack)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().Answered == 1 }, "answer")
}

func TestGenerate(t *testing.T) {
	for _, enc := range []Encoding{EncodingGo, EncodingCpp} {
		t.Run(enc.String(), func(t *testing.T) { testGenerate(t, enc) })
	}
}

func testGenerate(t *testing.T, enc Encoding) {
	s := startServer(t, Config{PID: testPID, Secret: testSecret, Encoding: enc})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true})
	const total, run = 2000, 5
	res, err := s.Generate(t.Context(), LoadConfig{
		Total: total, Keys: 7, BodySize: 100, Binary: 0.25, Seed: 3, LargeIDs: true, Run: run,
		Mix: Mix{P2P: 1, Group: 1, Event: 1, Chat: 1, File: 1, Message: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != total || res.Pushes != total || res.NotCovered != 0 || res.Answered != total || res.Unanswered+res.Overdue+res.Errored != 0 {
		t.Errorf("result %+v", res)
	}
	if res.ByScope[rtm.ScopeRoom] != 0 || res.ByKind[rtm.KindAudio] != 0 || res.ByKind[rtm.KindCmd] != 0 {
		t.Errorf("excluded scope or kind generated: %+v", res)
	}
	for _, sc := range []rtm.Scope{rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeEvent} {
		if n := res.ByScope[sc]; n < total/3-150 || n > total/3+150 {
			t.Errorf("%s: %d messages, want about %d", sc, n, total/3)
		}
	}
	msgs := total - res.ByScope[rtm.ScopeEvent]
	if res.Binary < msgs/3/4-60 || res.Binary > msgs*2/3/4+60 {
		t.Errorf("%d binary bodies of %d messages", res.Binary, msgs)
	}
	gs := c.waitPushes(total)
	if len(gs) != total {
		t.Fatalf("client got %d pushes, want %d", len(gs), total)
	}
	// Per (scope, target) the mids count 1, 2, 3… in order, under the run
	// number (so successive runs never repeat a mid).
	type key struct {
		scope rtm.Scope
		to    int64
	}
	last := map[key]int64{}
	byScope := map[rtm.Scope]int{}
	byKind := map[rtm.Kind]int{}
	binary := 0
	for _, g := range gs {
		if g.err != nil {
			t.Fatalf("undecodable push: %v", g.err)
		}
		byScope[g.scope]++
		byKind[g.kind]++
		if g.scope == rtm.ScopeEvent {
			continue
		}
		if g.to < LoadLargeIDBase || g.to >= LoadLargeIDBase+7 || g.from < LoadLargeIDBase {
			t.Fatalf("ids outside the large range: %+v", g)
		}
		k := key{g.scope, g.to}
		if want := int64(run)<<48 | int64(g.to-LoadLargeIDBase+1)<<32 | (last[k]&0xffffffff + 1); g.mid != want {
			t.Fatalf("%s to %d: mid %#x after %#x, want %#x", g.scope, g.to, g.mid, last[k], want)
		}
		last[k] = g.mid
		if g.msgBinary {
			binary++
			if utf8.Valid(g.msg) || len(g.msg) != 100 {
				t.Errorf("binary body is valid UTF-8 or not 100 bytes: %x", g.msg)
			}
		} else if g.kind != rtm.KindFile && !bytes.HasPrefix(g.msg, fmt.Appendf(nil, "k=%d s=%d ", g.to-LoadLargeIDBase, g.mid&0xffffffff)) {
			t.Errorf("text body %q lacks its k/s prefix", g.msg)
		}
		if g.kind == rtm.KindMessage && (g.mtype < 51 || g.mtype > 127) {
			t.Errorf("custom mtype %d outside 51..127", g.mtype)
		}
	}
	for sc, n := range res.ByScope {
		if byScope[sc] != n {
			t.Errorf("%s: client got %d, result says %d", sc, byScope[sc], n)
		}
	}
	for k, n := range res.ByKind {
		if byKind[k] != n {
			t.Errorf("%s: client got %d, result says %d", k, byKind[k], n)
		}
	}
	if binary != res.Binary {
		t.Errorf("client saw %d binary bodies, result says %d", binary, res.Binary)
	}
	if st := s.Stats(); st.Sent != total || st.Answered != total || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestGenerateRateAndWindow(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true})
	var mu sync.Mutex
	var held []rtm.Reply
	outstanding, maxOutstanding := 0, 0
	c.setAnswer(func(_ got, r rtm.Reply) { // answers in batches of 5, 5 ms late
		mu.Lock()
		defer mu.Unlock()
		held = append(held, r)
		outstanding++
		maxOutstanding = max(maxOutstanding, outstanding)
		if len(held) == 5 {
			batch := held
			held = nil
			go func() {
				time.Sleep(5 * time.Millisecond) // room for a 6th push if the window leaked
				mu.Lock()
				outstanding -= len(batch)
				mu.Unlock()
				for _, r := range batch {
					_ = r.OK()
				}
			}()
		}
	})
	start := time.Now()
	res, err := s.Generate(t.Context(), LoadConfig{Total: 50, Rate: 500, MaxInFlight: 5, Mix: Mix{P2P: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("50 messages at 500/s took %s, want ≥ 98 ms", el)
	}
	if res.Answered != 50 || res.Pushes != 50 {
		t.Errorf("result %+v", res)
	}
	mu.Lock()
	if maxOutstanding != 5 {
		t.Errorf("client held up to %d unanswered pushes, window is 5", maxOutstanding)
	}
	mu.Unlock()
	// Duration-bounded run without listeners: nothing is covered.
	s2 := startServer(t, Config{})
	res, err = s2.Generate(t.Context(), LoadConfig{Duration: 50 * time.Millisecond, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages < 5 || res.Messages > 12 || res.NotCovered != res.Messages || res.Pushes != 0 {
		t.Errorf("duration run: %+v", res)
	}
	if _, err := s2.Generate(t.Context(), LoadConfig{}); err == nil {
		t.Error("Generate without Total or Duration succeeded")
	}
}

func TestSendMalformed(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true})
	idle := dial(t, s) // never listens: gets nothing
	for _, kind := range []string{MalformedMissingField, MalformedWrongType, MalformedGarbagePayload} {
		if n, err := s.SendMalformed(kind); n != 1 || err != nil {
			t.Errorf("SendMalformed(%s) = %d, %v", kind, n, err)
		}
	}
	if _, err := s.SendMalformed("bogus"); err == nil {
		t.Error("unknown kind accepted")
	}
	gs := c.waitPushes(3)
	for i, want := range []string{`missing key "mid"`, `key "from"`, "payload"} {
		if gs[i].err == nil || !bytes.Contains([]byte(gs[i].err.Error()), []byte(want)) {
			t.Errorf("malformed push %d: err %v, want one mentioning %s", i, gs[i].err, want)
		}
	}
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().MalformedErrored == 3 }, "error answers")
	if st := s.Stats(); st.MalformedSent != 3 || st.Sent != 0 {
		t.Errorf("stats %+v", st)
	}
	if len(idle.got()) != 0 {
		t.Error("non-listening connection got a malformed push")
	}
}

func TestRejectListen(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	s.RejectListen(rtm.CodeFrequency, 2)
	for i := range 2 {
		if got := codeOf(c.call(&rtm.SetListenAll{P2P: true})); got != rtm.CodeFrequency {
			t.Errorf("attempt %d: code %d, want %d", i, got, rtm.CodeFrequency)
		}
	}
	if st := s.ListenStates(); !st[0].Equal(rtm.ListenState{}) {
		t.Errorf("rejected quest changed the state: %+v", st[0])
	}
	c.mustCall(&rtm.SetListenAll{P2P: true})
	if st := s.ListenStates(); !st[0].P2P {
		t.Errorf("state %+v", st[0])
	}
}

func TestPausedAndPing(t *testing.T) {
	s := startServer(t, Config{PID: testPID, Secret: testSecret, PingInterval: 10 * time.Millisecond})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{Room: true})
	s.SetPaused(true)
	if n, _ := s.Publish(&rtm.Push{Scope: rtm.ScopeRoom, From: 1, To: 2, MID: 1}); n != 0 {
		t.Errorf("paused Publish reached %d", n)
	}
	if _, _ = s.Publish(&rtm.Push{Scope: rtm.ScopeRoom, From: 1, To: 2, MID: 2}); s.Stats().Held != 2 {
		t.Errorf("held %d, want 2", s.Stats().Held)
	}
	testkit.Eventually(t, waitFor, func() bool { return s.Stats().PingsAnswered >= 3 }, "pings while paused")
	if len(c.got()) != 0 {
		t.Error("pushed while paused")
	}
	s.SetPaused(false)
	if gs := c.waitPushes(2); gs[0].mid != 1 || gs[1].mid != 2 {
		t.Errorf("after resume: %+v", gs)
	}
	c.mu.Lock()
	pings := c.pings
	c.mu.Unlock()
	if pings < 3 {
		t.Errorf("client saw %d pings", pings)
	}
}

func TestAcceptDelay(t *testing.T) {
	s := startServer(t, Config{})
	s.SetAcceptDelay(150 * time.Millisecond)
	start := time.Now()
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true})
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("first answer after %s, want ≥ 150 ms", el)
	}
}

func TestCloseJoinsGoroutines(t *testing.T) {
	before := testkit.StableGoroutines()
	s := New(Config{PID: testPID, Secret: testSecret, PingInterval: time.Millisecond, Redeliver: true})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, &testServer{s, rtm.NewSigner(testPID, testSecret)})
	c.mustCall(&rtm.SetListenAll{P2P: true})
	c.setAnswer(func(got, rtm.Reply) {})
	if _, err := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MID: 1}); err != nil {
		t.Fatal(err)
	}
	c.waitPushes(1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-c.conn.Done()
	_ = c.conn.Close()
	testkit.WaitGoroutines(t, before)
	if st := s.Stats(); st.Unanswered != 1 || st.Pending != 0 {
		t.Errorf("stats after Close: %+v", st)
	}
	if err := s.Listen("127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
}

func TestServeContext(t *testing.T) {
	s := New(Config{PID: testPID, Secret: testSecret})
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	testkit.Eventually(t, waitFor, func() bool { return s.Addr() == ln.Addr().String() }, "Serve to register its listener")
	c := dial(t, &testServer{s, rtm.NewSigner(testPID, testSecret)})
	c.mustCall(&rtm.SetListenAll{P2P: true})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve returned %v, want context.Canceled", err)
	}
	// Connections accepted before stay up; only the listener is gone.
	if n, _ := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MID: 1}); n != 1 {
		t.Errorf("Publish reached %d, want 1", n)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepting after Serve returned")
	}
}

// TestAtLeastOnceAcrossDrop drops the only connection in the middle of a
// load run: with Redeliver every message that was pushed is still answered
// OK in time by some connection; those generated while no connection
// listened are counted as NoListener (WaitListener waits for the first
// listener only).
func TestAtLeastOnceAcrossDrop(t *testing.T) {
	type key struct {
		scope   rtm.Scope
		to, mid int64
	}
	var mu sync.Mutex
	okSet := map[key]bool{}
	s := startServer(t, Config{
		PID: testPID, Secret: testSecret, AnswerTimeout: 300 * time.Millisecond, Redeliver: true,
		OnAnswered: func(scope rtm.Scope, _, to, mid int64, ok, late bool) {
			if ok && !late {
				mu.Lock()
				okSet[key{scope, to, mid}] = true
				mu.Unlock()
			}
		},
	})
	a := dial(t, s)
	a.mustCall(&rtm.SetListenAll{P2P: true, Group: true})
	const total = 600
	type result struct {
		res LoadResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.Generate(t.Context(), LoadConfig{Total: total, Rate: 6000, Keys: 5, Mix: Mix{P2P: 1, Group: 1}, WaitListener: true})
		done <- result{res, err}
	}()
	a.waitPushes(100)
	s.DropAll()
	b := dial(t, s)
	b.mustCall(&rtm.SetListenAll{P2P: true, Group: true})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.Messages != total || int64(r.res.NoListener) != s.Stats().NoListener {
		t.Errorf("result %+v", r.res)
	}
	// Every pushed message was answered OK.
	mu.Lock()
	defer mu.Unlock()
	perTarget := map[[2]int64]int64{}
	for k := range okSet {
		perTarget[[2]int64{int64(k.scope), k.to}]++
	}
	sum := int64(0)
	for _, n := range perTarget {
		sum += n
	}
	if sum != int64(total-r.res.NoListener) {
		t.Errorf("%d distinct messages answered OK, want %d - no_listener (result %+v, stats %+v)", sum, total, r.res, s.Stats())
	}
	t.Logf("A got %d pushes, B %d; redelivered %d; no_listener %d", len(a.got()), len(b.got()), r.res.Redelivered, r.res.NoListener)
}

// TestTestHooks: the hooks client tests use — the quest report, a reject
// function, refused connections, accept times, per-connection listen state,
// calls and pushes to one connection, dropping one connection.
func TestTestHooks(t *testing.T) {
	var mu sync.Mutex
	var quests []Quest
	s := startServer(t, Config{PID: testPID, Secret: testSecret, OnQuest: func(q Quest) {
		mu.Lock()
		quests = append(quests, q)
		mu.Unlock()
	}})
	c := dial(t, s)
	c.mustCall(&rtm.SetListenAll{P2P: true})
	c.mustCall(&rtm.SetListenIDs{GIDs: []int64{7}, RIDs: []int64{}, UIDs: []int64{}, Events: []string{}})
	s.SetRejectFunc(func(q Quest) (int, string) {
		if q.Method == "addlisten" && q.N == 0 {
			return 200032, "too many"
		}
		return 0, ""
	})
	if got := codeOf(c.call(&rtm.AddListen{GIDs: []int64{8}})); got != 200032 {
		t.Fatalf("rejected addlisten: code %d, want 200032", got)
	}
	c.mustCall(&rtm.AddListen{GIDs: []int64{9}}) // N == 1: passes
	s.SetRejectFunc(nil)
	mu.Lock()
	got := slices.Clone(quests)
	mu.Unlock()
	type row struct {
		conn   uint64
		method string
		form   string
		n      int
		code   int
	}
	var rows []row
	for _, q := range got {
		rows = append(rows, row{q.Conn, q.Method, q.Form, q.N, q.Code})
		if q.Sig.PID != testPID || q.Sig.Salt == 0 || q.At.IsZero() {
			t.Errorf("quest %+v: signature or time missing", q)
		}
	}
	want := []row{{1, "setlisten", "all", 0, 0}, {1, "setlisten", "ids", 1, 0}, {1, "addlisten", "", 0, 200032}, {1, "addlisten", "", 1, 0}}
	if !slices.Equal(rows, want) {
		t.Fatalf("quests %+v, want %+v", rows, want)
	}
	if st, ok := s.ListenOf(1); !ok || !st.P2P || !slices.Equal(st.GIDs, []int64{7, 9}) {
		t.Fatalf("ListenOf(1) = %+v, %v; want p2p and gids [7 9]", st, ok)
	}
	if _, ok := s.ListenOf(2); ok {
		t.Fatal("ListenOf(2): no such connection, want false")
	}

	// Calls and pushes to one connection, and their answers.
	if err := <-s.GoPush(1, &rtm.Push{Scope: rtm.ScopeGroup, From: 1, To: 3, MID: 5, Msg: []byte("x")}); err != nil {
		t.Fatalf("GoPush: %v", err)
	}
	if g := c.waitPushes(1); g[0].scope != rtm.ScopeGroup || g[0].to != 3 || g[0].mid != 5 {
		t.Fatalf("pushed %+v", g[0])
	}
	if err := s.Call(t.Context(), 1, "ping", nil); err != nil {
		t.Fatalf("Call ping: %v", err)
	}
	if err := s.Send(1, "whatever", nil); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := <-s.Go(7, "ping", nil); !errors.Is(err, ErrNoConn) {
		t.Fatalf("Go to no connection: %v, want ErrNoConn", err)
	}
	if st := s.Stats(); st.Sent != 0 {
		t.Errorf("Stats().Sent = %d: test calls must not be counted", st.Sent)
	}

	// Refused connections are accepted and closed at once, and numbered.
	s.SetRefuse(true)
	refused, err := rtm.Dial(t.Context(), s.Addr(), c, rtm.WithKeepalive(0, 0))
	if err == nil {
		select {
		case <-refused.Done():
		case <-time.After(waitFor):
			t.Fatal("refused connection stayed open")
		}
		_ = refused.Close()
	}
	s.SetRefuse(false)
	if n := len(s.AcceptTimes()); n != 2 {
		t.Fatalf("AcceptTimes: %d, want 2 (one served, one refused)", n)
	}
	c3 := dial(t, s)
	c3.mustCall(&rtm.SetListenAll{Room: true})
	if _, ok := s.ListenOf(3); !ok {
		t.Fatal("third connection not numbered 3")
	}
	if err := s.Drop(1); err != nil {
		t.Fatal(err)
	}
	<-c.conn.Done()
	if err := s.WaitConns(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(1); !errors.Is(err, ErrNoConn) {
		t.Fatalf("Drop of a closed connection: %v, want ErrNoConn", err)
	}
}

// TestPushAnswerMustBeEmptyMap checks that only an empty map with status 0
// counts as a push answered OK (spec §8); any other payload is an error.
func TestPushAnswerMustBeEmptyMap(t *testing.T) {
	s := startServer(t, Config{PID: testPID, Secret: testSecret})
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fr := rtm.NewFrameReader(nc, 0)
	next := func() *rtm.Frame { t.Helper(); return nextFrame(t, fr) }
	q := &rtm.SetListenAll{P2P: true}
	if _, err := nc.Write(rtm.AppendQuest(nil, 1, q, rtm.NewSigner(testPID, testSecret).Sign(q.Method(), time.Now()))); err != nil {
		t.Fatal(err)
	}
	if f := next(); f.Type != rtm.Answer || f.IsError() {
		t.Fatalf("setlisten answer: %+v (%v)", f, rtm.DecodeError(f))
	}
	for mid, answer := range map[int64]func(seq uint32) []byte{
		1: func(seq uint32) []byte { // {"x": 1}, status 0
			dst, off := rtm.BeginFrame(nil, rtm.FlagMsgpack, rtm.Answer, 0, seq, "")
			return rtm.FinishFrame(append(dst, 0x81, 0xa1, 'x', 0x01), 0, off)
		},
		2: func(seq uint32) []byte { return rtm.AppendAnswer(nil, seq, rtm.FlagMsgpack) },
	} {
		if n, _ := s.Publish(&rtm.Push{Scope: rtm.ScopeP2P, From: 1, To: 2, MType: 30, MID: mid}); n != 1 {
			t.Fatalf("published to %d, want 1", n)
		}
		f := next()
		if _, err := nc.Write(answer(f.Seq)); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, waitFor, func() bool { st := s.Stats(); return st.Answered+st.Errored == 2 }, "two answers")
	if st := s.Stats(); st.Answered != 1 || st.Errored != 1 {
		t.Fatalf("answered %d errored %d, want 1 and 1 (the non-empty map is an error)", st.Answered, st.Errored)
	}
}

// nextFrame reads the next frame from fr, failing the test on an error.
func nextFrame(t *testing.T, fr *rtm.FrameReader) *rtm.Frame {
	t.Helper()
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	return f
}
