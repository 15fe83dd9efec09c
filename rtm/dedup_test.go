package rtm

import (
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
	if len(d.m) != d.n {
		t.Fatalf("map holds %d keys, ring %d", len(d.m), d.n)
	}
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
