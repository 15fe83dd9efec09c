package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Env is one test's world: a simulator whose answers feed a [Ledger], a
// unique topic prefix on a broker, and the environment of the daemons the
// test starts. Build it with [NewEnv].
type Env struct {
	T       testing.TB
	Bin     string   // the rtm2kafka binary (see BuildBinary)
	Brokers []string // the broker the daemons write to
	Prefix  string   // KAFKA_TOPIC_PREFIX, unique to the test; topics deleted at its end
	Sim     *rtmsim.Server
	Ledger  *Ledger
	// DaemonEnv is the base environment of [Env.Start] (see [DaemonEnv]);
	// a test may change it before starting a daemon.
	DaemonEnv map[string]string
}

// NewEnv starts a simulator with cfg (its OnAnswered, if any, still
// called after the ledger's) and prepares a daemon environment for brokers
// (nil: the shared broker from [kafkatest.Brokers], which fails the test
// when there is none).
// newLedgerEnv returns an Env with a simulator whose answers also feed the
// env's ledger (after cfg's own OnAnswered, if any).
func newLedgerEnv(t testing.TB, bin string, cfg rtmsim.Config, brokers []string) *Env {
	t.Helper()
	e := &Env{T: t, Bin: bin, Brokers: brokers, Ledger: NewLedger()}
	prev := cfg.OnAnswered
	cfg.OnAnswered = func(scope rtm.Scope, from, to, mid int64, ok, late bool) {
		e.Ledger.OnAnswered(scope, from, to, mid, ok, late)
		if prev != nil {
			prev(scope, from, to, mid, ok, late)
		}
	}
	e.Sim = StartSim(t, cfg)
	return e
}

func NewEnv(t testing.TB, bin string, cfg rtmsim.Config, brokers []string) *Env {
	t.Helper()
	if brokers == nil {
		brokers = kafkatest.Brokers(t)
	}
	e := newLedgerEnv(t, bin, cfg, brokers)
	e.Prefix = Prefix(t, brokers)
	e.DaemonEnv = DaemonEnv(e.Sim.Addr(), brokers, e.Prefix)
	return e
}

// Start starts a daemon with DaemonEnv plus extra and waits (up to 60 s)
// until /readyz says it is ready.
func (e *Env) Start(extra map[string]string) *Daemon {
	e.T.Helper()
	env := make(map[string]string, len(e.DaemonEnv)+len(extra))
	for k, v := range e.DaemonEnv {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	d := StartDaemon(e.T, e.Bin, env)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		e.T.Fatalf("daemon: %v", err)
	}
	return d
}

// Check reads every data topic back and returns the ledger's verdict and
// the records; a push answered OK but missing from Kafka fails the test.
func (e *Env) Check() (Exactness, []Record) {
	e.T.Helper()
	recs := ReadTopics(e.T, e.Brokers, DataTopics(e.T, e.Prefix))
	ex, err := e.Ledger.Check(recs)
	if err != nil {
		e.T.Fatalf("check: %v", err)
	}
	if ex.Lost > 0 {
		e.T.Errorf("%d pushes answered OK are not in Kafka, e.g. %v", ex.Lost, ex.LostSample)
	}
	return ex, recs
}

// Control sends one control command (JSON, with its id) through
// [bridge.SendControl] and returns the daemon's result (up to 30 s).
func (e *Env) Control(cmd string) bridge.Result {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := bridge.SendControl(ctx, []kgo.Opt{kgo.SeedBrokers(e.Brokers...)}, Router(e.T, e.Prefix), []byte(cmd))
	if err != nil {
		e.T.Fatalf("SendControl %s: %v", cmd, err)
	}
	return res
}

// Ctl runs "rtm2kafka ctl args..." against the env's brokers and prefix
// and returns its stdout, stderr and exit code.
func (e *Env) Ctl(args ...string) (stdout, stderr string, code int) {
	e.T.Helper()
	env := map[string]string{"KAFKA_BROKERS": strings.Join(e.Brokers, ","), "KAFKA_TOPIC_PREFIX": e.Prefix}
	return e.Exec(env, 60*time.Second, append([]string{"ctl", "--timeout", "30s"}, args...)...)
}

// ExpectResult fails the test unless res is ok with listen state want and
// the simulator's connection then has that state.
func (e *Env) ExpectResult(res bridge.Result, want rtm.ListenState) {
	e.T.Helper()
	if !res.OK || res.Error != "" {
		e.T.Fatalf("result %+v: want ok", res)
	}
	if !SameListen(res.Listen, want) {
		e.T.Fatalf("result listen %+v, want %+v", NormListen(res.Listen), NormListen(want))
	}
	WaitListenState(e.T, e.Sim, want)
}

// NormListen returns s with sorted, non-nil lists, for comparison and
// printing.
func NormListen(s rtm.ListenState) rtm.ListenState {
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

// SameListen reports whether a and b are the same listen state, whatever
// the order of their lists.
func SameListen(a, b rtm.ListenState) bool {
	a, b = NormListen(a), NormListen(b)
	return a.P2P == b.P2P && a.Group == b.Group && a.Room == b.Room && a.Ev == b.Ev &&
		slices.Equal(a.GIDs, b.GIDs) && slices.Equal(a.RIDs, b.RIDs) && slices.Equal(a.UIDs, b.UIDs) &&
		slices.Equal(a.Events, b.Events)
}

// WaitListenState waits (up to 20 s) until some connection of sim has
// listen state want, and fails the test otherwise.
func WaitListenState(t testing.TB, sim *rtmsim.Server, want rtm.ListenState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sim.WaitListen(ctx, func(s rtm.ListenState) bool { return SameListen(s, want) }); err != nil {
		t.Fatalf("simulator never saw listen state %+v (has %+v): %v", NormListen(want), sim.ListenStates(), err)
	}
}

// AllFlags is the daemon's default listen state (RTM_LISTEN_ALL's default).
func AllFlags() rtm.ListenState { return rtm.ListenState{P2P: true, Group: true, Room: true, Ev: true} }
