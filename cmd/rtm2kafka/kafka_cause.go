package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// explain returns err (a franz-go client error) with what it means for
// this configuration in front: the brokers (KAFKA_BROKERS), the mechanism
// and user, and the variable to look at, for the log and /readyz. The
// wording names stable facts — "authentication", "certificate", the
// mechanism — and never a password or key: only names and file paths.
// nil stays nil.
func (k *KafkaConfig) explain(err error) error {
	if err == nil {
		return nil
	}
	at := "kafka at KAFKA_BROKERS=" + strings.Join(k.Brokers, ",")
	mech := strings.ToUpper(k.SASLMechanism)
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%s: SASL authentication failed for user %q with KAFKA_SASL_MECHANISM=%s: wrong password or unknown user (check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD or _FILE): %w",
			at, k.SASLUsername, mech, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("%s: the listener does not enable the SASL mechanism KAFKA_SASL_MECHANISM=%s (ask which it offers, e.g. SCRAM-SHA-512): %w",
			at, mech, err)
	case errors.As(err, &unknownCA):
		ca := "the system pool"
		if k.TLSCAFile != "" {
			ca = "KAFKA_TLS_CA_FILE=" + k.TLSCAFile
		}
		return fmt.Errorf("%s: TLS: the broker's certificate is not signed by a CA in %s: %w", at, ca, err)
	case errors.As(err, &badHost):
		return fmt.Errorf("%s: TLS: the broker's certificate does not name the host it was reached at (set KAFKA_TLS_SERVER_NAME to a name it holds): %w", at, err)
	case errors.As(err, &badCert):
		return fmt.Errorf("%s: TLS: the broker's certificate is not valid (expired, or not for a server): %w", at, err)
	case strings.Contains(msg, "remote error: tls:") && strings.Contains(msg, "certificate"):
		if k.TLSCertFile == "" {
			return fmt.Errorf("%s: TLS: the broker requires a client certificate: set KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: %w", at, err)
		}
		return fmt.Errorf("%s: TLS: the broker refused the client certificate KAFKA_TLS_CERT_FILE=%s (not signed by a CA it trusts, or expired): %w",
			at, k.TLSCertFile, err)
	case strings.Contains(msg, "plaintext connection speaking to a tls endpoint"):
		return fmt.Errorf("%s: the listener speaks TLS: set KAFKA_TLS=true (and KAFKA_TLS_CA_FILE): %w", at, err)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%s: TLS: the listener does not speak TLS: set KAFKA_TLS=false or use the broker's TLS port: %w", at, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.GroupAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("%s: not authorized: %s lacks an ACL (the broker's log names the operation and resource; docs/security.md lists the minimal set): %w",
			at, k.principal(), err)
	}
	return fmt.Errorf("%s: %w", at, err)
}
