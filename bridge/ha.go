package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// High availability (Config.HA): every instance joins one consumer group on
// the control topic, which has one partition; the member Kafka's group
// coordinator assigns partition 0 is the active bridge. Decisions:
//
//   - Protocol: the classic group protocol with the cooperative-sticky
//     balancer (kgo's default). Its session timeout is the client's choice
//     (default 6 s, the broker's group.min.session.timeout.ms), so a crashed
//     active is replaced within about 6 s + takeover. The KIP-848 protocol
//     takes its session timeout from the broker (45 s minimum by default):
//     too slow for a failover without changing broker settings.
//   - Standby: its RTM session is connected and signed, listening to
//     nothing; a push that still reaches it is left unanswered (the
//     gateway redelivers it to the active one). Taking over is RestoreListen (the results and control topics:
//     the listen state the gateway accepted) plus one listen change, then
//     the control loop: no cold start.
//   - Lease: the active bridge's right to answer pushes lasts while the
//     coordinator hears it: each group response read renews it, and it ends
//     SessionTimeout after the last one's request was sent (the
//     coordinator cannot have heard it earlier, so it never expires the
//     member while the lease runs); measured on the monotonic clock. A bridge whose lease ended (lost
//     membership, revoked, or a process stopped past the session timeout —
//     it sees the expired lease as soon as it runs again) is fenced: it
//     leaves every new push unanswered (the gateway redelivers it to the
//     listener that owns the lease) and stops listening at once.
//   - Handover (SIGTERM on the active, Bridge.Handover): the active leaves
//     the group, waits until another instance announces on the
//     control-results topic that it is listening (a record with the
//     rtm2kafka-role header), and only then stops listening and drains: an
//     overlap, never a gap. Pushes the gateway sends to both during the
//     overlap are written twice (counted by the simulator; consumers dedupe).

// Role is an instance's part in a high-availability group.
type Role int32

const (
	// RoleSingle is a bridge without HA: always active.
	RoleSingle Role = iota
	// RoleStandby: connected to the gateway, listening to nothing.
	RoleStandby
	// RoleActive: listening and writing.
	RoleActive
)

func (r Role) String() string {
	switch r {
	case RoleStandby:
		return "standby"
	case RoleActive:
		return "active"
	}
	return "single"
}

// roleHeader marks a role announcement on the control-results topic;
// RestoreListen and SendControl pass over such records.
const roleHeader = "rtm2kafka-role"

// HAConfig turns on high availability; see the HA section above.
type HAConfig struct {
	// Group is the consumer group id; default "<prefix>.bridge".
	Group string
	// SessionTimeout bounds how long a silent active keeps its lease;
	// default 6 s (the broker's default minimum).
	SessionTimeout time.Duration
	// Instance names this process in logs and announcements; default
	// host-pid.
	Instance string
}

// ha is the state of the HA machinery.
type ha struct {
	cfg HAConfig
	log *slog.Logger

	role       atomic.Int32
	since      atomic.Int64 // unix ms of the last role change
	generation atomic.Int32
	base       time.Time    // the clock's origin: lease times are monotonic nanoseconds since base
	lastHB     atomic.Int64 // when the request of the last group response read was sent
	lastSync   atomic.Int64 // when the last SyncGroup request answered was sent
	fenced     atomic.Bool  // the lease ended while active: pushes are not answered
	serving    atomic.Bool  // an active term listens (or is about to): pushes are ours to answer
	handing    atomic.Bool  // Handover runs: a revocation must not stop listening yet
	takeovers  atomic.Uint64
	handovers  atomic.Uint64
	lastTake   atomic.Int64 // ms from the last assignment to listening

	changes chan struct{} // poked on every assignment change

	mu       sync.Mutex
	group    *kgo.Client
	assigned bool // partition 0 is ours (as the group last said)
}

func (h *ha) poke() {
	select {
	case h.changes <- struct{}{}:
	default:
	}
}

// OnBrokerRead implements kgo.HookBrokerRead: a group response read renews
// the lease. The lease counts from when the request was sent (the read's
// wait and duration before now), not from when its answer arrived: the
// coordinator heard the member no earlier than that, so it cannot expire
// the member before this instance's lease ends.
func (h *ha) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, readWait, timeToRead time.Duration, err error) {
	const joinGroup, heartbeat, syncGroup = 11, 12, 14
	if err != nil {
		return
	}
	sent := h.now() - int64(readWait+timeToRead)
	if key == syncGroup {
		h.lastSync.Store(sent)
	}
	// Renew only a lease still running: a response read after the lease
	// ran out (a process stopped past the session timeout, or an answer
	// carrying UNKNOWN_MEMBER_ID) must not revive it; only a new
	// assignment starts a new lease.
	if (key == heartbeat || key == joinGroup || key == syncGroup) && h.leaseValid() {
		h.lastHB.Store(sent)
	}
}

// now is the lease clock: monotonic nanoseconds since h.base.
func (h *ha) now() int64 { return int64(time.Since(h.base)) }

// OnGroupManageError implements kgo.HookGroupManageError: the group session
// died (unknown member, illegal generation, ...): an active instance's lease
// ends now, before the client rejoins.
func (h *ha) OnGroupManageError(err error) {
	if Role(h.role.Load()) == RoleActive && h.fenced.CompareAndSwap(false, true) {
		h.log.Error("bridge: HA: the group session ended while active: fenced, leaving pushes unanswered and stopping listening",
			slog.String("instance", h.cfg.Instance), slog.String("error", err.Error()))
		h.poke()
	}
}

// leaseValid reports whether the active bridge still holds its lease.
func (h *ha) leaseValid() bool {
	return time.Duration(h.now()-h.lastHB.Load()) < h.cfg.SessionTimeout
}

// fence reports whether a push must be left unanswered: this instance
// holds no lease to answer it. That is so when its lease ended while active
// (it marks the bridge fenced and wakes the HA loop, which stops listening),
// and when it is a standby: a push that reaches a standby (one sent before
// its "listen to nothing" took effect, after a term ended) belongs to the
// active instance, which gets the redelivery. An instance handing over
// answers until it stops listening: that is the overlap.
func (b *Bridge) fence() bool {
	h := b.ha
	if h.fenced.Load() {
		return true
	}
	if h.handing.Load() {
		return false
	}
	if !h.serving.Load() {
		return true
	}
	if !h.leaseValid() {
		if h.fenced.CompareAndSwap(false, true) {
			b.log.Error("bridge: HA lease expired (the group coordinator has not heard this instance for the session timeout): fenced, leaving pushes unanswered and stopping listening",
				slog.String("instance", h.cfg.Instance), slog.Duration("session_timeout", h.cfg.SessionTimeout))
			h.poke()
		}
		return true
	}
	return false
}

// HAStatus is the HA part of /status.
type HAStatus struct {
	Enabled        bool   `json:"enabled"`
	Role           string `json:"role"`
	Since          string `json:"since"`
	Instance       string `json:"instance"`
	Group          string `json:"group"`
	Generation     int32  `json:"generation"`
	Fenced         bool   `json:"fenced"`
	Takeovers      uint64 `json:"takeovers"`
	Handovers      uint64 `json:"handovers"`
	LastTakeoverMs int64  `json:"last_takeover_ms"` // assignment → listening
}

// Role returns the instance's role: RoleSingle without HA.
func (b *Bridge) Role() Role {
	if b.ha == nil {
		return RoleSingle
	}
	return Role(b.ha.role.Load())
}

// HAStatus returns the HA state for /status.
func (b *Bridge) HAStatus() HAStatus {
	h := b.ha
	if h == nil {
		return HAStatus{Role: RoleSingle.String()}
	}
	h.mu.Lock()
	if h.group != nil {
		_, gen := h.group.GroupMetadata()
		h.generation.Store(gen)
	}
	h.mu.Unlock()
	return HAStatus{
		Enabled: true, Role: Role(h.role.Load()).String(),
		Since:    time.UnixMilli(h.since.Load()).UTC().Format(time.RFC3339Nano),
		Instance: h.cfg.Instance, Group: h.cfg.Group, Generation: h.generation.Load(),
		Fenced: h.fenced.Load(), Takeovers: h.takeovers.Load(), Handovers: h.handovers.Load(),
		LastTakeoverMs: h.lastTake.Load(),
	}
}

func (h *ha) setRole(r Role) {
	if Role(h.role.Swap(int32(r))) != r {
		h.since.Store(time.Now().UnixMilli())
	}
}

// RunHA runs this instance as a member of the HA group until ctx ends:
// standby (lc connected, listening to nothing) until the group assigns it
// the control partition, then active: the listen state the gateway accepted
// (RestoreListen over defaults) is applied through lc and the control topic
// is run, until the assignment is revoked or lost, or the lease ends. It
// returns ctx.Err(), or ErrClosed once the bridge is closed.
func (b *Bridge) RunHA(ctx context.Context, lc ListenController, defaults rtm.ListenState) error {
	h := b.ha
	if h == nil {
		return errors.New("bridge: RunHA without Config.HA")
	}
	topic := b.router.ControlTopic()
	onAssigned := func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
		if hasControl(m, topic) {
			h.mu.Lock()
			h.assigned = true
			h.mu.Unlock()
			_, gen := cl.GroupMetadata()
			h.generation.Store(gen)
			h.lastHB.Store(h.lastSync.Load()) // a new lease, from the SyncGroup that assigned it
			h.poke()
		}
	}
	onRevoked := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		if hasControl(m, topic) {
			h.mu.Lock()
			h.assigned = false
			h.mu.Unlock()
			// Another member may be active already: take no new push
			// from now on (a handover keeps answering until the new
			// active announces itself; Handover stops listening then).
			if !h.handing.Load() && Role(h.role.Load()) == RoleActive {
				h.fenced.Store(true)
			}
			h.poke()
		}
	}
	group, err := b.NewClient(
		kgo.ConsumerGroup(h.cfg.Group),
		kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(h.cfg.SessionTimeout),
		kgo.HeartbeatInterval(max(h.cfg.SessionTimeout/6, 100*time.Millisecond)),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(onAssigned),
		kgo.OnPartitionsRevoked(onRevoked),
		kgo.OnPartitionsLost(onRevoked),
		kgo.WithHooks(h),
	)
	if err != nil {
		return err
	}
	group.PauseFetchTopics(topic) // membership only: commands are read by RunControl
	h.mu.Lock()
	h.group = group
	h.mu.Unlock()
	defer group.Close()
	b.log.Info("bridge: HA: joined the group (a standby until the group assigns it the control partition)", slog.String("group", h.cfg.Group), slog.String("instance", h.cfg.Instance))

	go func() { // the group is managed while the client polls
		for ctx.Err() == nil && b.stopCtx.Err() == nil {
			group.PollFetches(ctx)
		}
	}()

	var term *haTerm // the current active term, nil while standby
	endTerm := func(why string) {
		if term == nil {
			return
		}
		term.cancel()
		<-term.done
		term = nil
		h.serving.Store(false) // from now on a push here is the next active's
		h.setRole(RoleStandby)
		if h.handing.Load() && !h.fenced.Load() {
			return // Handover stops listening once the new active listens
		}
		// Stop listening at once; a failure is logged: the lease has
		// already ended, so pushes are left unanswered meanwhile.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := applyState(sctx, lc, rtm.ListenState{}); err != nil {
			b.log.Error("bridge: HA: could not stop listening", slog.String("error", err.Error()))
		}
		h.fenced.Store(false) // a standby now, listening to nothing; may be chosen anew
		b.log.Warn("bridge: HA: no longer active: listening to nothing", slog.String("why", why), slog.String("instance", h.cfg.Instance))
	}
	defer endTerm("stopping")
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.stopCtx.Done():
			return ErrClosed
		case <-h.changes:
		}
		h.mu.Lock()
		assigned := h.assigned
		h.mu.Unlock()
		switch {
		case term != nil && (!assigned || h.fenced.Load()):
			why := "the group revoked the control partition"
			if h.fenced.Load() {
				why = "lease expired"
			}
			endTerm(why)
		case term == nil && assigned && !h.fenced.Load():
			term = &haTerm{done: make(chan struct{})}
			var tctx context.Context
			tctx, term.cancel = context.WithCancel(ctx)
			go func(done chan struct{}) {
				defer close(done)
				b.activeTerm(tctx, lc, defaults)
			}(term.done)
		case term == nil && h.fenced.Load():
			h.fenced.Store(false) // fenced while a standby (nothing to stop): may be chosen anew
		}
	}
}

// haTerm is one running active term.
type haTerm struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func hasControl(m map[string][]int32, topic string) bool {
	for _, p := range m[topic] {
		if p == controlPartition {
			return true
		}
	}
	return false
}

// applyState makes lc listen to exactly s: the id lists, then the flags.
func applyState(ctx context.Context, lc ListenController, s rtm.ListenState) (rtm.ListenState, error) {
	if _, err := lc.ApplyListen(ctx, rtm.ListenChange{Op: rtm.OpSet, GIDs: s.GIDs, RIDs: s.RIDs, UIDs: s.UIDs, Events: s.Events}); err != nil {
		return rtm.ListenState{}, err
	}
	return lc.ApplyListen(ctx, rtm.ListenChange{Op: rtm.OpSetAll, P2P: s.P2P, Group: s.Group, Room: s.Room, Ev: s.Ev})
}

// activeTerm is one term as the active bridge: restore, listen, announce,
// run the control topic until ctx ends.
func (b *Bridge) activeTerm(ctx context.Context, lc ListenController, defaults rtm.ListenState) {
	h := b.ha
	start := time.Now()
	var (
		state rtm.ListenState
		from  int64
	)
	bo := Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	err := bo.Retry(ctx, func() error {
		var err error
		state, from, err = b.RestoreListen(ctx, defaults)
		if err != nil {
			return err
		}
		if err := waitListening(ctx, lc); err != nil {
			return err
		}
		// Pushes may arrive as soon as the gateway accepts the listen
		// change below: they are ours from here (the lease still bounds it).
		h.serving.Store(true)
		state, err = applyState(ctx, lc, state)
		return err
	}, func(err error, attempt int, wait time.Duration) {
		b.log.Warn("bridge: HA: taking over failed; retrying", slog.String("error", err.Error()), slog.Int("attempt", attempt))
	})
	if err != nil {
		return
	}
	b.setListen(state)
	h.setRole(RoleActive)
	h.takeovers.Add(1)
	took := time.Since(start)
	h.lastTake.Store(took.Milliseconds())
	b.log.Info("bridge: HA: active: listening", slog.String("instance", h.cfg.Instance),
		slog.Int("generation", int(h.generation.Load())), slog.Duration("assignment_to_listening", took.Round(time.Millisecond)))
	b.announce(ctx)
	go b.checkGroupShared(ctx)
	if err := b.RunControl(ctx, lc, from); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
		b.log.Error("bridge: HA: control loop ended", slog.String("error", err.Error()))
	}
}

// checkGroupShared warns when the HA group has members that follow another
// control topic: one BRIDGE_GROUP shared by two KAFKA_TOPIC_PREFIX values
// gives each prefix its own active bridge (each control topic's partition
// 0 is assigned to someone), so every push is written once per prefix, and
// a handover waits for a standby that never comes. Best effort: it reads
// the group once it is Stable (for up to 30 s; a member list taken during
// a rebalance may be incomplete), and ignores errors reading it.
func (b *Bridge) checkGroupShared(ctx context.Context) {
	h := b.ha
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var g kadm.DescribedGroup
	for range 30 {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		dg, err := kadm.NewClient(b.cl).DescribeGroups(dctx, h.cfg.Group)
		cancel()
		if err == nil && dg[h.cfg.Group].Err == nil && dg[h.cfg.Group].State == "Stable" {
			g = dg[h.cfg.Group]
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	ours := b.router.ControlTopic()
	others := map[string]bool{}
	for _, m := range g.Members {
		c, ok := m.Join.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range c.Topics {
			if t != ours {
				others[t] = true
			}
		}
	}
	if len(others) > 0 {
		b.log.Warn("bridge: HA: the group is shared with bridges of another topic prefix: each prefix gets its own active bridge and every push is written once per prefix; give each KAFKA_TOPIC_PREFIX its own BRIDGE_GROUP (the default <prefix>.bridge does)",
			slog.String("group", h.cfg.Group), slog.String("control_topic", ours), slog.Any("other_control_topics", slices.Sorted(maps.Keys(others))))
	}
}

// roleAnnouncement is the value of a role record.
type roleAnnouncement struct {
	Instance   string `json:"instance"`
	Role       string `json:"role"`
	Generation int32  `json:"generation"`
	At         int64  `json:"at"`
}

// announce writes "this instance is active and listening" to the
// control-results topic, for an instance handing over.
func (b *Bridge) announce(ctx context.Context) {
	h := b.ha
	v, _ := json.Marshal(roleAnnouncement{Instance: h.cfg.Instance, Role: "active", Generation: h.generation.Load(), At: time.Now().UnixMilli()}) // plain struct: always marshals
	rec := &kgo.Record{Topic: b.router.ControlResultsTopic(), Key: []byte("role"), Value: v,
		Headers: []kgo.RecordHeader{{Key: roleHeader, Value: []byte(h.cfg.Instance)}}}
	if err := b.cl.ProduceSync(ctx, rec).FirstErr(); err != nil && ctx.Err() == nil {
		b.log.Warn("bridge: HA: could not announce the takeover", slog.String("error", DescribeKafkaError(err)))
	}
}

// Handover hands the active role to a standby before this instance stops:
// it leaves the group and waits until another instance announces that it
// listens (at most the session timeout plus 3 s), then stops listening. The window is drained afterwards by
// Shutdown as usual. Without HA, or when not active, or when no other
// member is in the group, it only leaves the group. If ctx ends first it
// stops listening anyway and returns ctx's error.
func (b *Bridge) Handover(ctx context.Context, lc ListenController) error {
	h := b.ha
	if h == nil {
		return nil
	}
	h.mu.Lock()
	group := h.group
	h.mu.Unlock()
	if group == nil {
		return nil
	}
	if Role(h.role.Load()) != RoleActive {
		group.LeaveGroup()
		return nil
	}
	// Hand over unless the group is known to hold this instance alone: a
	// standby that is joining right now (the group rebalancing) may not be
	// listed yet, and skipping the handover then would leave a gap.
	alone := false
	if dg, err := kadm.NewClient(b.cl).DescribeGroups(ctx, h.cfg.Group); err == nil {
		if g, ok := dg[h.cfg.Group]; ok && g.Err == nil && g.State == "Stable" && len(g.Members) <= 1 {
			alone = true
		}
	}
	ends, err := b.endOffsets(ctx, b.router.ControlResultsTopic())
	if err != nil {
		ends = nil
	}
	h.handing.Store(!alone)
	group.LeaveGroup()
	if alone {
		b.log.Warn("bridge: HA: no standby in the group: stopping without a handover (pushes find no listener until another instance starts)")
		return nil
	}
	b.log.Info("bridge: HA: handing over: left the group, listening until a standby announces it listens")
	// A standby that is itself dead stays in the group until its session
	// times out: wait for that and a takeover, not for the whole drain
	// deadline, so that the drain keeps its time.
	wctx, cancel := context.WithTimeout(ctx, h.cfg.SessionTimeout+3*time.Second)
	err = b.waitAnnouncement(wctx, ends)
	cancel()
	if err == nil {
		h.handovers.Add(1)
		b.log.Info("bridge: HA: the new active listens: stopping listening")
	} else {
		b.log.Warn("bridge: HA: no standby announced itself in time: stopping listening anyway", slog.String("error", err.Error()))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, aerr := applyState(sctx, lc, rtm.ListenState{}); aerr != nil {
		return fmt.Errorf("bridge: handover: stop listening: %w", aerr)
	}
	return err
}

// waitAnnouncement reads the control-results topic from ends until another
// instance's role record arrives.
func (b *Bridge) waitAnnouncement(ctx context.Context, ends map[int32]int64) error {
	topic := b.router.ControlResultsTopic()
	from := make(map[int32]kgo.Offset)
	for p, o := range ends {
		from[p] = kgo.NewOffset().At(o)
	}
	opt := kgo.ConsumeTopics(topic)
	if len(from) > 0 {
		opt = kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	}
	cl, err := b.NewClient(opt)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			for _, hd := range r.Headers {
				if hd.Key == roleHeader && string(hd.Value) != b.ha.cfg.Instance {
					found = true
				}
			}
		})
		if found {
			return nil
		}
	}
}

// defaultInstance is host-pid.
func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "rtm2kafka"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// isRoleRecord reports whether r is a role announcement, not a result.
func isRoleRecord(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == roleHeader {
			return true
		}
	}
	return false
}
