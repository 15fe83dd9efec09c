package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// RunConfig is the bridge's configuration, read from the environment.
type RunConfig struct {
	RTMEndpoint     string        `env:"RTM_ENDPOINT" envDefault:"127.0.0.1:13315" help:"RTM gateway host:port"`
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
	KafkaCreateTopics bool          `env:"KAFKA_CREATE_TOPICS" envDefault:"true" help:"create missing topics at start; false: they must exist (made by the platform team), the bridge checks and names the missing ones"`
	KafkaBatchSize    int           `env:"KAFKA_BATCH_SIZE" envDefault:"200" help:"most records per partition batch"`
	KafkaBatchBytes   int64         `env:"KAFKA_BATCH_BYTES" envDefault:"1048576" help:"most bytes per partition batch (and the largest record)"`
	KafkaBatchTimeout time.Duration `env:"KAFKA_BATCH_TIMEOUT" envDefault:"2ms" help:"how long a batch waits to fill"`
	WindowRecords     int           `env:"BRIDGE_WINDOW_RECORDS" envDefault:"10000" help:"records in flight to Kafka before the gateway is back-pressured"`
	WindowBytes       int64         `env:"BRIDGE_WINDOW_BYTES" envDefault:"67108864" help:"bytes in flight to Kafka before the gateway is back-pressured"`

	SpoolDir       string        `env:"SPOOL_DIR" help:"durable spool directory: pushes Kafka does not ack in time are fsynced here and answered; empty = no spool"`
	SpoolMaxBytes  int64         `env:"SPOOL_MAX_BYTES" envDefault:"1073741824" help:"spool disk budget in bytes; when full the gateway is back-pressured"`
	SpoolAckBudget time.Duration `env:"SPOOL_ACK_BUDGET" envDefault:"2s" help:"how long a record may wait for Kafka's ack before it is spilled to the spool"`
	SpoolMaxAge    time.Duration `env:"SPOOL_MAX_AGE" envDefault:"1h" help:"warn while the oldest spooled record is older than this; 0 = never (nothing is dropped)"`

	HTTPAddr        string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:9464" help:"address of /metrics, /healthz, /readyz, /status; empty disables"`
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
	acks      kafka.RequiredAcks
	transport *kafka.Transport
}

// validate checks the configuration and resolves files and names. Errors
// name the variable and what it expects.
func (c *RunConfig) validate() (*settings, error) {
	s := &settings{}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	if c.RTMEndpoint == "" {
		bad("RTM_ENDPOINT: required, the gateway's host:port")
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
	if s.router, err = c.KafkaConfig.router(key); err != nil {
		bad("%v", err)
	}
	if s.format, err = bridge.ParseFormat(c.KafkaFormat); err != nil {
		bad("KAFKA_FORMAT: want json or msgpack")
	}
	switch strings.ToLower(c.KafkaAcks) {
	case "all", "-1":
		s.acks = kafka.RequireAll
	case "one", "1":
		s.acks = kafka.RequireOne
	default:
		bad("KAFKA_ACKS: want all or one (acks=0 cannot keep the delivery promise and is not offered)")
	}
	if len(c.Brokers) == 0 {
		bad("KAFKA_BROKERS: required, comma-separated host:port")
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
	if s.transport, err = c.KafkaConfig.transport(); err != nil {
		bad("%v", err)
	}
	if _, err := parseLevel(c.Level); err != nil {
		bad("LOG_LEVEL: want debug, info, warn or error")
	}
	if c.Format != "text" && c.Format != "json" {
		bad("LOG_FORMAT: want text or json")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return s, nil
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

// transport builds the kafka-go transport for TLS and SASL; nil when
// neither is configured.
func (k *KafkaConfig) transport() (*kafka.Transport, error) {
	if !k.TLS && k.SASLMechanism == "" {
		return nil, nil
	}
	t := &kafka.Transport{DialTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MetadataTTL: 6 * time.Second}
	if k.TLS {
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
		t.TLS = cfg
	}
	if k.SASLMechanism != "" {
		pass := string(k.SASLPassword)
		if pass == "" {
			pass = strings.TrimSpace(string(k.SASLPassFile))
		}
		if k.SASLUsername == "" || pass == "" {
			return nil, fmt.Errorf("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or _FILE): required with KAFKA_SASL_MECHANISM")
		}
		var mech sasl.Mechanism
		switch strings.ToUpper(k.SASLMechanism) {
		case "PLAIN":
			mech = plain.Mechanism{Username: k.SASLUsername, Password: pass}
		case "SCRAM-SHA-256", "SCRAM-SHA-512":
			algo := scram.SHA256
			if strings.ToUpper(k.SASLMechanism) == "SCRAM-SHA-512" {
				algo = scram.SHA512
			}
			m, err := scram.Mechanism(algo, k.SASLUsername, pass)
			if err != nil {
				return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: scram setup failed")
			}
			mech = m
		default:
			return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		t.SASL = mech
	}
	return t, nil
}

// router builds and checks the topic router of this configuration.
func (k *KafkaConfig) router(key topics.KeyStrategy) (*topics.Router, error) {
	r := &topics.Router{Prefix: k.TopicPrefix, Key: key, Overrides: k.TopicOverrides}
	if err := r.Init(); err != nil {
		return nil, fmt.Errorf("KAFKA_TOPIC_PREFIX / KAFKA_TOPIC_OVERRIDES: %w", err)
	}
	return r, nil
}
