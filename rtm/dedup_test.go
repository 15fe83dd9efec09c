package rtm

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual monotonic clock for the duplicate filter.
type fakeClock struct {
	mu  sync.Mutex
	now int64
}

func (c *fakeClock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now += int64(d)
	c.mu.Unlock()
}

func key(mid int64) dupKey { return dupKey{scope: ScopeP2P, from: 1, to: 2, mid: mid} }

func TestDedupSeenOnlyAfterMark(t *testing.T) {
	var clk fakeClock
	d := newDedup(time.Minute, 10, clk.Now)
	if d.seen(key(1)) {
		t.Fatal("unmarked key reported seen")
	}
	d.markSeen(key(1))
	if !d.seen(key(1)) {
		t.Fatal("marked key not seen")
	}
	// Scope, from, to and mid all take part in the key.
	for _, k := range []dupKey{
		{scope: ScopeGroup, from: 1, to: 2, mid: 1},
		{scope: ScopeP2P, from: 9, to: 2, mid: 1},
		{scope: ScopeP2P, from: 1, to: 9, mid: 1},
		key(2),
	} {
		if d.seen(k) {
			t.Errorf("key %+v reported seen; only %+v was marked", k, key(1))
		}
	}
	d.markSeen(key(1)) // a second mark does not add an entry
	if n := d.len(); n != 1 {
		t.Errorf("len after marking one key twice = %d, want 1", n)
	}
}

func TestDedupExpiresByAge(t *testing.T) {
	var clk fakeClock
	d := newDedup(10*time.Second, 100, clk.Now)
	d.markSeen(key(1))
	clk.Add(6 * time.Second)
	d.markSeen(key(2))
	clk.Add(4 * time.Second) // key 1 is exactly 10 s old: still inside
	if !d.seen(key(1)) {
		t.Fatal("key 1 forgotten at exactly the window")
	}
	clk.Add(time.Nanosecond)
	if d.seen(key(1)) {
		t.Fatal("key 1 still seen after the window")
	}
	if !d.seen(key(2)) {
		t.Fatal("key 2 (4 s old) forgotten")
	}
	if n := d.len(); n != 1 {
		t.Fatalf("len = %d, want 1 (the expired entry evicted)", n)
	}
	clk.Add(time.Hour)
	if d.seen(key(2)) || d.len() != 0 {
		t.Fatalf("after an hour: seen=%v len=%d, want false 0", d.seen(key(2)), d.len())
	}
}

func TestDedupEvictsOldestByCount(t *testing.T) {
	var clk fakeClock
	const max = 3000 // above the initial ring size, so the ring grows
	d := newDedup(time.Hour, max, clk.Now)
	for i := range int64(max + 500) {
		d.markSeen(key(i))
	}
	if n := d.len(); n != max {
		t.Fatalf("len = %d, want the bound %d", n, max)
	}
	checkIndex(t, d)
	for i := range int64(500) {
		if d.seen(key(i)) {
			t.Fatalf("key %d should have been evicted (oldest)", i)
		}
	}
	for i := int64(500); i < max+500; i++ {
		if !d.seen(key(i)) {
			t.Fatalf("key %d evicted too early", i)
		}
	}
}

func TestDedupOff(t *testing.T) {
	if d := newDedup(0, 0, nil); d != nil {
		t.Fatal("newDedup(0, 0) should switch the filter off (nil)")
	}
	if d := newDedup(time.Second, 0, nil); d != nil {
		t.Fatal("newDedup with no entries should switch the filter off")
	}
}

func TestDedupConcurrentMarkAndCheck(t *testing.T) {
	d := newDedup(time.Minute, 1000, nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range int64(5000) {
			d.markSeen(key(i))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range int64(5000) {
			d.seen(key(i))
		}
	}()
	wg.Wait()
	if n := d.len(); n != 1000 {
		t.Fatalf("len = %d, want 1000", n)
	}
}

// BenchmarkDedup measures one check plus one mark per push at steady state
// (the filter full, every mark evicting the oldest entry).
func BenchmarkDedup(b *testing.B) {
	const max = DefaultDedupMaxEntries
	var clk fakeClock
	d := newDedup(DefaultDedupWindow, max, clk.Now)
	for i := range int64(2 * max) {
		d.markSeen(key(i))
	}
	i := int64(2 * max)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		k := key(i)
		if d.seen(k) {
			b.Fatal("fresh key seen")
		}
		d.markSeen(k)
		i++
	}
}

// BenchmarkDedupExpiring is the low-traffic case: entries leave by age.
func BenchmarkDedupExpiring(b *testing.B) {
	var clk fakeClock
	d := newDedup(time.Second, DefaultDedupMaxEntries, clk.Now)
	for i := range int64(10_000) {
		d.markSeen(key(i))
		clk.Add(time.Millisecond)
	}
	i := int64(10_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		k := key(i)
		d.seen(k)
		d.markSeen(k)
		clk.Add(time.Millisecond)
		i++
	}
}

// checkIndex checks that the index holds exactly the ring's entries, each
// reachable from its home slot.
func checkIndex(t *testing.T, d *dedup) {
	t.Helper()
	used := 0
	for _, v := range d.index {
		if v != 0 {
			used++
		}
	}
	if used != d.n {
		t.Fatalf("index holds %d entries, ring %d", used, d.n)
	}
	for i := range d.n {
		pos := (d.head + i) % len(d.ring)
		if got := d.find(d.ring[pos].key, d.ring[pos].hash); got != pos {
			t.Fatalf("ring position %d found at %d", pos, got)
		}
	}
}

// TestDedupMatchesModel runs random marks, checks and clock steps against a
// plain list model of the filter, with a key space small enough for repeats
// and a bound small enough for constant eviction (the index's deletions).
func TestDedupMatchesModel(t *testing.T) {
	type entry struct {
		k  dupKey
		at int64
	}
	const window, max = 50 * time.Millisecond, 700
	var clk fakeClock
	d := newDedup(window, max, clk.Now)
	var model []entry
	expire := func() {
		for len(model) > 0 && clk.Now()-model[0].at > int64(window) {
			model = model[1:]
		}
	}
	find := func(k dupKey) int {
		for i, e := range model {
			if e.k == k {
				return i
			}
		}
		return -1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for op := range 200_000 {
		k := dupKey{scope: Scope(rng.IntN(3)), from: rng.Int64N(4), to: rng.Int64N(8), mid: rng.Int64N(100)}
		switch r := rng.IntN(10); {
		case r < 5:
			d.markSeen(k)
			expire()
			if find(k) < 0 {
				if len(model) == max {
					model = model[1:]
				}
				model = append(model, entry{k, clk.Now()})
			}
		case r < 9:
			got := d.seen(k)
			expire()
			if want := find(k) >= 0; got != want {
				t.Fatalf("op %d: seen(%v) = %v, model %v", op, k, got, want)
			}
		default:
			clk.Add(time.Duration(rng.IntN(200)) * time.Microsecond)
		}
		if d.len() != len(model) {
			t.Fatalf("op %d: %d entries, model %d", op, d.len(), len(model))
		}
		if op%10_000 == 0 {
			checkIndex(t, d)
		}
	}
	checkIndex(t, d)
}
