package rtm

import (
	"bufio"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// QuestHandler receives every quest the peer sends — the gateway's pushes
// and its ping on a client connection, the client's quests on an accepted
// one — except *ping and *key, which the [Conn] handles itself.
//
// HandleQuest is called on the connection's reader goroutine, synchronously,
// in arrival order, with no lock held. While it runs no further frame is
// read: a handler that blocks applies backpressure to the peer, and that
// time does not count as keepalive silence. f, its slices and raw (the whole
// frame, header included) are valid only until HandleQuest returns. For a
// two-way quest r answers it, exactly once, from any goroutine, possibly
// after HandleQuest has returned; for a one-way quest r is the zero Reply,
// whose methods return an error. ctx is cancelled when the connection dies;
// a handler that blocks must return once it is, or [Conn.Close] will wait
// for it.
type QuestHandler interface {
	HandleQuest(ctx context.Context, f *Frame, raw []byte, r Reply)
}

// QuestHandlerFunc adapts a function to [QuestHandler].
type QuestHandlerFunc func(ctx context.Context, f *Frame, raw []byte, r Reply)

// HandleQuest calls fn(ctx, f, raw, r).
func (fn QuestHandlerFunc) HandleQuest(ctx context.Context, f *Frame, raw []byte, r Reply) {
	fn(ctx, f, raw, r)
}

// Conn is one full-duplex FPNN connection, client side ([Dial]) or server
// side ([Accept]). It runs exactly two goroutines, a reader and a writer,
// from Dial or Accept until it dies; [Conn.Close] joins them. A Conn never
// redials: when it dies, [Conn.Done] is closed and [Conn.Err] says why, and
// its owner decides what comes next. All methods are safe for concurrent
// use.
type Conn struct {
	nc     net.Conn
	h      QuestHandler
	cfg    connConfig
	log    *slog.Logger
	name   string // the peer's address, for errors and logs
	server bool

	br *bufio.Reader // over the socket, under any decryption
	fr *FrameReader

	// Set up before the goroutines start, then used by the writer only.
	enc cipher.Stream // stream mode: encrypts in place
	pw  io.Writer     // package mode: frames the output (nil otherwise)

	ctx    context.Context // given to the handler; cancelled when the conn dies
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// The writer's queue: frames are appended under wmu and the writer is
	// woken through wake (capacity 1).
	wmu      sync.Mutex
	pending  []byte
	wclosed  bool  // no more frames are accepted
	drainErr error // non-nil: flush what is pending, then die with it
	wake     chan struct{}

	// Outstanding two-way quests by seq.
	cmu     sync.Mutex
	calls   map[uint32]*call
	seq     uint32
	cclosed bool

	// Keepalive (see keepalive.go).
	epoch     time.Time
	idleSince atomic.Int64 // c.now() when the reader last received bytes or resumed waiting; 0 while it runs the handler
	pingCall  *call        // writer goroutine only
	pingSeq   uint32       // writer goroutine only
	lastPing  int64        // writer goroutine only

	ready chan struct{} // closed once the writer may send (after the server's *key decision)

	failOnce  sync.Once
	done      chan struct{}
	err       error // written once before done is closed
	closedErr error // what pending and later calls get; written before cclosed
}

// call is one outstanding two-way quest.
type call struct {
	method string
	ch     chan callResult                // Call: capacity 1
	done   func(answer []byte, err error) // Go (and internal quests)
	timer  *time.Timer
}

type callResult struct {
	payload []byte
	err     error
}

// deliver settles the call; exactly one goroutine does so, the one that
// removed it from the map. payload aliases the read buffer.
func (cl *call) deliver(payload []byte, err error) {
	switch {
	case cl.done != nil:
		cl.done(payload, err)
	case cl.ch != nil:
		if err == nil {
			payload = append([]byte(nil), payload...)
		}
		cl.ch <- callResult{payload, err}
	}
}

// Dial connects to an FPNN peer at addr (host:port) and starts the
// connection. ctx and [WithDialTimeout] bound the connect and, with
// [WithEncryption], the sending of the plaintext *key quest; the connection
// then lives until [Conn.Close] or a fatal error, whatever happens to ctx.
// The *key answer is not waited for: it is checked as it arrives, and an
// error answer, an undecryptable one or none within the call timeout kills
// the connection. h receives the peer's quests, possibly before Dial
// returns; a nil h answers every two-way quest with error 20004 (unknown
// method).
func Dial(ctx context.Context, addr string, h QuestHandler, opts ...ConnOption) (*Conn, error) {
	cfg, err := newConnConfig(false, opts)
	if err != nil {
		return nil, fmt.Errorf("rtm: dial %s: %w", addr, err)
	}
	deadline := time.Now().Add(cfg.dialTimeout)
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rtm: dial %s: %w", addr, err)
	}
	c := newConn(ctx, nc, h, cfg, false)
	if cfg.serverKey != nil {
		if err := c.clientHandshake(ctx, deadline); err != nil {
			c.cancel()
			_ = nc.Close() // the handshake error is what matters
			return nil, fmt.Errorf("rtm: dial %s: encryption handshake: %w", addr, err)
		}
	}
	c.start()
	return c, nil
}

// Accept runs the server side of an FPNN connection on nc, which it owns
// from then on (it is closed if Accept fails); it does not block. With
// [WithServerKey], a *key quest as the client's first frame switches the
// connection to encryption (stream or package mode, as the client asks) and
// is answered encrypted; the writer sends nothing before that first frame
// has arrived. Any other first frame leaves the connection in plaintext. A
// *key quest without a server key, or later than first, is answered with an
// error and the connection closed. Server-side connections answer *ping
// with {ts: now in ms}, as a C++ FPNN server does. h may be called before
// Accept returns; nil h is as for [Dial]. ctx's values reach the handler's
// context; its cancellation does not. Keepalive is off unless
// [WithKeepalive] is given.
func Accept(ctx context.Context, nc net.Conn, h QuestHandler, opts ...ConnOption) (*Conn, error) {
	cfg, err := newConnConfig(true, opts)
	if err != nil {
		_ = nc.Close() // Accept owns nc; the configuration error is what matters
		return nil, fmt.Errorf("rtm: accept %s: %w", nc.RemoteAddr(), err)
	}
	c := newConn(ctx, nc, h, cfg, true)
	c.start()
	return c, nil
}

// newConn builds a Conn on nc. The handler's context keeps the values of ctx
// but not its cancellation.
func newConn(ctx context.Context, nc net.Conn, h QuestHandler, cfg connConfig, server bool) *Conn {
	c := &Conn{
		nc:     nc,
		h:      h,
		cfg:    cfg,
		server: server,
		name:   nc.RemoteAddr().String(),
		wake:   make(chan struct{}, 1),
		calls:  make(map[uint32]*call),
		seq:    uint32(time.Now().UnixNano() & 0xFFF),
		epoch:  time.Now(),
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
	}
	if !server || cfg.serverPriv == nil {
		close(c.ready)
	}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.log = cfg.logger.With(slog.String("peer", c.name))
	c.br = bufio.NewReaderSize(liveReader{c}, readBufferSize)
	c.fr = NewFrameReader(c.br, cfg.maxPayload)
	return c
}

// start launches the reader and the writer.
func (c *Conn) start() {
	c.idleSince.Store(c.now())
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// Done returns a channel that is closed when the connection has died, by
// [Conn.Close] or a fatal error.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection died (the first fatal error, e.g.
// "rtm: conn 1.2.3.4:5: read: EOF", or one wrapping [ErrConnClosed] after
// Close), or nil while it is alive.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection at once: queued frames are dropped, every
// outstanding quest fails with [ErrConnClosed], the handler's context is
// cancelled, and Close waits until the reader and writer goroutines have
// returned (so it must not be called from HandleQuest or from a Go
// callback). It always returns nil; calling it again is harmless.
func (c *Conn) Close() error {
	c.fail(fmt.Errorf("rtm: conn %s: %w", c.name, ErrConnClosed))
	c.wg.Wait()
	return nil
}

// Shutdown closes the connection gracefully: it stops taking new quests and
// answers (they get [ErrConnClosed]), lets the writer send everything
// already queued — the answers a drained bridge just gave, typically — and
// then closes like [Conn.Close], joining both goroutines. If ctx ends
// first, the rest is dropped and Shutdown returns ctx's error.
func (c *Conn) Shutdown(ctx context.Context) error {
	c.failAfterFlush(fmt.Errorf("rtm: conn %s: %w", c.name, ErrConnClosed))
	var err error
	select {
	case <-c.done:
	case <-ctx.Done():
		err = fmt.Errorf("rtm: conn %s: shutdown: %w", c.name, ctx.Err())
	}
	c.Close()
	return err
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Call sends a two-way quest and waits for its answer. payload is the
// msgpack map (nil means the empty map); Call copies it before returning.
// It returns a copy of the answer's payload, owned by the caller; an [*Error]
// for an error answer; an error wrapping [ErrTimeout] when ctx's deadline
// (or, without one, [WithCallTimeout]) passes first; ctx.Err() wrapped when
// ctx is cancelled; or an error wrapping [ErrConnClosed] if the connection
// dies first. Any number of calls may be in flight at once.
func (c *Conn) Call(ctx context.Context, method string, payload []byte) ([]byte, error) {
	if err := c.checkQuest(method, payload); err != nil {
		return nil, err
	}
	cl := &call{method: method, ch: make(chan callResult, 1)}
	timeout := time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		timeout = c.cfg.callTimeout
	}
	seq, err := c.register(cl, timeout)
	if err != nil {
		return nil, fmt.Errorf("rtm: %s: %w", method, err)
	}
	// A failed enqueue means the conn is dying; fail settles the call.
	_ = c.enqueueQuest(TwoWay, seq, method, payload)
	select {
	case r := <-cl.ch:
		return r.payload, r.err
	case <-ctx.Done():
		if !c.forget(seq, cl) {
			r := <-cl.ch // settled meanwhile
			return r.payload, r.err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("rtm: conn %s: %s: %w (%w)", c.name, method, ErrTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("rtm: conn %s: %s: %w", c.name, method, ctx.Err())
	}
}

// Go sends a two-way quest without waiting: done is called exactly once
// with the answer's payload, an [*Error] for an error answer, an error
// wrapping [ErrTimeout] after timeout (0 means [WithCallTimeout]), or one
// wrapping [ErrConnClosed]. The answer slice is valid only until done
// returns. done runs on the reader goroutine, a timer's goroutine or the
// goroutine that closes the connection — before Go returns if the
// connection is already closed — so it must not block and must not call
// [Conn.Close]. A nil done ignores the outcome.
func (c *Conn) Go(method string, payload []byte, timeout time.Duration, done func(answer []byte, err error)) {
	if done == nil {
		done = func([]byte, error) {}
	}
	if err := c.checkQuest(method, payload); err != nil {
		done(nil, err)
		return
	}
	if timeout <= 0 {
		timeout = c.cfg.callTimeout
	}
	seq, err := c.register(&call{method: method, done: done}, timeout)
	if err != nil {
		done(nil, err)
		return
	}
	_ = c.enqueueQuest(TwoWay, seq, method, payload) // on failure, fail settles the call
}

// Send sends a one-way quest: it is queued for the writer and never
// answered. It returns an error wrapping [ErrConnClosed] once the
// connection has died; a nil error does not mean the peer got it.
func (c *Conn) Send(method string, payload []byte) error {
	if err := c.checkQuest(method, payload); err != nil {
		return err
	}
	if err := c.enqueueQuest(OneWay, 0, method, payload); err != nil {
		return fmt.Errorf("rtm: conn %s: %s: %w", c.name, method, err)
	}
	return nil
}

// checkQuest rejects what AppendFrame or the peer could not take.
func (c *Conn) checkQuest(method string, payload []byte) error {
	if len(method) == 0 || len(method) > 255 {
		return fmt.Errorf("rtm: quest method length %d out of 1..255", len(method))
	}
	if len(payload) > c.cfg.maxPayload {
		return fmt.Errorf("rtm: %s: %w: %d bytes, limit %d", method, ErrFrameTooLarge, len(payload), c.cfg.maxPayload)
	}
	return nil
}

// register allocates a seq for cl, unique among outstanding quests, and
// arms its timeout (0: none).
func (c *Conn) register(cl *call, timeout time.Duration) (uint32, error) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.cclosed {
		return 0, c.closedErr
	}
	for {
		c.seq++
		if _, busy := c.calls[c.seq]; c.seq != 0 && !busy {
			break
		}
	}
	seq := c.seq
	c.calls[seq] = cl
	if timeout > 0 {
		cl.timer = time.AfterFunc(timeout, func() {
			if c.forget(seq, cl) {
				cl.deliver(nil, fmt.Errorf("rtm: conn %s: %s: %w after %s", c.name, cl.method, ErrTimeout, timeout))
			}
		})
	}
	return seq, nil
}

// forget removes cl from the outstanding quests if it is still there; the
// caller that gets true must settle it.
func (c *Conn) forget(seq uint32, cl *call) bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.calls[seq] != cl || cl == nil {
		return false
	}
	delete(c.calls, seq)
	if cl.timer != nil {
		cl.timer.Stop()
	}
	return true
}

// enqueueQuest appends a quest frame to the writer's queue.
func (c *Conn) enqueueQuest(t MsgType, seq uint32, method string, payload []byte) error {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	start := len(c.pending)
	b, off := BeginFrame(c.pending, FlagMsgpack, t, 0, seq, method)
	if len(payload) == 0 {
		b = append(b, 0x80)
	} else {
		b = append(b, payload...)
	}
	c.pending = FinishFrame(b, start, off)
	c.wmu.Unlock()
	c.kick()
	return nil
}

// answer queues the answer to the peer's two-way quest seq, in the quest's
// encoding; it implements answerer for [Reply]. It never blocks on the
// network.
func (c *Conn) answer(seq uint32, flag byte, code int, ex string) error {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	if code == 0 {
		c.pending = AppendAnswer(c.pending, seq, flag)
	} else {
		c.pending = AppendErrorAnswer(c.pending, seq, flag, code, ex)
	}
	c.wmu.Unlock()
	c.kick()
	return nil
}

// answerPing answers the peer's *ping: {} on a client connection, {ts: now
// in ms} on a server one, like the C++ server's IO layer.
func (c *Conn) answerPing(f *Frame) {
	if !c.server {
		_ = c.answer(f.Seq, f.Flag, 0, "") // fails only when the conn is dying
		return
	}
	ts := time.Now().UnixMilli()
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	start := len(c.pending)
	b, off := BeginFrame(c.pending, f.Flag, Answer, 0, f.Seq, "")
	if f.Flag == FlagJSON {
		b = strconv.AppendInt(append(b, `{"ts":`...), ts, 10)
		b = append(b, '}')
	} else {
		b = mpack.AppendIntGo(mpack.AppendStr(mpack.AppendMapHeader(b, 1), "ts"), ts)
	}
	c.pending = FinishFrame(b, start, off)
	c.wmu.Unlock()
	c.kick()
}

// kick wakes the writer without blocking.
func (c *Conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// failAfterFlush stops the queue, lets the writer send what is queued (an
// error answer, typically) and then kills the connection with err.
func (c *Conn) failAfterFlush(err error) {
	c.wmu.Lock()
	c.wclosed = true
	if c.drainErr == nil {
		c.drainErr = err
	}
	c.wmu.Unlock()
	c.kick()
}

// fail kills the connection with err unless it is already dead: it records
// the reason, closes the socket (which unblocks both goroutines), cancels
// the handler's context, closes Done and fails every outstanding quest.
func (c *Conn) fail(err error) {
	var calls map[uint32]*call
	first := false
	c.failOnce.Do(func() {
		first = true
		c.err = err
		c.closedErr = fmt.Errorf("rtm: conn %s: %w", c.name, ErrConnClosed)
		c.wmu.Lock()
		c.wclosed, c.pending = true, nil
		c.wmu.Unlock()
		c.cmu.Lock()
		calls, c.calls, c.cclosed = c.calls, nil, true
		c.cmu.Unlock()
		c.cancel()
		_ = c.nc.Close() // the connection is being torn down; err says why
		close(c.done)
	})
	if !first {
		return
	}
	c.log.Debug("rtm connection closed", slog.Any("reason", err), slog.Int("outstanding_quests", len(calls)))
	for _, cl := range calls {
		if cl.timer != nil {
			cl.timer.Stop()
		}
		cl.deliver(nil, c.closedErr)
	}
}

// readLoop is the reader goroutine: it reads frames until the first error,
// settles answers and hands quests to the handler.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	if c.server && c.cfg.serverPriv != nil {
		if err := c.serverHandshake(); err != nil {
			c.fail(fmt.Errorf("rtm: conn %s: encryption handshake: %w", c.name, err))
			return
		}
	}
	for {
		f, err := c.fr.Next()
		if err != nil {
			c.fail(fmt.Errorf("rtm: conn %s: read: %w", c.name, err))
			return
		}
		if f.Type == Answer {
			c.handleAnswer(f)
		} else if !c.handleQuest(f) {
			return
		}
		c.fr.Shrink(maxKeptBuffer)
	}
}

// handleAnswer settles the quest f answers.
func (c *Conn) handleAnswer(f *Frame) {
	c.cmu.Lock()
	cl := c.calls[f.Seq]
	if cl != nil {
		delete(c.calls, f.Seq)
	}
	c.cmu.Unlock()
	if cl == nil {
		c.log.Debug("rtm answer for no outstanding quest dropped", slog.Uint64("seq", uint64(f.Seq)))
		return
	}
	if cl.timer != nil {
		cl.timer.Stop()
	}
	if f.IsError() {
		e := DecodeError(f)
		e.Method = cl.method
		cl.deliver(nil, e)
		return
	}
	cl.deliver(f.Payload, nil)
}

// handleQuest deals with one quest from the peer; false means the reader
// must stop.
func (c *Conn) handleQuest(f *Frame) bool {
	switch string(f.Method) {
	case "*ping":
		if f.Type == TwoWay {
			c.answerPing(f)
		}
		return true
	case "*key":
		ex := "encryption is not enabled on this connection"
		if c.server && c.cfg.serverPriv != nil {
			ex = "*key must be the first frame"
		}
		if f.Type == TwoWay {
			_ = c.answer(f.Seq, f.Flag, CodeUnknownMethod, ex) // the conn closes either way
		}
		c.failAfterFlush(fmt.Errorf("rtm: conn %s: unexpected *key quest: %s", c.name, ex))
		return false
	}
	var r Reply
	if f.Type == TwoWay {
		r = Reply{a: c, seq: f.Seq, flag: f.Flag}
	}
	if c.h == nil {
		if f.Type == TwoWay {
			_ = r.Error(CodeUnknownMethod, "Method function is unconfiged.")
		}
		return true
	}
	c.idleSince.Store(0) // parked in the handler: not silence
	c.h.HandleQuest(c.ctx, f, c.fr.Raw(), r)
	c.idleSince.Store(c.now())
	return true
}

// writeLoop is the writer goroutine: on each wake-up it takes everything
// queued and writes it with one Write; it also runs the keepalive clock.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	var tick <-chan time.Time
	if c.cfg.keepInterval > 0 {
		t := time.NewTicker(keepaliveTick(c.cfg.keepTimeout))
		defer t.Stop()
		tick = t.C
	}
	spare := make([]byte, 0, 4096)
	gate := c.ready // nil once passed
	for {
		select {
		case <-gate:
			gate = nil
		case <-c.wake:
			if gate != nil {
				continue // hold everything until the handshake is decided
			}
		case <-tick:
			c.keepalive()
			continue
		case <-c.done:
			return
		}
		c.wmu.Lock()
		buf := c.pending
		c.pending = spare[:0]
		derr := c.drainErr
		c.wmu.Unlock()
		if len(buf) > 0 {
			if err := c.write(buf); err != nil {
				c.fail(fmt.Errorf("rtm: conn %s: write: %w", c.name, err))
				return
			}
		}
		if derr != nil {
			c.fail(derr)
			return
		}
		if cap(buf) > maxKeptBuffer {
			buf = make([]byte, 0, 4096)
		}
		spare = buf
	}
}

// write encrypts buf if needed and writes it within the write timeout.
func (c *Conn) write(buf []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout)); err != nil {
		return err
	}
	if c.pw != nil {
		_, err := c.pw.Write(buf)
		return err
	}
	if c.enc != nil {
		c.enc.XORKeyStream(buf, buf)
	}
	_, err := c.nc.Write(buf)
	return err
}

// AnswerPayload answers the two-way quest r belongs to with the caller's
// payload — a msgpack map (nil means {}), or JSON text when the quest came as
// JSON — instead of the empty map of [Reply.OK]. It is for the server side of
// simulators and tests (the gateway answers sendmsg with {mtime}). Like OK,
// call it at most once per Reply; it returns [ErrConnClosed] once the
// connection has died, and an error if r does not come from a [Conn].
func AnswerPayload(r Reply, payload []byte) error {
	c, ok := r.a.(*Conn)
	if !ok {
		return errors.New("rtm: AnswerPayload: the reply does not belong to a connection")
	}
	if len(payload) == 0 {
		if r.flag == FlagJSON {
			payload = []byte("{}")
		} else {
			payload = []byte{0x80}
		}
	}
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	start := len(c.pending)
	b, off := BeginFrame(c.pending, r.flag, Answer, 0, r.seq, "")
	c.pending = FinishFrame(append(b, payload...), start, off)
	c.wmu.Unlock()
	c.kick()
	return nil
}
