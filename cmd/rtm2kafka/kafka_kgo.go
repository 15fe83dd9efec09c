package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// MERGE NOTE (issue 11): kgoOpts maps KAFKA_BROKERS, KAFKA_TLS_* and
// KAFKA_SASL_* to franz-go options for the KAFKA_CREATE_TOPICS=false check
// while the rest of the daemon still runs on kafka-go. Once the franz-go
// client options exist in run_config.go, use those instead and delete this.
func (k *KafkaConfig) kgoOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(k.Brokers...)}
	if k.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLSServerName, InsecureSkipVerify: k.TLSInsecure} //nolint:gosec // opt-in for testing, documented
		if k.TLSCAFile != "" {
			pemBytes, err := os.ReadFile(k.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: cannot read %q: %w", k.TLSCAFile, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: no PEM certificate in %q", k.TLSCAFile)
			}
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

// principal names who the broker sees, as far as the client can tell:
// the SASL user, the client certificate's subject, or ANONYMOUS.
func (k *KafkaConfig) principal() string {
	switch {
	case k.SASLMechanism != "":
		return "User:" + k.SASLUsername + " (" + strings.ToUpper(k.SASLMechanism) + ")"
	case k.TLSCertFile != "":
		return "the principal of client certificate " + k.TLSCertFile
	}
	return "User:ANONYMOUS"
}

// checkTopics runs [bridge.CheckTopics] with a client of its own; errors
// are explained (see [KafkaConfig.explain]).
func checkTopics(ctx context.Context, k *KafkaConfig, r *topics.Router) error {
	opts, err := k.kgoOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	return k.explain(bridge.CheckTopics(ctx, kadm.NewClient(cl), r, k.principal()))
}
