package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// RunConfig is the bridge's configuration, read from the environment.
type RunConfig struct {
	RTMEndpoint     string        `env:"RTM_ENDPOINT" help:"RTM gateway host:port (required: no default, so a typo cannot start a bridge against the wrong gateway)"`
	RTMPID          int64         `env:"RTM_PID" help:"RTM project id (required)"`
	RTMSecret       rtm.Secret    `env:"RTM_SECRET" help:"RTM project secret key (required unless RTM_SECRET_FILE; never logged)"`
	RTMSecretFile   rtm.Secret    `env:"RTM_SECRET_FILE,file" help:"file holding the RTM secret key"`
	RTMServerKey    string        `env:"RTM_SERVER_KEY" help:"gateway public key PEM file; enables ECDH + AES encryption"`
	RTMAESBits      int           `env:"RTM_AES_BITS" envDefault:"256" help:"AES key size with encryption: 128 or 256"`
	RTMListenAll    string        `env:"RTM_LISTEN_ALL" envDefault:"p2p,group,room,ev" help:"set-all listen flags at start: any of p2p,group,room,ev, or none"`
	RTMDedupWindow  time.Duration `env:"RTM_DEDUP_WINDOW" envDefault:"5m" help:"duplicate-push filter window; 0 turns the filter off"`
	RTMPingInterval time.Duration `env:"RTM_PING_INTERVAL" envDefault:"10s" help:"send *ping after this much silence; 0 disables keepalive"`
	RTMPingTimeout  time.Duration `env:"RTM_PING_TIMEOUT" envDefault:"5s" help:"the link is dead after interval + 2 × this much silence"`
	RTMMaxPayload   int           `env:"RTM_MAX_PAYLOAD" envDefault:"8388608" help:"largest frame payload accepted from the gateway, bytes"`

	KafkaConfig
	KafkaKey          string        `env:"KAFKA_KEY" envDefault:"to" help:"record key: to, conversation, from or none"`
	KafkaFormat       string        `env:"KAFKA_FORMAT" envDefault:"json" help:"record value format: json or msgpack"`
	KafkaAcks         string        `env:"KAFKA_ACKS" envDefault:"all" help:"all (safe) or one (weaker: a leader failure can lose answered records)"`
	KafkaPartitions   int           `env:"KAFKA_PARTITIONS" envDefault:"6" help:"partitions of the topics the bridge creates"`
	KafkaReplication  int           `env:"KAFKA_REPLICATION_FACTOR" envDefault:"-1" help:"replication factor of created topics; -1 = broker default"`
	KafkaIdempotent   bool          `env:"KAFKA_IDEMPOTENT" envDefault:"true" help:"idempotent producer (no duplicates from retries); false only for clusters that refuse it"`
	KafkaCreateTopics bool          `env:"KAFKA_CREATE_TOPICS" envDefault:"true" help:"create missing topics at start; false: they must exist (made by the platform team), the bridge checks and names the missing ones"`
	KafkaBatchBytes   int64         `env:"KAFKA_BATCH_BYTES" envDefault:"1048576" help:"most bytes per partition batch (and the largest record)"`
	KafkaLinger       time.Duration `env:"KAFKA_LINGER" envDefault:"2ms" help:"how long a partition's batch waits for more records"`
	KafkaBatchSize    int           `env:"KAFKA_BATCH_SIZE" help:"removed: the producer batches by bytes (KAFKA_BATCH_BYTES) and time (KAFKA_LINGER)"`
	KafkaBatchTimeout time.Duration `env:"KAFKA_BATCH_TIMEOUT" help:"removed: renamed KAFKA_LINGER"`
	WindowRecords     int           `env:"BRIDGE_WINDOW_RECORDS" envDefault:"10000" help:"records in flight to Kafka before the gateway is back-pressured"`
	WindowBytes       int64         `env:"BRIDGE_WINDOW_BYTES" envDefault:"67108864" help:"bytes in flight to Kafka before the gateway is back-pressured"`
	HA                bool          `env:"BRIDGE_HA" envDefault:"false" help:"high availability: join BRIDGE_GROUP; one instance is active, the others stand by (set on every instance)"`
	HAGroup           string        `env:"BRIDGE_GROUP" help:"HA consumer group id; default <prefix>.bridge"`
	HASessionTimeout  time.Duration `env:"BRIDGE_SESSION_TIMEOUT" envDefault:"6s" help:"HA: a silent active loses its role after this long (broker minimum: group.min.session.timeout.ms, 6 s by default)"`
	HAInstance        string        `env:"BRIDGE_INSTANCE" help:"HA: this instance's name in logs and /status; default host-pid"`

	SpoolDir       string        `env:"SPOOL_DIR" help:"durable spool directory: pushes Kafka does not ack in time are fsynced here and answered; empty = no spool"`
	SpoolMaxBytes  int64         `env:"SPOOL_MAX_BYTES" envDefault:"1073741824" help:"spool disk budget in bytes; when full the gateway is back-pressured"`
	SpoolAckBudget time.Duration `env:"SPOOL_ACK_BUDGET" envDefault:"2s" help:"how long a record may wait for Kafka's ack before it is spilled to the spool"`
	SpoolMaxAge    time.Duration `env:"SPOOL_MAX_AGE" envDefault:"1h" help:"warn while the oldest spooled record is older than this; 0 = never (nothing is dropped)"`

	HTTPAddr        string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:9464" empty:"ok" help:"address of /metrics, /healthz, /readyz, /status; empty disables"`
	HTTPControlTok  rtm.Secret    `env:"HTTP_CONTROL_TOKEN" help:"token that enables the console's control form (sent as Authorization: Bearer); empty = read-only console (never logged)"`
	HTTPControlFile rtm.Secret    `env:"HTTP_CONTROL_TOKEN_FILE,file" help:"file holding HTTP_CONTROL_TOKEN"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s" help:"how long SIGTERM/SIGINT may take to drain in-flight pushes"`
	LogConfig
}

// settings are the parsed, validated values that RunConfig's strings stand for.
type settings struct {
	secret    rtm.Secret
	serverKey *rtm.ServerKey
	listen    rtm.ListenState
	router    *topics.Router
	format    bridge.Format
	acks      bridge.Acks
	kafkaOpts []kgo.Opt
}

// validate checks the configuration and resolves files and names. Errors
// name the variable and what it expects.
func (c *RunConfig) validate() (*settings, error) {
	s := &settings{}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	if c.RTMEndpoint == "" {
		bad("RTM_ENDPOINT: required, the gateway's host:port")
	} else if err := checkHostPort(c.RTMEndpoint); err != nil {
		bad("RTM_ENDPOINT: %v", err)
	}
	if c.RTMPID <= 0 {
		bad("RTM_PID: required, a positive project id")
	}
	s.secret = c.RTMSecret
	if s.secret == "" {
		s.secret = rtm.Secret(strings.TrimSpace(string(c.RTMSecretFile)))
	}
	if s.secret == "" {
		bad("RTM_SECRET or RTM_SECRET_FILE: required, the project's secret key")
	}
	if c.RTMServerKey != "" {
		pemBytes, err := os.ReadFile(c.RTMServerKey)
		if err != nil {
			bad("RTM_SERVER_KEY: cannot read %q: %v", c.RTMServerKey, err)
		} else if s.serverKey, err = rtm.ParseServerKey(pemBytes); err != nil {
			bad("RTM_SERVER_KEY: %v", err)
		}
	}
	if c.RTMAESBits != 128 && c.RTMAESBits != 256 {
		bad("RTM_AES_BITS: want 128 or 256")
	}
	listen, err := parseListenAll(c.RTMListenAll)
	if err != nil {
		bad("RTM_LISTEN_ALL: %v", err)
	}
	s.listen = listen
	if c.RTMDedupWindow < 0 || c.RTMPingInterval < 0 || c.RTMPingTimeout < 0 {
		bad("RTM_DEDUP_WINDOW, RTM_PING_INTERVAL, RTM_PING_TIMEOUT: must not be negative")
	}
	if c.RTMMaxPayload <= 0 {
		bad("RTM_MAX_PAYLOAD: want a positive number of bytes")
	}

	key, err := topics.ParseKeyStrategy(c.KafkaKey)
	if err != nil {
		bad("KAFKA_KEY: want to, conversation, from or none")
	}
	var routeErrs []string
	if s.router, routeErrs = c.KafkaConfig.routerProblems(key); len(routeErrs) > 0 {
		errs = append(errs, routeErrs...)
	}
	if s.format, err = bridge.ParseFormat(c.KafkaFormat); err != nil {
		bad("KAFKA_FORMAT: want json or msgpack")
	}
	switch strings.ToLower(c.KafkaAcks) {
	case "all", "-1":
		s.acks = bridge.AcksAll
	case "one", "1", "leader":
		s.acks = bridge.AcksLeader
	default:
		bad("KAFKA_ACKS: want all or one (acks=0 cannot keep the delivery promise and is not offered)")
	}
	for _, e := range c.KafkaConfig.checkBrokers() {
		bad("%s", e)
	}
	if c.KafkaBatchSize != 0 {
		bad("KAFKA_BATCH_SIZE: no longer used: the producer (franz-go) batches by bytes and time; use KAFKA_BATCH_BYTES and KAFKA_LINGER")
	}
	if c.KafkaBatchTimeout != 0 {
		bad("KAFKA_BATCH_TIMEOUT: renamed KAFKA_LINGER (how long a partition's batch waits for more records)")
	}
	if c.KafkaBatchBytes <= 0 || c.KafkaBatchBytes > 1<<30 {
		bad("KAFKA_BATCH_BYTES: want a positive number of bytes up to 1 GiB")
	}
	if c.KafkaPartitions <= 0 {
		bad("KAFKA_PARTITIONS: want a positive integer")
	}
	if c.WindowRecords <= 0 || c.WindowBytes <= 0 {
		bad("BRIDGE_WINDOW_RECORDS, BRIDGE_WINDOW_BYTES: want positive integers")
	}
	if c.SpoolMaxBytes <= 0 {
		bad("SPOOL_MAX_BYTES: want a positive number of bytes")
	}
	if c.SpoolAckBudget <= 0 {
		bad("SPOOL_ACK_BUDGET: want a positive duration, well below the gateway's 5 s answer timeout")
	}
	if c.SpoolMaxAge < 0 {
		bad("SPOOL_MAX_AGE: must not be negative")
	}
	if c.HTTPAddr != "" {
		if err := checkListenAddr(c.HTTPAddr); err != nil {
			bad("HTTP_ADDR: %v (or empty to disable the HTTP server)", err)
		}
	}
	if s.kafkaOpts, err = c.KafkaConfig.clientOpts(); err != nil {
		bad("%v", err)
	}
	if _, err := parseLevel(c.Level); err != nil {
		bad("LOG_LEVEL: want debug, info, warn or error")
	}
	if c.Format != "text" && c.Format != "json" {
		bad("LOG_FORMAT: want text or json")
	}
	if len(errs) > 0 {
		return nil, &configErrors{msgs: errs}
	}
	return s, nil
}

// haConfig is the bridge's HA setting: nil unless BRIDGE_HA.
func (c *RunConfig) haConfig() *bridge.HAConfig {
	if !c.HA {
		return nil
	}
	return &bridge.HAConfig{Group: c.HAGroup, SessionTimeout: c.HASessionTimeout, Instance: c.HAInstance}
}

// parseListenAll reads "p2p,group,room,ev" (any subset) or "none".
func parseListenAll(v string) (rtm.ListenState, error) {
	var s rtm.ListenState
	v = strings.TrimSpace(strings.ToLower(v))
	if v == "" || v == "none" || v == "false" {
		return s, nil
	}
	if v == "all" || v == "true" {
		return rtm.ListenState{P2P: true, Group: true, Room: true, Ev: true}, nil
	}
	for _, f := range strings.Split(v, ",") {
		switch strings.TrimSpace(f) {
		case "p2p":
			s.P2P = true
		case "group":
			s.Group = true
		case "room":
			s.Room = true
		case "ev", "event", "events":
			s.Ev = true
		default:
			return s, fmt.Errorf("unknown flag %q: want any of p2p,group,room,ev, or all, or none", f)
		}
	}
	return s, nil
}

// clientOpts builds the franz-go connection options for TLS and SASL; none
// when neither is configured. Errors name the variable, never a secret.
func (k *KafkaConfig) clientOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if k.TLS || k.TLSCAFile != "" || k.TLSCertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLSServerName, InsecureSkipVerify: k.TLSInsecure} //nolint:gosec // opt-in for testing, documented
		if k.TLSCAFile != "" {
			pemBytes, err := os.ReadFile(k.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: cannot read %q: %w", k.TLSCAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: no PEM certificate in %q", k.TLSCAFile)
			}
			cfg.RootCAs = pool
		}
		if (k.TLSCertFile == "") != (k.TLSKeyFile == "") {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: set both or neither")
		}
		if k.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(k.TLSCertFile, k.TLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE: cannot load the key pair: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if k.SASLMechanism != "" {
		pass := string(k.SASLPassword)
		if pass == "" {
			pass = strings.TrimSpace(string(k.SASLPassFile))
		}
		if k.SASLUsername == "" || pass == "" {
			return nil, fmt.Errorf("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or _FILE): required with KAFKA_SASL_MECHANISM")
		}
		switch strings.ToUpper(k.SASLMechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: k.SASLUsername, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.SASLUsername, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.SASLUsername, Pass: pass}.AsSha512Mechanism()))
		default:
			return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	}
	return opts, nil
}

// checkBrokers checks the host:port syntax of every KAFKA_BROKERS entry.
func (k *KafkaConfig) checkBrokers() []string {
	var errs []string
	if len(k.Brokers) == 0 {
		return []string{"KAFKA_BROKERS: required, comma-separated host:port"}
	}
	for i, b := range k.Brokers {
		if err := checkHostPort(b); err != nil {
			errs = append(errs, fmt.Sprintf("KAFKA_BROKERS: entry %d of %d: %v", i+1, len(k.Brokers), err))
		}
	}
	return errs
}

// connOpts are the franz-go options to reach the brokers: seeds, TLS, SASL.
func (k *KafkaConfig) connOpts() ([]kgo.Opt, error) {
	if errs := k.checkBrokers(); len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	opts, err := k.clientOpts()
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...), kgo.ClientID("rtm2kafka")}, opts...), nil
}

// router builds and checks the topic router of this configuration; the
// error names every problem (see [KafkaConfig.routerProblems]).
func (k *KafkaConfig) router(key topics.KeyStrategy) (*topics.Router, error) {
	r, errs := k.routerProblems(key)
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return r, nil
}

// routerProblems builds the topic router of this configuration, or lists
// every problem: the prefix, each bad KAFKA_TOPIC_OVERRIDES entry (in key
// order), then, when each entry is fine on its own, a collision between
// entries. [topics.Router.Init] stops at the first problem, and overrides
// are a map, so it alone would name one random bad entry per run.
func (k *KafkaConfig) routerProblems(key topics.KeyStrategy) (*topics.Router, []string) {
	msg := func(v string, err error) string { return v + ": " + strings.TrimPrefix(err.Error(), "topics: ") }
	var errs []string
	prefix := k.TopicPrefix
	if err := (&topics.Router{Prefix: prefix}).Init(); err != nil {
		errs = append(errs, msg("KAFKA_TOPIC_PREFIX", err))
		prefix = topics.DefaultPrefix // still check each override, against the default names
	}
	names := make([]string, 0, len(k.TopicOverrides))
	for name := range k.TopicOverrides {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		one := &topics.Router{Prefix: prefix, Overrides: map[string]string{name: k.TopicOverrides[name]}}
		if err := one.Init(); err != nil {
			errs = append(errs, msg("KAFKA_TOPIC_OVERRIDES", err))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	r := &topics.Router{Prefix: k.TopicPrefix, Key: key, Overrides: k.TopicOverrides}
	if err := r.Init(); err != nil {
		return nil, []string{msg("KAFKA_TOPIC_OVERRIDES", err)}
	}
	return r, nil
}
