// Package kafkatest gives integration tests a real Kafka broker and a few helpers
// around it (topics, unique names, reading a topic back).
//
// Where the broker comes from (Brokers / Start), first match wins:
//
//  1. KAFKA_BROKERS (comma separated host:port list), e.g. the broker of
//     `scripts/kafka.sh start` (KAFKA_BROKERS=127.0.0.1:19092). Must be reachable
//     within a few seconds, else the test fails with the fix.
//  2. A reachable Docker engine: one apache/kafka KRaft container per test binary,
//     started with testcontainers-go (removed by its reaper when the binary exits).
//  3. Otherwise the test FAILS (it never skips) and says how to get a broker.
//
// The helpers never skip a test: a missing broker is a failed test.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// EnvBrokers names the environment variable with the broker list.
	EnvBrokers = "KAFKA_BROKERS"
	// EnvImage overrides the Docker image used when no KAFKA_BROKERS is set.
	EnvImage = "KAFKATEST_IMAGE"
	// EnvKeepTopics set to 1 keeps the topics made by CreateTopic after the test.
	EnvKeepTopics = "KAFKATEST_KEEP_TOPICS"

	// DefaultImage is the KRaft image started through Docker; the same Kafka
	// version as scripts/kafka.sh uses by default.
	DefaultImage = "apache/kafka:4.4.0"

	reachTimeout = 5 * time.Second
	fixHint      = "run `scripts/kafka.sh start` and set KAFKA_BROKERS=127.0.0.1:19092, or `make test` which does both"
)

// ErrNoBroker is returned by Start when there is neither KAFKA_BROKERS nor a Docker engine.
var ErrNoBroker = errors.New("no Kafka broker: " + fixHint)

// Brokers returns the bootstrap addresses for an integration test. It never skips:
// without a broker the test fails with instructions. When the broker comes from
// Docker, one container is shared by every test of the test binary.
func Brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv(EnvBrokers); strings.TrimSpace(env) != "" {
		brokers := ParseBrokers(env)
		if err := CheckReachable(brokers, reachTimeout); err != nil {
			t.Fatalf("%s=%q is set but not reachable: %v\nfix: %s (check `scripts/kafka.sh status`)", EnvBrokers, env, err, fixHint)
		}
		return brokers
	}
	brokers, err := shared.get()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return brokers
}

// Start is the TestMain-friendly form of Brokers: it returns the brokers from
// KAFKA_BROKERS (after a reachability check, stop is a no-op) or from a new Docker
// container (stop terminates it), or ErrNoBroker. It keeps no state.
//
//	func TestMain(m *testing.M) {
//		brokers, stop, err := kafkatest.Start(context.Background())
//		if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }
//		code := m.Run(); stop(); os.Exit(code)
//	}
func Start(ctx context.Context) (brokers []string, stop func(), err error) {
	noop := func() {}
	if env := os.Getenv(EnvBrokers); strings.TrimSpace(env) != "" {
		brokers = ParseBrokers(env)
		if err := CheckReachable(brokers, reachTimeout); err != nil {
			return nil, noop, fmt.Errorf("%s=%q is set but not reachable: %w\nfix: %s", EnvBrokers, env, err, fixHint)
		}
		return brokers, noop, nil
	}
	if !dockerAvailable(ctx) {
		return nil, noop, ErrNoBroker
	}
	return startContainer(ctx)
}

// ParseBrokers splits a comma/space separated broker list, dropping empty entries
// and any "scheme://" prefix.
func ParseBrokers(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if i := strings.Index(f, "://"); i >= 0 {
			f = f[i+3:]
		}
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// CheckReachable succeeds as soon as one of brokers answers a Kafka ApiVersions
// request; it retries until timeout (a broker that is just starting is fine).
func CheckReachable(brokers []string, timeout time.Duration) error {
	if len(brokers) == 0 {
		return errors.New("empty broker list")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		for _, b := range brokers {
			if last = apiVersions(ctx, b); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func apiVersions(ctx context.Context, broker string) error {
	c := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 2 * time.Second}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := c.ApiVersions(actx, &kafka.ApiVersionsRequest{})
	if err != nil {
		return fmt.Errorf("%s: %w", broker, err)
	}
	if res.Error != nil {
		return fmt.Errorf("%s: %w", broker, res.Error)
	}
	return nil
}

// shared is the one process-wide Docker container behind Brokers. This is the
// package's only mutable package-level state, on purpose: a test helper package
// that starts a broker lazily for the whole test binary (the container is removed by
// testcontainers' reaper when the process exits). Use Start from TestMain to avoid it.
var shared sharedContainer

type sharedContainer struct {
	once    sync.Once
	brokers []string
	err     error
}

func (s *sharedContainer) get() ([]string, error) {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if !dockerAvailable(ctx) {
			s.err = ErrNoBroker
			return
		}
		s.brokers, _, s.err = startContainer(ctx)
		if s.err != nil {
			s.err = fmt.Errorf("no KAFKA_BROKERS set and starting a Kafka container failed: %w\nfix: %s", s.err, fixHint)
		}
	})
	return s.brokers, s.err
}

// dockerAvailable reports whether a Docker engine answers within a few seconds.
func dockerAvailable(ctx context.Context) (ok bool) {
	defer func() {
		if recover() != nil { // older testcontainers versions panic without Docker
			ok = false
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	return p.Health(ctx) == nil // Health closes the provider
}

const (
	containerPort = "9092/tcp" // PLAINTEXT, advertised as the mapped host port
	startScript   = "/tmp/kafkatest_start.sh"
)

// startContainer runs a single-node KRaft apache/kafka container. The advertised
// listener must carry the host-mapped port, which is only known once the container
// exists: the container waits for a start script that is copied in after start.
func startContainer(ctx context.Context) ([]string, func(), error) {
	img := os.Getenv(EnvImage)
	if img == "" {
		img = DefaultImage
	}
	env := map[string]string{
		"CLUSTER_ID":                                             "rtm2kafkaKafkaTest0001",
		"KAFKA_NODE_ID":                                          "1",
		"KAFKA_PROCESS_ROLES":                                    "broker,controller",
		"KAFKA_LISTENERS":                                        "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":                   "BROKER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_INTER_BROKER_LISTENER_NAME":                       "BROKER",
		"KAFKA_CONTROLLER_LISTENER_NAMES":                        "CONTROLLER",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":                         "1@localhost:9094",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
		"KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS":                     "8",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
		"KAFKA_MIN_INSYNC_REPLICAS":                              "1",
		"KAFKA_DEFAULT_REPLICATION_FACTOR":                       "1",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
		"KAFKA_HEAP_OPTS":                                        "-Xms256m -Xmx1G",
	}
	c, err := testcontainers.Run(ctx, img,
		testcontainers.WithExposedPorts(containerPort),
		testcontainers.WithEnv(env),
		testcontainers.WithEntrypoint("sh"),
		testcontainers.WithCmd("-c", "while [ ! -f "+startScript+" ]; do sleep 0.1; done; exec sh "+startScript),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{
				func(ctx context.Context, c testcontainers.Container) error {
					if err := wait.ForMappedPort(containerPort).WaitUntilReady(ctx, c); err != nil {
						return fmt.Errorf("wait for mapped port: %w", err)
					}
					endpoint, err := c.PortEndpoint(ctx, containerPort, "")
					if err != nil {
						return fmt.Errorf("port endpoint: %w", err)
					}
					inspect, err := c.Inspect(ctx)
					if err != nil {
						return fmt.Errorf("inspect: %w", err)
					}
					script := fmt.Sprintf("export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://%s,BROKER://%s:9093\nexec /etc/kafka/docker/run\n",
						endpoint, inspect.Config.Hostname)
					if err := c.CopyToContainer(ctx, []byte(script), startScript, 0o755); err != nil {
						return fmt.Errorf("copy start script: %w", err)
					}
					return wait.ForLog("Kafka Server started").WithStartupTimeout(3*time.Minute).WaitUntilReady(ctx, c)
				},
			},
		}),
	)
	stop := func() {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
	}
	if err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("run %s: %w", img, err)
	}
	endpoint, err := c.PortEndpoint(ctx, containerPort, "")
	if err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("port endpoint: %w", err)
	}
	brokers := []string{endpoint}
	if err := CheckReachable(brokers, 30*time.Second); err != nil {
		stop()
		return nil, func() {}, err
	}
	return brokers, stop, nil
}

// UniquePrefix returns a topic/group name prefix unique to this test run, built from
// the test name (Kafka-legal characters only) plus random hex, ending in "-".
func UniquePrefix(t testing.TB) string {
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
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("UniquePrefix: %v", err)
	}
	return "t-" + name + "-" + hex.EncodeToString(rnd[:]) + "-"
}

// CreateTopic creates a topic with the given partitions (replication factor 1) and
// waits until every partition has a leader. The topic is deleted when the test
// ends, unless KAFKATEST_KEEP_TOPICS=1.
func CreateTopic(t testing.TB, brokers []string, name string, partitions int) {
	t.Helper()
	if err := CreateTopicErr(context.Background(), brokers, name, partitions, nil); err != nil {
		t.Fatalf("CreateTopic %q: %v", name, err)
	}
	if os.Getenv(EnvKeepTopics) != "1" {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
			_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
		})
	}
}

// CreateTopicErr is CreateTopic without testing.TB and without cleanup. configs are
// topic configs such as {"retention.ms": "-1"}; nil for broker defaults.
func CreateTopicErr(ctx context.Context, brokers []string, name string, partitions int, configs map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	tc := kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: configs[k]})
	}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err != nil {
		return err
	}
	if err := res.Errors[name]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return err
	}
	return WaitTopic(ctx, brokers, name, partitions)
}

// WaitTopic waits until the topic's metadata shows the given number of partitions,
// each with a leader (topic creation is asynchronous in KRaft). It asks the broker
// itself each time: kafka-go's Client.Metadata answers from the Transport's cache.
func WaitTopic(ctx context.Context, brokers []string, name string, partitions int) error {
	var last error
	for {
		md, err := freshMetadata(ctx, brokers, name)
		switch {
		case err != nil:
			last = err
		case len(md.Topics) != 1:
			last = fmt.Errorf("metadata returned %d topics", len(md.Topics))
		case md.Topics[0].Error != nil:
			last = md.Topics[0].Error
		case len(md.Topics[0].Partitions) != partitions:
			last = fmt.Errorf("%d of %d partitions visible", len(md.Topics[0].Partitions), partitions)
		default:
			last = nil
			for _, p := range md.Topics[0].Partitions {
				if p.Error != nil || p.Leader.ID < 0 || p.Leader.Host == "" {
					last = fmt.Errorf("partition %d has no leader yet (%v)", p.ID, p.Error)
					break
				}
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %q not ready: %v (%w)", name, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freshMetadata sends a real Metadata request for topic through a new Transport, so
// no cached (up to MetadataTTL old) state is returned.
func freshMetadata(ctx context.Context, brokers []string, topic string) (*kafka.MetadataResponse, error) {
	tr := &kafka.Transport{DialTimeout: 5 * time.Second, MetadataTopics: []string{topic}}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 10 * time.Second}
	return c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
}

// Partitions returns the partition ids of a topic, sorted.
func Partitions(ctx context.Context, brokers []string, topic string) ([]int, error) {
	md, err := freshMetadata(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	if len(md.Topics) != 1 {
		return nil, fmt.Errorf("metadata for %q returned %d topics", topic, len(md.Topics))
	}
	if md.Topics[0].Error != nil {
		return nil, md.Topics[0].Error
	}
	ids := make([]int, 0, len(md.Topics[0].Partitions))
	for _, p := range md.Topics[0].Partitions {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	return ids, nil
}

// ReadAll reads topic from the beginning of every partition, without a consumer
// group, until n messages arrived or timeout passed, and returns what it read (at
// most n; fewer on timeout — the caller asserts). Order is per partition only.
func ReadAll(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	msgs, err := ReadAllErr(context.Background(), brokers, topic, n, timeout)
	if err != nil {
		t.Fatalf("ReadAll %q: %v", topic, err)
	}
	return msgs
}

// ReadAllErr is ReadAll without testing.TB; a timeout is not an error.
func ReadAllErr(ctx context.Context, brokers []string, topic string, n int, timeout time.Duration) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	parts, err := Partitions(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan kafka.Message)
	errc := make(chan error, len(parts))
	var wg sync.WaitGroup
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   brokers,
			Topic:     topic,
			Partition: p,
			MinBytes:  1,
			MaxBytes:  16 << 20,
			MaxWait:   200 * time.Millisecond,
		})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			_ = r.Close()
			cancel()
			wg.Wait()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("partition %d: %w", p, err)
					}
					return
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var msgs []kafka.Message
	var firstErr error
loop:
	for len(msgs) < n {
		select {
		case m, ok := <-out:
			if !ok {
				break loop
			}
			msgs = append(msgs, m)
		case err := <-errc:
			firstErr = err
			break loop
		}
	}
	cancel()
	for range out { // drain so the readers can exit
	}
	return msgs, firstErr
}
