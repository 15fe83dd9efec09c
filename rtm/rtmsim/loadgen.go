package rtmsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// Load generator defaults; each LoadConfig field's doc names the one it
// overrides.
const (
	// DefaultLoadKeys is the number of distinct targets per scope.
	DefaultLoadKeys = 100
	// DefaultLoadBodySize is the size of chat, cmd and custom bodies, bytes.
	DefaultLoadBodySize = 64
	// DefaultLoadMaxInFlight bounds a run's unsettled first deliveries.
	DefaultLoadMaxInFlight = 10_000
	// LoadIDBase is the first target id (uid, gid, rid) of a load run; key k
	// is LoadIDBase+k. With LoadConfig.LargeIDs it is LoadLargeIDBase.
	LoadIDBase int64 = 1_000_000
	// LoadLargeIDBase is the target id base above 2^53 (ids a float64 would
	// corrupt).
	LoadLargeIDBase int64 = 1 << 60
	// LoadSenderBase is the first sender uid (from) of a load run; senders
	// are LoadSenderBase..LoadSenderBase+999 (plus LoadLargeIDBase with
	// LargeIDs).
	LoadSenderBase int64 = 500_000
)

// Mix weighs what a load run generates. Scope weights choose p2p, group,
// room or event for each message; kind weights choose the kind of each
// non-event message. Weights are relative; when all four scope weights (or
// all five kind weights) are zero, the defaults apply: scopes 4:3:2:1,
// kinds chat 5, audio 1, cmd 1, file 2, message 1.
type Mix struct {
	P2P, Group, Room, Event         float64
	Chat, Audio, Cmd, File, Message float64
}

// LoadConfig describes a load run of [Server.Generate].
//
// Ordering contract: every message (not event) of a run has
// mid = Run<<48 | (k+1)<<32 | seq, where k is the key index (target id − id
// base) and seq counts 1, 2, 3… per (scope, k) in the order the messages
// are pushed to every connection, so a consumer can check per-target order
// and gaps from the mid alone; successive runs with increasing Run never
// reuse a mid. Text bodies start with "k=<k> s=<seq> "; events carry
// data {"k":k,"s":seq}.
type LoadConfig struct {
	// Rate is the target in messages per second; 0 means as fast as the
	// in-flight window allows.
	Rate float64
	// Total is the number of messages to generate; 0 means until Duration.
	Total int
	// Duration stops the run after this long; 0 means until Total. At least
	// one of Total and Duration must be set.
	Duration time.Duration
	// Mix weighs scopes and kinds (see [Mix]).
	Mix Mix
	// BodySize is the size in bytes of chat, cmd and custom message bodies.
	// Default [DefaultLoadBodySize].
	BodySize int
	// Binary is the fraction (0..1) of chat, cmd and custom bodies that are
	// sent as msgpack bin holding random bytes that are not valid UTF-8.
	Binary float64
	// Run numbers successive runs against the same consumers (0..32767): it
	// is the top of every mid, so a message of one run is never taken for a
	// redelivery of another's.
	Run int
	// Keys is the number of distinct targets per scope (at most 65534). Default
	// [DefaultLoadKeys].
	Keys int
	// MaxInFlight bounds the pushes of this run sent but not yet settled
	// (answered, or given up after AnswerTimeout+LateGrace). Default
	// [DefaultLoadMaxInFlight].
	MaxInFlight int
	// Seed makes the run reproducible; runs with the same Seed and config
	// generate the same messages (mtime aside).
	Seed uint64
	// LargeIDs uses target and sender ids above 2^53.
	LargeIDs bool
	// WaitListener makes the generator wait, before its first message,
	// until some live connection listens to anything (bounded by ctx only).
	// From then on it never waits: a message no connection covers (a
	// failover gap, or connections that listen to id lists only) is
	// counted as NoListener and the run moves on.
	WaitListener bool
}

// LoadResult reports a load run. Push outcomes count the pushes of this run
// (redeliveries included), as in [Stats].
type LoadResult struct {
	Messages   int               // messages generated
	Pushes     int               // first deliveries sent (one per covering connection)
	NoListener int               // messages no connection covered: not pushed
	NotCovered int               // the same count as NoListener (its older name)
	ByScope    map[rtm.Scope]int // messages per scope
	ByKind     map[rtm.Kind]int  // messages per kind (events: KindEvent)
	Binary     int               // messages with a binary body

	Answered    int64
	Errored     int64
	Overdue     int64
	Unanswered  int64
	Redelivered int64

	Elapsed time.Duration // from the first message to the last outcome
}

// generation is the shared state of one load run: its window and its
// outstanding work (pushes in flight, queued redeliveries and orphans).
type generation struct {
	sem chan struct{} // one token per first delivery in flight

	mu          sync.Mutex
	outstanding int64
	idle        chan struct{} // closed when outstanding drops to 0

	outcomes
	redelivered atomic.Int64
}

func (g *generation) add(n int64) {
	g.mu.Lock()
	g.outstanding += n
	if g.outstanding == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// settle records a push's outcome; first is true for a first delivery,
// which frees a window slot.
func (g *generation) settle(first, answered, ok, late bool) {
	g.count(answered, ok, late)
	if first {
		<-g.sem
	}
	g.add(-1)
}

// waitIdle waits until no push of the run is outstanding.
func (g *generation) waitIdle(ctx, srv context.Context) error {
	for {
		g.mu.Lock()
		if g.outstanding == 0 {
			g.mu.Unlock()
			return nil
		}
		if g.idle == nil {
			g.idle = make(chan struct{})
		}
		ch := g.idle
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-srv.Done():
			return ErrServerClosed
		}
	}
}

// Generate pushes synthetic traffic to the connected clients as described
// by lc and returns when every push it made has an outcome (or ctx ends,
// with the partial result and ctx's error). Each message goes to every
// connection whose listen state covers it. It runs on the caller's
// goroutine and starts none: the rate is paced against the clock and the
// window is a semaphore. While paused it waits.
func (s *Server) Generate(ctx context.Context, lc LoadConfig) (LoadResult, error) {
	res := LoadResult{ByScope: make(map[rtm.Scope]int), ByKind: make(map[rtm.Kind]int)}
	if err := lc.normalize(); err != nil {
		return res, err
	}
	g := &generation{sem: make(chan struct{}, lc.MaxInFlight)}
	lg := newLoadGen(lc)
	lg.pid = s.cfg.PID
	start := time.Now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	finish := func(err error) (LoadResult, error) {
		if err == nil {
			err = g.waitIdle(ctx, s.ctx)
		}
		res.Answered, res.Errored = g.answered.Load(), g.errored.Load()
		res.Overdue, res.Unanswered = g.overdue.Load(), g.unanswered.Load()
		res.Redelivered = g.redelivered.Load()
		res.Elapsed = time.Since(start)
		if err != nil {
			if errors.Is(err, ErrServerClosed) {
				return res, err
			}
			return res, fmt.Errorf("rtmsim: generate: %w", err)
		}
		return res, nil
	}
	if lc.WaitListener {
		if err := s.waitAnyListener(ctx); err != nil {
			return finish(err)
		}
		start = time.Now() // pace from the first listener on
	}
	var targets []*simConn
	for i := 0; lc.Total == 0 || i < lc.Total; i++ {
		if lc.Duration > 0 && time.Since(start) >= lc.Duration {
			break
		}
		if err := s.waitResume(ctx); err != nil {
			return finish(err)
		}
		if lc.Rate > 0 {
			next := start.Add(time.Duration(float64(i) / lc.Rate * float64(time.Second)))
			if d := time.Until(next); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return finish(ctx.Err())
				case <-s.ctx.Done():
					return finish(ErrServerClosed)
				}
			}
		}
		p, binary := lg.next()
		m := newMessage(p, s.cfg.Encoding)
		m.gen = g
		res.Messages++
		res.ByScope[p.Scope]++
		res.ByKind[p.Kind]++
		if binary {
			res.Binary++
		}
		targets = s.coveringConns(m, targets[:0])
		if len(targets) == 0 {
			res.NoListener++
			res.NotCovered++
			s.st.notCovered.Add(1)
		}
		for _, c := range targets {
			select {
			case g.sem <- struct{}{}:
			case <-ctx.Done():
				return finish(ctx.Err())
			case <-s.ctx.Done():
				return finish(ErrServerClosed)
			}
			s.push(c, m, 0)
			res.Pushes++
		}
		clear(targets)
	}
	return finish(nil)
}

// waitResume waits while the server is paused.
func (s *Server) waitResume(ctx context.Context) error {
	for s.paused.Load() {
		s.mu.RLock()
		ch := s.resume
		s.mu.RUnlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrServerClosed
		}
	}
	return nil
}

// coveringConns appends the live connections that cover m to dst.
func (s *Server) coveringConns(m *message, dst []*simConn) []*simConn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.conns {
		if covers(&c.state, m) && !isDead(c) {
			dst = append(dst, c)
		}
	}
	return dst
}

// waitAnyListener waits until some live connection listens to anything.
func (s *Server) waitAnyListener(ctx context.Context) error {
	for {
		s.mu.RLock()
		found := false
		for _, c := range s.conns {
			if !c.state.Empty() && !isDead(c) {
				found = true
				break
			}
		}
		ch := s.changed
		s.mu.RUnlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrServerClosed
		}
	}
}

func (lc *LoadConfig) normalize() error {
	switch {
	case lc.Total < 0 || lc.Duration < 0:
		return errors.New("rtmsim: generate: negative Total or Duration")
	case lc.Total == 0 && lc.Duration == 0:
		return errors.New("rtmsim: generate: set Total or Duration")
	case lc.Rate < 0:
		return fmt.Errorf("rtmsim: generate: negative rate %g", lc.Rate)
	case lc.Binary < 0 || lc.Binary > 1:
		return fmt.Errorf("rtmsim: generate: Binary %g outside 0..1", lc.Binary)
	case lc.BodySize < 0 || lc.Keys < 0 || lc.MaxInFlight < 0:
		return errors.New("rtmsim: generate: negative BodySize, Keys or MaxInFlight")
	case lc.Keys > 65534:
		return fmt.Errorf("rtmsim: generate: Keys %d above 65534 (the key index has 16 bits of the mid)", lc.Keys)
	case lc.Run < 0 || lc.Run > 32767:
		return fmt.Errorf("rtmsim: generate: Run %d outside 0..32767", lc.Run)
	}
	m := &lc.Mix
	for _, w := range []float64{m.P2P, m.Group, m.Room, m.Event, m.Chat, m.Audio, m.Cmd, m.File, m.Message} {
		if w < 0 {
			return errors.New("rtmsim: generate: negative mix weight")
		}
	}
	if m.P2P+m.Group+m.Room+m.Event == 0 {
		m.P2P, m.Group, m.Room, m.Event = 4, 3, 2, 1
	}
	if m.Chat+m.Audio+m.Cmd+m.File+m.Message == 0 {
		m.Chat, m.Audio, m.Cmd, m.File, m.Message = 5, 1, 1, 2, 1
	}
	if lc.BodySize == 0 {
		lc.BodySize = DefaultLoadBodySize
	}
	if lc.Keys == 0 {
		lc.Keys = DefaultLoadKeys
	}
	if lc.MaxInFlight == 0 {
		lc.MaxInFlight = DefaultLoadMaxInFlight
	}
	return nil
}

// loadGen makes the messages of one run.
type loadGen struct {
	lc     LoadConfig
	rng    *rand.Rand
	scopeW [4]float64 // cumulative: p2p, group, room, event
	kindW  [5]float64 // cumulative: chat, audio, cmd, file, message
	seqs   [5][]int64 // per scope (index = rtm.Scope) and key
	base   int64
	sender int64
	pid    int64 // the project id stamped on events
	filler []byte
	noise  []byte // random bytes for binary bodies
	body   []byte // scratch
	attrs  []byte // scratch
	push   rtm.Push
}

func newLoadGen(lc LoadConfig) *loadGen {
	m := lc.Mix
	g := &loadGen{
		lc:     lc,
		rng:    rand.New(rand.NewPCG(lc.Seed, lc.Seed^0x9e3779b97f4a7c15)),
		base:   LoadIDBase,
		sender: LoadSenderBase,
	}
	if lc.LargeIDs {
		g.base = LoadLargeIDBase
		g.sender = LoadLargeIDBase + LoadSenderBase
	}
	g.scopeW = [4]float64{m.P2P, m.P2P + m.Group, m.P2P + m.Group + m.Room, m.P2P + m.Group + m.Room + m.Event}
	g.kindW = [5]float64{m.Chat, m.Chat + m.Audio, m.Chat + m.Audio + m.Cmd, m.Chat + m.Audio + m.Cmd + m.File,
		m.Chat + m.Audio + m.Cmd + m.File + m.Message}
	for i := range g.seqs {
		g.seqs[i] = make([]int64, lc.Keys)
	}
	const lorem = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
	for len(g.filler) < lc.BodySize {
		g.filler = append(g.filler, lorem...)
	}
	g.noise = make([]byte, lc.BodySize+4096)
	for i := range g.noise {
		g.noise[i] = byte(g.rng.Uint32())
	}
	return g
}

func pick(cum []float64, r float64) int {
	x := r * cum[len(cum)-1]
	for i, c := range cum {
		if x < c {
			return i
		}
	}
	return len(cum) - 1
}

var fileExt = map[int64]string{40: "jpg", 41: "amr", 42: "mp4", 50: "pdf"}

// next returns the next message of the run (valid until the next call) and
// whether its body is binary.
func (g *loadGen) next() (*rtm.Push, bool) {
	scope := rtm.Scope(pick(g.scopeW[:], g.rng.Float64()) + 1)
	k := g.rng.IntN(g.lc.Keys)
	g.seqs[scope][k]++
	seq := g.seqs[scope][k]
	target := g.base + int64(k)
	p := &g.push
	*p = rtm.Push{Scope: scope}
	if scope == rtm.ScopeEvent {
		p.Kind = rtm.KindEvent
		p.PID = g.pid
		p.UID = target
		p.Event = []byte("login")
		if g.rng.IntN(2) == 1 {
			p.Event = []byte("logout")
		}
		if g.rng.IntN(4) == 0 {
			p.Endpoint = fmt.Appendf(nil, "[2001:db8::%x]:%d", g.rng.IntN(0xffff), 1024+g.rng.IntN(60000))
		} else {
			p.Endpoint = fmt.Appendf(nil, "10.%d.%d.%d:%d", g.rng.IntN(256), g.rng.IntN(256), g.rng.IntN(256), 1024+g.rng.IntN(60000))
		}
		p.Data = fmt.Appendf(nil, `{"k":%d,"s":%d}`, k, seq)
		p.HasData = true
		p.Time = time.Now().Unix()
		return p, false
	}
	p.From = g.sender + int64(g.rng.IntN(1000))
	p.To = target
	p.MID = int64(g.lc.Run)<<48 | int64(k+1)<<32 | seq
	p.MTime = time.Now().UnixMilli()
	binary := false
	body := g.body[:0]
	attrs := g.attrs[:0]
	switch pick(g.kindW[:], g.rng.Float64()) {
	case 0:
		p.MType = 30
		body, binary = g.textOrBinary(body, k, seq)
		if g.rng.IntN(3) == 0 {
			attrs = fmt.Appendf(attrs, `{"lang":"en","k":%d}`, k)
		}
	case 1:
		p.MType = 31
		body = fmt.Appendf(body, `{"sl":"en-US","rl":"en-US","rt":"k=%d s=%d %s","du":%d}`,
			k, seq, g.filler[:min(len(g.filler), 40)], 500+g.rng.IntN(60000))
	case 2:
		p.MType = 32
		body, binary = g.textOrBinary(body, k, seq)
	case 3:
		mts := [...]int64{40, 41, 42, 50, 43, 44, 45, 46, 47, 48, 49}
		p.MType = mts[g.rng.IntN(4)]
		if g.rng.IntN(8) == 0 {
			p.MType = mts[4+g.rng.IntN(7)]
		}
		ext := fileExt[p.MType]
		if ext == "" {
			ext = "bin"
		}
		size := 1000 + g.rng.IntN(10_000_000)
		body = fmt.Appendf(body, `{"url":"https://files.example.com/k%d/s%d.%s","size":%d`, k, seq, ext, size)
		if p.MType == 40 {
			body = fmt.Appendf(body, `,"surl":"https://files.example.com/k%d/s%d.thumb.jpg"`, k, seq)
		}
		body = append(body, '}')
		switch p.MType {
		case 41:
			attrs = fmt.Appendf(attrs, `{"rtm":{"type":"audiomsg","lang":"en-US","duration":%d,"codec":"amr-wb","srate":16000},"custom":{"k":%d,"s":%d}}`,
				1000+g.rng.IntN(59000), k, seq)
		case 40:
			attrs = fmt.Appendf(attrs, `{"rtm":{"type":"image"},"custom":"k=%d"}`, k)
		default:
			attrs = fmt.Appendf(attrs, `{"rtm":{"type":"file"},"custom":{"note":"s=%d"}}`, seq)
		}
	default:
		p.MType = 51 + int64(g.rng.IntN(77)) // 51..127
		body, binary = g.textOrBinary(body, k, seq)
		if g.rng.IntN(2) == 0 {
			attrs = append(attrs, "custom-attrs-"...)
			attrs = strconv.AppendInt(attrs, seq, 10)
		}
	}
	p.Kind = rtm.KindOf(p.MType)
	p.Msg, p.MsgBinary, p.Attrs = body, binary, attrs
	g.body, g.attrs = body, attrs
	return p, binary
}

// textOrBinary appends a chat/cmd/custom body of BodySize bytes: text that
// starts "k=<k> s=<seq> ", or with probability Binary random bytes starting
// with 0xff (never valid UTF-8).
func (g *loadGen) textOrBinary(dst []byte, k int, seq int64) ([]byte, bool) {
	n := g.lc.BodySize
	if g.lc.Binary > 0 && g.rng.Float64() < g.lc.Binary {
		off := g.rng.IntN(len(g.noise) - n + 1)
		dst = append(dst, g.noise[off:off+n]...)
		if n > 0 {
			dst[0] = 0xff
		}
		return dst, true
	}
	dst = append(dst, "k="...)
	dst = strconv.AppendInt(dst, int64(k), 10)
	dst = append(dst, " s="...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	if len(dst) < n {
		dst = append(dst, g.filler[:n-len(dst)]...)
	}
	return dst, false
}
