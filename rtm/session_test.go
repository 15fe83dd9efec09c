package rtm_test

// Session tests against the gateway simulator (rtm/rtmsim): it checks every
// signature, keeps each connection's listen state, and its hooks refuse
// quests or connections, report every quest and push or ping on demand.
// Tests that need unexported state are in session_internal_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

const (
	testPID    = 11000001
	testSecret = rtm.Secret("s3cr3t-key-for-tests")
	// waitLimit bounds every wait for a state or an event: generous, as a
	// loaded 2-core machine may be slow; a passing test never waits it out.
	waitLimit = 10 * time.Second
)

// ---- the gateway: rtmsim plus a log of the quests it answered ----

type gateway struct {
	*rtmsim.Server
	mu     sync.Mutex
	quests []rtmsim.Quest
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{}
	g.Server = rtmsim.New(rtmsim.Config{PID: testPID, Secret: testSecret, OnQuest: g.record})
	if err := g.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func (g *gateway) record(q rtmsim.Quest) {
	g.mu.Lock()
	g.quests = append(g.quests, q)
	g.mu.Unlock()
}

// questsOn returns the quests received on connection n (0: all).
func (g *gateway) questsOn(n uint64) []rtmsim.Quest {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []rtmsim.Quest
	for _, q := range g.quests {
		if n == 0 || q.Conn == n {
			out = append(out, q)
		}
	}
	return out
}

// listenOf returns the listen state the gateway holds for live connection n.
func (g *gateway) listenOf(t *testing.T, n uint64) rtm.ListenState {
	t.Helper()
	st, ok := g.ListenOf(n)
	if !ok {
		t.Fatalf("gateway: connection %d is not live", n)
	}
	return st
}

// drop closes connection n, as a gateway dropping the link.
func (g *gateway) drop(t *testing.T, n uint64) {
	t.Helper()
	if err := g.Drop(n); err != nil {
		t.Fatal(err)
	}
}

func chat(scope rtm.Scope, from, to, mid int64, text string) *rtm.Push {
	return &rtm.Push{Scope: scope, From: from, To: to, MType: 30, MID: mid, Msg: []byte(text), MTime: 1717000000000 + mid}
}

// ---- session helpers ----

// testBackoff keeps reconnects quick in tests.
var testBackoff = rtm.WithReconnectSchedule(rtm.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond, FastTries: 2, FastJitter: time.Millisecond})

// runSession starts s.Run in a goroutine; the returned stop cancels it and
// returns Run's error.
func runSession(t *testing.T, s *rtm.Session, h rtm.PushHandler) (stop func() error) {
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
func waitState(t *testing.T, s *rtm.Session, what string, cond func(rtm.StateChange) bool) rtm.StateChange {
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

func isListening(c rtm.StateChange) bool { return c.State == rtm.Listening }

// waitListening waits until the session listens on a gateway connection
// numbered above after: the gateway answered the replay's first quest (the
// id-list setlisten) on it and the session says Listening, which it does
// once the whole replay is answered (not a stale Listening of an older connection,
// which ended before the new one was dialled). It returns the connection.
func waitListening(t *testing.T, s *rtm.Session, g *gateway, after uint64) uint64 {
	t.Helper()
	var conn uint64
	testkit.Eventually(t, waitLimit, func() bool {
		for _, q := range g.questsOn(0) {
			if q.Conn > after && q.Method == "setlisten" && q.Form == "ids" && q.Code == 0 {
				conn = q.Conn
				return true
			}
		}
		return false
	}, "a replay on a connection after %d", after)
	waitState(t, s, fmt.Sprintf("listening on connection %d", conn), isListening)
	return conn
}

// nopHandler answers every push OK at once.
var nopHandler = rtm.PushHandlerFunc(func(_ context.Context, _ *rtm.Push, r rtm.Reply) { _ = r.OK() })

var sampleListen = rtm.ListenState{
	Group:  true,
	GIDs:   []int64{7, 3},
	UIDs:   []int64{100, 5, 100},
	Events: []string{"logout", "login"},
}

// checkReplayOrder checks a connection's replay: the id-list setlisten, then
// the set-all one, both answered OK.
func checkReplayOrder(t *testing.T, qs []rtmsim.Quest) {
	t.Helper()
	if len(qs) != 2 || qs[0].Method != "setlisten" || qs[0].Form != "ids" ||
		qs[1].Method != "setlisten" || qs[1].Form != "all" || qs[0].Code != 0 || qs[1].Code != 0 {
		t.Fatalf("replay = %+v, want setlisten ids then setlisten all, both OK", qs)
	}
}

// ---- tests ----

// TestSessionReplayListsOnly checks that a replay without any "all" flag is
// the id-list setlisten alone, as the official Go SDK sends it (spec §7.4):
// a flags-only setlisten after it could clear the lists on a gateway that
// treats absent lists as empty.
func TestSessionReplayListsOnly(t *testing.T) {
	g := newGateway(t)
	want := rtm.ListenState{UIDs: []int64{10001}, GIDs: []int64{7}}
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), rtm.WithListen(want), testBackoff)
	runSession(t, s, nopHandler)
	c := waitListening(t, s, g, 0)
	qs := g.questsOn(c)
	if len(qs) != 1 || qs[0].Method != "setlisten" || qs[0].Form != "ids" || qs[0].Code != 0 {
		t.Fatalf("replay = %+v, want only the id-list setlisten", qs)
	}
	if got := g.listenOf(t, c); !got.Equal(want) {
		t.Fatalf("gateway state = %+v, want %+v", got, want)
	}
}

func TestSessionReplayAfterDrop(t *testing.T) {
	g := newGateway(t)
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), rtm.WithListen(sampleListen), testBackoff)
	want := s.Listen()
	if !slices.Equal(want.UIDs, []int64{5, 100}) || !slices.Equal(want.Events, []string{"login", "logout"}) {
		t.Fatalf("WithListen did not normalise the lists: %+v", want)
	}
	stop := runSession(t, s, nopHandler)

	c := waitListening(t, s, g, 0)
	if got := g.listenOf(t, c); !got.Equal(want) {
		t.Fatalf("gateway state on connection %d = %+v, want %+v", c, got, want)
	}
	checkReplayOrder(t, g.questsOn(c))

	for i := 1; i <= 2; i++ {
		g.drop(t, c) // the gateway drops the link
		c = waitListening(t, s, g, c)
		if got := g.listenOf(t, c); !got.Equal(want) {
			t.Fatalf("gateway state after reconnect %d = %+v, want %+v", i, got, want)
		}
		checkReplayOrder(t, g.questsOn(c))
	}
	if st := s.Stats(); st.Reconnects != 2 {
		t.Errorf("Stats().Reconnects = %d, want 2", st.Reconnects)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if st := s.State(); st.State != rtm.Stopped {
		t.Errorf("state after Run = %s, want stopped", st)
	}
}

func TestSessionApplyListen(t *testing.T) {
	g := newGateway(t)
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), testBackoff)
	ctx := context.Background()

	// Not running: the desired state changes; it is sent on connect.
	st, err := s.ApplyListen(ctx, rtm.ListenChange{Op: rtm.OpAdd, GIDs: []int64{9, 1}})
	if err != nil || !slices.Equal(st.GIDs, []int64{1, 9}) {
		t.Fatalf("ApplyListen before Run = %+v, %v; want gids [1 9], nil", st, err)
	}
	runSession(t, s, nopHandler)
	c1 := waitListening(t, s, g, 0)
	if got := g.listenOf(t, c1); !got.Equal(s.Listen()) {
		t.Fatalf("gateway state %+v, want %+v", got, s.Listen())
	}

	// Listening: each change is one quest, answered before ApplyListen
	// returns, and the gateway's state follows.
	changes := []struct {
		c      rtm.ListenChange
		method string
		form   string
	}{
		{rtm.ListenChange{Op: rtm.OpSetAll, P2P: true, Ev: true}, "setlisten", "all"},
		{rtm.ListenChange{Op: rtm.OpAdd, RIDs: []int64{42}, Events: []string{"login"}}, "addlisten", ""},
		{rtm.ListenChange{Op: rtm.OpRemove, GIDs: []int64{1}}, "removelisten", ""},
		{rtm.ListenChange{Op: rtm.OpSet, UIDs: []int64{8, 2}}, "setlisten", "ids"},
	}
	for _, tc := range changes {
		before := len(g.questsOn(c1))
		st, err := s.ApplyListen(ctx, tc.c)
		if err != nil {
			t.Fatalf("ApplyListen(%s): %v", tc.c.Op, err)
		}
		qs := g.questsOn(c1)
		if len(qs) != before+1 || qs[before].Method != tc.method || qs[before].Form != tc.form {
			t.Fatalf("ApplyListen(%s) sent %+v, want one %s %s", tc.c.Op, qs[before:], tc.method, tc.form)
		}
		if got := g.listenOf(t, c1); !got.Equal(st) || !st.Equal(s.Listen()) {
			t.Fatalf("after %s: gateway %+v, returned %+v, desired %+v", tc.c.Op, got, st, s.Listen())
		}
	}
	// An add with nothing in it sends nothing.
	before := len(g.questsOn(c1))
	if _, err := s.ApplyListen(ctx, rtm.ListenChange{Op: rtm.OpAdd}); err != nil || len(g.questsOn(c1)) != before {
		t.Fatalf("empty add: err %v, %d quests sent", err, len(g.questsOn(c1))-before)
	}

	// A non-retryable gateway error is returned; the desired state stays.
	g.SetRejectFunc(func(q rtmsim.Quest) (int, string) {
		if q.Method == "addlisten" {
			return 200032, "too many items"
		}
		return 0, ""
	})
	prev := s.Listen()
	st, err = s.ApplyListen(ctx, rtm.ListenChange{Op: rtm.OpAdd, UIDs: []int64{77}})
	var re *rtm.Error
	if !errors.As(err, &re) || re.Code != 200032 {
		t.Fatalf("ApplyListen rejected by the gateway: err %v, want *Error 200032", err)
	}
	if !st.Equal(prev) || !s.Listen().Equal(prev) {
		t.Fatalf("rejected change altered the desired state: returned %+v, desired %+v, want %+v", st, s.Listen(), prev)
	}
	g.SetRejectFunc(nil)

	// Disconnected: the change is kept and replayed on the next connect.
	g.SetRefuse(true)
	g.drop(t, c1)
	waitState(t, s, "not listening", func(c rtm.StateChange) bool { return c.State != rtm.Listening })
	before = len(g.questsOn(0))
	st, err = s.ApplyListen(ctx, rtm.ListenChange{Op: rtm.OpAdd, GIDs: []int64{5}})
	if err != nil || !slices.Contains(st.GIDs, 5) {
		t.Fatalf("ApplyListen while disconnected = %+v, %v; want gid 5 added, nil", st, err)
	}
	if n := len(g.questsOn(0)); n != before {
		t.Fatalf("ApplyListen while disconnected sent %d quests", n-before)
	}
	g.SetRefuse(false)
	c2 := waitListening(t, s, g, c1)
	if got := g.listenOf(t, c2); !got.Equal(s.Listen()) {
		t.Fatalf("after reconnect the gateway holds %+v, want %+v", got, s.Listen())
	}

	if _, err := s.ApplyListen(ctx, rtm.ListenChange{Op: 99}); err == nil {
		t.Fatal("ApplyListen with an unknown op: want an error")
	}
}

func TestSessionApplyListenRetryableErrorResyncs(t *testing.T) {
	g := newGateway(t)
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), rtm.WithListen(sampleListen), testBackoff)
	runSession(t, s, nopHandler)
	c := waitListening(t, s, g, 0)

	g.SetRejectFunc(func(q rtmsim.Quest) (int, string) {
		if q.Method == "addlisten" {
			return rtm.CodeFrequency, "frequency limited"
		}
		return 0, ""
	})
	st, err := s.ApplyListen(context.Background(), rtm.ListenChange{Op: rtm.OpAdd, RIDs: []int64{11}})
	if err != nil || !slices.Equal(st.RIDs, []int64{11}) {
		t.Fatalf("ApplyListen with a retryable error = %+v, %v; want rid 11 kept, nil", st, err)
	}
	// The session replays the whole state on the same connection.
	testkit.Eventually(t, waitLimit, func() bool {
		qs := g.questsOn(c)
		last := qs[len(qs)-1]
		l, _ := g.ListenOf(c)
		return last.Method == "setlisten" && last.Form == "all" && slices.Equal(l.RIDs, []int64{11})
	}, "a replay on connection %d", c)
	qs := g.questsOn(c)
	checkReplayOrder(t, qs[len(qs)-2:])
	if got := g.listenOf(t, c); !got.Equal(s.Listen()) {
		t.Fatalf("after the resync the gateway holds %+v, want %+v", got, s.Listen())
	}
	if n := len(g.AcceptTimes()); n != 1 {
		t.Fatalf("resync opened %d connections, want the same one", n)
	}
}

// TestSessionSameSignRetry follows vector same_sign_retry: the first answer
// is 200006; the session re-signs with a fresh salt and ts = now + 5 s and
// sends the same quest once more, on the same connection.
func TestSessionSameSignRetry(t *testing.T) {
	sameSign := rtm.SameSignVectorAnswer(t)
	if sameSign.Code != rtm.CodeSameSign {
		t.Fatalf("vector error answer has code %d", sameSign.Code)
	}

	g := newGateway(t)
	g.SetRejectFunc(func(q rtmsim.Quest) (int, string) {
		if q.Conn == 1 && q.Method == "setlisten" && q.N == 0 {
			return sameSign.Code, sameSign.Ex
		}
		return 0, ""
	})
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), rtm.WithListen(sampleListen), testBackoff)
	runSession(t, s, nopHandler)
	c := waitListening(t, s, g, 0)

	qs := g.questsOn(c)
	if c != 1 || len(qs) != 3 {
		t.Fatalf("quests on connection %d: %+v, want rejected setlisten, its re-send, set-all on connection 1", c, qs)
	}
	first, again := qs[0], qs[1]
	if first.Code != rtm.CodeSameSign || again.Code != 0 || again.Method != first.Method || again.Form != "ids" {
		t.Fatalf("first %+v, re-send %+v: want the same quest re-sent after 200006", first, again)
	}
	if again.Sig.Salt == first.Sig.Salt || again.Sig.Sign == first.Sig.Sign {
		t.Fatalf("re-send reused salt or sign: %+v vs %+v", again.Sig, first.Sig)
	}
	// ts = signing time (+ 5 s for the re-send), in whole seconds. A quest
	// arrives after it was signed, however loaded the machine, so ts −
	// arrival is at most the offset (+1 for the rounding); and it was
	// signed after the previous quest arrived, so the lower bound is taken
	// from there.
	if d := again.Sig.TS - again.At.Unix(); d > 6 || again.Sig.TS < first.At.Unix()+5 {
		t.Fatalf("re-send ts %d: arrived at %d (first at %d), want the signing time + 5 s", again.Sig.TS, again.At.Unix(), first.At.Unix())
	}
	if d := first.Sig.TS - first.At.Unix(); d > 1 {
		t.Fatalf("first ts is arrival%+ds, want the signing time", d)
	}
	if got := g.listenOf(t, c); !got.Equal(s.Listen()) {
		t.Fatalf("gateway state %+v, want %+v", got, s.Listen())
	}
}

// TestSessionSameSignTwice: the re-send happens once only; a second 200006
// drops the connection and the next one starts afresh.
func TestSessionSameSignTwice(t *testing.T) {
	g := newGateway(t)
	g.SetRejectFunc(func(q rtmsim.Quest) (int, string) {
		if q.Conn == 1 && q.Method == "setlisten" {
			return rtm.CodeSameSign, "same sign"
		}
		return 0, ""
	})
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), testBackoff)
	runSession(t, s, nopHandler)
	waitListening(t, s, g, 1)
	if qs := g.questsOn(1); len(qs) != 2 || qs[0].Code != rtm.CodeSameSign || qs[1].Code != rtm.CodeSameSign {
		t.Fatalf("connection 1 got %+v, want exactly two rejected setlisten", qs)
	}
}

// TestSessionConfigErrorKeepsRetrying: a wrong secret (200002) never stops
// the session; it retries with a growing, capped back-off, says why in the
// state (without the secret) and logs the error once.
func TestSessionConfigErrorKeepsRetrying(t *testing.T) {
	g := newGateway(t)
	const wrong = rtm.Secret("wrong-secret-do-not-print")
	logs := &logCapture{}
	sched := rtm.Backoff{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond, FastTries: 1, FastJitter: time.Millisecond}
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, wrong),
		rtm.WithReconnectSchedule(sched),
		rtm.WithSessionLogger(slog.New(logs)),
		rtm.WithRandMaxForTest(), // every delay at its upper bound
	)
	stop := runSession(t, s, nopHandler)

	const attempts = 6
	c := waitState(t, s, "the config error reported", func(c rtm.StateChange) bool {
		return c.State == rtm.Disconnected && c.Attempt >= 2 && strings.Contains(c.Reason, "config error")
	})
	for _, want := range []string{"200002", "invalid pid or sign", "check the RTM project id and secret key", "next attempt in"} {
		if !strings.Contains(c.Reason, want) {
			t.Errorf("state reason %q lacks %q", c.Reason, want)
		}
	}
	testkit.Eventually(t, waitLimit, func() bool { return len(g.AcceptTimes()) >= attempts }, "%d connections", attempts)
	if s.State().State == rtm.Stopped || s.State().State == rtm.Listening {
		t.Fatalf("state %s after repeated config errors", s.State())
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled only after cancel", err)
	}

	// The gaps between attempts follow the schedule: attempt 1 fails →
	// fast try (≤ 1 ms); then 20, 40, 80, 80 ms (capped). Lower bounds
	// only: a loaded machine makes gaps longer, never shorter; the cap is
	// checked with a second of slack.
	acc := g.AcceptTimes()
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
		if q.Code != rtm.CodeInvalidSign {
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
//
// The schedule is checked where the session announces it (the
// Disconnected state's "next attempt in …", with jitter at its upper
// bound), and the measured redial gaps only from below: on a loaded 2-core
// machine a redial may come late, never early. (It used to assert that
// the redial after a healthy connection came within 50 ms of the drop.)
func TestSessionFlashDisconnects(t *testing.T) {
	g := newGateway(t)
	var (
		mu        sync.Mutex
		announced []string // reasons of the Disconnected states, in order
	)
	hook := rtm.WithStateHook(func(c rtm.StateChange) {
		if c.State == rtm.Disconnected && strings.Contains(c.Reason, "next attempt in") {
			mu.Lock()
			announced = append(announced, c.Reason[strings.LastIndex(c.Reason, "next attempt in ")+len("next attempt in "):])
			mu.Unlock()
		}
	})
	numAnnounced := func() int { mu.Lock(); defer mu.Unlock(); return len(announced) }
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret),
		rtm.WithReconnectSchedule(rtm.Backoff{Min: 50 * time.Millisecond, Max: 400 * time.Millisecond, FastTries: 1, FastJitter: time.Millisecond}),
		rtm.WithFlashDisconnect(300*time.Millisecond),
		rtm.WithRandMaxForTest(),
		hook,
	)
	runSession(t, s, nopHandler)

	// Connections 1-4 are dropped at once: waits of ≈1, 50, 100, 200 ms.
	wantMin := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	c := waitListening(t, s, g, 0)
	for i := range 4 {
		dropped := time.Now()
		g.drop(t, c)
		next := waitListening(t, s, g, c)
		if gap := g.AcceptTimes()[next-1].Sub(dropped); gap < wantMin[i] {
			t.Errorf("redial %d came %s after the drop, want ≥ %s", i+1, gap, wantMin[i])
		}
		c = next
	}
	// Connection 5 listens past the flash threshold: its loss is followed
	// by a fast try, not the 400 ms the run of failures had reached.
	time.Sleep(400 * time.Millisecond) // the connection must live this long; nothing to wait for
	g.drop(t, c)
	waitListening(t, s, g, c)
	testkit.Eventually(t, waitLimit, func() bool { return numAnnounced() >= 5 }, "five announced back-offs")
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"1ms", "50ms", "100ms", "200ms", "1ms"}; !slices.Equal(announced, want) {
		t.Errorf("announced back-offs %q, want %q (the last one after a healthy connection: a fast try)", announced, want)
	}
}

func TestSessionPushesInOrderAndDuplicates(t *testing.T) {
	g := newGateway(t)
	type got struct {
		scope rtm.Scope
		mid   int64
		msg   string
	}
	var (
		mu   sync.Mutex
		seen []got
		held []rtm.Reply
	)
	h := rtm.PushHandlerFunc(func(_ context.Context, p *rtm.Push, r rtm.Reply) {
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
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), testBackoff)
	runSession(t, s, h)
	c := waitListening(t, s, g, 0)

	// Order: 30 pushes of three scopes go out back to back. Mids: p2p 1, 4,
	// 7, …; group 2, 5, …; room 3, 6, ….
	var answers []<-chan error
	var want []got
	for i := range int64(30) {
		scope := []rtm.Scope{rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom}[i%3]
		answers = append(answers, g.GoPush(c, chat(scope, 1, 2, i+1, fmt.Sprint("m", i))))
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
	for _, p := range []*rtm.Push{
		chat(rtm.ScopeP2P, 1, 2, 4, "dup"), chat(rtm.ScopeGroup, 1, 2, 5, "dup"),
		chat(rtm.ScopeRoom, 1, 2, 4, "other scope"), chat(rtm.ScopeP2P, 9, 2, 4, "other sender"),
	} {
		if err := <-g.GoPush(c, p); err != nil {
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
	first := g.GoPush(c, chat(rtm.ScopeRoom, 3, 4, 1000, "slow"))
	testkit.Eventually(t, waitLimit, func() bool { return numHeld() == 1 }, "the slow push handed on")
	second := g.GoPush(c, chat(rtm.ScopeRoom, 3, 4, 1000, "slow"))
	testkit.Eventually(t, waitLimit, func() bool { return numHeld() == 2 }, "the redelivery handed on")
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
	if err := <-g.GoPush(c, chat(rtm.ScopeRoom, 3, 4, 1000, "slow")); err != nil {
		t.Fatal(err)
	}
	if n := numHeld(); n != 2 {
		t.Fatalf("third copy after OK reached the handler (%d held)", n)
	}

	// Events are not filtered.
	ev := &rtm.Push{Scope: rtm.ScopeEvent, PID: testPID, Event: []byte("login"), UID: 5, Time: 1717000000, Endpoint: []byte("1.2.3.4:5")}
	for range 2 {
		if err := <-g.GoPush(c, ev); err != nil {
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
	g := newGateway(t)
	var mu sync.Mutex
	count := 0
	h := rtm.PushHandlerFunc(func(_ context.Context, _ *rtm.Push, r rtm.Reply) {
		mu.Lock()
		count++
		mu.Unlock()
		_ = r.OK()
	})
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), testBackoff, rtm.WithDedup(0, 0))
	runSession(t, s, h)
	c := waitListening(t, s, g, 0)
	for range 3 {
		if err := <-g.GoPush(c, chat(rtm.ScopeP2P, 1, 2, 7, "x")); err != nil {
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
	g := newGateway(t)
	var (
		mu      sync.Mutex
		invalid []string
		raws    [][]byte
		others  int
	)
	h := rtm.PushHandlerFunc(func(_ context.Context, p *rtm.Push, r rtm.Reply) {
		mu.Lock()
		defer mu.Unlock()
		if p.Err != nil {
			invalid = append(invalid, p.Err.Error())
			raws = append(raws, bytes.Clone(p.Raw))
			_ = r.Error(rtm.CodeDecoding, "undecodable push")
			return
		}
		others++
		_ = r.OK()
	})
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), testBackoff)
	runSession(t, s, h)
	c := waitListening(t, s, g, 0)

	// The gateway's ping is answered OK by the session itself.
	for range 3 {
		if err := <-g.Go(c, "ping", nil); err != nil {
			t.Fatalf("ping answered %v, want OK", err)
		}
	}
	if n := s.Stats().PingsAnswered; n != 3 {
		t.Fatalf("PingsAnswered = %d, want 3", n)
	}

	// A push that does not decode reaches the handler with Err and Raw.
	bad := []byte{0x81, 0xa4, 'f', 'r', 'o', 'm', 0xa1, 'x'} // {from: "x"}
	err := <-g.Go(c, "pushmsg", bad)
	var re *rtm.Error
	if !errors.As(err, &re) || re.Code != rtm.CodeDecoding {
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
	err = <-g.Go(c, "whatever", nil)
	if !errors.As(err, &re) || re.Code != rtm.CodeUnknownMethod || re.Ex != "Method function is unconfiged." {
		t.Fatalf("unknown method answered %v, want 20004 \"Method function is unconfiged.\"", err)
	}
	// An unknown one-way quest is ignored and the link stays up.
	if err := g.Send(c, "whatever", nil); err != nil {
		t.Fatal(err)
	}
	if err := <-g.GoPush(c, chat(rtm.ScopeP2P, 1, 2, 1, "still here")); err != nil {
		t.Fatalf("push after the unknown quests: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(g.AcceptTimes()); others != 1 || n != 1 {
		t.Fatalf("handled %d valid pushes on %d connections, want 1 on 1", others, n)
	}
	// The one-way quest was read before the push after it was answered.
	if n := s.Stats().UnknownQuests; n != 2 {
		t.Fatalf("UnknownQuests = %d, want 2 (one two-way, one one-way)", n)
	}
}

// TestSessionConcurrentListenAndReconnects: listen changes racing with
// dropped connections and replays still end with the gateway holding
// exactly the desired state.
func TestSessionConcurrentListenAndReconnects(t *testing.T) {
	g := newGateway(t)
	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), rtm.WithListen(sampleListen), testBackoff)
	runSession(t, s, nopHandler)
	c := waitListening(t, s, g, 0)

	ctx := context.Background()
	var changes []rtm.ListenChange
	expect := s.Listen()
	for i := range int64(60) {
		var ch rtm.ListenChange
		switch i % 4 {
		case 0:
			ch = rtm.ListenChange{Op: rtm.OpAdd, GIDs: []int64{i, i + 1}, UIDs: []int64{i * 10}}
		case 1:
			ch = rtm.ListenChange{Op: rtm.OpRemove, GIDs: []int64{i - 1}}
		case 2:
			ch = rtm.ListenChange{Op: rtm.OpSetAll, P2P: i%3 == 0, Room: true}
		case 3:
			ch = rtm.ListenChange{Op: rtm.OpAdd, Events: []string{fmt.Sprint("ev", i)}}
		}
		changes = append(changes, ch)
		expect = expect.Apply(ch)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, ch := range changes {
			if _, err := s.ApplyListen(ctx, ch); err != nil {
				t.Errorf("ApplyListen %d: %v", i, err)
				return
			}
		}
	}()
	for range 5 {
		g.drop(t, c)
		c = waitListening(t, s, g, c)
	}
	<-done
	want := s.Listen()
	testkit.Eventually(t, waitLimit, func() bool {
		l, ok := g.ListenOf(c)
		return ok && l.Equal(want)
	}, "the last connection to hold the desired state")
	if !want.Equal(expect) {
		t.Fatalf("desired state %+v, want %+v", want, expect)
	}
}

func TestSessionRunStopsAndLeaksNothing(t *testing.T) {
	g := newGateway(t)
	base := testkit.StableGoroutines()

	s := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret), rtm.WithListen(sampleListen), testBackoff)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, nopHandler) }()
	c := waitListening(t, s, g, 0)
	if err := s.Run(ctx, nopHandler); !errors.Is(err, rtm.ErrSessionRunning) {
		t.Fatalf("second Run = %v, want ErrSessionRunning", err)
	}
	if err := <-g.GoPush(c, chat(rtm.ScopeP2P, 1, 2, 1, "x")); err != nil {
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
	if st := s.State(); st.State != rtm.Stopped {
		t.Fatalf("state %s, want stopped", st)
	}
	if err := g.WaitConns(testCtx(t), 0); err != nil {
		t.Fatalf("the gateway never saw the close: %v", err)
	}
	testkit.WaitGoroutines(t, base)

	// Cancel during the back-off: Run returns at once.
	g.SetRefuse(true)
	s2 := rtm.NewSession(g.Addr(), rtm.NewSigner(testPID, testSecret),
		rtm.WithReconnectSchedule(rtm.Backoff{Min: time.Hour, Max: time.Hour, FastTries: -1}))
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- s2.Run(ctx2, nopHandler) }()
	waitState(t, s2, "back-off", func(c rtm.StateChange) bool { return c.State == rtm.Disconnected && c.Attempt == 1 })
	cancel2()
	select {
	case err := <-errc2:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return when cancelled during the back-off")
	}
	testkit.WaitGoroutines(t, base)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
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
