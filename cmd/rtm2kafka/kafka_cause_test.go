package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// TestExplainKafkaErrors: each refusal a secured broker gives (as franz-go
// reports it against Kafka 4.4, see docs/security.md) is explained with
// the brokers, the mechanism or file, and never the password.
func TestExplainKafkaErrors(t *testing.T) {
	const pw = "pw-never-shown-3f9a"
	sasl := &KafkaConfig{Brokers: []string{"k1:9096", "k2:9096"}, TLS: true, TLSCAFile: "/etc/ca.pem",
		SASLMechanism: "scram-sha-512", SASLUsername: "bridge", SASLPassword: rtm.Secret(pw)}
	mtls := &KafkaConfig{Brokers: []string{"k1:9094"}, TLS: true, TLSCAFile: "/etc/ca.pem",
		TLSCertFile: "/etc/bridge.pem", TLSKeyFile: "/etc/bridge.key"}
	plainTLS := &KafkaConfig{Brokers: []string{"k1:9094"}, TLS: true}
	for _, c := range []struct {
		name string
		k    *KafkaConfig
		err  error
		want []string
	}{
		{"wrong password", sasl, fmt.Errorf("%w: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512", kerr.SaslAuthenticationFailed),
			[]string{"KAFKA_BROKERS=k1:9096,k2:9096", "SCRAM-SHA-512", "authentication failed", `user "bridge"`}},
		{"mechanism not enabled", sasl, fmt.Errorf("%w: The broker does not support the requested SASL mechanism.", kerr.UnsupportedSaslMechanism),
			[]string{"k1:9096", "KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "mechanism"}},
		{"CA does not sign the broker", mtls, fmt.Errorf("unable to dial: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			[]string{"k1:9094", "certificate", "KAFKA_TLS_CA_FILE=/etc/ca.pem"}},
		{"client certificate refused", mtls, errors.New("remote error: tls: bad certificate"),
			[]string{"k1:9094", "refused the client certificate", "KAFKA_TLS_CERT_FILE=/etc/bridge.pem"}},
		{"client certificate missing", plainTLS, errors.New("remote error: tls: bad certificate"),
			[]string{"k1:9094", "requires a client certificate", "KAFKA_TLS_CERT_FILE"}},
		{"plaintext to TLS", &KafkaConfig{Brokers: []string{"k1:9093"}}, errors.New("invalid large response size 352518912 > limit 104857600; the first three bytes received appear to be a tls alert record for TLS v1.2; is this a plaintext connection speaking to a tls endpoint?"),
			[]string{"k1:9093", "KAFKA_TLS=true"}},
		{"missing ACL", sasl, fmt.Errorf("%w: Not authorized to access topics: [Topic authorization failed.]", kerr.TopicAuthorizationFailed),
			[]string{"k1:9096", "not authorized", "User:bridge", "docs/security.md"}},
		{"anything else", sasl, errors.New("i/o timeout"), []string{"KAFKA_BROKERS=k1:9096,k2:9096", "i/o timeout"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.k.explain(c.err)
			if !errors.Is(got, c.err) {
				t.Errorf("explain lost the cause: %v", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("%q does not name %q", got, w)
				}
			}
			if strings.Contains(got.Error(), pw) {
				t.Errorf("the password is in %q", got)
			}
		})
	}
	if (&KafkaConfig{}).explain(nil) != nil {
		t.Error("explain(nil) != nil")
	}
}
