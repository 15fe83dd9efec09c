package bridge

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// testBridge makes a bridge on the real broker with a prefix unique to the
// test, creates its topics, and closes it and deletes the topics at the end.
func testBridge(t testing.TB, mod func(*Config)) (*Bridge, []string) {
	t.Helper()
	brokers := kafkatest.Brokers(t)
	prefix := strings.TrimSuffix(kafkatest.UniquePrefix(t), "-")
	r := &topics.Router{Prefix: prefix}
	if err := r.Init(); err != nil {
		t.Fatalf("router: %v", err)
	}
	cfg := Config{Brokers: brokers, Router: r, PID: 11000001, Partitions: 6,
		Now: func() time.Time { return time.UnixMilli(1700000000123) }}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	all := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
	for _, tp := range all {
		n := 6
		if tp == r.ControlTopic() || tp == r.ControlResultsTopic() {
			n = 1
		}
		if err := kafkatest.WaitTopic(ctx, brokers, tp, n); err != nil {
			t.Fatalf("WaitTopic: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, done := testClient(brokers)
		defer done()
		_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: all}) // best effort: unique names anyway
		quietDefaultTransport()
	})
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
	return &replies{got: make(map[int][]answer), ch: make(chan int, n)}
}

// reply returns the Reply for push i.
func (rs *replies) reply(i int) rtm.Reply {
	return rtm.NewReply(func(code int, ex string) error {
		rs.mu.Lock()
		rs.got[i] = append(rs.got[i], answer{code, ex, time.Now()})
		rs.mu.Unlock()
		rs.ch <- i
		return nil
	})
}

// wait waits for n replies.
func (rs *replies) wait(t *testing.T, n int, d time.Duration) {
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

func (rs *replies) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.got)
}

// headerMap turns record headers into a map, failing on repeats.
func headerMap(t *testing.T, hs []kafka.Header) map[string]string {
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

// recordCount returns how many records the topic's partitions hold (the
// sum of their high watermarks), retrying briefly: a new partition's leader
// may answer NOT_LEADER for a moment after creation. It may run on any
// goroutine, so it reports errors instead of failing the test.
func recordCount(brokers []string, topic string, partitions int) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, done := testClient(brokers)
	defer done()
	var n int64
	for p := 0; p < partitions; p++ {
		for {
			_, end, err := listOffsets(ctx, c, topic, p)
			if err == nil {
				n += end
				break
			}
			if ctx.Err() != nil {
				return 0, err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return n, nil
}

// testClient returns a client on a transport of its own, and the func that
// closes it, so that no kafka-go goroutine outlives the test.
func testClient(brokers []string) (*kafka.Client, func()) {
	t := &kafka.Transport{}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Transport: t, Timeout: 10 * time.Second}, t.CloseIdleConnections
}

// quietDefaultTransport closes the connection pools of kafka-go's
// DefaultTransport, which the kafkatest helpers use: each pool keeps a
// goroutine that refreshes metadata every few seconds, and its allocations
// would show in the testing.AllocsPerRun checks of later tests in this
// package (AllocsPerRun counts every goroutine's allocations). The pools
// are recreated on next use.
func quietDefaultTransport() {
	if t, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}
