package rtm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testPID    = 11000001
	testSecret = Secret("s3cr3t-key-for-tests")
	waitLimit  = 10 * time.Second
)

// ---- a minimal gateway: the server side of rtm.Conn on a loopback port ----

// gwQuest is one quest the fake gateway received.
type gwQuest struct {
	conn   int    // connection number, from 1
	method string // setlisten, addlisten, removelisten, …
	form   string // setlisten only: "ids" or "all"
	sig    Signature
	at     time.Time
	code   int // the answer: 0 OK, else the error code
}

// fakeGateway accepts connections, verifies every quest's signature, records
// listen quests and the resulting per-connection listen state, answers, and
// can push, ping, drop connections and reject quests on demand.
type fakeGateway struct {
	t      *testing.T
	ln     net.Listener
	signer *Signer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   []*gwConn
	accepts []time.Time
	quests  []gwQuest
	salts   map[int64]bool
	refuse  bool // close new connections at once
	// reject, when set, may fail a quest: it gets the connection number,
	// the method and how many quests of that method came before on that
	// connection; a non-zero code is answered as an error.
	reject  func(conn int, method string, n int) (code int, ex string)
	changed chan struct{} // signalled (capacity 1) on every event
}

type gwConn struct {
	g      *fakeGateway
	n      int
	c      *Conn
	listen ListenState
	counts map[string]int
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &fakeGateway{
		t: t, ln: ln, signer: NewSigner(testPID, testSecret), ctx: ctx, cancel: cancel,
		salts: map[int64]bool{}, changed: make(chan struct{}, 1),
	}
	g.wg.Add(1)
	go g.acceptLoop()
	t.Cleanup(g.close)
	return g
}

func (g *fakeGateway) addr() string { return g.ln.Addr().String() }

func (g *fakeGateway) acceptLoop() {
	defer g.wg.Done()
	for {
		nc, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		refuse := g.refuse
		g.accepts = append(g.accepts, time.Now())
		g.mu.Unlock()
		if refuse {
			_ = nc.Close()
			g.signal()
			continue
		}
		gc := &gwConn{g: g, counts: map[string]int{}}
		g.mu.Lock()
		gc.n = len(g.conns) + 1
		g.mu.Unlock()
		c, err := Accept(g.ctx, nc, gc)
		if err != nil {
			g.t.Errorf("fake gateway: accept: %v", err)
			continue
		}
		g.mu.Lock()
		gc.c = c
		g.conns = append(g.conns, gc)
		g.mu.Unlock()
		g.signal()
	}
}

func (g *fakeGateway) close() {
	g.cancel()
	_ = g.ln.Close()
	g.wg.Wait()
	g.mu.Lock()
	conns := slices.Clone(g.conns)
	g.mu.Unlock()
	for _, gc := range conns {
		_ = gc.c.Close()
	}
}

func (g *fakeGateway) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called under the gateway's lock) holds; it is
// checked on every gateway event and every few milliseconds.
func (g *fakeGateway) waitFor(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		g.mu.Lock()
		ok := cond()
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-g.changed:
		case <-tick.C:
		case <-deadline.C:
			g.t.Fatalf("fake gateway: timed out waiting for %s", what)
		}
	}
}

// HandleQuest is the gateway side: verify the signature, refuse replays
// (200006), apply listen quests to the connection's state, answer.
func (gc *gwConn) HandleQuest(_ context.Context, f *Frame, _ []byte, r Reply) {
	g := gc.g
	method := string(f.Method)
	q := gwQuest{conn: gc.n, method: method, at: time.Now()}
	sig, err := DecodeSignature(f.Payload)
	q.sig = sig
	g.mu.Lock()
	defer func() {
		g.quests = append(g.quests, q)
		g.mu.Unlock()
		g.signal()
	}()
	n := gc.counts[method]
	gc.counts[method]++
	ex := ""
	switch {
	case err != nil || !g.signer.Verify(method, sig):
		q.code, ex = CodeInvalidSign, "invalid pid or sign"
	case g.salts[sig.Salt]:
		q.code, ex = CodeSameSign, "same sign"
	case g.reject != nil:
		q.code, ex = g.reject(gc.n, method, n)
	}
	if err == nil {
		g.salts[sig.Salt] = true
	}
	if q.code == 0 {
		q.form, err = gc.apply(method, f.Payload)
		if err != nil {
			g.t.Errorf("fake gateway: %s: %v", method, err)
			q.code, ex = CodeDecoding, err.Error()
		}
	}
	if q.code != 0 {
		_ = r.Error(q.code, ex)
		return
	}
	_ = r.OK()
}

// apply records a listen quest in the connection's state.
func (gc *gwConn) apply(method string, payload []byte) (form string, err error) {
	switch method {
	case "setlisten":
		var ids SetListenIDs
		if err := ids.Decode(payload); err != nil {
			return "", err
		}
		if ids.GIDs != nil || ids.RIDs != nil || ids.UIDs != nil || ids.Events != nil {
			if ids.GIDs == nil || ids.RIDs == nil || ids.UIDs == nil || ids.Events == nil {
				return "", fmt.Errorf("id-list setlisten without all four lists: %+v", ids)
			}
			gc.listen = gc.listen.Apply(ListenChange{Op: OpSet, GIDs: ids.GIDs, RIDs: ids.RIDs, UIDs: ids.UIDs, Events: ids.Events})
			return "ids", nil
		}
		var all SetListenAll
		if err := all.Decode(payload); err != nil {
			return "", err
		}
		gc.listen = gc.listen.Apply(ListenChange{Op: OpSetAll, P2P: all.P2P, Group: all.Group, Room: all.Room, Ev: all.Ev})
		return "all", nil
	case "addlisten", "removelisten":
		var l AddListen
		if err := l.Decode(payload); err != nil {
			return "", err
		}
		op := OpAdd
		if method == "removelisten" {
			op = OpRemove
		}
		gc.listen = gc.listen.Apply(ListenChange{Op: op, GIDs: l.GIDs, RIDs: l.RIDs, UIDs: l.UIDs, Events: l.Events})
		return "", nil
	}
	return "", fmt.Errorf("unexpected method %q", method)
}

// conn returns connection n (from 1).
func (g *fakeGateway) conn(n int) *gwConn {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if n < 1 || n > len(g.conns) {
		g.t.Fatalf("fake gateway: no connection %d (have %d)", n, len(g.conns))
	}
	return g.conns[n-1]
}

func (g *fakeGateway) numConns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// listenOf returns the listen state the gateway holds for connection n.
func (g *fakeGateway) listenOf(n int) ListenState {
	gc := g.conn(n)
	g.mu.Lock()
	defer g.mu.Unlock()
	return gc.listen.Clone()
}

// questsOn returns the quests received on connection n (0: all).
func (g *fakeGateway) questsOn(n int) []gwQuest {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []gwQuest
	for _, q := range g.quests {
		if n == 0 || q.conn == n {
			out = append(out, q)
		}
	}
	return out
}

func (g *fakeGateway) setReject(fn func(conn int, method string, n int) (int, string)) {
	g.mu.Lock()
	g.reject = fn
	g.mu.Unlock()
}

func (g *fakeGateway) setRefuse(v bool) {
	g.mu.Lock()
	g.refuse = v
	g.mu.Unlock()
}

// send sends a two-way quest with a raw payload on connection n and
// returns a channel that receives the answer's error (nil for OK).
func (g *fakeGateway) send(n int, method string, payload []byte) <-chan error {
	ch := make(chan error, 1)
	g.conn(n).c.Go(method, payload, waitLimit, func(_ []byte, err error) { ch <- err })
	return ch
}

// push sends p on connection n.
func (g *fakeGateway) push(n int, p *Push) <-chan error {
	return g.send(n, p.Method(), appendPushPayload(nil, p))
}

func chat(scope Scope, from, to, mid int64, text string) *Push {
	return &Push{Scope: scope, From: from, To: to, MType: 30, MID: mid, Msg: []byte(text), MTime: 1717000000000 + mid}
}

// ---- session helpers ----

// testBackoff keeps reconnects quick in tests.
var testBackoff = WithReconnectSchedule(Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond, FastTries: 2, FastJitter: time.Millisecond})

// runSession starts s.Run in a goroutine; the returned stop cancels it and
// returns Run's error.
func runSession(t *testing.T, s *Session, h PushHandler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(waitLimit):
				t.Fatalf("Run did not return within %s of cancel", waitLimit)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitState waits until the session's state satisfies cond.
func waitState(t *testing.T, s *Session, what string, cond func(StateChange) bool) StateChange {
	t.Helper()
	ch, cancel := s.Watch()
	defer cancel()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		select {
		case c := <-ch:
			if cond(c) {
				return c
			}
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; state is %s", what, s.State())
		}
	}
}

func isListening(c StateChange) bool { return c.State == Listening }

// waitListeningOn waits until the session listens on gateway connection n:
// the gateway answered the set-all setlisten on it and the session says
// Listening (it cannot be a stale Listening of an older connection, which
// ended before connection n was dialled).
func waitListeningOn(t *testing.T, s *Session, g *fakeGateway, n int) {
	t.Helper()
	g.waitFor(fmt.Sprintf("the replay on connection %d", n), func() bool {
		if len(g.conns) < n {
			return false
		}
		for _, q := range g.quests {
			if q.conn == n && q.form == "all" && q.code == 0 {
				return true
			}
		}
		return false
	})
	waitState(t, s, fmt.Sprintf("listening on connection %d", n), isListening)
}

// nopHandler answers every push OK at once.
var nopHandler = PushHandlerFunc(func(_ context.Context, _ *Push, r Reply) { _ = r.OK() })

var sampleListen = ListenState{
	Group:  true,
	GIDs:   []int64{7, 3},
	UIDs:   []int64{100, 5, 100},
	Events: []string{"logout", "login"},
}

// ---- tests ----

func TestSessionReplayAfterDrop(t *testing.T) {
	g := newFakeGateway(t)
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), WithListen(sampleListen), testBackoff)
	want := s.Listen()
	if !slices.Equal(want.UIDs, []int64{5, 100}) || !slices.Equal(want.Events, []string{"login", "logout"}) {
		t.Fatalf("WithListen did not normalise the lists: %+v", want)
	}
	stop := runSession(t, s, nopHandler)

	waitListeningOn(t, s, g, 1)
	if got := g.listenOf(1); !got.Equal(want) {
		t.Fatalf("gateway state on connection 1 = %+v, want %+v", got, want)
	}
	checkReplayOrder(t, g.questsOn(1))

	for n := 2; n <= 3; n++ {
		_ = g.conn(n - 1).c.Close() // the gateway drops the link
		waitListeningOn(t, s, g, n)
		if got := g.listenOf(n); !got.Equal(want) {
			t.Fatalf("gateway state after reconnect %d = %+v, want %+v", n-1, got, want)
		}
		checkReplayOrder(t, g.questsOn(n))
	}
	if st := s.Stats(); st.Reconnects != 2 {
		t.Errorf("Stats().Reconnects = %d, want 2", st.Reconnects)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if st := s.State(); st.State != Stopped {
		t.Errorf("state after Run = %s, want stopped", st)
	}
}

// checkReplayOrder checks a connection's replay: the id-list setlisten, then
// the set-all one, both answered OK.
func checkReplayOrder(t *testing.T, qs []gwQuest) {
	t.Helper()
	if len(qs) != 2 || qs[0].method != "setlisten" || qs[0].form != "ids" ||
		qs[1].method != "setlisten" || qs[1].form != "all" || qs[0].code != 0 || qs[1].code != 0 {
		t.Fatalf("replay = %+v, want setlisten ids then setlisten all, both OK", qs)
	}
}

func TestSessionApplyListen(t *testing.T) {
	g := newFakeGateway(t)
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), testBackoff)
	ctx := context.Background()

	// Not running: the desired state changes; it is sent on connect.
	st, err := s.ApplyListen(ctx, ListenChange{Op: OpAdd, GIDs: []int64{9, 1}})
	if err != nil || !slices.Equal(st.GIDs, []int64{1, 9}) {
		t.Fatalf("ApplyListen before Run = %+v, %v; want gids [1 9], nil", st, err)
	}
	runSession(t, s, nopHandler)
	waitListeningOn(t, s, g, 1)
	if got := g.listenOf(1); !got.Equal(s.Listen()) {
		t.Fatalf("gateway state %+v, want %+v", got, s.Listen())
	}

	// Listening: each change is one quest, answered before ApplyListen
	// returns, and the gateway's state follows.
	changes := []struct {
		c      ListenChange
		method string
		form   string
	}{
		{ListenChange{Op: OpSetAll, P2P: true, Ev: true}, "setlisten", "all"},
		{ListenChange{Op: OpAdd, RIDs: []int64{42}, Events: []string{"login"}}, "addlisten", ""},
		{ListenChange{Op: OpRemove, GIDs: []int64{1}}, "removelisten", ""},
		{ListenChange{Op: OpSet, UIDs: []int64{8, 2}}, "setlisten", "ids"},
	}
	for _, tc := range changes {
		before := len(g.questsOn(1))
		st, err := s.ApplyListen(ctx, tc.c)
		if err != nil {
			t.Fatalf("ApplyListen(%s): %v", tc.c.Op, err)
		}
		qs := g.questsOn(1)
		if len(qs) != before+1 || qs[before].method != tc.method || qs[before].form != tc.form {
			t.Fatalf("ApplyListen(%s) sent %+v, want one %s %s", tc.c.Op, qs[before:], tc.method, tc.form)
		}
		if got := g.listenOf(1); !got.Equal(st) || !st.Equal(s.Listen()) {
			t.Fatalf("after %s: gateway %+v, returned %+v, desired %+v", tc.c.Op, got, st, s.Listen())
		}
	}
	// An add with nothing in it sends nothing.
	before := len(g.questsOn(1))
	if _, err := s.ApplyListen(ctx, ListenChange{Op: OpAdd}); err != nil || len(g.questsOn(1)) != before {
		t.Fatalf("empty add: err %v, %d quests sent", err, len(g.questsOn(1))-before)
	}

	// A non-retryable gateway error is returned; the desired state stays.
	g.setReject(func(_ int, method string, _ int) (int, string) {
		if method == "addlisten" {
			return 200032, "too many items"
		}
		return 0, ""
	})
	prev := s.Listen()
	st, err = s.ApplyListen(ctx, ListenChange{Op: OpAdd, UIDs: []int64{77}})
	var re *Error
	if !errors.As(err, &re) || re.Code != 200032 {
		t.Fatalf("ApplyListen rejected by the gateway: err %v, want *Error 200032", err)
	}
	if !st.Equal(prev) || !s.Listen().Equal(prev) {
		t.Fatalf("rejected change altered the desired state: returned %+v, desired %+v, want %+v", st, s.Listen(), prev)
	}
	g.setReject(nil)

	// Disconnected: the change is kept and replayed on the next connect.
	g.setRefuse(true)
	_ = g.conn(1).c.Close()
	waitState(t, s, "not listening", func(c StateChange) bool { return c.State != Listening })
	before = len(g.questsOn(0))
	st, err = s.ApplyListen(ctx, ListenChange{Op: OpAdd, GIDs: []int64{5}})
	if err != nil || !slices.Contains(st.GIDs, 5) {
		t.Fatalf("ApplyListen while disconnected = %+v, %v; want gid 5 added, nil", st, err)
	}
	if n := len(g.questsOn(0)); n != before {
		t.Fatalf("ApplyListen while disconnected sent %d quests", n-before)
	}
	g.setRefuse(false)
	waitListeningOn(t, s, g, 2)
	if got := g.listenOf(2); !got.Equal(s.Listen()) {
		t.Fatalf("after reconnect the gateway holds %+v, want %+v", got, s.Listen())
	}

	if _, err := s.ApplyListen(ctx, ListenChange{Op: 99}); err == nil {
		t.Fatal("ApplyListen with an unknown op: want an error")
	}
}

func TestSessionApplyListenRetryableErrorResyncs(t *testing.T) {
	g := newFakeGateway(t)
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), WithListen(sampleListen), testBackoff)
	runSession(t, s, nopHandler)
	waitListeningOn(t, s, g, 1)

	g.setReject(func(_ int, method string, _ int) (int, string) {
		if method == "addlisten" {
			return CodeFrequency, "frequency limited"
		}
		return 0, ""
	})
	st, err := s.ApplyListen(context.Background(), ListenChange{Op: OpAdd, RIDs: []int64{11}})
	if err != nil || !slices.Equal(st.RIDs, []int64{11}) {
		t.Fatalf("ApplyListen with a retryable error = %+v, %v; want rid 11 kept, nil", st, err)
	}
	// The session replays the whole state on the same connection.
	g.waitFor("a replay on connection 1", func() bool {
		last := g.quests[len(g.quests)-1]
		return last.method == "setlisten" && last.form == "all" && slices.Equal(g.conns[0].listen.RIDs, []int64{11})
	})
	qs := g.questsOn(1)
	checkReplayOrder(t, qs[len(qs)-2:])
	if got := g.listenOf(1); !got.Equal(s.Listen()) {
		t.Fatalf("after the resync the gateway holds %+v, want %+v", got, s.Listen())
	}
	if n := g.numConns(); n != 1 {
		t.Fatalf("resync opened %d connections, want the same one", n)
	}
}

// TestSessionSameSignRetry follows vector same_sign_retry: the first answer
// is 200006; the session re-signs with a fresh salt and ts = now + 5 s and
// sends the same quest once more, on the same connection.
func TestSessionSameSignRetry(t *testing.T) {
	var vec *questVec
	for _, v := range loadVectors[questVec](t, "rtm_quests.json") {
		if v.Name == "same_sign_retry" {
			vec = &v
		}
	}
	if vec == nil || len(vec.Frames) != 3 {
		t.Fatal("vector same_sign_retry not found or not 3 frames")
	}
	errFrame, err := DecodeFrame(unhex(t, vec.Frames[1].FrameHex), 0)
	if err != nil {
		t.Fatal(err)
	}
	sameSign := DecodeError(errFrame)
	if sameSign.Code != CodeSameSign {
		t.Fatalf("vector error answer has code %d", sameSign.Code)
	}

	g := newFakeGateway(t)
	g.setReject(func(conn int, method string, n int) (int, string) {
		if conn == 1 && method == "setlisten" && n == 0 {
			return sameSign.Code, sameSign.Ex
		}
		return 0, ""
	})
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), WithListen(sampleListen), testBackoff)
	runSession(t, s, nopHandler)
	waitListeningOn(t, s, g, 1)

	qs := g.questsOn(1)
	if len(qs) != 3 {
		t.Fatalf("quests on connection 1: %+v, want rejected setlisten, its re-send, set-all", qs)
	}
	first, again := qs[0], qs[1]
	if first.code != CodeSameSign || again.code != 0 || again.method != first.method || again.form != "ids" {
		t.Fatalf("first %+v, re-send %+v: want the same quest re-sent after 200006", first, again)
	}
	if again.sig.Salt == first.sig.Salt || again.sig.Sign == first.sig.Sign {
		t.Fatalf("re-send reused salt or sign: %+v vs %+v", again.sig, first.sig)
	}
	if d := again.sig.TS - again.at.Unix(); d < 4 || d > 6 {
		t.Fatalf("re-send ts is now%+ds, want now+5s", d)
	}
	if d := first.sig.TS - first.at.Unix(); d < -1 || d > 1 {
		t.Fatalf("first ts is now%+ds, want now", d)
	}
	if got := g.listenOf(1); !got.Equal(s.Listen()) {
		t.Fatalf("gateway state %+v, want %+v", got, s.Listen())
	}
}

// TestSessionSameSignTwice: the re-send happens once only; a second 200006
// drops the connection and the next one starts afresh.
func TestSessionSameSignTwice(t *testing.T) {
	g := newFakeGateway(t)
	g.setReject(func(conn int, method string, _ int) (int, string) {
		if conn == 1 && method == "setlisten" {
			return CodeSameSign, "same sign"
		}
		return 0, ""
	})
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), testBackoff)
	runSession(t, s, nopHandler)
	waitListeningOn(t, s, g, 2)
	if qs := g.questsOn(1); len(qs) != 2 || qs[0].code != CodeSameSign || qs[1].code != CodeSameSign {
		t.Fatalf("connection 1 got %+v, want exactly two rejected setlisten", qs)
	}
}

// TestSessionConfigErrorKeepsRetrying: a wrong secret (200002) never stops
// the session; it retries with a growing, capped back-off, says why in the
// state (without the secret) and logs the error once.
func TestSessionConfigErrorKeepsRetrying(t *testing.T) {
	g := newFakeGateway(t)
	const wrong = Secret("wrong-secret-do-not-print")
	logs := &logCapture{}
	sched := Backoff{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond, FastTries: 1, FastJitter: time.Millisecond}
	s := NewSession(g.addr(), NewSigner(testPID, wrong),
		WithReconnectSchedule(sched),
		WithSessionLogger(slog.New(logs)),
		func(o *sessionOptions) { o.randN = randMax }, // every delay at its upper bound
	)
	stop := runSession(t, s, nopHandler)

	const attempts = 6
	c := waitState(t, s, "the config error reported", func(c StateChange) bool {
		return c.State == Disconnected && c.Attempt >= 2 && strings.Contains(c.Reason, "config error")
	})
	for _, want := range []string{"200002", "invalid pid or sign", "check the RTM project id and secret key", "next attempt in"} {
		if !strings.Contains(c.Reason, want) {
			t.Errorf("state reason %q lacks %q", c.Reason, want)
		}
	}
	g.waitFor(fmt.Sprintf("%d connections", attempts), func() bool { return len(g.conns) >= attempts })
	if s.State().State == Stopped || s.State().State == Listening {
		t.Fatalf("state %s after repeated config errors", s.State())
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled only after cancel", err)
	}

	// The gaps between attempts follow the schedule: attempt 1 fails →
	// fast try (≤ 1 ms); then 20, 40, 80, 80 ms (capped).
	g.mu.Lock()
	acc := slices.Clone(g.accepts)
	g.mu.Unlock()
	wantMin := []time.Duration{0, 20, 40, 80, 80}
	for i, w := range wantMin {
		gap := acc[i+1].Sub(acc[i])
		if gap < w*time.Millisecond {
			t.Errorf("gap before attempt %d = %s, want ≥ %dms", i+2, gap, w)
		}
		if i >= 3 && gap > 80*time.Millisecond+time.Second {
			t.Errorf("gap before attempt %d = %s: the 80ms cap was not applied", i+2, gap)
		}
	}
	for _, q := range g.questsOn(0) {
		if q.code != CodeInvalidSign {
			t.Fatalf("quest %+v not rejected with 200002", q)
		}
	}
	errs := logs.records(slog.LevelError)
	if len(errs) != 1 {
		t.Errorf("config error logged at error level %d times over %d attempts, want once: %q", len(errs), len(acc), errs)
	}
	if all := logs.all(); strings.Contains(all, string(wrong)) || strings.Contains(s.State().Reason, string(wrong)) {
		t.Fatal("the secret appears in the logs or the state reason")
	}
}

// TestSessionFlashDisconnects: a connection lost soon after it started
// listening counts as a failure, so a gateway that keeps dropping the link
// meets a growing back-off; one that listened longer resets the count.
func TestSessionFlashDisconnects(t *testing.T) {
	g := newFakeGateway(t)
	s := NewSession(g.addr(), NewSigner(testPID, testSecret),
		WithReconnectSchedule(Backoff{Min: 50 * time.Millisecond, Max: 400 * time.Millisecond, FastTries: 1, FastJitter: time.Millisecond}),
		WithFlashDisconnect(300*time.Millisecond),
		func(o *sessionOptions) { o.randN = randMax },
	)
	runSession(t, s, nopHandler)

	acceptedAt := func(n int) time.Time {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.accepts[n-1]
	}
	// Connections 1-4 are dropped at once: waits of ≈0, 50, 100, 200 ms.
	wantMin := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	for n := 1; n <= 4; n++ {
		waitListeningOn(t, s, g, n)
		dropped := time.Now()
		_ = g.conn(n).c.Close()
		waitListeningOn(t, s, g, n+1)
		if gap := acceptedAt(n + 1).Sub(dropped); gap < wantMin[n-1] {
			t.Errorf("redial %d came %s after the drop, want ≥ %s", n, gap, wantMin[n-1])
		}
	}
	// Connection 5 listens past the flash threshold: its loss is followed
	// by a fast try, not the 400 ms the run of failures had reached.
	time.Sleep(400 * time.Millisecond) // the connection must live this long; nothing to wait for
	dropped := time.Now()
	_ = g.conn(5).c.Close()
	waitListeningOn(t, s, g, 6)
	if gap := acceptedAt(6).Sub(dropped); gap >= 50*time.Millisecond {
		t.Errorf("redial after a healthy connection came %s after the drop, want a fast try (< 50ms)", gap)
	}
}

func TestSessionPushesInOrderAndDuplicates(t *testing.T) {
	g := newFakeGateway(t)
	type got struct {
		scope Scope
		mid   int64
		msg   string
	}
	var (
		mu   sync.Mutex
		seen []got
		held []Reply
	)
	h := PushHandlerFunc(func(_ context.Context, p *Push, r Reply) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, got{p.Scope, p.MID, string(p.Msg)})
		if p.MID >= 1000 { // hold these: not yet safe
			held = append(held, r)
			return
		}
		_ = r.OK()
	})
	numHeld := func() int { mu.Lock(); defer mu.Unlock(); return len(held) }
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), testBackoff)
	runSession(t, s, h)
	waitListeningOn(t, s, g, 1)

	// Order: 30 pushes of three scopes go out back to back. Mids: p2p 1, 4,
	// 7, …; group 2, 5, …; room 3, 6, ….
	var answers []<-chan error
	var want []got
	for i := range int64(30) {
		scope := []Scope{ScopeP2P, ScopeGroup, ScopeRoom}[i%3]
		answers = append(answers, g.push(1, chat(scope, 1, 2, i+1, fmt.Sprint("m", i))))
		want = append(want, got{scope, i + 1, fmt.Sprint("m", i)})
	}
	for i, a := range answers {
		if err := <-a; err != nil {
			t.Fatalf("push %d answered %v", i, err)
		}
	}
	mu.Lock()
	if !slices.Equal(seen, want) {
		t.Fatalf("handler saw %v, want %v", seen, want)
	}
	seen = nil
	mu.Unlock()

	// A redelivery of an answered push is answered at once, not handed on.
	// The same mid in another scope, or from another sender, is new.
	for _, p := range []*Push{
		chat(ScopeP2P, 1, 2, 4, "dup"), chat(ScopeGroup, 1, 2, 5, "dup"),
		chat(ScopeRoom, 1, 2, 4, "other scope"), chat(ScopeP2P, 9, 2, 4, "other sender"),
	} {
		if err := <-g.push(1, p); err != nil {
			t.Fatalf("push %s answered %v, want OK", p, err)
		}
	}
	mu.Lock()
	if len(seen) != 2 || seen[0].msg != "other scope" || seen[1].msg != "other sender" {
		t.Fatalf("handler saw %v, want only the other scope's and the other sender's", seen)
	}
	mu.Unlock()
	if d := s.Stats().DuplicatesDropped; d != 2 {
		t.Fatalf("DuplicatesDropped = %d, want 2", d)
	}

	// A push not yet answered is not a duplicate: its redelivery is handed
	// on again, and only once OK was called is a third copy dropped.
	first := g.push(1, chat(ScopeRoom, 3, 4, 1000, "slow"))
	waitFor(t, "the slow push handed on", func() bool { return numHeld() == 1 })
	second := g.push(1, chat(ScopeRoom, 3, 4, 1000, "slow"))
	waitFor(t, "the redelivery handed on", func() bool { return numHeld() == 2 })
	mu.Lock()
	for _, r := range held {
		if err := r.OK(); err != nil {
			t.Fatalf("OK on a live connection: %v", err)
		}
	}
	mu.Unlock()
	if err1, err2 := <-first, <-second; err1 != nil || err2 != nil {
		t.Fatalf("held pushes answered %v, %v", err1, err2)
	}
	if err := <-g.push(1, chat(ScopeRoom, 3, 4, 1000, "slow")); err != nil {
		t.Fatal(err)
	}
	if n := numHeld(); n != 2 {
		t.Fatalf("third copy after OK reached the handler (%d held)", n)
	}

	// Events are not filtered.
	ev := &Push{Scope: ScopeEvent, PID: testPID, Event: []byte("login"), UID: 5, Time: 1717000000, Endpoint: []byte("1.2.3.4:5")}
	for range 2 {
		if err := <-g.push(1, ev); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.DuplicatesDropped != 3 || st.PushesReceived != 30+4+3+2 {
		t.Fatalf("stats %+v: want 3 duplicates dropped, 39 pushes received", st)
	}
	if st.DedupEntries != 30+2+1 {
		t.Fatalf("DedupEntries = %d, want 33 (30 + 2 new + the slow one)", st.DedupEntries)
	}
}

func TestSessionDedupOff(t *testing.T) {
	if d := NewSession("x:1", nil, WithDedup(time.Minute, 0)).dedup; d == nil || d.max != DefaultDedupMaxEntries || d.window != int64(time.Minute) {
		t.Fatalf("WithDedup(1m, 0): filter %+v, want on with the default size", d)
	}
	if d := NewSession("x:1", nil).dedup; d == nil || d.window != int64(DefaultDedupWindow) {
		t.Fatal("the filter should be on by default for 300 s")
	}
	g := newFakeGateway(t)
	var mu sync.Mutex
	count := 0
	h := PushHandlerFunc(func(_ context.Context, _ *Push, r Reply) {
		mu.Lock()
		count++
		mu.Unlock()
		_ = r.OK()
	})
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), testBackoff, WithDedup(0, 0))
	runSession(t, s, h)
	waitListeningOn(t, s, g, 1)
	for range 3 {
		if err := <-g.push(1, chat(ScopeP2P, 1, 2, 7, "x")); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if count != 3 || s.Stats().DuplicatesDropped != 0 {
		t.Fatalf("with the filter off: %d handled, %d dropped; want 3, 0", count, s.Stats().DuplicatesDropped)
	}
}

func TestSessionPingUnknownAndInvalid(t *testing.T) {
	g := newFakeGateway(t)
	var (
		mu      sync.Mutex
		invalid []string
		raws    [][]byte
		others  int
	)
	h := PushHandlerFunc(func(_ context.Context, p *Push, r Reply) {
		mu.Lock()
		defer mu.Unlock()
		if p.Err != nil {
			invalid = append(invalid, p.Err.Error())
			raws = append(raws, bytes.Clone(p.Raw))
			_ = r.Error(CodeDecoding, "undecodable push")
			return
		}
		others++
		_ = r.OK()
	})
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), testBackoff)
	runSession(t, s, h)
	waitListeningOn(t, s, g, 1)

	// The gateway's ping is answered OK by the session itself.
	for range 3 {
		if err := <-g.send(1, "ping", nil); err != nil {
			t.Fatalf("ping answered %v, want OK", err)
		}
	}
	if n := s.Stats().PingsAnswered; n != 3 {
		t.Fatalf("PingsAnswered = %d, want 3", n)
	}

	// A push that does not decode reaches the handler with Err and Raw.
	bad := []byte{0x81, 0xa4, 'f', 'r', 'o', 'm', 0xa1, 'x'} // {from: "x"}
	err := <-g.send(1, "pushmsg", bad)
	var re *Error
	if !errors.As(err, &re) || re.Code != CodeDecoding {
		t.Fatalf("invalid push answered %v, want the handler's error answer", err)
	}
	mu.Lock()
	if len(invalid) != 1 || !strings.Contains(invalid[0], `key "from"`) {
		t.Fatalf("handler got invalid pushes %q", invalid)
	}
	if !bytes.HasSuffix(raws[0], bad) || !bytes.HasPrefix(raws[0], []byte("FPNN")) {
		t.Fatalf("p.Raw = %x, want the whole frame", raws[0])
	}
	mu.Unlock()
	if n := s.Stats().InvalidPushes; n != 1 {
		t.Fatalf("InvalidPushes = %d, want 1", n)
	}

	// An unknown two-way quest gets 20004, like the official client
	// (vector error_answer_unknown_method).
	err = <-g.send(1, "whatever", nil)
	if !errors.As(err, &re) || re.Code != CodeUnknownMethod || re.Ex != "Method function is unconfiged." {
		t.Fatalf("unknown method answered %v, want 20004 \"Method function is unconfiged.\"", err)
	}
	// An unknown one-way quest is ignored and the link stays up.
	if err := g.conn(1).c.Send("whatever", nil); err != nil {
		t.Fatal(err)
	}
	if err := <-g.push(1, chat(ScopeP2P, 1, 2, 1, "still here")); err != nil {
		t.Fatalf("push after the unknown quests: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if others != 1 || g.numConns() != 1 {
		t.Fatalf("handled %d valid pushes on %d connections, want 1 on 1", others, g.numConns())
	}
}

// TestSessionConcurrentListenAndReconnects: listen changes racing with
// dropped connections and replays still end with the gateway holding
// exactly the desired state.
func TestSessionConcurrentListenAndReconnects(t *testing.T) {
	g := newFakeGateway(t)
	s := NewSession(g.addr(), NewSigner(testPID, testSecret), WithListen(sampleListen), testBackoff)
	runSession(t, s, nopHandler)
	waitListeningOn(t, s, g, 1)

	ctx := context.Background()
	var changes []ListenChange
	expect := s.Listen()
	for i := range int64(60) {
		var c ListenChange
		switch i % 4 {
		case 0:
			c = ListenChange{Op: OpAdd, GIDs: []int64{i, i + 1}, UIDs: []int64{i * 10}}
		case 1:
			c = ListenChange{Op: OpRemove, GIDs: []int64{i - 1}}
		case 2:
			c = ListenChange{Op: OpSetAll, P2P: i%3 == 0, Room: true}
		case 3:
			c = ListenChange{Op: OpAdd, Events: []string{fmt.Sprint("ev", i)}}
		}
		changes = append(changes, c)
		expect = expect.Apply(c)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, c := range changes {
			if _, err := s.ApplyListen(ctx, c); err != nil {
				t.Errorf("ApplyListen %d: %v", i, err)
				return
			}
		}
	}()
	for n := 1; n <= 5; n++ {
		waitListeningOn(t, s, g, n)
		_ = g.conn(n).c.Close()
	}
	<-done
	waitListeningOn(t, s, g, 6)
	want := s.Listen()
	g.waitFor("the last connection to hold the desired state", func() bool {
		return g.conns[5].listen.Equal(want)
	})
	if !want.Equal(expect) {
		t.Fatalf("desired state %+v, want %+v", want, expect)
	}
}

func TestSessionRunStopsAndLeaksNothing(t *testing.T) {
	g := newFakeGateway(t)
	base := stableGoroutines(t, -1)

	s := NewSession(g.addr(), NewSigner(testPID, testSecret), WithListen(sampleListen), testBackoff)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, nopHandler) }()
	waitListeningOn(t, s, g, 1)
	if err := s.Run(ctx, nopHandler); !errors.Is(err, ErrSessionRunning) {
		t.Fatalf("second Run = %v, want ErrSessionRunning", err)
	}
	if err := <-g.push(1, chat(ScopeP2P, 1, 2, 1, "x")); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
	if st := s.State(); st.State != Stopped {
		t.Fatalf("state %s, want stopped", st)
	}
	g.waitFor("the gateway to see the close", func() bool {
		select {
		case <-g.conns[0].c.Done():
			return true
		default:
			return false
		}
	})
	stableGoroutines(t, base)

	// Cancel during the back-off: Run returns at once.
	g.setRefuse(true)
	s2 := NewSession(g.addr(), NewSigner(testPID, testSecret),
		WithReconnectSchedule(Backoff{Min: time.Hour, Max: time.Hour, FastTries: -1}))
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- s2.Run(ctx2, nopHandler) }()
	waitState(t, s2, "back-off", func(c StateChange) bool { return c.State == Disconnected && c.Attempt == 1 })
	cancel2()
	select {
	case err := <-errc2:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return when cancelled during the back-off")
	}
	stableGoroutines(t, base)
}

func TestSessionWatchKeepsLatest(t *testing.T) {
	var hooked []State
	s := NewSession("127.0.0.1:1", NewSigner(testPID, testSecret),
		WithStateHook(func(c StateChange) { hooked = append(hooked, c.State) }))
	ch, cancel := s.Watch()
	if c := <-ch; c.State != Disconnected || c.Reason != "not started" {
		t.Fatalf("first watched state %s, want disconnected: not started", c)
	}
	s.setState(Connecting, "", 1)
	s.setState(Connected, "", 1)
	s.setState(Listening, "", 1) // the watcher is slow: only this one is kept
	if c := <-ch; c.State != Listening {
		t.Fatalf("slow watcher got %s, want the latest (listening)", c)
	}
	select {
	case c := <-ch:
		t.Fatalf("unexpected extra change %s", c)
	default:
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed by cancel")
	}
	s.setState(Disconnected, "x", 2) // no watcher left: must not block or panic
	if !slices.Equal(hooked, []State{Connecting, Connected, Listening, Disconnected}) {
		t.Fatalf("hook saw %v", hooked)
	}
	for st, want := range map[State]string{Disconnected: "disconnected", Connecting: "connecting", Connected: "connected", Listening: "listening", Stopped: "stopped", 9: "state 9"} {
		if st.String() != want {
			t.Errorf("State(%d).String() = %q, want %q", st, st, want)
		}
	}
}

// ---- small helpers ----

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// stableGoroutines waits for the goroutine count to settle; with want ≥ 0 it
// waits for it to come back to want and fails if it does not.
func stableGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	last, same := -1, 0
	for time.Now().Before(deadline) {
		n := runtime.NumGoroutine()
		if want >= 0 && n <= want {
			return n
		}
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		if want < 0 && same >= 20 {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
	if want >= 0 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("goroutines: %d, want %d (baseline)\n%s", runtime.NumGoroutine(), want, buf)
	}
	return last
}

// logCapture is a slog.Handler that keeps every record's text.
type logCapture struct {
	mu   sync.Mutex
	recs []capturedRecord
}

type capturedRecord struct {
	level slog.Level
	text  string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, capturedRecord{r.Level, b.String()})
	l.mu.Unlock()
	return nil
}

func (l *logCapture) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{l: l, attrs: attrs}
}

func (l *logCapture) WithGroup(string) slog.Handler { return l }

func (l *logCapture) records(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.level == level {
			out = append(out, r.text)
		}
	}
	return out
}

func (l *logCapture) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.recs {
		b.WriteString(r.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// attrHandler adds With attributes to a logCapture's records.
type attrHandler struct {
	l     *logCapture
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(ctx context.Context, lv slog.Level) bool { return true }

func (h *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	return h.l.Handle(ctx, r)
}

func (h *attrHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{l: h.l, attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h *attrHandler) WithGroup(string) slog.Handler { return h }
