package integration_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// binPath is the rtm2kafka binary built by TestMain; read-only afterwards.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtm2kafka-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	binPath, err = integration.BuildBinary(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir) // the binary only
	os.Exit(code)
}

// testEnv is one test's simulator, ledger, topic prefix and daemon env.
type testEnv struct {
	t       *testing.T
	brokers []string
	prefix  string
	sim     *rtmsim.Server
	ledger  *integration.Ledger
	env     map[string]string
}

// setup starts a simulator (its OnAnswered feeding a fresh ledger) and
// prepares a daemon environment for brokers (the shared broker when nil).
func setup(t *testing.T, cfg rtmsim.Config, brokers []string) *testEnv {
	t.Helper()
	if brokers == nil {
		brokers = kafkatest.Brokers(t)
	}
	e := &testEnv{t: t, brokers: brokers, ledger: integration.NewLedger()}
	prev := cfg.OnAnswered
	cfg.OnAnswered = func(scope rtm.Scope, from, to, mid int64, ok, late bool) {
		e.ledger.OnAnswered(scope, from, to, mid, ok, late)
		if prev != nil {
			prev(scope, from, to, mid, ok, late)
		}
	}
	e.sim = integration.StartSim(t, cfg)
	e.prefix = integration.Prefix(t, brokers)
	e.env = integration.DaemonEnv(e.sim.Addr(), brokers, e.prefix)
	return e
}

// start starts a daemon with e.env plus extra and waits until it is ready.
func (e *testEnv) start(extra map[string]string) *integration.Daemon {
	e.t.Helper()
	env := make(map[string]string, len(e.env)+len(extra))
	for k, v := range e.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	d := integration.StartDaemon(e.t, binPath, env)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		e.t.Fatalf("daemon: %v", err)
	}
	return d
}

// check reads every data topic back and returns the ledger's verdict,
// failing the test on lost records.
func (e *testEnv) check() (integration.Exactness, []integration.Record) {
	e.t.Helper()
	recs := integration.ReadTopics(e.t, e.brokers, integration.DataTopics(e.t, e.prefix))
	ex, err := e.ledger.Check(recs)
	if err != nil {
		e.t.Fatalf("check: %v", err)
	}
	if ex.Lost > 0 {
		e.t.Errorf("%d pushes answered OK are not in Kafka, e.g. %v", ex.Lost, ex.LostSample)
	}
	return ex, recs
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// norm returns s with sorted, non-nil lists, for comparison.
func norm(s rtm.ListenState) rtm.ListenState {
	s = s.Clone()
	for _, l := range []*[]int64{&s.GIDs, &s.RIDs, &s.UIDs} {
		if *l == nil {
			*l = []int64{}
		}
		slices.Sort(*l)
	}
	if s.Events == nil {
		s.Events = []string{}
	}
	slices.Sort(s.Events)
	return s
}

func sameListen(a, b rtm.ListenState) bool {
	a, b = norm(a), norm(b)
	return a.P2P == b.P2P && a.Group == b.Group && a.Room == b.Room && a.Ev == b.Ev &&
		slices.Equal(a.GIDs, b.GIDs) && slices.Equal(a.RIDs, b.RIDs) && slices.Equal(a.UIDs, b.UIDs) &&
		slices.Equal(a.Events, b.Events)
}

// waitListen waits until the simulator's (only) connection has state want.
func waitListen(t *testing.T, sim *rtmsim.Server, want rtm.ListenState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sim.WaitListen(ctx, func(s rtm.ListenState) bool { return sameListen(s, want) }); err != nil {
		t.Fatalf("simulator never saw listen state %+v (has %+v): %v", norm(want), sim.ListenStates(), err)
	}
}

// allFlags is the daemon's default listen state (RTM_LISTEN_ALL default).
func allFlags() rtm.ListenState { return rtm.ListenState{P2P: true, Group: true, Room: true, Ev: true} }
