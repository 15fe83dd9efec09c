package rtm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// ErrSessionRunning is returned by [Session.Run] when the session is already
// running.
var ErrSessionRunning = errors.New("rtm: session: Run is already running")

// Session is the reconnecting, listening RTM client: it keeps one connection
// to the gateway, replays the desired listen state on every (re)connect,
// filters duplicate pushes and hands every other push to a [PushHandler].
//
// [Session.Run] owns the one goroutine of the session (dial → replay →
// listen → wait for the connection to die → close it → back off → redial);
// the connection's reader calls the handler. [Session.ApplyListen] changes
// the listen state at any time, [Session.State] and [Session.Watch] report
// the link's state, [Session.Stats] its counters. All methods are safe for
// concurrent use.
type Session struct {
	addr   string
	signer *Signer
	opts   sessionOptions
	log    *slog.Logger
	dedup  *dedup // nil: filtering off
	randN  func(int64) int64

	// listenSem serialises listen changes and replays: whoever holds it
	// owns desired-state changes and the quests that carry them.
	listenSem chan struct{}
	// resync asks Run to replay the whole listen state on the current
	// connection (after a listen quest failed in a way that leaves the
	// gateway's state unknown).
	resync chan struct{}

	running atomic.Bool
	// Set by Run before the first Dial and read by the connection's reader
	// (ordered by the goroutine start in Dial and the join in Close).
	handler PushHandler
	runCtx  context.Context
	push    Push // reused for every push; valid until HandlePush returns

	mu      sync.Mutex
	state   StateChange
	desired ListenState
	live    *Conn // the connection, once its replay succeeded; nil otherwise

	notifyMu sync.Mutex
	watchers map[*watcher]struct{}

	lastClass string // Run's goroutine only: the failure class last logged

	reconnects atomic.Uint64
	pushes     atomic.Uint64
	duplicates atomic.Uint64
	pings      atomic.Uint64
	invalid    atomic.Uint64
	unknown    atomic.Uint64

	unknownMu     sync.Mutex
	unknownLogged map[string]bool // methods already warned about (at most maxUnknownLogged)
}

// maxUnknownLogged bounds the unknown methods warned about by name.
const maxUnknownLogged = 32

// SessionStats are a session's counters since it was created.
type SessionStats struct {
	Reconnects        uint64 `json:"reconnects"`         // connection attempts after the first one
	PushesReceived    uint64 `json:"pushes_received"`    // pushmsg/pushgroupmsg/pushroommsg/pushevent quests, duplicates and invalid ones included
	DuplicatesDropped uint64 `json:"duplicates_dropped"` // redeliveries answered by the filter, not handed to the handler
	PingsAnswered     uint64 `json:"pings_answered"`     // gateway "ping" quests answered
	InvalidPushes     uint64 `json:"invalid_pushes"`     // pushes that failed to decode (handed over with Err set)
	UnknownQuests     uint64 `json:"unknown_quests"`     // quests from the gateway with a method we do not know (two-way ones answered 20004); never in Kafka
	DedupEntries      int    `json:"dedup_entries"`      // messages the duplicate filter currently remembers
}

// NewSession returns a session that will connect to the gateway at addr
// (host:port) and sign its quests with signer. Nothing happens until
// [Session.Run].
func NewSession(addr string, signer *Signer, opts ...SessionOption) *Session {
	o := defaultSessionOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	o.backoff = o.backoff.normalized()
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	randN := o.randN
	if randN == nil {
		randN = rand.Int64N
	}
	s := &Session{
		addr:      addr,
		signer:    signer,
		opts:      o,
		log:       log.With("gateway", addr),
		dedup:     newDedup(o.dedupWindow, o.dedupMax, o.now),
		randN:     randN,
		listenSem: make(chan struct{}, 1),
		resync:    make(chan struct{}, 1),
		desired:   o.listen.Clone(),
		watchers:  make(map[*watcher]struct{}),
	}
	s.state = StateChange{State: Disconnected, Reason: "not started", At: time.Now()}
	return s
}

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	st := SessionStats{
		Reconnects:        s.reconnects.Load(),
		PushesReceived:    s.pushes.Load(),
		DuplicatesDropped: s.duplicates.Load(),
		PingsAnswered:     s.pings.Load(),
		InvalidPushes:     s.invalid.Load(),
		UnknownQuests:     s.unknown.Load(),
	}
	if s.dedup != nil {
		st.DedupEntries = s.dedup.len()
	}
	return st
}

// Listen returns the desired listen state: what the session asks the
// gateway for on every connect (a copy).
func (s *Session) Listen() ListenState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desired.Clone()
}

// Run connects to the gateway and keeps the session alive until ctx ends,
// handing every push to h (see [PushHandler]). It is the session's only
// goroutine: dial; replay the listen state (the id-list setlisten with all
// four lists, then, if any flag is on, the set-all setlisten with all four
// flags, each answer checked); enter Listening; wait for the connection to die; close it; wait
// out the back-off (see [Backoff]; a connection that listened for less than
// [FlashDisconnect] counts as a failure); redial.
//
// Run never gives up: dial errors, dead connections and gateway errors —
// configuration errors such as a wrong secret (200002) included — are
// reported in the state's Reason, logged once per kind of failure, and
// retried with the capped back-off. It returns ctx.Err() once ctx is done,
// after closing the connection; from then on no push is handed over (pushes
// arriving meanwhile stay unanswered). A session runs once at a time:
// a concurrent call returns [ErrSessionRunning].
//
// h is called on the connection's reader goroutine. The context it gets is
// cancelled when the connection that carried the push dies (and so shortly
// after ctx ends): a handler blocked on backpressure must return then, as
// the push can no longer be answered and the gateway will re-deliver it.
func (s *Session) Run(ctx context.Context, h PushHandler) error {
	if h == nil {
		return errors.New("rtm: session: nil PushHandler")
	}
	if s.signer == nil {
		return errors.New("rtm: session: nil Signer")
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrSessionRunning
	}
	defer s.running.Store(false)
	s.handler, s.runCtx = h, ctx
	s.lastClass = ""

	failures := 0
	for first := true; ; first = false {
		if !first {
			s.reconnects.Add(1)
		}
		attempt := failures + 1
		out := s.connectOnce(ctx, attempt)
		if ctx.Err() != nil {
			s.setState(Stopped, "stopped: "+context.Cause(ctx).Error(), attempt)
			return ctx.Err()
		}
		if out.healthy {
			failures = 0
		}
		failures++
		s.logFailure(out)
		d := s.opts.backoff.Delay(failures, s.randN)
		s.setState(Disconnected, fmt.Sprintf("%s; next attempt in %s", out.reason, d.Round(time.Millisecond)), attempt)
		if err := sleepCtx(ctx, d); err != nil {
			s.setState(Stopped, "stopped: "+context.Cause(ctx).Error(), attempt)
			return err
		}
	}
}

// outcome is how one connection attempt ended.
type outcome struct {
	reason  string // for the state and the log
	class   string // failures of the same class are logged once in a row
	config  bool   // a configuration error: logged at error level
	healthy bool   // the connection listened for at least the flash threshold
}

// connectOnce makes one connection and runs it until it dies or ctx ends.
func (s *Session) connectOnce(ctx context.Context, attempt int) outcome {
	// A resync asked for on a previous connection is moot: the replay
	// below sends everything.
	select {
	case <-s.resync:
	default:
	}
	s.setState(Connecting, "dialling "+s.addr, attempt)
	connOpts := append([]ConnOption{WithLogger(s.log)}, s.opts.connOpts...)
	conn, err := Dial(ctx, s.addr, (*sessionQuests)(s), connOpts...)
	if err != nil {
		return outcome{reason: "dial: " + err.Error(), class: "dial"}
	}
	defer func() {
		s.mu.Lock()
		s.live = nil
		s.mu.Unlock()
		if ctx.Err() != nil {
			// Stopping: send the answers already queued (a drained bridge
			// has just settled its last pushes) before closing, so the
			// gateway does not redeliver what is already in Kafka.
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = conn.Shutdown(sctx) // a timeout only means the peer stopped reading
			cancel()
			return
		}
		// Close joins the connection's goroutines, so no push of this
		// connection is in the handler once it returns. Its error is the
		// reason the connection died, already reported through Err.
		_ = conn.Close()
	}()

	s.setState(Connected, "replaying the listen state", attempt)
	if err := s.replay(ctx, conn); err != nil {
		return replayOutcome(err)
	}
	listening := time.Now()
	s.lastClass = ""
	s.mu.Lock()
	nothing := s.desired.Empty()
	s.mu.Unlock()
	if nothing {
		// A standby's connection: signed and ready, but listening to nothing.
		s.log.Info("rtm session ready, listening to nothing", "attempt", attempt)
	} else {
		s.log.Info("rtm session listening", "attempt", attempt)
	}
	s.setState(Listening, "", attempt)

	for {
		select {
		case <-ctx.Done():
			return outcome{reason: "stopped"}
		case <-conn.Done():
			err := conn.Err()
			return outcome{
				reason:  "connection lost: " + errText(err),
				class:   "lost",
				healthy: time.Since(listening) >= s.opts.flash,
			}
		case <-s.resync:
			if err := s.replay(ctx, conn); err != nil {
				out := replayOutcome(err)
				out.healthy = time.Since(listening) >= s.opts.flash
				return out
			}
			s.log.Info("rtm session listen state re-applied")
		}
	}
}

// replay sends the whole desired listen state on conn: the id-list
// setlisten with all four lists (so the gateway's lists are exactly ours),
// then, only if any flag is true, the set-all setlisten with all four flags
// (a new connection starts with every flag off). That is the official Go
// SDK's order and choice (spec §7.4): a flags-only setlisten it never sends
// cannot clear lists on a gateway that treats absent lists as empty. On
// success conn becomes the session's live connection. It holds the listen
// lock throughout, so no listen change can interleave.
func (s *Session) replay(ctx context.Context, conn *Conn) error {
	if err := s.lockListen(ctx); err != nil {
		return err
	}
	defer s.unlockListen()
	s.mu.Lock()
	want := s.desired // only changed under the listen lock: no copy needed
	s.live = nil
	s.mu.Unlock()
	if err := s.call(ctx, conn, &SetListenIDs{GIDs: want.GIDs, RIDs: want.RIDs, UIDs: want.UIDs, Events: want.Events}); err != nil {
		return err
	}
	if want.P2P || want.Group || want.Room || want.Ev {
		if err := s.call(ctx, conn, &SetListenAll{P2P: want.P2P, Group: want.Group, Room: want.Room, Ev: want.Ev}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.live = conn
	s.mu.Unlock()
	return nil
}

// ApplyListen changes the desired listen state by c and, when the session
// is listening, sends the matching quest (OpSetAll: setlisten with the four
// flags; OpAdd: addlisten; OpRemove: removelisten; OpSet: setlisten with all
// four lists) and waits for the answer.
//
// A nil error means "the desired state is updated; it is applied now or on
// the next connect": when the session is not listening, or the quest fails
// with a connection error, a timeout or a retryable gateway error, the new
// state is kept and the session replays it (on the current connection, or
// on the next one). A non-retryable gateway error (e.g. 200032, too many
// items) is returned and the desired state is left unchanged. The returned
// state is the desired state afterwards.
//
// Changes are serialised with each other and with the replays: one at a
// time, each seeing the state the previous one left.
func (s *Session) ApplyListen(ctx context.Context, c ListenChange) (ListenState, error) {
	if c.Op < OpSetAll || c.Op > OpSet {
		return s.Listen(), fmt.Errorf("rtm: listen: unknown operation %d", uint8(c.Op))
	}
	if err := s.lockListen(ctx); err != nil {
		return s.Listen(), fmt.Errorf("rtm: listen %s: %w", c.Op, err)
	}
	defer s.unlockListen()

	s.mu.Lock()
	cur, conn := s.desired, s.live
	s.mu.Unlock()
	next := cur.Apply(c)
	if q := listenQuest(c, next); conn != nil && q != nil {
		err := s.call(ctx, conn, q)
		var re *Error
		switch {
		case err == nil:
		case errors.As(err, &re) && !re.Retryable():
			return cur.Clone(), err
		default:
			// The gateway may or may not have applied it: keep the new
			// desired state and have Run replay everything.
			s.log.Warn("rtm listen change not confirmed; re-applying the whole listen state", "op", c.Op.String(), "err", err)
			select {
			case s.resync <- struct{}{}:
			default:
			}
		}
	}
	s.mu.Lock()
	s.desired = next
	s.mu.Unlock()
	return next.Clone(), nil
}

// listenQuest is the quest that carries c on a listening connection, next
// being the desired state after c; nil when there is nothing to send.
func listenQuest(c ListenChange, next ListenState) ClientQuest {
	switch c.Op {
	case OpSetAll:
		return &SetListenAll{P2P: c.P2P, Group: c.Group, Room: c.Room, Ev: c.Ev}
	case OpSet:
		return &SetListenIDs{GIDs: next.GIDs, RIDs: next.RIDs, UIDs: next.UIDs, Events: next.Events}
	}
	if len(c.GIDs)+len(c.RIDs)+len(c.UIDs)+len(c.Events) == 0 {
		return nil
	}
	if c.Op == OpAdd {
		return &AddListen{GIDs: c.GIDs, RIDs: c.RIDs, UIDs: c.UIDs, Events: c.Events}
	}
	return &RemoveListen{GIDs: c.GIDs, RIDs: c.RIDs, UIDs: c.UIDs, Events: c.Events}
}

// call signs q, sends it on conn and waits for the answer. On 200006 (same
// sign) it re-signs with a fresh salt and ts = now + 5 s and sends once more,
// like the official SDK (vector same_sign_retry).
// Errors come from [Conn.Call] as they are: an [*Error] for an error answer,
// else an error naming the connection and method.
func (s *Session) call(ctx context.Context, conn *Conn, q ClientQuest) error {
	method := q.Method()
	_, err := conn.Call(ctx, method, q.AppendPayload(nil, s.signer.Sign(method, time.Now())))
	var re *Error
	if errors.As(err, &re) && re.Code == CodeSameSign {
		s.log.Debug("rtm quest rejected as same sign; re-signing once", "method", method)
		_, err = conn.Call(ctx, method, q.AppendPayload(nil, s.signer.Resign(method, time.Now())))
	}
	return err
}

func (s *Session) lockListen(ctx context.Context) error {
	select {
	case s.listenSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Session) unlockListen() { <-s.listenSem }

// replayOutcome classifies a failed replay.
func replayOutcome(err error) outcome {
	var re *Error
	if !errors.As(err, &re) {
		return outcome{reason: "listen replay failed: " + err.Error(), class: "replay"}
	}
	out := outcome{class: fmt.Sprintf("gateway %d", re.Code)}
	if hint := configHint(re.Code); hint != "" {
		out.config = true
		out.reason = fmt.Sprintf("config error: %s: %s", re.Error(), hint)
		return out
	}
	out.reason = "listen replay rejected: " + re.Error()
	return out
}

// configHint says what to fix for a gateway code that means the
// configuration is wrong, or "" for any other code.
func configHint(code int) string {
	switch code {
	case CodeInvalidPidUid:
		return "check the RTM project id"
	case CodeInvalidSign:
		return "check the RTM project id and secret key"
	case CodeInvalidTime:
		return "the local clock is too far from the gateway's; check NTP"
	case 200020, 200021, 200022:
		return "the project may not use the listen methods; check its server permissions in the RTM console"
	}
	return ""
}

// logFailure logs a failed attempt: the first of a run of failures of the
// same class at warn (a configuration error at error) level, repeats at
// debug, so a long outage or a wrong secret does not flood the log while
// the state's Reason keeps saying what is wrong.
func (s *Session) logFailure(out outcome) {
	if out.class == s.lastClass {
		s.log.Debug("rtm session attempt failed again", "reason", out.reason)
		return
	}
	s.lastClass = out.class
	switch {
	case out.config:
		s.log.Error("rtm session cannot listen: configuration error; retrying with back-off", "reason", out.reason)
	case out.class == "lost":
		s.log.Warn("rtm connection lost; reconnecting", "reason", out.reason)
	default:
		s.log.Warn("rtm session attempt failed; retrying with back-off", "reason", out.reason)
	}
}

// sessionQuests is the [QuestHandler] a Session gives its connections.
type sessionQuests Session

// HandleQuest answers the gateway's ping, filters duplicates and hands
// pushes to the session's handler; see [PushHandler].
func (q *sessionQuests) HandleQuest(ctx context.Context, f *Frame, raw []byte, r Reply) {
	s := (*Session)(q)
	if IsGatewayPing(f) {
		s.pings.Add(1)
		if err := r.OK(); err != nil {
			s.log.Debug("rtm ping answer not sent", "err", err)
		}
		return
	}
	if !IsPushMethod(f.Method) {
		s.unknownQuest(f)
		if f.Type == TwoWay {
			if err := r.Error(CodeUnknownMethod, "Method function is unconfiged."); err != nil {
				s.log.Debug("rtm error answer not sent", "err", err)
			}
		}
		return
	}
	if s.runCtx.Err() != nil {
		return // stopping: hand nothing more over; the gateway re-delivers
	}
	s.pushes.Add(1)
	p := &s.push
	if DecodePush(f, raw, p) != nil {
		s.invalid.Add(1)
		s.handler.HandlePush(ctx, p, r)
		return
	}
	if s.dedup != nil && p.Scope != ScopeEvent {
		k := dupKey{scope: p.Scope, from: p.From, to: p.To, mid: p.MID}
		if s.dedup.seen(k) {
			s.duplicates.Add(1)
			if err := r.OK(); err != nil {
				s.log.Debug("rtm duplicate's answer not sent", "err", err)
			}
			return
		}
		r.seen, r.key = s.dedup, k
	}
	s.handler.HandlePush(ctx, p, r)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func errText(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}

// unknownQuest counts a gateway quest whose method is not a push we know
// and warns about each such method once: whatever the gateway meant by it
// does not reach Kafka.
func (s *Session) unknownQuest(f *Frame) {
	s.unknown.Add(1)
	s.unknownMu.Lock()
	defer s.unknownMu.Unlock()
	m := string(f.Method)
	if s.unknownLogged[m] || len(s.unknownLogged) >= maxUnknownLogged {
		return
	}
	if s.unknownLogged == nil {
		s.unknownLogged = make(map[string]bool)
	}
	s.unknownLogged[m] = true
	answer := "answered 20004 (unknown method)"
	if f.Type != TwoWay {
		answer = "one-way: ignored"
	}
	s.log.Warn("rtm: the gateway sent a quest with a method this version does not know; it is not written to Kafka (counted in rtm2kafka_rtm_unknown_quests_total; warned once per method)",
		"method", m, "answer", answer)
}
