package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// RunCommand runs the bridge: one listening RTM session whose pushes go to
// Kafka, the control-topic loop and the ops HTTP server.
type RunCommand struct {
	Stdout, Stderr io.Writer
	Env            map[string]string
	// Config, when set, is used as is instead of reading Env and flags
	// (tests build it by hand).
	Config *RunConfig

	log      *slog.Logger
	reg      *prometheus.Registry
	bridge   *bridge.Bridge
	session  atomic.Pointer[rtm.Session]
	ops      *opsServer
	stopping atomic.Bool
	started  time.Time
	prepErr  atomic.Pointer[error] // the last failure preparing Kafka, explained, for /readyz

	controlTopic string // for /status's listen_origin

	cancel context.CancelFunc // ends the session and the control loop
	wg     sync.WaitGroup
	failed chan error // a component that ended on its own
}

// ParseFlags reads the configuration from the environment and flags and
// validates it: every invalid variable is reported at once.
func (c *RunCommand) ParseFlags(args []string) error {
	cfg := &RunConfig{}
	cl := newCLI(runSpec, cfg)
	if err := cl.Parse(args, c.Stdout); err != nil {
		return err
	}
	if len(cl.Args()) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, cl.Args()[0])
	}
	if err := loadRunConfig(cfg, c.Env, cl); err != nil {
		return err
	}
	c.Config = cfg
	return nil
}

// Run starts the bridge and runs it until ctx ends (a signal), then drains.
func (c *RunCommand) Run(ctx context.Context, args []string) error {
	if c.Config == nil {
		if err := c.ParseFlags(args); err != nil {
			return err
		}
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	var failure error
	select {
	case <-ctx.Done():
		c.log.Info("signal received: draining", "deadline", c.Config.ShutdownTimeout.String())
	case failure = <-c.failed:
		c.log.Error("component failed: shutting down", "err", failure)
	}
	drain, cancel := context.WithTimeout(context.Background(), c.Config.ShutdownTimeout)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		select {
		case <-sig:
			c.log.Warn("second signal: stopping without waiting for in-flight pushes")
			cancel()
		case <-drain.Done():
		}
	}()
	if err := c.Shutdown(drain); err != nil {
		return err
	}
	return failure
}

// Start validates the configuration, binds the HTTP address and starts every
// component; it returns once they run. Kafka being unreachable does not fail
// Start: the bridge keeps retrying and /readyz says why it is not ready.
func (c *RunCommand) Start(ctx context.Context) error {
	cfg := c.Config
	s, err := cfg.validate()
	if err != nil {
		return err
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	c.log = newLogger(c.Stderr, cfg.LogConfig)
	c.started = time.Now()
	c.controlTopic = s.router.ControlTopic()
	c.failed = make(chan error, 4)

	c.reg = prometheus.NewRegistry()
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "rtm2kafka", Name: "build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": buildVersion()},
	}, func() float64 { return 1 }))
	c.registerSessionMetrics()
	metrics := bridge.NewMetrics(c.reg)

	if s.acks == bridge.AcksLeader {
		c.log.Warn("KAFKA_ACKS=one: an answered push can be lost if the partition leader fails before replicating it; the idempotent producer is off")
	} else if !cfg.KafkaIdempotent {
		c.log.Warn("KAFKA_IDEMPOTENT=false: a produce retried after a broker failure can write a record twice")
	}
	c.bridge, err = bridge.New(bridge.Config{
		Brokers: cfg.Brokers, ClientOpts: s.kafkaOpts, Principal: cfg.KafkaConfig.principal(), Router: s.router, Format: s.format, PID: cfg.RTMPID,
		Acks: s.acks, DisableIdempotence: !cfg.KafkaIdempotent, Linger: cfg.KafkaLinger,
		BatchBytes: int32(cfg.KafkaBatchBytes), WindowRecords: cfg.WindowRecords, WindowBytes: cfg.WindowBytes,
		Partitions: cfg.KafkaPartitions, ReplicationFactor: cfg.KafkaReplication,
		Logger: c.log.With("component", "bridge"), Metrics: metrics,
		SpoolDir: cfg.SpoolDir, SpoolMaxBytes: cfg.SpoolMaxBytes, SpoolAckBudget: cfg.SpoolAckBudget,
		SpoolMaxAge: cfg.SpoolMaxAge, HA: cfg.haConfig(),
	})
	if err != nil {
		return err // bridge errors carry their own "bridge:" prefix
	}

	if cfg.HTTPAddr != "" {
		send := func(ctx context.Context, cmd []byte) (bridge.Result, error) {
			return c.bridge.SendControl(ctx, cmd)
		}
		c.ops, err = newOpsServer(cfg.HTTPAddr, c.reg, c.ready, c.status, c.newConsole(send), c.log)
		if err != nil {
			_ = c.bridge.Close() // nothing was produced yet
			return err
		}
		c.goRun("http", func(context.Context) error { return c.ops.serve() })
		c.log.Info("ops endpoints listening", "addr", c.ops.Addr())
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.goRun("bridge", func(ctx context.Context) error { return c.runBridge(runCtx, s, metrics) })
	c.log.Info("rtm2kafka started", "version", buildVersion(), "endpoint", cfg.RTMEndpoint, "pid", cfg.RTMPID,
		"brokers", cfg.Brokers, "encrypted", s.serverKey != nil, "listen_all", cfg.RTMListenAll)
	return nil
}

// goRun runs fn on a goroutine owned by c; an error other than a clean stop
// is reported on c.failed.
func (c *RunCommand) goRun(name string, fn func(context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := fn(context.Background())
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, bridge.ErrClosed) {
			select {
			case c.failed <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

// runBridge prepares Kafka (topics, the listen state from the control topic),
// then runs the RTM session and the control loop until ctx ends.
func (c *RunCommand) runBridge(ctx context.Context, s *settings, metrics *bridge.Metrics) error {
	cfg := c.Config
	kafkaAt := "Kafka at KAFKA_BROKERS=" + strings.Join(cfg.Brokers, ",")
	prepare, what := c.bridge.EnsureTopics, "create topics on "+kafkaAt
	if !cfg.KafkaCreateTopics {
		prepare, what = c.bridge.CheckTopics, "check topics on "+kafkaAt
	}
	// explained runs one preparation step; its failure is explained in the
	// configuration's terms and kept for /readyz.
	explained := func(f func() error) func() error {
		return func() error {
			err := cfg.KafkaConfig.explain(f())
			if err != nil {
				c.prepErr.Store(&err)
			}
			return err
		}
	}
	if err := retry(ctx, c.log, what, explained(func() error { return prepare(ctx) })); err != nil {
		return err
	}
	var listen rtm.ListenState // a standby listens to nothing until it is active
	var offset int64
	if !cfg.HA {
		if err := retry(ctx, c.log, "restore the listen state from the control topic on "+kafkaAt, explained(func() (err error) {
			listen, offset, err = c.bridge.RestoreListen(ctx, s.listen)
			return err
		})); err != nil {
			return err
		}
		if offset > 0 {
			c.log.Info("listen state: RTM_LISTEN_ALL, then the control topic's history, which overrides it",
				"listen", listenSummary(listen), "listen_all", cfg.RTMListenAll, "control_topic", c.controlTopic, "replayed_before_offset", offset)
		} else {
			c.log.Info("listen state: RTM_LISTEN_ALL (the control topic has no command yet)", "listen", listenSummary(listen))
		}
	}

	connOpts := []rtm.ConnOption{
		rtm.WithKeepalive(cfg.RTMPingInterval, cfg.RTMPingTimeout),
		rtm.WithMaxPayload(cfg.RTMMaxPayload),
		rtm.WithLogger(c.log.With("component", "rtm")),
	}
	if s.serverKey != nil {
		connOpts = append(connOpts, rtm.WithEncryption(s.serverKey, cfg.RTMAESBits))
	}
	sessOpts := []rtm.SessionOption{
		rtm.WithListen(listen),
		rtm.WithConnOptions(connOpts...),
		rtm.WithSessionLogger(c.log.With("component", "session")),
		rtm.WithStateHook(func(sc rtm.StateChange) {
			// The session logs failures itself (once per kind); this only
			// feeds the gauge and a debug trail.
			metrics.SetLinkState(sc.State.String())
			c.log.Debug("rtm link", "state", sc.State.String(), "reason", sc.Reason, "attempt", sc.Attempt)
		}),
	}
	if cfg.RTMDedupWindow == 0 {
		sessOpts = append(sessOpts, rtm.WithDedup(0, 0))
	} else {
		sessOpts = append(sessOpts, rtm.WithDedup(cfg.RTMDedupWindow, 0))
	}
	sess := rtm.NewSession(cfg.RTMEndpoint, rtm.NewSigner(cfg.RTMPID, s.secret), sessOpts...)
	c.session.Store(sess)

	errc := make(chan error, 2)
	go func() { errc <- sess.Run(ctx, c.bridge) }()
	if cfg.HA {
		go func() { errc <- c.bridge.RunHA(ctx, sess, s.listen) }()
	} else {
		go func() { errc <- c.bridge.RunControl(ctx, sess, offset) }()
	}
	err := <-errc
	c.cancel()
	if err2 := <-errc; err == nil || errors.Is(err, context.Canceled) {
		err = err2
	}
	return err
}

// retry calls fn until it succeeds or ctx ends, with the bridge's back-off
// (250 ms doubling to 30 s). The first failures are logged as warnings
// (a topic just created has no leader for a moment); from the fourth on as
// errors, since then something is really wrong.
func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	bo := bridge.Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second}
	return bo.Retry(ctx, fn, func(err error, attempt int, wait time.Duration) {
		lvl := slog.LevelWarn
		if attempt > 3 {
			lvl = slog.LevelError
		}
		log.Log(ctx, lvl, what+" failed; retrying", "err", err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String())
	})
}

// Shutdown drains: /readyz turns red, the bridge stops taking pushes and
// waits until every in-flight record is acked and answered, then the session
// and control loop stop and the HTTP server goes last. If ctx ends first the
// rest is cut short and the error says how much was left.
func (c *RunCommand) Shutdown(ctx context.Context) error {
	c.stopping.Store(true)
	var errs []error
	if sess := c.session.Load(); sess != nil && c.Config.HA {
		if err := c.bridge.Handover(ctx, sess); err != nil {
			c.log.Warn("handover", "err", err)
		}
	}
	if err := c.bridge.Shutdown(ctx); err != nil {
		st := c.bridge.Stats()
		errs = append(errs, fmt.Errorf("drain did not finish: %d records (%d bytes) in flight left unanswered (the gateway redelivers them): %w",
			st.InFlightRecords, st.InFlightBytes, err))
		_ = c.bridge.Close() // already failed; Close only cuts the rest short
	}
	if c.cancel != nil {
		c.cancel()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.ops != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = c.ops.shutdown(sctx) // the last scrapes may be cut; nothing else depends on it
		}
		c.wg.Wait()
	}()
	<-done
	if len(errs) == 0 {
		c.log.Info("rtm2kafka stopped: every in-flight push was answered")
	}
	return errors.Join(errs...)
}

// HTTPAddr is the bound address of the ops server ("" when disabled).
func (c *RunCommand) HTTPAddr() string {
	if c.ops == nil {
		return ""
	}
	return c.ops.Addr()
}

// Session returns the RTM session once it exists (after Kafka is prepared).
func (c *RunCommand) Session() *rtm.Session { return c.session.Load() }

// Bridge returns the bridge.
func (c *RunCommand) Bridge() *bridge.Bridge { return c.bridge }

// ready is /readyz: the link is listening and Kafka is writable.
func (c *RunCommand) ready(ctx context.Context) error {
	if c.stopping.Load() {
		return errors.New("shutting down")
	}
	sess := c.session.Load()
	if sess == nil {
		if p := c.prepErr.Load(); p != nil {
			return fmt.Errorf("preparing Kafka topics and the listen state: %w", *p)
		}
		if p := c.bridge.KafkaProblem(); p != "" {
			return errors.New("preparing Kafka topics and the listen state: " + p)
		}
		return errors.New("preparing Kafka topics and the listen state")
	}
	if st := sess.State(); st.State != rtm.Listening {
		return fmt.Errorf("rtm link %s: %s", st.State, st.Reason)
	}
	if c.bridge.SpoolEnabled() {
		// With a spool, pushes are answered (after fsync) while Kafka is
		// slow or down: ready, but degraded.
		if spilling, n := c.bridge.Spilling(); spilling {
			return degradedError{fmt.Sprintf("spilling to spool, %d records", n)}
		}
		if err := c.bridge.CheckWritable(ctx); err != nil {
			return degradedError{fmt.Sprintf("kafka not writable, pushes will spill to the spool: %v", c.Config.KafkaConfig.explain(err))}
		}
		return nil
	}
	if err := c.bridge.CheckWritable(ctx); err != nil {
		return c.Config.KafkaConfig.explain(err)
	}
	return nil
}

// status is /status.
func (c *RunCommand) status() any {
	out := map[string]any{
		"version":    buildVersion(),
		"started_at": c.started.UTC().Format(time.RFC3339),
		"stopping":   c.stopping.Load(),
		"bridge":     c.bridge.Stats(),
		"kafka":      c.bridge.KafkaStatus(),
		"ha":         c.bridge.HAStatus(),
		"spool":      c.bridge.SpoolStatus(),
	}
	if sess := c.session.Load(); sess != nil {
		st := sess.State()
		out["link"] = map[string]any{"state": st.State.String(), "reason": st.Reason, "attempt": st.Attempt, "since": st.At.UTC().Format(time.RFC3339Nano)}
		out["listen"] = listenJSON(sess.Listen())
		out["listen_origin"] = c.origin(c.bridge.Stats())
		out["session"] = sess.Stats()
	} else {
		out["link"] = map[string]any{"state": "not started", "reason": "preparing Kafka topics and the listen state"}
	}
	return out
}

// registerSessionMetrics exposes the session's own counters at scrape time.
func (c *RunCommand) registerSessionMetrics() {
	stat := func(f func(rtm.SessionStats) float64) func() float64 {
		return func() float64 {
			if s := c.session.Load(); s != nil {
				return f(s.Stats())
			}
			return 0
		}
	}
	c.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rtm2kafka", Name: "rtm_reconnects_total",
			Help: "Connection attempts to the gateway after the first."}, stat(func(s rtm.SessionStats) float64 { return float64(s.Reconnects) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rtm2kafka", Name: "rtm_duplicates_dropped_total",
			Help: "Redelivered pushes answered by the duplicate filter and not written again."}, stat(func(s rtm.SessionStats) float64 { return float64(s.DuplicatesDropped) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rtm2kafka", Name: "rtm_pushes_received_total",
			Help: "Pushes received from the gateway, duplicates and invalid ones included."}, stat(func(s rtm.SessionStats) float64 { return float64(s.PushesReceived) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rtm2kafka", Name: "rtm_invalid_pushes_total",
			Help: "Pushes that failed to decode (sent to the dead-letter topic)."}, stat(func(s rtm.SessionStats) float64 { return float64(s.InvalidPushes) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rtm2kafka", Name: "rtm_unknown_quests_total",
			Help: "Quests from the gateway with a method this version does not know (not written to Kafka)."}, stat(func(s rtm.SessionStats) float64 { return float64(s.UnknownQuests) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rtm2kafka", Name: "rtm_pings_answered_total",
			Help: "Gateway ping pushes answered."}, stat(func(s rtm.SessionStats) float64 { return float64(s.PingsAnswered) })),
	)
}
