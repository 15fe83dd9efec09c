// Package integration runs the real rtm2kafka binary end to end: the
// gateway simulator ([rtmsim]) on one side, a real Kafka broker on the
// other, and the daemon in between as a subprocess, wired exactly as users
// run it (environment variables, HTTP ops endpoints, signals).
//
// The exported helpers in harness.go, env.go, kafka.go and ledger.go are
// shared by the end-to-end tests here and by the fault suite and benchmarks
// built on them:
//
//   - [BuildBinary] builds ./cmd/rtm2kafka once (tests do it in TestMain).
//   - [NewEnv] is the usual start of a test: a simulator feeding a
//     [Ledger], a unique topic prefix (topics deleted at the end) and a
//     daemon environment; [Env.Start] starts a daemon and waits until it is
//     ready, [Env.Check] reads every data topic back and checks exactness,
//     [Env.Control] and [Env.Ctl] send listen-control commands, and
//     [WaitListenState] waits until the simulator sees a listen state.
//   - [StartSim] starts a simulator on 127.0.0.1:0 with [TestPID] and
//     [TestSecret] unless the config says otherwise.
//   - [StartDaemon] starts the binary with [DaemonEnv]'s variables; a
//     [Daemon] polls /readyz, reads /status and /metrics, sends signals and
//     waits for the exit code. Its stderr (JSON logs at debug level) goes to
//     a file that is printed when the test fails.
//   - [ReadTopic] and [ReadTopics] read topics from the first offset of
//     every partition up to the end offsets as of the call
//     ([testkit.ReadToEnd], franz-go), and [DecodeRecord]
//     turns a record into a [Record] with its headers and JSON value
//     (integers decoded as int64, never float64).
//   - [Ledger] is the exactness checker: plugged into
//     [rtmsim.Config.OnAnswered] it records every push the simulator saw
//     answered OK, and [Ledger.Check] tells how many of them are in Kafka,
//     how many are missing (lost) and how many were written more than once.
//   - [StartPrivateKafka] runs a broker of its own through
//     scripts/kafka.sh (other ports, another state directory) for outage
//     tests: stopping or killing it never disturbs the shared broker
//     (KAFKA_BROKERS, 127.0.0.1:19092) that other packages test against.
//   - [SecureBroker] is the secured broker of `KAFKA_SECURITY=secure
//     scripts/kafka.sh` (TLS, mTLS, SASL PLAIN/SCRAM, ACLs) as its `env`
//     command exports it (KAFKA_SECURE_*; scripts/test.sh starts it): the
//     super user's [SecureKafka.Admin] client, [SecureKafka.Grant] for
//     ACLs ([BridgeTopicACLs], the bridge's least-privilege set, and
//     [OperatorACLs]), [SecureKafka.NewSecureEnv] and
//     [SecureKafka.CheckSecure] as on the plain broker.
//
// Waiting, leak checks, Kafka clients and topic helpers come from the
// shared kit [testkit], also used by the rtm and bridge tests.
//
// Tests never skip for a missing broker: [kafkatest.Brokers] fails them
// with the command that starts one (`scripts/kafka.sh start` and
// KAFKA_BROKERS=127.0.0.1:19092).
package integration
