package rtm

import "time"

// Default reconnect back-off (see [Backoff]).
const (
	DefaultBackoffMin        = 500 * time.Millisecond
	DefaultBackoffMax        = 30 * time.Second
	DefaultBackoffFastTries  = 3
	DefaultBackoffFastJitter = 100 * time.Millisecond

	// FlashDisconnect is how long a connection must have been listening for
	// its loss not to count as one more failure (spec §12: 1500 ms).
	FlashDisconnect = 1500 * time.Millisecond
)

// Backoff is the reconnect schedule of a [Session]: fast first tries, then
// an exponential delay growing to a cap, with jitter (spec §12 asks for
// "fast first tries, growing to a cap"; unlike the official SDK we add
// jitter so that many bridges do not redial in step).
//
// For the n-th consecutive failure (n counts from 1):
//
//   - n ≤ FastTries: a random delay in [0, FastJitter), so a flash outage
//     costs almost nothing;
//   - otherwise: base = Min·2^(n−FastTries−1) capped at Max, and the delay is
//     uniform in [Min, base] ("full jitter" with a floor of Min, so even a
//     permanent error such as a wrong secret never makes the loop spin).
//
// With the defaults (Min 500 ms, Max 30 s, 3 fast tries, 100 ms jitter) the
// bases are 0.5, 1, 2, 4, 8, 16, 30, 30, … seconds. The zero Backoff uses
// the defaults; the zero value of each field means its default.
type Backoff struct {
	Min        time.Duration // first exponential base and lower bound of every later delay; default 500 ms
	Max        time.Duration // cap; default 30 s
	FastTries  int           // failures retried almost at once; default 3, negative means none
	FastJitter time.Duration // the fast tries' random delay bound; default 100 ms
}

// normalized returns b with defaults filled in and Max ≥ Min.
func (b Backoff) normalized() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoffMin
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.FastTries == 0 {
		b.FastTries = DefaultBackoffFastTries
	} else if b.FastTries < 0 {
		b.FastTries = 0
	}
	if b.FastJitter <= 0 {
		b.FastJitter = DefaultBackoffFastJitter
	}
	return b
}

// Base is the upper bound of the delay after the n-th consecutive failure:
// FastJitter for the fast tries, else Min·2^k capped at Max.
func (b Backoff) Base(n int) time.Duration {
	b = b.normalized()
	if n <= b.FastTries {
		return b.FastJitter
	}
	d := b.Min
	for i := n - b.FastTries - 1; i > 0; i-- {
		if d > b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}

// Delay is the wait before the next attempt after the n-th consecutive
// failure (n ≥ 1; n ≤ 0 is treated as 1). randN returns a uniform random
// number in [0, m) for m > 0 (math/rand/v2's Int64N; tests inject their
// own); it keeps Delay a pure function.
func (b Backoff) Delay(n int, randN func(m int64) int64) time.Duration {
	b = b.normalized()
	if n < 1 {
		n = 1
	}
	if n <= b.FastTries {
		return time.Duration(randN(int64(b.FastJitter)))
	}
	base := b.Base(n)
	span := int64(base - b.Min)
	if span <= 0 {
		return b.Min
	}
	return b.Min + time.Duration(randN(span+1))
}
