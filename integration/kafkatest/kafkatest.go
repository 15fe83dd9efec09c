// Package kafkatest gives integration tests a real Kafka broker: the
// broker lookup of [testkit.Brokers] plus a Docker fallback.
//
// Where the broker comes from (Brokers / Start), first match wins:
//
//  1. KAFKA_BROKERS (comma separated host:port list), e.g. the broker of
//     `bash scripts/kafka.sh start` (KAFKA_BROKERS=127.0.0.1:19092). Must be
//     reachable within a few seconds, else the test fails with the fix.
//  2. A reachable Docker engine: one apache/kafka KRaft container per test binary,
//     started with testcontainers-go (removed by its reaper when the binary exits).
//  3. Otherwise the test FAILS (it never skips) and says how to get a broker.
//
// Everything else (topics, reading, clients) lives in [testkit]; the
// functions here that forward to it are kept for the tests that call them.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
)

const (
	// EnvBrokers names the environment variable with the broker list.
	EnvBrokers = testkit.EnvBrokers
	// EnvImage overrides the Docker image used when no KAFKA_BROKERS is set.
	EnvImage = "KAFKATEST_IMAGE"
	// EnvKeepTopics set to 1 keeps the topics made by CreateTopic after the test.
	EnvKeepTopics = testkit.EnvKeepTopics

	// DefaultImage is the KRaft image started through Docker; the same Kafka
	// version as scripts/kafka.sh uses by default.
	DefaultImage = "apache/kafka:4.4.0"

	reachTimeout = 5 * time.Second
	fixHint      = testkit.FixHint
)

// ErrNoBroker is returned by Start when there is neither KAFKA_BROKERS nor a Docker engine.
var ErrNoBroker = errors.New("no Kafka broker: " + fixHint)

// Brokers returns the bootstrap addresses for an integration test. It never skips:
// without a broker the test fails with instructions. When the broker comes from
// Docker, one container is shared by every test of the test binary.
func Brokers(t testing.TB) []string {
	t.Helper()
	if strings.TrimSpace(os.Getenv(EnvBrokers)) != "" {
		return testkit.Brokers(t)
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
		brokers = testkit.ParseBrokers(env)
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

// CheckReachable succeeds as soon as one of brokers answers; it retries until
// timeout (a broker that is just starting is fine). See [testkit.Reachable].
func CheckReachable(brokers []string, timeout time.Duration) error {
	return testkit.Reachable(context.Background(), brokers, timeout)
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

// UniquePrefix returns a topic/group name prefix unique to this test run
// ([testkit.UniqueName] plus "-").
func UniquePrefix(t testing.TB) string {
	t.Helper()
	return testkit.UniqueName(t) + "-"
}

// CreateTopic creates a topic with the given partitions (replication factor
// 1) and waits until every partition has a leader; it is deleted when the
// test ends, unless KAFKATEST_KEEP_TOPICS=1. See [testkit.CreateTopic].
func CreateTopic(t testing.TB, brokers []string, name string, partitions int) {
	t.Helper()
	testkit.CreateTopic(t, brokers, name, partitions, nil)
}

// CreateTopicErr is CreateTopic without testing.TB and without cleanup;
// configs are topic configs such as {"retention.ms": "-1"}, nil for broker
// defaults. See [testkit.CreateTopicErr].
func CreateTopicErr(ctx context.Context, brokers []string, name string, partitions int, configs map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return testkit.CreateTopicErr(ctx, brokers, name, partitions, configs)
}

// WaitTopic waits until the topic has the given number of partitions, each
// with a leader. See [testkit.WaitTopic].
func WaitTopic(ctx context.Context, brokers []string, name string, partitions int) error {
	return testkit.WaitTopic(ctx, brokers, name, partitions)
}

// Partitions returns the partition ids of a topic, sorted. See
// [testkit.Partitions].
func Partitions(ctx context.Context, brokers []string, topic string) ([]int, error) {
	ps, err := testkit.Partitions(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = int(p)
	}
	return out, nil
}
