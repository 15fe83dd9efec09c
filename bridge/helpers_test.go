package bridge

// The one set of test helpers of this package: the broker (KAFKA_BROKERS,
// never skipped), one Kafka client factory (kgo/kadm), one condition waiter
// (eventually), one goroutine-leak check, reading a topic to its end
// offsets, and a private broker of our own for tests that stop one.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

const brokerFix = "start the test broker with `bash scripts/kafka.sh start` and export KAFKA_BROKERS=127.0.0.1:19092, or run `make test`, which does both"

// testBrokers returns the brokers of KAFKA_BROKERS after checking that one
// of them answers. It never skips: without a broker the test fails and says
// how to get one.
func testBrokers(t testing.TB) []string {
	t.Helper()
	env := strings.TrimSpace(os.Getenv("KAFKA_BROKERS"))
	if env == "" {
		t.Fatalf("KAFKA_BROKERS is not set: the bridge tests need a real Kafka broker; %s", brokerFix)
	}
	var brokers []string
	for _, f := range strings.FieldsFunc(env, func(r rune) bool { return r == ',' || r == ' ' }) {
		brokers = append(brokers, f)
	}
	if err := pingBrokers(brokers, 10*time.Second); err != nil {
		t.Fatalf("KAFKA_BROKERS=%q is set but no broker answers: %v; %s (check `bash scripts/kafka.sh status`)", env, err, brokerFix)
	}
	return brokers
}

// pingBrokers succeeds once a broker answers a request, within d.
func pingBrokers(brokers []string, d time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var last error
	for {
		if last = cl.Ping(ctx); last == nil {
			return nil
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return fmt.Errorf("after %v: %w", d, last)
		}
	}
}

// uniquePrefix returns a topic prefix unique to this test and run, made of
// the test's name and random hex (no trailing separator).
func uniquePrefix(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 80 {
		name = name[:80]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "t-" + name + "-" + hex.EncodeToString(rnd[:])
}

// testRouter returns an initialised router with a prefix unique to t.
func testRouter(t testing.TB) *topics.Router {
	t.Helper()
	r := &topics.Router{Prefix: uniquePrefix(t)}
	if err := r.Init(); err != nil {
		t.Fatalf("router: %v", err)
	}
	return r
}

// kafkaClient is the one Kafka client factory of the tests: a kgo client
// on brokers with opts, and its admin view, both closed when the test ends.
func kafkaClient(t testing.TB, brokers []string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// ctxFor returns a context that ends after d or when the test ends. Each
// phase of a test takes its own.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until cond reports true, polling every 10 ms, and fails
// the test with cond's last words when d passes first. It is the only way
// these tests wait for a state.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, d, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createTopic creates topic with n partitions and configs (nil: broker
// defaults) and waits until every partition has a leader.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, n int, configs map[string]*string) error {
	rs, err := adm.CreateTopics(ctx, int32(n), -1, configs, topic)
	if err != nil {
		return err
	}
	if r := rs[topic]; r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		return r.Err
	}
	return waitTopic(ctx, adm, topic, n)
}

// waitTopic waits until topic shows n partitions, each with a leader
// (creation is asynchronous in KRaft).
func waitTopic(ctx context.Context, adm *kadm.Client, topic string, n int) error {
	var last error
	for {
		td, err := adm.ListTopics(ctx, topic)
		switch d := td[topic]; {
		case err != nil:
			last = err
		case d.Err != nil:
			last = d.Err
		case len(d.Partitions) != n:
			last = fmt.Errorf("%d of %d partitions visible", len(d.Partitions), n)
		default:
			last = nil
			for _, p := range d.Partitions {
				if p.Err != nil || p.Leader < 0 {
					last = fmt.Errorf("partition %d has no leader yet (%v)", p.Partition, p.Err)
					break
				}
			}
			if last == nil {
				return nil
			}
		}
		if sleepCtx(ctx, 50*time.Millisecond) != nil {
			return fmt.Errorf("topic %s not ready: %v (%w)", topic, last, ctx.Err())
		}
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
	_, adm := kafkaClient(t, brokers)
	all := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
	for _, tp := range all {
		n := b.cfg.Partitions
		if tp == r.ControlTopic() || tp == r.ControlResultsTopic() {
			n = 1
		}
		if err := waitTopic(ctx, adm, tp, n); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	t.Cleanup(func() { deleteTopics(brokers, all...) })
}

// deleteTopics deletes topics, best effort (the names are unique anyway).
func deleteTopics(brokers []string, topics ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topics...)
}

// testBridge makes a bridge on the real broker with a prefix unique to the
// test, creates its topics, and closes it and deletes the topics at the end.
func testBridge(t testing.TB, mod func(*Config)) (*Bridge, []string) {
	t.Helper()
	return testBridgeOn(t, testBrokers(t), mod)
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

// endOffsets returns the end offset of every partition of topic.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s: no partitions", topic)
	}
	return out, nil
}

// recordCount returns how many records topic holds (the sum of its end
// offsets).
func recordCount(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ends {
		n += e
	}
	return n, nil
}

// readTopic reads every partition of topic from its start up to its end
// offsets as they are when it is called, so it returns exactly what Kafka
// holds then, in offset order per partition; call it once nothing is being
// written any more. It fails the test if that takes longer than a minute.
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	_, adm := kafkaClient(t, brokers)
	var (
		ends map[int32]int64
		err  error
	)
	for ends, err = endOffsets(ctx, adm, topic); err != nil; ends, err = endOffsets(ctx, adm, topic) {
		if sleepCtx(ctx, 50*time.Millisecond) != nil { // a new partition may answer NOT_LEADER for a moment
			t.Fatalf("end offsets of %s: %v", topic, err)
		}
	}
	parts := make(map[int32]kgo.Offset)
	var want int64
	for p, e := range ends {
		if e > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			want += e
		}
	}
	if len(parts) == 0 {
		return nil
	}
	cl, _ := kafkaClient(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxPartitionBytes(8<<20))
	var out []*kgo.Record
	done := make(map[int32]bool)
	for len(done) < len(parts) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records after a minute (%d of %d partitions done)", topic, len(out), want, len(done), len(parts))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("read %s/%d: %v (the client retries)", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				done[r.Partition] = true
				return
			}
			out = append(out, r)
			if r.Offset+1 >= ends[r.Partition] {
				done[r.Partition] = true
			}
		})
	}
	return out
}

// produceRaw writes values to partition 0 of topic and waits for the acks.
func produceRaw(t testing.TB, brokers []string, topic string, opts []kgo.Opt, values ...string) {
	t.Helper()
	cl, _ := kafkaClient(t, brokers, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	ctx := ctxFor(t, 30*time.Second)
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// checkNoLeak records the goroutine count now and, when the test ends,
// waits until the count is back at most there; it fails with every
// goroutine's stack if it does not come back within 10 s.
func checkNoLeak(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines at the end, %d at the start:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// privateKafka is a broker of the tests' own, run by scripts/kafka.sh on
// its own ports and state directory, for tests that stop a broker. It never
// touches the shared broker.
type privateKafka struct {
	brokers []string
	script  string
	env     []string
	state   string
}

const (
	privatePort  = "19094"
	privateCPort = "19095"
	privateState = "/tmp/kafka-bridgetests"
)

// startPrivateKafka starts the private broker (or reuses it if a previous
// run left it serving) and stops it, wiping its data, when the test ends.
func startPrivateKafka(t testing.TB) *privateKafka {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	k := &privateKafka{
		brokers: []string{"127.0.0.1:" + privatePort},
		script:  filepath.Join(root, "scripts", "kafka.sh"),
		env: append(os.Environ(), "KAFKA_PORT="+privatePort, "KAFKA_CONTROLLER_PORT="+privateCPort,
			"RTM2KAFKA_STATE="+privateState, "KAFKA_HEAP=-Xms128m -Xmx512m"),
		state: privateState,
	}
	t.Cleanup(func() {
		k.signal(t, syscall.SIGCONT) // never leave it stopped
		if out, err := k.run("stop"); err != nil {
			t.Logf("private kafka stop: %v\n%s", err, out)
		}
	})
	// A first start formats the storage with a random cluster id, which
	// kafka.sh passes as "-t <id>"; an id starting with "-" is taken for
	// an option. Try again then.
	var out string
	for try := 0; try < 3; try++ {
		if out, err = k.run("start"); err == nil {
			return k
		}
		if !strings.Contains(out, "formatting KRaft storage") {
			break
		}
	}
	t.Fatalf("private kafka (bash scripts/kafka.sh start with KAFKA_PORT=%s): %v\n%s", privatePort, err, out)
	return nil
}

func (k *privateKafka) run(args ...string) (string, error) {
	c := exec.Command("bash", append([]string{k.script}, args...)...)
	c.Env = k.env
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kafka.sh %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// signal sends sig to the private broker's JVM (its pid file).
func (k *privateKafka) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k.state, "kafka.pid"))
	if err != nil {
		t.Logf("private kafka pid: %v", err)
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(bytes.TrimSpace(raw)), &pid); err != nil || pid <= 1 {
		t.Logf("private kafka pid %q: %v", raw, err)
		return
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Logf("kill -%v %d: %v", sig, pid, err)
	}
}
