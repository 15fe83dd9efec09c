package rtmsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// Defaults of [Config]; each field's doc names the one it overrides.
const (
	// DefaultAnswerTimeout is how long the simulator waits for the answer to
	// a push before it counts it as overdue: the C++ FPNN framework's default
	// for quests a server sends (spec §4). The real gateway's value is
	// unconfirmed.
	DefaultAnswerTimeout = 5 * time.Second
	// DefaultClockSkew is the largest accepted difference between a quest's
	// ts and the simulator's clock before it answers 200008. The real
	// gateway's value is unconfirmed.
	DefaultClockSkew = 5 * time.Minute
	// DefaultMaxOrphans bounds the pushes kept for redelivery while no live
	// connection covers them (Redeliver only).
	DefaultMaxOrphans = 100_000
)

// ErrServerClosed is returned by [Server.Serve], [Server.Listen] and
// [Server.Generate] once [Server.Close] has been called.
var ErrServerClosed = errors.New("rtmsim: server closed")

// Config configures a [Server]. The zero value of every field but PID and
// Secret means the documented default.
type Config struct {
	// PID is the project id every signed quest must carry (else 200002).
	PID int64
	// Secret is the project's secret key, used to check quest signatures.
	Secret rtm.Secret
	// ServerKey, when set, lets clients encrypt the connection with a *key
	// handshake (stream or package mode); nil accepts plaintext only.
	ServerKey *rtm.ServerPrivateKey

	// AnswerTimeout is how long a push waits for its answer; an answer that
	// comes later is counted as overdue, not answered. Default
	// [DefaultAnswerTimeout].
	AnswerTimeout time.Duration
	// LateGrace is how long after AnswerTimeout a late answer is still
	// recognised (and counted as overdue); a push with no answer by then is
	// counted as unanswered. Default: AnswerTimeout.
	LateGrace time.Duration
	// Redeliver re-pushes a message (same mid, same bytes) whose push was not
	// answered within AnswerTimeout, or whose connection died first, to
	// exercise duplicate filtering and at-least-once delivery. The real
	// gateway's behaviour is unconfirmed; the default is no redelivery.
	Redeliver bool
	// MaxRedeliveries caps the redeliveries of one message per connection
	// chain; 0 means no cap.
	MaxRedeliveries int
	// MaxOrphans bounds the redeliveries waiting for a covering connection;
	// beyond it they are dropped and counted. Default [DefaultMaxOrphans].
	MaxOrphans int

	// PingInterval is the period of the gateway's "ping" push to every
	// connection; 0 disables it (the real interval is unconfirmed).
	PingInterval time.Duration

	// ClockOffset shifts the simulator's clock (mtime, event time, the ts
	// check) from the machine's, to test a client's clock skew handling.
	ClockOffset time.Duration
	// ClockSkew is the largest accepted |ts − simulator time| of a signed
	// quest; beyond it the quest is answered 200008. Default
	// [DefaultClockSkew]; negative disables the check. A signature is
	// remembered (for the 200006 replay check) for as long as its ts is
	// within the skew, minimum one minute.
	ClockSkew time.Duration

	// AbsentListClears makes a list key that is absent from an id-list
	// setlisten clear that list, as if it had been sent empty. The default
	// keeps it unchanged. Spec §7.2: the gateway's behaviour is unconfirmed.
	AbsentListClears bool

	// Encoding selects the msgpack style of pushes: EncodingGo (default) or
	// EncodingCpp, the C++ writer a real gateway most likely uses.
	Encoding Encoding

	// MaxPayload is the largest payload accepted from a client. Default (0)
	// [rtm.DefaultMaxPayload].
	MaxPayload int

	// OnAnswered, when set, is called once for every push that was answered
	// (the first time only): ok is false for an error answer, late is true
	// when it came after AnswerTimeout. For events from and mid are 0 and to
	// is the uid. It runs on a connection's reader goroutine and must not
	// block. Pings and malformed pushes are not reported.
	OnAnswered func(scope rtm.Scope, from, to, mid int64, ok, late bool)

	// OnQuest, when set, is called for every RTM quest a client sends
	// (listen and send quests; not *key, *ping or unknown methods) once its
	// answer is decided and just before it is sent, so a client that has
	// its answer finds the quest reported. It runs on the connection's
	// reader goroutine and must not block or call back into the Server.
	OnQuest func(Quest)

	// OnOutcome, when set, is called once for every message or event push
	// when its fate is known: answered (in time or late, OK or error) or
	// given up (AnswerTimeout+LateGrace passed, or the connection died). It
	// runs on a connection's reader, timer or closing goroutine and must not
	// block or call back into the Server.
	OnOutcome func(Outcome)

	// Logger receives connection and fault events at debug/info level.
	// Default: discard.
	Logger *slog.Logger
}

// Server is a simulated RTM gateway: it accepts FPNN connections, checks the
// signature of every RTM quest, keeps each connection's listen state, pushes
// messages to the connections whose state covers them and counts what
// happens to every push. All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	signer *rtm.Signer

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the server started

	mu        sync.RWMutex
	closed    bool
	listeners []net.Listener
	conns     []*simConn // live connections in accept order
	// Push counts of every connection ever registered, by number and in
	// accept order.
	connCounts map[uint64]*connCounters
	connOrder  []*connCounters
	changed    chan struct{} // closed and replaced on every listen or conn change
	held       []*message    // pushes held back while paused
	orphans    []*pending    // redeliveries waiting for a covering connection

	paused      atomic.Bool
	resume      chan struct{} // closed when unpaused; guarded by mu
	acceptDelay atomic.Int64  // nanoseconds
	rejectCode  atomic.Int64
	rejectLeft  atomic.Int64
	rejectFn    atomic.Pointer[func(Quest) (int, string)]
	refuse      atomic.Bool
	acceptTimes []time.Time // guarded by mu; index i is connection i+1

	replay replayCache
	st     counters

	sweepMu    sync.Mutex
	sweepQ     []*pending // Redeliver: pushes in send order, for the timeout sweep
	redeliverQ []*pending // Redeliver: pushes whose connection died, to redeliver
}

// New returns a Server with cfg; it does not listen until [Server.Listen] or
// [Server.Serve]. Close it when done.
func New(cfg Config) *Server {
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = DefaultAnswerTimeout
	}
	if cfg.LateGrace <= 0 {
		cfg.LateGrace = cfg.AnswerTimeout
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.MaxOrphans <= 0 {
		cfg.MaxOrphans = DefaultMaxOrphans
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = rtm.DefaultMaxPayload
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:        cfg,
		log:        log,
		signer:     rtm.NewSigner(cfg.PID, cfg.Secret),
		ctx:        ctx,
		cancel:     cancel,
		changed:    make(chan struct{}),
		resume:     make(chan struct{}),
		connCounts: make(map[uint64]*connCounters),
	}
	close(s.resume)
	s.replay.init()
	s.st.codes = make(map[int]int64)
	if cfg.PingInterval > 0 {
		s.wg.Add(1)
		go s.pingLoop()
	}
	if cfg.Redeliver {
		s.wg.Add(1)
		go s.sweepLoop()
	}
	return s
}

// now is the simulator's clock: the machine's plus ClockOffset.
func (s *Server) now() time.Time { return time.Now().Add(s.cfg.ClockOffset) }

// Listen listens on addr (e.g. "127.0.0.1:0") and serves it in the
// background until Close. [Server.Addr] then tells the bound address.
func (s *Server) Listen(addr string) error {
	if s.ctx.Err() != nil {
		return ErrServerClosed
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(s.ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("rtmsim: listen %s: %w", addr, err)
	}
	if err := s.addListener(ln); err != nil {
		return err
	}
	go func() {
		defer s.wg.Done()
		if err := s.acceptLoop(s.ctx, ln); err != nil && !errors.Is(err, ErrServerClosed) {
			s.log.Error("rtmsim: accept loop ended", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Serve accepts connections on ln until ctx is done or the server is
// closed, and closes ln. It returns ErrServerClosed after Close, ctx.Err()
// when ctx ends, or the accept error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.addListener(ln); err != nil {
		return err
	}
	defer s.wg.Done()
	return s.acceptLoop(ctx, ln)
}

// addListener registers ln and counts its accept loop in s.wg (under the
// lock, so that it cannot race with Close's Wait); the caller runs the loop
// and calls s.wg.Done.
func (s *Server) addListener(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ln.Close() // refused: the server is closed
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, ln)
	s.wg.Add(1)
	return nil
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() }) // unblocks Accept
	defer stop()
	defer ln.Close()
	for {
		nc, err := ln.Accept()
		if err != nil {
			switch {
			case s.ctx.Err() != nil:
				return ErrServerClosed
			case ctx.Err() != nil:
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("rtmsim: accept: %w", err)
		}
		s.st.accepted.Add(1)
		s.mu.Lock()
		s.acceptTimes = append(s.acceptTimes, time.Now())
		id := uint64(len(s.acceptTimes))
		s.mu.Unlock()
		if s.refuse.Load() {
			_ = nc.Close() // SetRefuse: the client sees its connection closed
			continue
		}
		s.wg.Add(1)
		go s.serveConn(nc, id)
	}
}

// Addr returns the address of the first listener ("" before Listen or
// Serve), e.g. "127.0.0.1:39211".
func (s *Server) Addr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.listeners) == 0 {
		return ""
	}
	return s.listeners[0].Addr().String()
}

// Close stops listening, closes every connection and waits for every
// goroutine the server started. Pushes still in flight are counted as
// unanswered. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	lns := s.listeners
	conns := append([]*simConn(nil), s.conns...)
	s.mu.Unlock()
	s.cancel()
	for _, ln := range lns {
		_ = ln.Close() // the accept loop reports nothing after Close
	}
	for _, c := range conns {
		c.conn.Close()
	}
	s.wg.Wait()
	// Connections closed last may have queued redeliveries after the sweep
	// goroutine's final drain.
	s.dropQueued()
	return nil
}

// simConn is one client connection.
type simConn struct {
	s      *Server
	id     uint64
	remote string
	conn   *rtm.Conn

	counts map[string]int // quests per method; reader goroutine only
	cnt    *connCounters  // its push counts, kept after it closes

	// Guarded by s.mu.
	state    rtm.ListenState
	listened bool // a listen quest has succeeded on it
}

func (s *Server) serveConn(nc net.Conn, id uint64) {
	defer s.wg.Done()
	if d := time.Duration(s.acceptDelay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			_ = nc.Close() // shutting down
			return
		}
	}
	c := &simConn{s: s, id: id, remote: nc.RemoteAddr().String(), counts: map[string]int{}, cnt: &connCounters{id: id}}
	opts := []rtm.ConnOption{rtm.WithMaxPayload(s.cfg.MaxPayload), rtm.WithLogger(s.log)}
	if s.cfg.ServerKey != nil {
		opts = append(opts, rtm.WithServerKey(s.cfg.ServerKey))
	}
	conn, err := rtm.Accept(s.ctx, nc, c, opts...)
	if err != nil {
		s.log.Debug("rtmsim: accept failed", "remote", c.remote, "err", err)
		_ = nc.Close() // Accept failed; nothing else owns nc
		return
	}
	c.conn = conn
	if !s.register(c) {
		conn.Close()
		return
	}
	s.log.Debug("rtmsim: client connected", "conn", c.id, "remote", c.remote)
	select {
	case <-conn.Done():
	case <-s.ctx.Done():
	}
	s.unregister(c)
	conn.Close()
	s.log.Debug("rtmsim: client gone", "conn", c.id, "remote", c.remote, "err", conn.Err())
}

func (s *Server) register(c *simConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns = append(s.conns, c)
	s.connCounts[c.id] = c.cnt
	s.connOrder = append(s.connOrder, c.cnt)
	s.notifyLocked()
	return true
}

func (s *Server) unregister(c *simConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.conns {
		if x == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	s.notifyLocked()
}

// notifyLocked wakes every WaitListen / WaitConns. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Conns returns the number of live client connections.
func (s *Server) Conns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// WaitConns waits until exactly n client connections are live.
func (s *Server) WaitConns(ctx context.Context, n int) error {
	for {
		s.mu.RLock()
		got, ch := len(s.conns), s.changed
		s.mu.RUnlock()
		if got == n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("rtmsim: wait for %d connections (have %d): %w", n, got, ctx.Err())
		case <-s.ctx.Done():
			return ErrServerClosed
		}
	}
}
