package main

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// The simulator's push → answer latency, measured at its socket: a
// net.Listener wrapper whose connections note the time every two-way quest
// (push) is written and, when an answer with the same seq is read back,
// record the difference. rtmsim is not modified for this; its quests and the
// client's answers are parsed from the byte stream with rtm.ParseHeader.

// seqRing is the number of send times kept per connection, by seq; it must
// exceed the pushes in flight.
const seqRing = 1 << 18

// tracker collects latency samples while recording is on.
type tracker struct {
	base      time.Time
	recording atomic.Bool
	mu        sync.Mutex
	samples   []int64 // nanoseconds
}

func newTracker() *tracker { return &tracker{base: time.Now()} }

func (t *tracker) now() int64 { return int64(time.Since(t.base)) + 1 }

// start clears the samples and starts recording.
func (t *tracker) start() {
	t.mu.Lock()
	t.samples = t.samples[:0]
	t.mu.Unlock()
	t.recording.Store(true)
}

// stop stops recording and returns the sorted samples.
func (t *tracker) stop() []int64 {
	t.recording.Store(false)
	t.mu.Lock()
	s := slices.Clone(t.samples)
	t.mu.Unlock()
	slices.Sort(s)
	return s
}

func (t *tracker) add(d int64) {
	t.mu.Lock()
	t.samples = append(t.samples, d)
	t.mu.Unlock()
}

// quantile returns the q-quantile of sorted samples in milliseconds.
func quantile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i]) / 1e6
}

// trackListener wraps the simulator's listener.
type trackListener struct {
	net.Listener
	t *tracker
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackConn{Conn: c, t: l.t, sent: make([]atomic.Int64, seqRing)}, nil
}

// trackConn is one simulator connection: Write is the simulator's writer
// goroutine (pushes out), Read its reader goroutine (answers in).
type trackConn struct {
	net.Conn
	t    *tracker
	sent []atomic.Int64
	wp   streamParser
	rp   streamParser
}

func (c *trackConn) Write(b []byte) (int, error) {
	now := c.t.now()
	c.wp.feed(b, func(h rtm.Header, seq uint32) {
		if h.Type == rtm.TwoWay {
			c.sent[seq%seqRing].Store(now)
		}
	})
	return c.Conn.Write(b)
}

func (c *trackConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		now := c.t.now()
		c.rp.feed(b[:n], func(h rtm.Header, seq uint32) {
			if h.Type != rtm.Answer {
				return
			}
			if t0 := c.sent[seq%seqRing].Swap(0); t0 != 0 && c.t.recording.Load() {
				c.t.add(now - t0)
			}
		})
	}
	return n, err
}

// streamParser finds frame headers (and the seq that follows them in
// two-way quests and answers) in a byte stream cut at arbitrary points.
type streamParser struct {
	buf    [rtm.HeaderSize + 4]byte
	n      int // bytes in buf
	want   int // bytes wanted in buf: HeaderSize, then +4 for the seq
	h      rtm.Header
	skip   int // body bytes still to skip
	broken bool
}

func (p *streamParser) feed(b []byte, fn func(h rtm.Header, seq uint32)) {
	for len(b) > 0 && !p.broken {
		if p.skip > 0 {
			k := min(p.skip, len(b))
			b, p.skip = b[k:], p.skip-k
			continue
		}
		if p.want == 0 {
			p.want = rtm.HeaderSize
		}
		k := copy(p.buf[p.n:p.want], b)
		b, p.n = b[k:], p.n+k
		if p.n < p.want {
			return
		}
		if p.want == rtm.HeaderSize {
			h, err := rtm.ParseHeader(p.buf[:rtm.HeaderSize], 1<<30)
			if err != nil {
				p.broken = true
				return
			}
			p.h = h
			if h.Type == rtm.OneWay {
				p.skip, p.n, p.want = h.BodySize(), 0, 0
				continue
			}
			p.want = rtm.HeaderSize + 4
			continue
		}
		seq := uint32(p.buf[12]) | uint32(p.buf[13])<<8 | uint32(p.buf[14])<<16 | uint32(p.buf[15])<<24
		fn(p.h, seq)
		p.skip, p.n, p.want = p.h.BodySize()-4, 0, 0
	}
}
