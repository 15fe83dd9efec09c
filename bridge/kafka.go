package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producerOpts are the options of the bridge's producer: idempotent (unless
// disabled), acks=all, retried by kgo without a limit in time or attempts
// (RecordRetries and RecordDeliveryTimeout keep their unbounded defaults;
// unknown topics are waited for too, so a topic deleted and re-created does
// not fail records), murmur2 key partitioning (kgo's default, the Java
// client's), and a buffer larger than the window, so the window alone is
// the backpressure.
func (b *Bridge) producerOpts() []kgo.Opt {
	c := &b.cfg
	opts := b.clientOpts(
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(c.BatchBytes),
		kgo.MaxBufferedRecords(c.WindowRecords+drainBatchRecords+1024),
		kgo.MaxBufferedBytes(int(c.WindowBytes)+2*drainBatchBytes+int(c.BatchBytes)),
		kgo.UnknownTopicRetries(-1),
		// Uncompressed, as before the move: CPU per push is what the
		// bridge is judged on, and any consumer reads it.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	switch {
	case c.Acks == AcksLeader:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1))
	case c.DisableIdempotence:
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1))
	}
	return opts
}

// clientOpts are the options every Kafka client of the bridge starts from:
// the brokers, the logger, the broker-health hook, then Config.ClientOpts
// (TLS, SASL) and extra.
func (b *Bridge) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.cfg.Brokers...),
		kgo.ClientID("rtm2kafka"),
		kgo.WithLogger(kgoLogger{log: &b.errLog}),
		kgo.WithHooks(b.health),
		// Back to work quickly once a broker returns: kgo's default back-off
		// grows to 5 s and metadata may be refreshed only every 5 s, which
		// after an outage kept the spool draining (and pushes waiting) for
		// seconds longer than needed.
		kgo.RetryBackoffFn(Backoff{Min: 50 * time.Millisecond, Max: time.Second}.Wait),
		kgo.MetadataMinAge(time.Second),
	}
	opts = append(opts, b.cfg.ClientOpts...)
	return append(opts, extra...)
}

// NewClient returns a Kafka client with the bridge's connection settings
// (brokers, TLS, SASL, logging) plus opts; the caller closes it.
func (b *Bridge) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(b.clientOpts(opts...)...)
	if err != nil {
		return nil, fmt.Errorf("bridge: kafka client: %w", err)
	}
	return cl, nil
}

// classify names the reason label of a record Kafka refused for good.
func classify(err error) string {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return reasonTooLarge
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return reasonUnauthorized
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidTopicException),
		errors.Is(err, kerr.PolicyViolation), errors.Is(err, kerr.InvalidTimestamp), errors.Is(err, kerr.InvalidRequiredAcks):
		return reasonInvalid
	}
	return reasonOther
}

// kgoLogger passes the client's warnings and errors to the bridge's log,
// at most once per burst (a broker outage makes the client log every retry).
type kgoLogger struct{ log *burstLog }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level > kgo.LogLevelWarn {
		return
	}
	attrs := make([]slog.Attr, 0, len(keyvals)/2)
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, _ := keyvals[i].(string)
		attrs = append(attrs, slog.Any(k, keyvals[i+1]))
	}
	l.log.warn("kafka client: "+msg, attrs...)
}

// brokerHealth remembers, per broker address, what the last connection
// attempt said, in words an operator acts on (cannot resolve, connection
// refused, TLS handshake failed, authentication failed). It logs a line
// when a broker's condition changes. It is a kgo hook.
type brokerHealth struct {
	log   *slog.Logger
	seeds []string
	stats *counters

	mu     sync.Mutex
	byAddr map[string]brokerState
}

type brokerState struct {
	err string // "" when the last attempt succeeded
	at  time.Time
}

func newBrokerHealth(log *slog.Logger, seeds []string, stats *counters) *brokerHealth {
	return &brokerHealth{log: log, seeds: seeds, stats: stats, byAddr: make(map[string]brokerState)}
}

// OnBrokerConnect implements kgo.HookBrokerConnect: it is called after
// every dial, TLS handshake and SASL flow.
func (h *brokerHealth) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	addr := net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port))
	msg := ""
	if err != nil {
		msg = DescribeKafkaError(err)
		h.stats.produceErr(reasonAttempt)
	}
	h.mu.Lock()
	prev, seen := h.byAddr[addr]
	h.byAddr[addr] = brokerState{err: msg, at: time.Now()}
	h.mu.Unlock()
	switch {
	case msg != "" && (!seen || prev.err != msg):
		h.log.Warn("kafka broker unreachable", slog.String("broker", addr), slog.String("cause", msg),
			slog.String("setting", "KAFKA_BROKERS="+strings.Join(h.seeds, ",")))
	case msg == "" && seen && prev.err != "":
		h.log.Info("kafka broker reachable again", slog.String("broker", addr))
	}
}

// BrokerStatus is what the bridge knows of one broker, for /status.
type BrokerStatus struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error"` // why the last connection attempt failed; "" when it succeeded
	At        string `json:"at"`    // RFC 3339 time of that attempt
}

// snapshot returns every broker tried so far, sorted by address.
func (h *brokerHealth) snapshot() []BrokerStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]BrokerStatus, 0, len(h.byAddr))
	for a, s := range h.byAddr {
		out = append(out, BrokerStatus{Addr: a, Reachable: s.err == "", Error: s.err, At: s.at.UTC().Format(time.RFC3339)})
	}
	slices.SortFunc(out, func(x, y BrokerStatus) int { return strings.Compare(x.Addr, y.Addr) })
	return out
}

// failing returns "addr: cause" for every broker whose last attempt failed.
func (h *brokerHealth) failing() []string {
	var out []string
	for _, s := range h.snapshot() {
		if !s.Reachable {
			out = append(out, s.Addr+": "+s.Error)
		}
	}
	return out
}

// Described returns err with [DescribeKafkaError]'s words as its message,
// still wrapping err (so errors.Is and errors.As see the cause); nil stays
// nil.
func Described(err error) error {
	if err == nil {
		return nil
	}
	return &describedError{msg: DescribeKafkaError(err), err: err}
}

type describedError struct {
	msg string
	err error
}

func (e *describedError) Error() string { return e.msg }
func (e *describedError) Unwrap() error { return e.err }

// DescribeKafkaError says in a few words why talking to a broker failed, as
// kcat would: cannot resolve the host, connection refused, TLS handshake
// failed (and why), authentication failed, not authorized. Other errors are
// returned as they are. It never includes credentials: the client's errors
// do not carry them.
func DescribeKafkaError(err error) string {
	var (
		dnsErr   *net.DNSError
		unknCA   x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		certErr  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		certVer  *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve host %q: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is a broker listening on that port?)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable: " + err.Error()
	case errors.As(err, &unknCA):
		return "TLS handshake failed: the broker's certificate is not signed by a trusted CA (check KAFKA_TLS_CA_FILE)"
	case errors.As(err, &hostErr):
		return "TLS handshake failed: the broker's certificate does not match the host name (check KAFKA_TLS_SERVER_NAME): " + hostErr.Error()
	case errors.As(err, &certErr):
		return "TLS handshake failed: invalid broker certificate: " + certErr.Error()
	case errors.As(err, &certVer):
		return "TLS handshake failed: " + certVer.Error()
	case errors.As(err, &recErr):
		return "TLS handshake failed: the broker does not speak TLS on that port (is it a plaintext or SASL_PLAINTEXT listener?)"
	case errors.As(err, &alertErr):
		return "TLS handshake failed: the broker refused us (" + alertErr.Error() + "; a client certificate it does not accept?)"
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return "authentication failed (SASL): " + err.Error()
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "authentication failed: the broker does not enable this SASL mechanism: " + err.Error()
	case errors.Is(err, kerr.IllegalSaslState):
		return "authentication failed: the listener expects a different protocol (SASL vs none): " + err.Error()
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.GroupAuthorizationFailed):
		return "not authorized: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: " + err.Error()
	}
	return err.Error()
}
