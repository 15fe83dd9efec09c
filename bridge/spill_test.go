package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtm2kafka/rtm2kafka/bridge/spool"
	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// deadBroker returns an address where nothing listens.
func deadBroker(t *testing.T) string {
	t.Helper()
	// Port 1 on loopback: connections are refused at once.
	return "127.0.0.1:1"
}

// offlineSpoolBridge makes a bridge whose Kafka is unreachable, spooling to
// dir, with the router r (so a later bridge on the real broker drains to
// topics that exist).
func offlineSpoolBridge(t *testing.T, r *topics.Router, dir string, mod func(*Config)) *Bridge {
	t.Helper()
	cfg := Config{Brokers: []string{deadBroker(t)}, Router: r, PID: 11000001, Partitions: 6,
		SpoolDir: dir, SpoolAckBudget: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() }) // idempotent; the test normally shut it down
	return b
}

// spillPush is push i of the spill tests: key 1000+i%keys, mid i/keys, so
// per key the mids count up from 0.
func spillPush(i, keys int) rtm.Push {
	return rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 7, To: int64(1000 + i%keys), MType: 30, MID: int64(i / keys), Msg: []byte(fmt.Sprintf("m%d", i))}
}

// readChecked reads every record of topic (duplicates included) up to its
// end offsets — call it once nothing writes any more — and checks that per
// key the first occurrences of the mids are 0, 1, 2, … in order. It returns
// the distinct (key, mid) pairs found and the duplicates.
func readChecked(t *testing.T, brokers []string, topic string) (distinct map[string]bool, dups int) {
	t.Helper()
	next := map[string]int64{}
	distinct = map[string]bool{}
	for _, m := range readTopic(t, brokers, topic) {
		h := headerMap(t, m.Headers)
		var mid int64
		fmt.Sscan(h[topics.HeaderMID], &mid)
		k := string(m.Key)
		id := k + "/" + h[topics.HeaderMID]
		if distinct[id] {
			dups++
			continue
		}
		distinct[id] = true
		if mid != next[k] {
			t.Fatalf("key %s: first copy of mid %d at %d/%d, want mid %d next (order per key broken)", k, mid, m.Partition, m.Offset, next[k])
		}
		next[k]++
	}
	return distinct, dups
}

// waitSpoolEmpty waits until b has drained its spool and left spill mode.
func waitSpoolEmpty(t *testing.T, b *Bridge, d time.Duration) {
	t.Helper()
	eventually(t, d, "spool drained", func() (bool, string) {
		spilling, n := b.Spilling()
		return !spilling && n == 0, fmt.Sprintf("%+v", b.SpoolStatus())
	})
}

// spillOffline pushes n records into an offline bridge spooling to dir,
// checks every one is answered OK from the spool (none can be acked by
// Kafka), and shuts the bridge down leaving the spool full.
func spillOffline(t *testing.T, r *topics.Router, dir string, n, keys int) {
	t.Helper()
	b := offlineSpoolBridge(t, r, dir, nil)
	rs := newReplies(n)
	for i := 0; i < n; i++ {
		p := spillPush(i, keys)
		b.HandlePush(context.Background(), &p, rs.reply(i))
	}
	rs.wait(t, n, 60*time.Second)
	for i := 0; i < n; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want one OK", i, a)
		}
	}
	st, ss := b.Stats(), b.SpoolStatus()
	if st.Spilled != uint64(n) || !ss.Spilling || ss.Records != int64(n) {
		t.Fatalf("after %d pushes to an offline Kafka: stats %+v, spool %+v; want all spilled and spooled", n, st, ss)
	}
	if err := b.Shutdown(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestSpillWhileUnreachableThenDrainAtStart: Kafka unreachable → pushes are
// answered from the spool within the ack budget; the next bridge on the same
// directory drains everything first, in order per key, and new pushes queue
// behind the spool.
func TestSpillWhileUnreachableThenDrainAtStart(t *testing.T) {
	const n, keys = 300, 7
	// tb owns the topics (created now, deleted at the end).
	tb, brokers := testBridge(t, nil)
	dir := t.TempDir()
	spillOffline(t, tb.router, dir, n, keys)

	b, err := New(Config{Brokers: brokers, Router: tb.router, PID: 11000001, Partitions: 6, SpoolDir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer b.Close()
	if spilling, _ := b.Spilling(); !spilling {
		t.Fatal("a bridge opening a non-empty spool must start in spill mode")
	}
	// New pushes at once: they go behind the spool.
	const more = 60
	rs := newReplies(more)
	for i := n; i < n+more; i++ {
		p := spillPush(i, keys)
		b.HandlePush(context.Background(), &p, rs.reply(i-n))
	}
	rs.wait(t, more, 60*time.Second)
	waitSpoolEmpty(t, b, 60*time.Second)
	if err := b.Shutdown(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	topic := tb.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, dups := readChecked(t, brokers, topic)
	st := b.Stats()
	t.Logf("restart drained %d, then %d new pushes: in Kafka %d distinct, %d duplicates; stats %+v", n, more, len(distinct), dups, st)
	if len(distinct) != n+more {
		t.Fatalf("%d distinct records in Kafka, want %d", len(distinct), n+more)
	}
	if st.Drained < n {
		t.Errorf("drained %d, want at least the %d spooled by the previous run", st.Drained, n)
	}
	if dups != 0 {
		t.Errorf("%d duplicates in Kafka: the previous run's copies never reached Kafka, so none may be written twice", dups)
	}
	if got := st.Produced[topic]; got != n+more {
		t.Errorf("Stats().Produced[%s] = %d, want %d: every record the drain wrote was acked by Kafka", topic, got, n+more)
	}
	if st.LastAckAgeMs < 0 {
		t.Errorf("LastAckAgeMs = %d after %d acks by Kafka", st.LastAckAgeMs, n+more)
	}
	for i := 0; i < more; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("new push %d: answers %+v, want one OK", i, a)
		}
	}
}

// TestSpoolTornTailRecovery: a spool file cut short by a crash → the bridge
// starts, reports the cut (status and metrics), and drains the records
// before it.
func TestSpoolTornTailRecovery(t *testing.T) {
	const n, keys = 40, 1
	tb, brokers := testBridge(t, nil)
	dir := t.TempDir()
	spillOffline(t, tb.router, dir, n, keys)

	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	sort.Strings(segs)
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()-5); err != nil { // tear the last record
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	b, err := New(Config{Brokers: brokers, Router: tb.router, PID: 11000001, Partitions: 6, SpoolDir: dir, Metrics: m})
	if err != nil {
		t.Fatalf("New on a torn spool must not fail: %v", err)
	}
	defer b.Close()
	ss := b.SpoolStatus()
	if ss.RecoveredCut <= 0 || ss.RecoveredDrops != 1 {
		t.Errorf("spool status after a torn tail: %+v, want a cut reported with 1 record dropped", ss)
	}
	waitSpoolEmpty(t, b, 60*time.Second)
	topic := tb.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, dups := readChecked(t, brokers, topic)
	if len(distinct) != n-1 {
		t.Errorf("%d records drained, want %d (all but the torn one)", len(distinct), n-1)
	}
	if v := metricValue(t, reg, "rtm2kafka_spool_recovered_dropped_records", nil); v != 1 {
		t.Errorf("rtm2kafka_spool_recovered_dropped_records = %v, want 1", v)
	}
	if v := metricValue(t, reg, "rtm2kafka_spool_drained_total", nil); v != n-1 {
		t.Errorf("rtm2kafka_spool_drained_total = %v, want %d", v, n-1)
	}
	if v := metricValue(t, reg, "rtm2kafka_spool_records", nil); v != 0 {
		t.Errorf("rtm2kafka_spool_records = %v after the drain, want 0", v)
	}
	t.Logf("torn tail: %+v; drained %d distinct, %d duplicates", ss, len(distinct), dups)
}

// TestSpoolFullBackpressure: with Kafka unreachable and a tiny disk budget,
// pushes beyond the budget are not answered (HandlePush waits: the gateway
// is back-pressured), /status says full, and every answered push is drained
// by the next bridge — nothing answered is lost. Every wait is on a state.
func TestSpoolFullBackpressure(t *testing.T) {
	const n, keys = 40, 3
	tb, brokers := testBridge(t, nil)
	dir := t.TempDir()
	p0 := spillPush(0, keys)
	one := spoolSize(&tb.newRecord(&p0, rtm.Reply{}).kr) // one spooled record
	const fit = 10
	budget := fit*one + one/2
	b := offlineSpoolBridge(t, tb.router, dir, func(c *Config) { c.SpoolMaxBytes = budget })
	rs := newReplies(n)
	// The first push spills once the ack budget passes: from then on every
	// push goes to the spool.
	b.HandlePush(context.Background(), &p0, rs.reply(0))
	rs.wait(t, 1, 60*time.Second)
	if spilling, _ := b.Spilling(); !spilling {
		t.Fatalf("answered without Kafka but not spilling: %+v", b.SpoolStatus())
	}
	var handled atomic.Int32
	handled.Store(1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one reader, like the session's: it stops while the spool is full
		defer wg.Done()
		for i := 1; i < n; i++ {
			p := spillPush(i, keys)
			b.HandlePush(context.Background(), &p, rs.reply(i))
			handled.Add(1)
		}
	}()
	eventually(t, 60*time.Second, "spool full, and every appended record answered", func() (bool, string) {
		ss := b.SpoolStatus()
		return ss.Full && int64(rs.count()) == ss.Records, fmt.Sprintf("status %+v, %d answered", ss, rs.count())
	})
	ss := b.SpoolStatus()
	answered := rs.count()
	if answered > fit || answered == 0 || handled.Load() >= n || ss.Bytes > budget {
		t.Fatalf("spool full: status %+v, %d answered (budget fits %d), %d handled; want full, 1..%d answered, the reader blocked", ss, answered, fit, handled.Load(), fit)
	}
	for i := 0; i < n; i++ {
		if a := rs.get(i); len(a) > 1 || (len(a) == 1 && a[0].code != 0) {
			t.Fatalf("push %d: answers %+v", i, a)
		}
	}
	// Stop: the blocked pushes stay unanswered (the gateway redelivers).
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	answered = rs.count()
	var ids []int
	for i := 0; i < n; i++ {
		if len(rs.get(i)) == 1 {
			ids = append(ids, i)
		}
	}

	b2, err := New(Config{Brokers: brokers, Router: tb.router, PID: 11000001, Partitions: 6, SpoolDir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer b2.Close()
	waitSpoolEmpty(t, b2, 60*time.Second)
	if err := b2.Shutdown(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	topic := tb.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, _ := readChecked(t, brokers, topic)
	for _, i := range ids {
		p := spillPush(i, keys)
		id := fmt.Sprintf("%d/%d", p.To, p.MID)
		if !distinct[id] {
			t.Errorf("push %d (%s) was answered but is not in Kafka", i, id)
		}
	}
	t.Logf("budget %d B (%d records): %d answered, all in Kafka after the drain (%d records there)", budget, fit, answered, len(distinct))
}

// TestSpoolDirLocked: a second bridge on the same spool dir is refused.
func TestSpoolDirLocked(t *testing.T) {
	r := &topics.Router{}
	dir := t.TempDir()
	offlineSpoolBridge(t, r, dir, nil)
	_, err := New(Config{Brokers: []string{deadBroker(t)}, Router: r, SpoolDir: dir})
	if !errors.Is(err, spool.ErrLocked) || !strings.Contains(err.Error(), "another running bridge") {
		t.Fatalf("second bridge on %s: %v, want a clear ErrLocked", dir, err)
	}
}

// TestSpillRaceAnsweredOnce: an ack budget of 4 ms on a healthy broker makes
// the bridge spill and drain all the time while Kafka acks the same records:
// every push is answered exactly once, all are in Kafka exactly once (a
// spilled record whose producer copy was acked is skipped by the drain),
// and order per key holds. Kafka is read only after Shutdown — no copy can
// land any more — and exactly up to its end offsets.
func TestSpillRaceAnsweredOnce(t *testing.T) {
	const keys, per = 20, 150
	dir := t.TempDir()
	b, brokers := testBridge(t, func(c *Config) {
		c.SpoolDir = dir
		c.SpoolAckBudget = 4 * time.Millisecond
	})
	rs := newReplies(keys * per)
	var wg sync.WaitGroup
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				// one goroutine per key: order per key is HandlePush order
				p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 7, To: int64(1000 + k), MType: 30, MID: int64(i), Msg: []byte("m")}
				b.HandlePush(context.Background(), &p, rs.reply(k*per+i))
				if i%10 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	rs.wait(t, keys*per, 120*time.Second)
	waitSpoolEmpty(t, b, 120*time.Second)
	// Shutdown waits for the window, stops the drain, closes the producer
	// (every promise delivered) and the spool: no answer and no record can
	// come after it.
	if err := b.Shutdown(ctxFor(t, 60*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := 0; i < keys*per; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want exactly one OK", i, a)
		}
	}
	topic := b.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, dups := readChecked(t, brokers, topic)
	st := b.Stats()
	t.Logf("4 ms budget: acked %d, spilled %d, drained %d, drain skipped %d; Kafka: %d distinct, %d duplicates",
		st.Acked-st.Spilled, st.Spilled, st.Drained, st.DrainSkipped, len(distinct), dups)
	if len(distinct) != keys*per {
		t.Fatalf("%d distinct records in Kafka, want %d", len(distinct), keys*per)
	}
	if dups != 0 {
		t.Errorf("%d duplicates in Kafka with a healthy broker: every spilled copy is acked, so the drain must skip it", dups)
	}
	if st.Spilled == 0 {
		t.Errorf("nothing spilled with a 4 ms ack budget: the test did not exercise the spool")
	}
	if st.Acked != keys*per {
		t.Errorf("acked (answered OK) %d, want %d", st.Acked, keys*per)
	}
	if got := st.Produced[topic]; got != uint64(len(distinct)+dups) {
		t.Errorf("Stats().Produced[%s] = %d, Kafka holds %d", topic, got, len(distinct)+dups)
	}
}

// TestSpoolSkipsAckedCopies: records handed to the producer while the
// broker is frozen (SIGSTOP, a private broker of our own) are spilled and
// answered from the spool; once the broker resumes, the producer's copies
// are acked and the drain skips their spool records instead of writing them
// again. Every record is in Kafka exactly once, in order per key.
func TestSpoolSkipsAckedCopies(t *testing.T) {
	k := testkit.StartPrivateKafka(t)
	dir := t.TempDir()
	b, brokers := testBridgeOn(t, k.Brokers, func(c *Config) {
		c.SpoolDir = dir
		c.SpoolAckBudget = 500 * time.Millisecond
	})
	const keys, n1, n2 = 5, 40, 40
	rs := newReplies(keys + n1 + n2)
	push := func(from, to int) {
		for i := from; i < to; i++ {
			p := spillPush(i, keys)
			b.HandlePush(context.Background(), &p, rs.reply(i))
		}
	}
	// Warm up: every key's partition has been written once, on the fast path.
	push(0, keys)
	rs.wait(t, keys, 60*time.Second)
	waitSpoolEmpty(t, b, 60*time.Second)

	if err := k.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	resume := func() {
		if stopped {
			_ = k.Signal(syscall.SIGCONT) // the cleanup resumes it too
			stopped = false
		}
	}
	defer resume() // never leave the broker frozen, even when the test fails
	before := b.Stats()
	// Handed to the producer, not acked: spilled with their copies pending.
	push(keys, keys+n1)
	rs.wait(t, n1, 60*time.Second)
	// Spilling now: these go to the spool only.
	push(keys+n1, keys+n1+n2)
	rs.wait(t, n2, 60*time.Second)
	mid := b.Stats()
	if got := mid.Spilled - before.Spilled; got != n1+n2 {
		t.Fatalf("%d of %d pushes answered from the spool while the broker was frozen: %+v", got, n1+n2, mid)
	}
	if ss := b.SpoolStatus(); ss.Records != n1+n2 || !ss.Spilling {
		t.Fatalf("spool status %+v while the broker is frozen: want %d records, spilling", ss, n1+n2)
	}
	resume()
	waitSpoolEmpty(t, b, 120*time.Second)
	if err := b.Shutdown(ctxFor(t, 60*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := 0; i < keys+n1+n2; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want exactly one OK", i, a)
		}
	}
	st := b.Stats()
	topic := b.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, dups := readChecked(t, brokers, topic)
	t.Logf("frozen broker: spilled %d, drained %d, drain skipped %d; Kafka: %d distinct, %d duplicates",
		st.Spilled, st.Drained, st.DrainSkipped, len(distinct), dups)
	if len(distinct) != keys+n1+n2 || dups != 0 {
		t.Fatalf("Kafka holds %d distinct records and %d duplicates, want %d exactly once", len(distinct), dups, keys+n1+n2)
	}
	if st.DrainSkipped == 0 {
		t.Fatalf("the drain skipped nothing: the producer's acked copies were written twice or not tracked (%+v)", st)
	}
	if st.DrainSkipped+st.Drained != st.Spilled {
		t.Errorf("drain skipped %d + drained %d != spilled %d", st.DrainSkipped, st.Drained, st.Spilled)
	}
}

// TestNoSpoolUnchanged: without SpoolDir there is no spool path at all.
func TestNoSpoolUnchanged(t *testing.T) {
	b, err := New(Config{Brokers: []string{deadBroker(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.SpoolEnabled() || b.sp != nil || b.SpoolStatus().Enabled {
		t.Fatal("spool path present without SpoolDir")
	}
}
