package bridge

// The bridge's own test helpers, on top of the project's one shared kit,
// integration/testkit (broker lookup that never skips, the kgo/kadm client
// factory, Eventually/Wait, the goroutine-leak check, reading a topic to its
// end offsets): a bridge on the real broker with topics of its own, reply
// collection, and a private broker for tests that freeze one.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// testRouter returns an initialised router with a prefix unique to t.
func testRouter(t testing.TB) *topics.Router {
	t.Helper()
	r := &topics.Router{Prefix: testkit.UniqueName(t)}
	if err := r.Init(); err != nil {
		t.Fatalf("router: %v", err)
	}
	return r
}

// ctxFor returns a context that ends after d or when the test ends. Each
// phase of a test takes its own.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually is testkit.Wait whose failure says what cond last saw: cond
// returns whether the state is reached and, if not, why.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var why string
	err := testkit.Wait(ctxFor(t, d), what, func() bool {
		var ok bool
		ok, why = cond()
		return ok
	})
	if err != nil {
		t.Fatalf("%v (within %v): %s", err, d, why)
	}
}

// setupTopics creates every topic of r as EnsureTopics would on brokers
// through b, waits for them, and deletes them when the test ends.
func setupTopics(t testing.TB, b *Bridge, brokers []string) {
	t.Helper()
	r := b.router
	ctx := ctxFor(t, 60*time.Second)
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	all := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
	for _, tp := range all {
		n := b.cfg.Partitions
		if tp == r.ControlTopic() || tp == r.ControlResultsTopic() {
			n = 1
		}
		if err := testkit.WaitTopic(ctx, brokers, tp, n); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	t.Cleanup(func() { deleteTopics(brokers, all...) }) // best effort: unique names anyway
}

// deleteTopics deletes topics, best effort (the names are unique anyway).
func deleteTopics(brokers []string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = testkit.DeleteTopics(ctx, brokers, topics...)
}

// testBridge makes a bridge on the real broker with a prefix unique to the
// test, creates its topics, and closes it and deletes the topics at the end.
func testBridge(t testing.TB, mod func(*Config)) (*Bridge, []string) {
	t.Helper()
	return testBridgeOn(t, testkit.Brokers(t), mod)
}

// testBridgeOn is testBridge on the given brokers.
func testBridgeOn(t testing.TB, brokers []string, mod func(*Config)) (*Bridge, []string) {
	t.Helper()
	cfg := Config{Brokers: brokers, Router: testRouter(t), PID: 11000001, Partitions: 6,
		Now: func() time.Time { return time.UnixMilli(testNowMs) }}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	setupTopics(t, b, brokers)
	return b, brokers
}

// answer is one reply a test received.
type answer struct {
	code int
	ex   string
	at   time.Time
}

// replies collects the answers of numbered pushes.
type replies struct {
	mu  sync.Mutex
	got map[int][]answer
	ch  chan int
}

func newReplies(n int) *replies {
	return &replies{got: make(map[int][]answer), ch: make(chan int, n+16)}
}

// reply returns the Reply for push i.
func (rs *replies) reply(i int) rtm.Reply {
	return rtm.NewReply(func(code int, ex string) error {
		rs.mu.Lock()
		rs.got[i] = append(rs.got[i], answer{code, ex, time.Now()})
		rs.mu.Unlock()
		select {
		case rs.ch <- i:
		default: // more answers than pushes: get and count show them
		}
		return nil
	})
}

// wait waits for n replies; d only bounds a hang.
func (rs *replies) wait(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case <-rs.ch:
		case <-deadline:
			t.Fatalf("%d of %d replies after %v", i, n, d)
		}
	}
}

func (rs *replies) get(i int) []answer {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]answer(nil), rs.got[i]...)
}

// count returns how many pushes were answered at least once.
func (rs *replies) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.got)
}

// headerMap turns record headers into a map, failing on repeats.
func headerMap(t testing.TB, hs []kgo.RecordHeader) map[string]string {
	t.Helper()
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		if _, dup := m[h.Key]; dup {
			t.Fatalf("header %q repeated", h.Key)
		}
		m[h.Key] = string(h.Value)
	}
	return m
}

// readTopic returns every record topic holds now (testkit.ReadToEnd: each
// partition up to its end offset as of the call, in offset order); call it
// once nothing writes any more.
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	recs, err := testkit.ReadToEnd(ctxFor(t, 60*time.Second), brokers, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return recs
}

// produceRaw writes values to partition 0 of topic and waits for the acks.
func produceRaw(t testing.TB, brokers []string, topic string, values ...string) {
	t.Helper()
	cl := testkit.ClientFor(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}
	}
	testkit.Produce(t, cl, recs...)
}
