package rtm

// Session tests that need unexported state. The tests against a gateway
// are in session_test.go (package rtm_test, on rtmsim).

import (
	"slices"
	"testing"
	"time"
)

func TestSessionDedupOptions(t *testing.T) {
	if d := NewSession("x:1", nil, WithDedup(time.Minute, 0)).dedup; d == nil || d.max != DefaultDedupMaxEntries || d.window != int64(time.Minute) {
		t.Fatalf("WithDedup(1m, 0): filter %+v, want on with the default size", d)
	}
	if d := NewSession("x:1", nil).dedup; d == nil || d.window != int64(DefaultDedupWindow) {
		t.Fatal("the filter should be on by default for 300 s")
	}
	if d := NewSession("x:1", nil, WithDedup(0, 0)).dedup; d != nil {
		t.Fatalf("WithDedup(0, 0): filter %+v, want off", d)
	}
}

func TestSessionWatchKeepsLatest(t *testing.T) {
	var hooked []State
	s := NewSession("127.0.0.1:1", NewSigner(11000001, Secret("s3cr3t-key-for-tests")),
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
