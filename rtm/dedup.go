package rtm

import (
	"sync"
	"time"
)

// Default duplicate filter bounds (see [WithDedup]).
const (
	DefaultDedupWindow     = 300 * time.Second
	DefaultDedupMaxEntries = 100_000
)

// dedup remembers the messages whose pushes were answered OK, so that a
// redelivery of one of them can be answered at once instead of reaching
// Kafka again (spec §8.4). It is bounded by age and by count, and every
// operation is O(1): a map from key to the time it was recorded, plus a FIFO
// ring of the same keys in recording order. Expired entries are evicted from
// the ring's head as we go, and when the ring is full the oldest entry goes;
// there is never a scan of the whole map (the official SDK's scan is what
// limits it to about 1k pushes/s).
//
// An entry keeps the time it was first recorded (like the Python SDK): a
// later markSeen of the same key does not extend its life, so the map and the
// ring always hold the same keys.
//
// seen runs on the connection's reader, markSeen on whatever goroutine
// settles the push (the Kafka completion), hence the mutex.
type dedup struct {
	mu     sync.Mutex
	window int64 // ns
	max    int
	now    func() int64 // monotonic ns
	m      map[dupKey]int64
	ring   []dupEntry // circular, len(ring) is its capacity, grows up to max
	head   int        // index of the oldest entry
	n      int        // entries in the ring
}

type dupEntry struct {
	key dupKey
	at  int64
}

// newDedup returns a filter remembering keys for window, at most maxEntries
// of them; now returns monotonic nanoseconds (nil: time since creation).
// It returns nil (filtering off) when window or maxEntries is not positive.
func newDedup(window time.Duration, maxEntries int, now func() int64) *dedup {
	if window <= 0 || maxEntries <= 0 {
		return nil
	}
	if now == nil {
		base := time.Now()
		now = func() int64 { return int64(time.Since(base)) }
	}
	initial := min(maxEntries, 1024)
	return &dedup{
		window: int64(window),
		max:    maxEntries,
		now:    now,
		m:      make(map[dupKey]int64, initial),
		ring:   make([]dupEntry, initial),
	}
}

// seen reports whether k was recorded within the window.
func (d *dedup) seen(k dupKey) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.expire(now)
	at, ok := d.m[k]
	return ok && now-at <= d.window
}

// markSeen records k; it implements seenMarker for [Reply.OK].
func (d *dedup) markSeen(k dupKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.expire(now)
	if _, ok := d.m[k]; ok {
		return
	}
	if d.n == d.max {
		d.pop()
	}
	if d.n == len(d.ring) {
		d.grow()
	}
	d.ring[(d.head+d.n)%len(d.ring)] = dupEntry{key: k, at: now}
	d.n++
	d.m[k] = now
}

// len returns the number of keys remembered.
func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// expire drops entries older than the window from the ring's head; each
// entry is dropped once, so the cost is amortised O(1).
func (d *dedup) expire(now int64) {
	for d.n > 0 && now-d.ring[d.head].at > d.window {
		d.pop()
	}
}

func (d *dedup) pop() {
	e := &d.ring[d.head]
	delete(d.m, e.key)
	*e = dupEntry{}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}

// grow doubles the ring (up to max), unrolling it so the head is at 0.
func (d *dedup) grow() {
	nr := make([]dupEntry, min(2*len(d.ring), d.max))
	for i := range d.n {
		nr[i] = d.ring[(d.head+i)%len(d.ring)]
	}
	d.ring, d.head = nr, 0
}
