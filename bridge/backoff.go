package bridge

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff is the one back-off of the bridge's own loops (control consumer,
// spool drain, start-up preparation in cmd): exponential from Min, capped at
// Max, each pause drawn from its upper half. The zero value is 100 ms
// doubling to 5 s. Produce retries are not here:
// they belong to the Kafka client.
type Backoff struct {
	Min, Max time.Duration
}

// Wait returns the pause before attempt+1 (attempt counts from 0). A zero
// Min means 100 ms, a zero Max 5 s.
func (b Backoff) Wait(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 5 * time.Second
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if h := int64(d / 2); h > 0 {
		d = time.Duration(h + rand.Int64N(h+1))
	}
	return d
}

// Retry calls op until it succeeds or ctx ends, pausing between failures
// and calling onErr (if not nil) with each failure and its attempt number
// (from 1). It returns nil, or ctx's error.
func (b Backoff) Retry(ctx context.Context, op func() error, onErr func(err error, attempt int, wait time.Duration)) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.Wait(attempt)
		if onErr != nil {
			onErr(err, attempt+1, wait)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// burstLog logs at most one line per interval and reports how many it
// suppressed since the last one.
type burstLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *burstLog) warn(msg string, attrs ...slog.Attr) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.suppressed, l.last = 0, now
	l.mu.Unlock()
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}
