package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/bridge/spool"
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
		SpoolDir: dir, SpoolAckBudget: 200 * time.Millisecond,
		WriteBackoffMin: 20 * time.Millisecond, WriteBackoffMax: 100 * time.Millisecond}
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

// readChecked reads every record of topic (duplicates included) and checks
// that per key the first occurrences of the mids are 0, 1, 2, … in order.
// It returns the distinct (key, mid) pairs found and the duplicates.
func readChecked(t *testing.T, brokers []string, topic string) (distinct map[string]bool, dups int) {
	t.Helper()
	n, err := recordCount(brokers, topic, 6)
	if err != nil {
		t.Fatalf("recordCount: %v", err)
	}
	// n is exact (from the end offsets), so a short read is the reader's
	// problem, not the bridge's: on a loaded machine a fresh set of
	// partition readers has once come back empty after 20 s. Read again with
	// new readers before failing.
	var msgs []kafka.Message
	for try := 1; try <= 3 && int64(len(msgs)) != n; try++ {
		msgs = readAllKafkaGo(t, brokers, topic, int(n), 20*time.Second)
		if int64(len(msgs)) != n {
			t.Logf("read %d records of %d (try %d)", len(msgs), n, try)
		}
	}
	if int64(len(msgs)) != n {
		t.Fatalf("read %d records of %d", len(msgs), n)
	}
	next := map[string]int64{}
	distinct = map[string]bool{}
	for _, m := range msgs {
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
	deadline := time.Now().Add(d)
	for {
		spilling, n := b.Spilling()
		if !spilling && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool not drained after %v: %+v", d, b.SpoolStatus())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spillOffline pushes n records into an offline bridge spooling to dir,
// checks every one is answered OK from the spool within a second or so of
// the ack budget, and shuts the bridge down leaving the spool full.
func spillOffline(t *testing.T, r *topics.Router, dir string, n, keys int) {
	t.Helper()
	b := offlineSpoolBridge(t, r, dir, nil)
	rs := newReplies(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		p := spillPush(i, keys)
		b.HandlePush(context.Background(), &p, rs.reply(i))
	}
	rs.wait(t, n, 5*time.Second)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("answers took %v with a 200 ms ack budget", el)
	}
	for i := 0; i < n; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want one OK", i, a)
		}
	}
	st, ss := b.Stats(), b.SpoolStatus()
	if st.Spilled != uint64(n) || !ss.Spilling || ss.Records != int64(n) {
		t.Fatalf("after %d pushes to an offline Kafka: stats %+v, spool %+v; want all spilled and spooled", n, st, ss)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
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
	rs.wait(t, more, 10*time.Second)
	waitSpoolEmpty(t, b, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
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
	waitSpoolEmpty(t, b, 20*time.Second)
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
// by the next bridge — nothing answered is lost.
func TestSpoolFullBackpressure(t *testing.T) {
	const n, keys = 40, 3
	tb, brokers := testBridge(t, nil)
	dir := t.TempDir()
	p0 := spillPush(0, keys)
	one := func() int64 {
		// The size of one spooled record, measured from an encoded message.
		rec := &pending{}
		msg := tb.encode(&p0, rec)
		return spoolSize(&msg)
	}()
	const fit = 10
	b := offlineSpoolBridge(t, tb.router, dir, func(c *Config) { c.SpoolMaxBytes = fit*one + one/2 })
	rs := newReplies(n)
	var handled atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one reader, like the session's: it stops while the spool is full
		defer wg.Done()
		for i := 0; i < n; i++ {
			p := spillPush(i, keys)
			b.HandlePush(context.Background(), &p, rs.reply(i))
			handled.Add(1)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !b.SpoolStatus().Full && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // ack budget plus slack: nothing more may be answered
	ss := b.SpoolStatus()
	answered := rs.count()
	if !ss.Full || answered > fit || handled.Load() >= n || ss.Bytes > fit*one+one/2 {
		t.Fatalf("spool full: status %+v, %d answered (budget fits %d), %d handled; want full, <= %d answered, the reader blocked", ss, answered, fit, handled.Load(), fit)
	}
	if answered == 0 {
		t.Fatalf("nothing answered: %+v", ss)
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
	waitSpoolEmpty(t, b2, 20*time.Second)
	topic := tb.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, _ := readChecked(t, brokers, topic)
	for _, i := range ids {
		p := spillPush(i, keys)
		id := fmt.Sprintf("%d/%d", p.To, p.MID)
		if !distinct[id] {
			t.Errorf("push %d (%s) was answered but is not in Kafka", i, id)
		}
	}
	t.Logf("budget %d B (%d records): %d answered, all in Kafka after the drain (%d records there)", fit*one+one/2, fit, answered, len(distinct))
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
// every push is answered exactly once, all are in Kafka, order per key holds
// for first copies.
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
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	rs.wait(t, keys*per, 30*time.Second)
	waitSpoolEmpty(t, b, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // late duplicate answers, if any, would arrive now
	for i := 0; i < keys*per; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want exactly one OK", i, a)
		}
	}
	topic := b.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	distinct, dups := readChecked(t, brokers, topic)
	st := b.Stats()
	t.Logf("4 ms budget: acked %d, spilled %d, drained %d, spool duplicates %d; Kafka: %d distinct, %d duplicates",
		st.Acked-st.Spilled, st.Spilled, st.Drained, st.SpoolDuplicates, len(distinct), dups)
	if len(distinct) != keys*per {
		t.Fatalf("%d distinct records in Kafka, want %d", len(distinct), keys*per)
	}
	if st.Spilled == 0 {
		t.Errorf("nothing spilled with a 4 ms ack budget: the test did not exercise the spool")
	}
	if st.Acked != keys*per {
		t.Errorf("acked (answered OK) %d, want %d", st.Acked, keys*per)
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
	_ = kafka.Message{}
}
