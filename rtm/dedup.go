package rtm

import (
	"hash/maphash"
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
// operation is O(1): a FIFO ring of keys in recording order, and an
// open-addressing index into the ring (linear probing, load ≤ 1/2, deletion
// by backward shift, so no tombstones pile up under the constant churn of a
// full filter; keys hashed with a per-filter random seed, so senders cannot
// aim collisions at it). Expired entries are evicted from the ring's head as
// we go, and when the ring is full the oldest entry goes; there is never a
// scan of the whole filter (the official SDK's scan is what limits it to
// about 1k pushes/s). Go's built-in map did the indexing before: its
// probing under this insert-one-delete-one churn cost ~1.3 µs per push.
//
// An entry keeps the time it was first recorded (like the Python SDK): a
// later markSeen of the same key does not extend its life, so the index and
// the ring always hold the same keys.
//
// seen runs on the connection's reader, markSeen on whatever goroutine
// settles the push (the Kafka completion), hence the mutex.
type dedup struct {
	mu     sync.Mutex
	window int64 // ns
	max    int
	now    func() int64 // monotonic ns
	seed   maphash.Seed
	ring   []dupEntry // circular, len(ring) is its capacity, grows up to max
	head   int        // index of the oldest entry
	n      int        // entries in the ring
	index  []uint64   // per slot: the key's hash (low 32 bits) << 32 | its ring position + 1; 0 = empty; len is a power of two ≥ 2 × len(ring)
}

type dupEntry struct {
	key  dupKey
	hash uint64
	at   int64
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
		seed:   maphash.MakeSeed(),
		ring:   make([]dupEntry, initial),
		index:  make([]uint64, indexSize(initial)),
	}
}

// indexSize is the index length for a ring of n entries.
func indexSize(n int) int { // at most 2^32: the home slot is taken from the hash's low 32 bits
	size := 16
	for size < 2*n {
		size *= 2
	}
	return size
}

// seen reports whether k was recorded within the window.
func (d *dedup) seen(k dupKey) bool {
	h := maphash.Comparable(d.seed, k)
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.expire(now)
	pos := d.find(k, h)
	return pos >= 0 && now-d.ring[pos].at <= d.window
}

// markSeen records k; it implements seenMarker for [Reply.OK].
func (d *dedup) markSeen(k dupKey) {
	h := maphash.Comparable(d.seed, k)
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.expire(now)
	if d.find(k, h) >= 0 {
		return
	}
	if d.n == d.max {
		d.pop()
	}
	if d.n == len(d.ring) {
		d.grow()
	}
	pos := (d.head + d.n) % len(d.ring)
	d.ring[pos] = dupEntry{key: k, hash: h, at: now}
	d.n++
	d.insert(pos, h)
}

// len returns the number of keys remembered.
func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// find returns k's ring position, or -1.
func (d *dedup) find(k dupKey, h uint64) int {
	mask := uint64(len(d.index) - 1)
	tag := h << 32
	for i := h & mask; ; i = (i + 1) & mask {
		v := d.index[i]
		if v == 0 {
			return -1
		}
		if v&^0xffffffff == tag { // only then read the ring: most probes stay in the index
			if pos := int(uint32(v)) - 1; d.ring[pos].key == k {
				return pos
			}
		}
	}
}

// insert indexes ring position pos under hash h.
func (d *dedup) insert(pos int, h uint64) {
	mask := uint64(len(d.index) - 1)
	i := h & mask
	for d.index[i] != 0 {
		i = (i + 1) & mask
	}
	d.index[i] = h<<32 | uint64(pos+1)
}

// unindex removes ring position pos from the index, shifting the entries
// after it back so that every probe still ends at an empty slot.
func (d *dedup) unindex(pos int) {
	mask := uint64(len(d.index) - 1)
	i := d.ring[pos].hash & mask
	for uint32(d.index[i]) != uint32(pos+1) {
		i = (i + 1) & mask
	}
	for j := i; ; {
		j = (j + 1) & mask
		v := d.index[j]
		if v == 0 {
			break
		}
		// The entry at j may move to the hole at i unless its home slot
		// lies cyclically in (i, j].
		home := (v >> 32) & mask
		if (j-home)&mask >= (j-i)&mask {
			d.index[i] = v
			i = j
		}
	}
	d.index[i] = 0
}

// expire drops entries older than the window from the ring's head; each
// entry is dropped once, so the cost is amortised O(1).
func (d *dedup) expire(now int64) {
	for d.n > 0 && now-d.ring[d.head].at > d.window {
		d.pop()
	}
}

func (d *dedup) pop() {
	d.unindex(d.head)
	d.ring[d.head] = dupEntry{}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}

// grow doubles the ring (up to max), unrolling it so the head is at 0, and
// rebuilds the index for the new positions.
func (d *dedup) grow() {
	nr := make([]dupEntry, min(2*len(d.ring), d.max))
	for i := range d.n {
		nr[i] = d.ring[(d.head+i)%len(d.ring)]
	}
	d.ring, d.head = nr, 0
	d.index = make([]uint64, indexSize(len(nr)))
	for i := range d.n {
		d.insert(i, nr[i].hash)
	}
}
