package integration_test

// High availability (issue 9, bridge/ha.go) on the real broker with two and
// three real bridge processes in one HA group, each test with exact
// accounting against the simulator's ledger: every push answered OK is in
// Kafka, and the simulator's per-connection counts say which bridge
// answered what.
//
// The broker's group.min.session.timeout.ms is 6 s (Kafka's default), so
// BRIDGE_SESSION_TIMEOUT stays at its 6 s default: a crash failover takes
// the session timeout plus a heartbeat interval plus the takeover.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

const (
	// haSessionTimeout is BRIDGE_SESSION_TIMEOUT's default, the broker's
	// minimum.
	haSessionTimeout = 6 * time.Second
	// haTakeoverSlack is what a crash failover may take beyond the session
	// timeout: the survivors learn of the rebalance at their next heartbeat
	// (every session timeout / 6 = 1 s), rejoin and sync (tens of ms), then
	// take over (RestoreListen + setlisten: 3–13 ms measured); 3 s leaves
	// room for a loaded 2-core machine.
	haTakeoverSlack = 3 * time.Second
	// haRate is the load of every HA test, messages per second.
	haRate = 200
)

// haMix is the load's mix without events: events carry no id, so their
// duplicates could not be told from the ledger.
var haMix = rtmsim.Mix{P2P: 4, Group: 3, Room: 2}

// haNode is one bridge process of an HA test and its simulator connection.
type haNode struct {
	Name string
	D    *integration.Daemon
	Conn uint64 // its RTM connection's number in the simulator
}

// haCluster is an HA test's world: one simulator and ledger, one topic
// prefix and group, several bridges. It records every push outcome and
// every listen quest, per connection.
type haCluster struct {
	t     *testing.T
	E     *integration.Env
	Nodes map[string]*haNode

	mu       sync.Mutex
	outcomes []rtmsim.Outcome
	listens  []rtmsim.Quest // successful listen quests
}

// newHACluster starts the simulator (AnswerTimeout 5 s, the gateway's, and
// lateGrace) for an HA test.
func newHACluster(t *testing.T, lateGrace time.Duration) *haCluster {
	t.Helper()
	c := &haCluster{t: t, Nodes: map[string]*haNode{}}
	c.E = setup(t, rtmsim.Config{AnswerTimeout: 5 * time.Second, LateGrace: lateGrace,
		OnOutcome: func(o rtmsim.Outcome) {
			c.mu.Lock()
			c.outcomes = append(c.outcomes, o)
			c.mu.Unlock()
		},
		OnQuest: func(q rtmsim.Quest) {
			if q.Code == 0 && (q.Method == "setlisten" || q.Method == "addlisten" || q.Method == "removelisten") {
				c.mu.Lock()
				c.listens = append(c.listens, q)
				c.mu.Unlock()
			}
		},
	}, nil)
	return c
}

// start starts bridge name in the HA group and waits until it is ready
// (a standby is ready: connected, listening to nothing) and its RTM
// connection is known.
func (c *haCluster) start(name string) *haNode {
	c.t.Helper()
	before := c.E.Sim.Stats().Accepted
	d := c.E.Start(map[string]string{"BRIDGE_HA": "true", "BRIDGE_INSTANCE": name, "LOG_LEVEL": "info"})
	n := &haNode{Name: name, D: d}
	testkit.Eventually(c.t, 20*time.Second, func() bool {
		for _, cs := range c.E.Sim.Stats().ByConn {
			if cs.Conn > uint64(before) && cs.Live && !c.owned(cs.Conn) {
				n.Conn = cs.Conn
				return true
			}
		}
		return false
	}, "bridge %s's RTM connection", name)
	c.Nodes[name] = n
	return n
}

// owned reports whether a node already has conn.
func (c *haCluster) owned(conn uint64) bool {
	for _, n := range c.Nodes {
		if n.Conn == conn {
			return true
		}
	}
	return false
}

// status is n's /status (a zero Status if it does not answer).
func (c *haCluster) status(n *haNode) integration.Status {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, _ := n.D.Status(ctx) // a stopped or dead daemon: zero
	return st
}

// waitActive waits until n says it is active and the simulator sees its
// connection listening.
func (c *haCluster) waitActive(n *haNode, timeout time.Duration) {
	c.t.Helper()
	testkit.Eventually(c.t, timeout, func() bool {
		cs, _ := c.E.Sim.ConnStats(n.Conn)
		return cs.Listening && c.status(n).HA.Role == "active"
	}, "bridge %s active and listening", n.Name)
}

// listenedAfter returns when conn's first successful listen quest after t
// came: a takeover as the gateway sees it.
func (c *haCluster) listenedAfter(conn uint64, t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.listens {
		if q.Conn == conn && q.At.After(t) {
			return q.At, true
		}
	}
	return time.Time{}, false
}

// load starts the generator at haRate for d (it waits for the first
// listener only; later gaps are counted as no_listener).
func (c *haCluster) load(d time.Duration, seed uint64) <-chan rtmsim.LoadResult {
	return generate(c.t, c.E.Sim, rtmsim.LoadConfig{Rate: haRate, Duration: d, Keys: 50, Seed: seed, Mix: haMix, WaitListener: true})
}

// settle waits for the load run and until no push is pending.
func (c *haCluster) settle(ch <-chan rtmsim.LoadResult, timeout time.Duration) rtmsim.LoadResult {
	c.t.Helper()
	res := waitGen(c.t, ch, timeout)
	testkit.Eventually(c.t, timeout, func() bool { return c.E.Sim.Stats().Pending == 0 }, "every push to have an outcome")
	return res
}

// delivered returns, per message, the connections it was pushed to.
func (c *haCluster) delivered() map[integration.MsgID]map[uint64]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[integration.MsgID]map[uint64]bool{}
	for _, o := range c.outcomes {
		id := integration.MsgID{Scope: o.Scope, From: o.From, To: o.To, MID: o.MID}
		if out[id] == nil {
			out[id] = map[uint64]bool{}
		}
		out[id][o.Conn] = true
	}
	return out
}

// outcomesOf returns the outcomes of the pushes to conn.
func (c *haCluster) outcomesOf(conn uint64) []rtmsim.Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rtmsim.Outcome
	for _, o := range c.outcomes {
		if o.Conn == conn {
			out = append(out, o)
		}
	}
	return out
}

// metric reads one metric of n (summed over its labels).
func metric(t *testing.T, n *haNode, name string) float64 {
	t.Helper()
	v, _, err := n.D.Metric(ctxFor(t, 5*time.Second), name)
	if err != nil {
		t.Fatalf("%s: %s: %v", n.Name, name, err)
	}
	return v
}

// TestHAHandover: SIGTERM on the active bridge under load hands over to the
// standby with an overlap and no gap: nothing answered is lost, no message
// finds no listener, nothing is left unanswered, and the duplicates in
// Kafka are exactly the overlap's messages at most.
func TestHAHandover(t *testing.T) {
	c := newHACluster(t, 5*time.Second)
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	if st := c.status(b); st.HA.Role != "standby" {
		t.Fatalf("b: role %q, want standby", st.HA.Role)
	}
	ch := c.load(8*time.Second, 91)
	testkit.Eventually(t, 20*time.Second, func() bool { return c.E.Ledger.Answered() >= 2*haRate }, "steady traffic")
	termAt := time.Now()
	if err := a.D.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitActive(b, 15*time.Second)
	bListens, _ := c.listenedAfter(b.Conn, termAt)
	if code, err := a.D.Wait(ctxFor(t, 30*time.Second)); err != nil || code != 0 {
		t.Fatalf("a: exit %d, %v", code, err)
	}
	aStopped := time.Now()
	res := c.settle(ch, 60*time.Second)
	ex, _ := c.E.Check()
	st := c.E.Sim.Stats()

	overlap := 0
	for _, conns := range c.delivered() {
		if conns[a.Conn] && conns[b.Conn] {
			overlap++
		}
	}
	as, _ := c.E.Sim.ConnStats(a.Conn)
	bs, _ := c.E.Sim.ConnStats(b.Conn)
	t.Logf("handover: SIGTERM → b listening %v, → a exited %v; overlap %d messages pushed to both; duplicates in Kafka %d; a %+v; b %+v; %s; load %+v",
		bListens.Sub(termAt).Round(time.Millisecond), aStopped.Sub(termAt).Round(time.Millisecond), overlap, ex.Duplicates, as, bs, ex, res)
	if st.NoListener != 0 || res.NoListener != 0 {
		t.Errorf("a handover left a gap: %d messages found no listener", st.NoListener)
	}
	if st.Unanswered != 0 || st.Errored != 0 || st.Overdue != 0 {
		t.Errorf("pushes unanswered %d, errored %d, overdue %d; want 0", st.Unanswered, st.Errored, st.Overdue)
	}
	if ex.Lost != 0 || ex.Found != ex.Answered || ex.Answered != res.Messages {
		t.Errorf("exactness: %s, %d messages generated", ex, res.Messages)
	}
	// Duplicates come only from the overlap, and the overlap is short:
	// from b's setlisten to a's stop-listening after b's announcement (one
	// produce and one fetch, ~200 ms measured), at most 2 s of load.
	if ex.Duplicates > overlap {
		t.Errorf("%d duplicates, more than the %d messages of the overlap", ex.Duplicates, overlap)
	}
	if overlap > 2*haRate {
		t.Errorf("overlap of %d messages: more than 2 s of load", overlap)
	}
	if v := metric(t, b, "rtm2kafka_ha_takeovers_total"); v != 1 {
		t.Errorf("b: takeovers %v, want 1", v)
	}
	if !logHas(a.D, "the new active listens: stopping listening") {
		t.Error("a's log does not show the handover (new active announced, then stop listening)")
	}
}

// logHas reports whether d's log contains s.
func logHas(d *integration.Daemon, s string) bool {
	return strings.Contains(d.Log(), s)
}

// TestHAKillActive: three bridges; SIGKILL of the active one under load.
// One standby takes over within the session timeout plus the takeover; the
// gap (messages that found no listener) is measured; nothing answered is
// lost; the pushes the dead bridge left unanswered are at most its window
// at the kill.
func TestHAKillActive(t *testing.T) {
	c := newHACluster(t, time.Second)
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	cc := c.start("c")
	ch := c.load(14*time.Second, 92)
	testkit.Eventually(t, 20*time.Second, func() bool { return c.E.Ledger.Answered() >= 2*haRate }, "steady traffic")
	pendingAtKill := func() int64 { cs, _ := c.E.Sim.ConnStats(a.Conn); return cs.Pending }()
	killAt := time.Now()
	if err := a.D.Kill(); err != nil {
		t.Fatal(err)
	}
	var next *haNode
	testkit.Eventually(t, haSessionTimeout+haTakeoverSlack+5*time.Second, func() bool {
		for _, n := range []*haNode{b, cc} {
			if cs, _ := c.E.Sim.ConnStats(n.Conn); cs.Listening {
				next = n
				return true
			}
		}
		return false
	}, "a standby listening after the kill")
	listenAt, _ := c.listenedAfter(next.Conn, killAt)
	failover := listenAt.Sub(killAt)
	c.waitActive(next, 5*time.Second)
	res := c.settle(ch, 60*time.Second)
	ex, _ := c.E.Check()
	st := c.E.Sim.Stats()
	as, _ := c.E.Sim.ConnStats(a.Conn)
	nst := c.status(next)
	t.Logf("SIGKILL: %s listening %v after the kill (assignment → listening %d ms); gap: %d messages found no listener (%.2f s of load); a left %d pushes unanswered (%d pending at the kill); %s; load %+v",
		next.Name, failover.Round(time.Millisecond), nst.HA.LastTakeoverMs, st.NoListener, float64(st.NoListener)/haRate, as.Unanswered, pendingAtKill, ex, res)
	if failover > haSessionTimeout+haTakeoverSlack {
		t.Errorf("failover took %v, want ≤ session timeout %v + %v", failover, haSessionTimeout, haTakeoverSlack)
	}
	// The gap is the failover time at the load's rate (plus one second for
	// the pacing of the generator).
	if gapMax := int64((failover.Seconds() + 1) * haRate); st.NoListener == 0 || st.NoListener > gapMax {
		t.Errorf("no_listener %d, want 1..%d for a %v failover at %d/s", st.NoListener, gapMax, failover, haRate)
	}
	if ex.Lost != 0 || ex.Found != ex.Answered {
		t.Errorf("exactness: %s", ex)
	}
	if as.Unanswered > 100 {
		t.Errorf("a left %d pushes unanswered, more than its in-flight window at %d/s should hold", as.Unanswered, haRate)
	}
	if ex.Duplicates != 0 {
		t.Errorf("%d duplicates without an overlap", ex.Duplicates)
	}
	other := b
	if next == b {
		other = cc
	}
	if cs, _ := c.E.Sim.ConnStats(other.Conn); cs.Sent != 0 || c.status(other).HA.Role != "standby" {
		t.Errorf("the other standby %s: %+v, role %q; want no pushes, standby", other.Name, cs, c.status(other).HA.Role)
	}
}

// TestHAZombie: the active bridge is SIGSTOPped past the session timeout;
// the standby takes over; the zombie is SIGCONTed while the load goes on.
// It must see its lease expired: leave every push it reads unanswered, stop
// listening, and answer no push that was sent after it was stopped
// (stated bound: 0). Nothing answered is lost.
func TestHAZombie(t *testing.T) {
	c := newHACluster(t, time.Second)
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	ch := c.load(20*time.Second, 93)
	testkit.Eventually(t, 20*time.Second, func() bool { return c.E.Ledger.Answered() >= 2*haRate }, "steady traffic")
	t.Cleanup(func() { _ = a.D.Signal(syscall.SIGCONT) }) // never leave it frozen
	stopAt := time.Now()
	if err := a.D.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.waitActive(b, haSessionTimeout+haTakeoverSlack+5*time.Second)
	takeoverAt, _ := c.listenedAfter(b.Conn, stopAt)
	// The zombie is still listening as far as the gateway knows: the
	// simulator keeps pushing to it (fan-out) while it is frozen.
	testkit.Eventually(t, 10*time.Second, func() bool {
		n := 0
		for _, o := range c.outcomesOf(b.Conn) {
			if o.Sent.After(takeoverAt) {
				n++
			}
		}
		return n >= haRate/2
	}, "b answering after the takeover")
	contAt := time.Now()
	if err := a.D.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		cs, _ := c.E.Sim.ConnStats(a.Conn)
		return !cs.Listening
	}, "the zombie to stop listening")
	stoppedListening := time.Now()
	res := c.settle(ch, 60*time.Second)
	ex, _ := c.E.Check()
	st := c.E.Sim.Stats()

	var okAfterStop, answeredAfterTakeover, unansweredZombie int
	for _, o := range c.outcomesOf(a.Conn) {
		if o.OK && o.Sent.After(stopAt) {
			okAfterStop++
		}
		if o.Answered && o.At.After(takeoverAt) {
			answeredAfterTakeover++
		}
		if !o.Answered {
			unansweredZombie++
		}
	}
	as, _ := c.E.Sim.ConnStats(a.Conn)
	ast := c.status(a)
	fenced := metricLabel(t, a, `rtm2kafka_produce_errors_total{reason="fenced"}`)
	t.Logf("zombie: b listening %v after the stop; SIGCONT %v after the stop; zombie stopped listening %v after SIGCONT; zombie answered %d pushes after the takeover (in flight at the stop) and %d sent after the stop; left %d unanswered (fenced count %v); zombie role %q fenced %v; a %+v; %s; load %+v",
		takeoverAt.Sub(stopAt).Round(time.Millisecond), contAt.Sub(stopAt).Round(time.Millisecond),
		stoppedListening.Sub(contAt).Round(time.Millisecond), answeredAfterTakeover, okAfterStop, unansweredZombie, fenced, ast.HA.Role, ast.HA.Fenced, as, ex, res)
	if okAfterStop != 0 {
		t.Errorf("the zombie answered %d pushes sent after it was stopped (bound 0): written after the takeover", okAfterStop)
	}
	if ex.Lost != 0 || ex.Found != ex.Answered {
		t.Errorf("exactness: %s", ex)
	}
	if st.NoListener != 0 {
		t.Errorf("%d messages found no listener: the zombie kept listening until the takeover, so none should", st.NoListener)
	}
	if fenced == 0 {
		t.Error("the zombie counted no fenced push, though the gateway pushed to it while it was stopped")
	}
	if ast.HA.Role == "active" {
		t.Errorf("the zombie is active again: %+v", ast.HA)
	}
	if bst := c.status(b); bst.HA.Role != "active" || bst.HA.Takeovers != 1 {
		t.Errorf("b after the zombie woke: %+v, want active with 1 takeover", bst.HA)
	}
}

// metricLabel returns the value of one series (name with its labels, as in
// the exposition) of n's /metrics, 0 when absent.
func metricLabel(t *testing.T, n *haNode, series string) float64 {
	t.Helper()
	text, err := n.D.Metrics(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatalf("%s: metrics: %v", n.Name, err)
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > len(series) && line[:len(series)] == series && line[len(series)] == ' ' {
			v, err := strconv.ParseFloat(line[len(series)+1:], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", n.Name, line, err)
			}
			return v
		}
	}
	return 0
}

// TestHAControlDuringFailover: control commands produced before, during and
// after a crash failover (SIGKILL of the active bridge): every command gets
// exactly one result on the results topic, and the new active's listen
// state is the model's.
func TestHAControlDuringFailover(t *testing.T) {
	c := newHACluster(t, time.Second)
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	e := c.E
	topic := integration.Router(t, e.Prefix).ControlTopic()
	cl := testkit.ClientFor(t, e.Brokers, kgo.DefaultProduceTopic(topic))
	const n = 40
	want := integration.AllFlags()
	send := func(i int) {
		cmd := fmt.Sprintf(`{"id":"c-%d","op":"add","gids":[%d]}`, i, 1000+i)
		if err := cl.ProduceSync(ctxFor(t, 10*time.Second), &kgo.Record{Value: []byte(cmd)}).FirstErr(); err != nil {
			t.Fatalf("produce command %d: %v", i, err)
		}
		want = want.Apply(rtm.ListenChange{Op: rtm.OpAdd, GIDs: []int64{int64(1000 + i)}})
	}
	results := func() map[string]int {
		recs, err := integration.ReadTopic(ctxFor(t, 30*time.Second), e.Brokers, integration.Router(t, e.Prefix).ControlResultsTopic())
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]int{}
		for _, r := range recs {
			if len(testkit.Headers(r)["rtm2kafka-role"]) > 0 {
				continue // a role announcement
			}
			var res bridge.Result
			if err := json.Unmarshal(r.Value, &res); err != nil {
				t.Fatalf("result %q: %v", r.Value, err)
			}
			if !res.OK {
				t.Errorf("result %+v: want ok", res)
			}
			ids[res.ID]++
		}
		return ids
	}
	for i := range 10 {
		send(i)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return len(results()) == 10 }, "the first 10 results")
	killAt := time.Now()
	// A burst right before the kill, so some are in flight in a.
	for i := 10; i < 20; i++ {
		send(i)
	}
	if err := a.D.Kill(); err != nil {
		t.Fatal(err)
	}
	// During the failover: a command every 250 ms until b is active.
	i := 20
	tick := time.NewTicker(250 * time.Millisecond) // the commands' cadence
	defer tick.Stop()
	for ; c.status(b).HA.Role != "active" && i < n-5; i++ {
		send(i)
		<-tick.C
	}
	c.waitActive(b, haSessionTimeout+haTakeoverSlack+5*time.Second)
	during := i - 20
	for ; i < n; i++ {
		send(i)
	}
	var ids map[string]int
	testkit.Eventually(t, 30*time.Second, func() bool { ids = results(); return len(ids) == n }, "%d results", n)
	for id, k := range ids {
		if k != 1 {
			t.Errorf("command %s: %d results, want 1", id, k)
		}
	}
	integration.WaitListenState(t, e.Sim, want)
	bst := c.status(b)
	if !integration.SameListen(bst.Listen, want) {
		t.Errorf("b's listen state %+v, want %+v", integration.NormListen(bst.Listen), integration.NormListen(want))
	}
	if cs, _ := e.Sim.ConnStats(b.Conn); !cs.Listening {
		t.Error("b's connection is not listening")
	}
	t.Logf("control during failover: %d commands (10 before, 10 in a burst at the kill, %d during the failover, %d after), each with one result; b active %v after the kill",
		n, during, n-20-during, time.Since(killAt).Round(time.Millisecond))
}

// TestHAStandbyRestart: three bridges; standbys are SIGTERMed and
// restarted, and one is SIGKILLed, under load: the active one is never
// disturbed (no role change, no takeover, no gap, no duplicate, nothing
// unanswered).
func TestHAStandbyRestart(t *testing.T) {
	c := newHACluster(t, 5*time.Second)
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	c.start("c")
	since := c.status(a).HA.Since
	ch := c.load(12*time.Second, 94)
	testkit.Eventually(t, 20*time.Second, func() bool { return c.E.Ledger.Answered() >= 2*haRate }, "steady traffic")
	if err := b.D.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := b.D.Wait(ctxFor(t, 30*time.Second)); err != nil || code != 0 {
		t.Fatalf("b: exit %d, %v", code, err)
	}
	delete(c.Nodes, "b")
	b2 := c.start("b")
	if st := c.status(b2); st.HA.Role != "standby" {
		t.Errorf("restarted b: role %q, want standby", st.HA.Role)
	}
	cn := c.Nodes["c"]
	if err := cn.D.Kill(); err != nil {
		t.Fatal(err)
	}
	res := c.settle(ch, 60*time.Second)
	ex, _ := c.E.Check()
	st := c.E.Sim.Stats()
	ast := c.status(a)
	t.Logf("standby restarts: a %+v; %s; sim no_listener %d unanswered %d; load %+v", ast.HA, ex, st.NoListener, st.Unanswered, res)
	if ast.HA.Role != "active" || ast.HA.Since != since || ast.HA.Takeovers != 1 || ast.HA.Fenced {
		t.Errorf("a was disturbed: %+v (active since %s before)", ast.HA, since)
	}
	if st.NoListener != 0 || st.Unanswered != 0 || st.Errored != 0 || st.Overdue != 0 {
		t.Errorf("sim: no_listener %d unanswered %d errored %d overdue %d; want 0", st.NoListener, st.Unanswered, st.Errored, st.Overdue)
	}
	if ex.Lost != 0 || ex.Duplicates != 0 || ex.Found != ex.Answered || ex.Answered != res.Messages {
		t.Errorf("exactness: %s, %d generated", ex, res.Messages)
	}
	for _, n := range []*haNode{b, b2, cn} {
		if cs, _ := c.E.Sim.ConnStats(n.Conn); cs.Sent != 0 {
			t.Errorf("standby %s (conn %d) was sent %d pushes", n.Name, n.Conn, cs.Sent)
		}
	}
}

// TestHAHandoverStandbyGone: the only standby is SIGKILLed just before the
// active is SIGTERMed, so the group still lists it (for up to the session
// timeout) when the handover starts. Nobody can announce a takeover; the
// active must notice and stop within a bound, keeping listening meanwhile
// (nothing unanswered, nothing lost), and leave time for the drain.
func TestHAHandoverStandbyGone(t *testing.T) {
	c := newHACluster(t, time.Second)
	c.E.DaemonEnv["SHUTDOWN_TIMEOUT"] = "30s" // the default
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	ch := c.load(5*time.Second, 95)
	testkit.Eventually(t, 20*time.Second, func() bool { return c.E.Ledger.Answered() >= haRate }, "steady traffic")
	if err := b.D.Kill(); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	if err := a.D.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := a.D.Wait(ctxFor(t, 60*time.Second))
	took := time.Since(termAt)
	res := c.settle(ch, 30*time.Second)
	ex, _ := c.E.Check()
	st := c.E.Sim.Stats()
	t.Logf("handover to a dead standby: a exited %d after %v; no_listener %d, unanswered %d; %s; load %+v",
		code, took.Round(time.Millisecond), st.NoListener, st.Unanswered, ex, res)
	if err != nil || code != 0 {
		t.Errorf("a: exit %d, %v", code, err)
	}
	// Bound: the dead standby leaves the group within the session timeout;
	// then the group is empty and no announcement can come. 2 × session
	// timeout + 3 s leaves most of SHUTDOWN_TIMEOUT (30 s) to the drain.
	if bound := 2*haSessionTimeout + 3*time.Second; took > bound {
		t.Errorf("SIGTERM → exit took %v, want ≤ %v: the handover waited for an announcement no one could make (bridge.Handover waits on the drain's whole deadline)", took, bound)
	}
	if st.Unanswered != 0 || ex.Lost != 0 {
		t.Errorf("unanswered %d, lost %d; want 0", st.Unanswered, ex.Lost)
	}
}

// TestHAZombieQuietWake: like TestHAZombie, but the gateway pushes nothing
// while the zombie is stopped and resumes right after SIGCONT, so the
// zombie's group client runs before any push reaches it: the pushes that
// then arrive while the gateway still thinks it listens must be left
// unanswered too (stated bound: 0 answered by the zombie after SIGCONT).
func TestHAZombieQuietWake(t *testing.T) {
	c := newHACluster(t, time.Second)
	a := c.start("a")
	c.waitActive(a, 30*time.Second)
	b := c.start("b")
	gctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	genDone := make(chan struct{})
	go func() {
		defer close(genDone)
		_, _ = c.E.Sim.Generate(gctx, rtmsim.LoadConfig{Rate: 2000, Duration: time.Minute, Keys: 50, Seed: 96, Mix: haMix, WaitListener: true}) // ended by stopLoad
	}()
	testkit.Eventually(t, 20*time.Second, func() bool { return c.E.Ledger.Answered() >= 1000 }, "steady traffic")
	c.E.Sim.SetPaused(true)
	testkit.Eventually(t, 10*time.Second, func() bool { return c.E.Sim.Stats().Pending == 0 }, "the pushes before the pause settled")
	t.Cleanup(func() { _ = a.D.Signal(syscall.SIGCONT) }) // never leave it frozen
	stopAt := time.Now()
	if err := a.D.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, haSessionTimeout+haTakeoverSlack+5*time.Second, func() bool { return c.status(b).HA.Role == "active" }, "b active")
	contAt := time.Now()
	if err := a.D.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.E.Sim.SetPaused(false)
	testkit.Eventually(t, 10*time.Second, func() bool { cs, _ := c.E.Sim.ConnStats(a.Conn); return !cs.Listening }, "the zombie to stop listening")
	stoppedListening := time.Now()
	stopLoad()
	<-genDone
	testkit.Eventually(t, 30*time.Second, func() bool { return c.E.Sim.Stats().Pending == 0 }, "every push to have an outcome")
	ex, _ := c.E.Check()
	var sentAfter, okAfter int
	for _, o := range c.outcomesOf(a.Conn) {
		if o.Sent.After(contAt) {
			sentAfter++
			if o.OK {
				okAfter++
			}
		}
	}
	t.Logf("quiet wake: b active %v after the stop; after SIGCONT the zombie was sent %d pushes and answered %d OK; it stopped listening %v after SIGCONT; %s",
		contAt.Sub(stopAt).Round(time.Millisecond), sentAfter, okAfter, stoppedListening.Sub(contAt).Round(time.Millisecond), ex)
	if okAfter != 0 {
		t.Errorf("the zombie answered %d pushes sent after SIGCONT, after the takeover (bound 0)", okAfter)
	}
	if ex.Lost != 0 {
		t.Errorf("lost %d", ex.Lost)
	}
}
