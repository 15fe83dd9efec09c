package rtm

import (
	"errors"
	"fmt"
	"time"
)

// ErrStale is the reason (wrapped) a connection dies when nothing was
// received for the keepalive limit, interval + 2×timeout (spec §11).
var ErrStale = errors.New("rtm: connection stale")

// Keepalive, after nats' processPingTimer and the FPNN Go client: the writer
// goroutine checks the clock on a ticker. "Silence" is the time since the
// reader last received bytes from the socket, or since it came back from the
// handler: while the handler runs, the reader is not waiting on the socket
// (that is backpressure, not a dead link), so idleSince is 0 and the clock
// stands still.

// now returns the monotonic time since the connection was made, in ns,
// never 0 (0 marks "reader busy").
func (c *Conn) now() int64 { return int64(time.Since(c.epoch)) + 1 }

// keepaliveTick is the period of the keepalive check: a quarter of the ping
// timeout, at most a second (the FPNN Go client checks once per second).
func keepaliveTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, time.Millisecond), time.Second)
}

// liveReader is the socket as the reader goroutine sees it: every read that
// returns bytes is a sign of life.
type liveReader struct{ c *Conn }

func (l liveReader) Read(p []byte) (int, error) {
	n, err := l.c.nc.Read(p)
	if n > 0 {
		l.c.idleSince.Store(l.c.now())
	}
	return n, err
}

// keepalive runs on the writer goroutine at every tick: it kills a
// connection silent for interval + 2×timeout, and sends *ping after interval
// of silence unless one went out less than timeout ago.
func (c *Conn) keepalive() {
	idle := c.idleSince.Load()
	if idle == 0 {
		return // the reader is in the handler
	}
	now := c.now()
	silent := time.Duration(now - idle)
	if limit := c.cfg.keepInterval + 2*c.cfg.keepTimeout; silent >= limit {
		c.fail(fmt.Errorf("rtm: conn %s: keepalive: %w: nothing received for %s (limit %s)",
			c.name, ErrStale, silent.Round(time.Millisecond), limit))
		return
	}
	if silent < c.cfg.keepInterval || (c.lastPing != 0 && time.Duration(now-c.lastPing) < c.cfg.keepTimeout) {
		return
	}
	// One *ping outstanding at a time: the previous one, if unanswered, is
	// forgotten so that a peer that never answers cannot grow the map.
	if c.pingCall != nil {
		c.forget(c.pingSeq, c.pingCall)
	}
	cl := &call{method: "*ping"}
	seq, err := c.register(cl, 0)
	if err != nil {
		return // dying
	}
	c.pingCall, c.pingSeq, c.lastPing = cl, seq, now
	_ = c.enqueueQuest(TwoWay, seq, "*ping", nil) // fails only when dying
}
