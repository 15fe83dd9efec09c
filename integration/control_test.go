package integration_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// ctl runs "rtm2kafka ctl args..." and decodes the result it prints.
func ctl(t *testing.T, e *integration.Env, args ...string) (bridge.Result, int) {
	t.Helper()
	stdout, stderr, code := e.Ctl(args...)
	var res bridge.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("ctl %v: exit %d, output %q (stderr %q): %v", args, code, stdout, stderr, err)
	}
	return res, code
}

// TestControlOps: add, remove, set and set_all, via the ctl subcommand and
// SendControl, each change what the simulator sees, and the result says so;
// invalid commands are rejected with a precise error and change nothing.
func TestControlOps(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	d := e.Start(nil)
	want := integration.AllFlags()
	integration.WaitListenState(t, e.Sim, want)

	res, code := ctl(t, e, "--gids", "7,8", "--uids", "1000", "add")
	want.GIDs, want.UIDs = []int64{7, 8}, []int64{1000}
	if code != 0 {
		t.Fatalf("ctl add: exit %d, %+v", code, res)
	}
	e.ExpectResult(res, want)

	res = e.Control(`{"id":"rm-1","op":"remove","gids":[7]}`)
	want.GIDs = []int64{8}
	e.ExpectResult(res, want)

	res, code = ctl(t, e, "--rids", "5", "--events", "login,logout", "set")
	want.GIDs, want.RIDs, want.UIDs, want.Events = nil, []int64{5}, nil, []string{"login", "logout"}
	if code != 0 {
		t.Fatalf("ctl set: exit %d, %+v", code, res)
	}
	e.ExpectResult(res, want)

	res, code = ctl(t, e, "--p2p=false", "--room=false", "set_all")
	want.P2P, want.Room = false, false
	if code != 0 {
		t.Fatalf("ctl set_all: exit %d, %+v", code, res)
	}
	e.ExpectResult(res, want)

	// A rejected command through ctl: exit 1, ok=false, nothing changes.
	// ctl checks a command before sending it: an invalid one fails at once
	// (exit 1) with the reason and never reaches the daemon.
	_, stderr, code := e.Ctl("--json", `{"id":"neg-ctl","op":"add","gids":[-5]}`)
	t.Logf("ctl of an invalid command: exit %d, %s", code, strings.TrimSpace(stderr))
	if code != 1 || !strings.Contains(stderr, "-5 is not a positive id") {
		t.Fatalf("ctl with a negative id: exit %d, stderr %q", code, stderr)
	}

	before := want.Clone()
	// Invalid commands produced straight to the control topic (ctl and
	// SendControl refuse to send them).
	ids := make([]string, 20000)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	invalid := []struct {
		id, value, errPart string
	}{
		{"x", `{"id":"x","op":`, "not valid JSON"}, // the id is read before the error
		{"", `[1,2]`, "not a JSON object"},
		{"bad-op", `{"id":"bad-op","op":"frobnicate","gids":[1]}`, `unknown op "frobnicate"`},
		{"neg", `{"id":"neg","op":"add","gids":[-5]}`, `field "gids": element 0: -5 is not a positive id`},
		{"big", `{"id":"big","op":"add","uids":[` + strings.Join(ids, ",") + `]}`, "20000 ids, more than 10000"},
		{"mix", `{"id":"mix","op":"set_all","p2p":true,"gids":[1]}`, `set_all takes only the flags`},
	}
	// The client retries until the broker's metadata lists the daemon's new
	// control topic (testkit sets UnknownTopicRetries(-1)), within the
	// produce's context.
	cl := testkit.ClientFor(t, e.Brokers, kgo.DefaultProduceTopic(integration.Router(t, e.Prefix).ControlTopic()))
	for _, c := range invalid {
		testkit.Produce(t, cl, &kgo.Record{Key: []byte(c.id), Value: []byte(c.value)})
	}
	// A valid command after them: its result proves the invalid ones were
	// handled (results are written in order) and the loop goes on.
	res = e.Control(`{"id":"after","op":"add","uids":[42]}`)
	want.UIDs = []int64{42}
	e.ExpectResult(res, want)

	msgs, err := integration.ReadTopic(ctxFor(t, 30*time.Second), e.Brokers, integration.Router(t, e.Prefix).ControlResultsTopic())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bridge.Result{}
	var unnamed []bridge.Result
	for _, m := range msgs {
		var r bridge.Result
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("result %q: %v", m.Value, err)
		}
		if r.ID == "" {
			unnamed = append(unnamed, r)
		} else {
			got[r.ID] = r
		}
	}
	for i, c := range invalid {
		var r bridge.Result
		var ok bool
		if c.id != "" {
			r, ok = got[c.id]
		} else if len(unnamed) > 0 {
			r, unnamed, ok = unnamed[0], unnamed[1:], true
		}
		if !ok {
			t.Errorf("invalid command %d (%.60s): no result among %d", i, c.value, len(msgs))
			continue
		}
		t.Logf("invalid command %d → ok=%v error=%q", i, r.OK, r.Error)
		if r.OK || !strings.Contains(r.Error, c.errPart) {
			t.Errorf("invalid command %d (%.60s): result ok=%v error %q, want an error containing %q", i, c.value, r.OK, r.Error, c.errPart)
		}
		if !integration.SameListen(r.Listen, before) {
			t.Errorf("invalid command %d: result listen %+v, want the unchanged %+v", i, integration.NormListen(r.Listen), integration.NormListen(before))
		}
	}
	// State: the last valid one only.
	if sts := e.Sim.ListenStates(); len(sts) != 1 || !integration.SameListen(sts[0], want) {
		t.Errorf("simulator listen states %+v, want %+v", sts, integration.NormListen(want))
	}
	st, err := d.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !integration.SameListen(st.Listen, want) || st.Link.State != "listening" {
		t.Errorf("daemon status listen %+v link %s, want %+v listening", integration.NormListen(st.Listen), st.Link.State, integration.NormListen(want))
	}
	if st.Bridge.ControlRejected < uint64(len(invalid)) || st.Bridge.ControlApplied != 5 {
		t.Errorf("daemon control counters applied=%d rejected=%d, want 5 and ≥%d", st.Bridge.ControlApplied, st.Bridge.ControlRejected, len(invalid))
	}
	if !d.Healthy(ctxFor(t, 5*time.Second)) {
		t.Error("daemon not healthy after invalid commands")
	}
	t.Logf("control: applied=%d rejected=%d, final listen %+v", st.Bridge.ControlApplied, st.Bridge.ControlRejected, integration.NormListen(st.Listen))
}

// TestRestartKeepsListenState: the listen state set through the control
// topic survives a daemon restart with the same prefix.
func TestRestartKeepsListenState(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	d := e.Start(nil)
	want := integration.AllFlags()
	want.GIDs = []int64{7, 8}
	e.ExpectResult(e.Control(`{"id":"r-1","op":"add","gids":[7,8]}`), want)
	want.P2P = false
	e.ExpectResult(e.Control(`{"id":"r-2","op":"set_all","p2p":false}`), want)

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := d.Wait(ctxFor(t, 30*time.Second)); err != nil || code != 0 {
		t.Fatalf("first daemon: exit %d, %v", code, err)
	}
	if err := e.Sim.WaitConns(ctxFor(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	d2 := e.Start(nil)
	integration.WaitListenState(t, e.Sim, want)
	if sts := e.Sim.ListenStates(); len(sts) != 1 || !integration.SameListen(sts[0], want) {
		t.Fatalf("after restart the simulator sees %+v, want %+v", sts, integration.NormListen(want))
	}
	st, err := d2.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !integration.SameListen(st.Listen, want) {
		t.Errorf("second daemon status listen %+v, want %+v", integration.NormListen(st.Listen), integration.NormListen(want))
	}
	// Traffic still follows the restored state: a p2p chat is not covered
	// any more, a group message to gid 7 is.
	if n, _ := e.Sim.Publish(&rtm.Push{Scope: rtm.ScopeP2P, MType: 30, From: 1, To: 2, MID: 1, Msg: []byte("x")}); n != 0 {
		t.Errorf("p2p push reached %d connections, want 0 (p2p=false)", n)
	}
	t.Logf("restored listen state %+v", integration.NormListen(st.Listen))
}
