package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// SecureStartHint is the command that starts the secured broker and exports
// what [SecureBroker] reads (make test does it through scripts/test.sh).
const SecureStartHint = `KAFKA_SECURITY=secure bash scripts/kafka.sh start && ` +
	`set -a && eval "$(KAFKA_SECURITY=secure bash scripts/kafka.sh env)" && set +a`

// SecureKafka is the secured broker of scripts/kafka.sh (KAFKA_SECURITY=secure)
// as its `env` command describes it: one address per listener, the CA, the
// client certificates and the password files of its users.
type SecureKafka struct {
	SASLSSL  string // SASL_SSL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	SCRAM512 string // SASL_SSL: SCRAM-SHA-512 only
	MTLS     string // SSL, client certificate required; principal = the certificate's CN
	TLS      string // SSL without client authentication; principal ANONYMOUS

	CAFile      string // the CA that signed the broker
	OtherCAFile string // a CA that signed nothing the broker trusts
	CertDir     string // <user>.pem and <user>.key; rogue.pem is signed by OtherCAFile
	PasswordDir string // <user>.password
	SuperUser   string // a user the authorizer lets do anything
}

// SecureBroker returns the secured broker from the KAFKA_SECURE_* variables
// and fails the test, with the command that fixes it, when they are not set
// or the broker does not answer. It never skips.
func SecureBroker(t testing.TB) *SecureKafka {
	t.Helper()
	k := &SecureKafka{
		SASLSSL: os.Getenv("KAFKA_SECURE_SASL_SSL"), SCRAM512: os.Getenv("KAFKA_SECURE_SCRAM512"),
		MTLS: os.Getenv("KAFKA_SECURE_MTLS"), TLS: os.Getenv("KAFKA_SECURE_TLS"),
		CAFile: os.Getenv("KAFKA_SECURE_CA_FILE"), OtherCAFile: os.Getenv("KAFKA_SECURE_OTHER_CA_FILE"),
		CertDir: os.Getenv("KAFKA_SECURE_CERT_DIR"), PasswordDir: os.Getenv("KAFKA_SECURE_PASSWORD_DIR"),
		SuperUser: os.Getenv("KAFKA_SECURE_SUPER_USER"),
	}
	for name, v := range map[string]string{
		"KAFKA_SECURE_SASL_SSL": k.SASLSSL, "KAFKA_SECURE_SCRAM512": k.SCRAM512, "KAFKA_SECURE_MTLS": k.MTLS,
		"KAFKA_SECURE_TLS": k.TLS, "KAFKA_SECURE_CA_FILE": k.CAFile, "KAFKA_SECURE_OTHER_CA_FILE": k.OtherCAFile,
		"KAFKA_SECURE_CERT_DIR": k.CertDir, "KAFKA_SECURE_PASSWORD_DIR": k.PasswordDir,
		"KAFKA_SECURE_SUPER_USER": k.SuperUser,
	} {
		if v == "" {
			t.Fatalf("no secured Kafka broker: %s is not set; from the repository root run:\n  %s", name, SecureStartHint)
		}
	}
	conn, err := net.DialTimeout("tcp", k.SASLSSL, 5*time.Second)
	if err != nil {
		t.Fatalf("secured Kafka broker at KAFKA_SECURE_SASL_SSL=%s does not answer (%v); from the repository root run:\n  %s",
			k.SASLSSL, err, SecureStartHint)
	}
	_ = conn.Close() // only reachability was checked
	return k
}

// Password returns user's SASL password (from PasswordDir).
func (k *SecureKafka) Password(t testing.TB, user string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.PasswordDir, user+".password"))
	if err != nil {
		t.Fatalf("secure kafka: password of %s: %v", user, err)
	}
	return strings.TrimSpace(string(b))
}

// PasswordFile returns the path of the file holding user's password.
func (k *SecureKafka) PasswordFile(user string) string {
	return filepath.Join(k.PasswordDir, user+".password")
}

// CertFiles returns the client certificate and key PEM files named name
// (admin, bridge, or rogue: CN=bridge signed by OtherCAFile).
func (k *SecureKafka) CertFiles(name string) (cert, key string) {
	return filepath.Join(k.CertDir, name+".pem"), filepath.Join(k.CertDir, name+".key")
}

// AdminOpts returns franz-go options for the super user: SCRAM-SHA-512 over
// TLS on the SASL_SSL listener.
func (k *SecureKafka) AdminOpts(t testing.TB) []kgo.Opt {
	t.Helper()
	pem, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatalf("secure kafka: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("secure kafka: no certificate in %s", k.CAFile)
	}
	auth := scram.Auth{User: k.SuperUser, Pass: k.Password(t, k.SuperUser)}
	return []kgo.Opt{
		kgo.SeedBrokers(k.SASLSSL),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(auth.AsSha512Mechanism()),
	}
}

// Admin returns an admin client of the super user, closed when the test ends.
func (k *SecureKafka) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(k.AdminOpts(t)...)
	if err != nil {
		t.Fatalf("secure kafka: admin client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// Grant creates the ACLs of b (as the super user) and deletes them when the
// test ends.
func (k *SecureKafka) Grant(t testing.TB, b *kadm.ACLBuilder) {
	t.Helper()
	adm := k.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateACLs(ctx, b)
	if err == nil {
		for _, r := range res {
			if r.Err != nil {
				err = errors.Join(err, fmt.Errorf("%s %s %s %s: %w", r.Principal, r.Operation, r.Type, r.Name, r.Err))
			}
		}
	}
	if err != nil {
		t.Fatalf("secure kafka: create ACLs: %v", err)
	}
	// The controller commits the ACLs; the broker's authorizer applies them
	// a moment later. Wait until the broker describes every one of them.
	// (Describe and delete filters need hosts: AllowHosts() = any host.)
	b.AllowHosts()
	var last error
	if err := WaitFor(ctx, "the broker to apply the new ACLs", func() bool {
		got, err := adm.DescribeACLs(ctx, b)
		if last = err; err != nil {
			return false
		}
		for _, r := range got {
			if r.Err != nil || len(r.Described) == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("secure kafka: %v (last describe error: %v)", err, last)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteACLs(ctx, b); err != nil {
			t.Logf("secure kafka: delete ACLs: %v", err)
		}
	})
}

// SetSCRAM creates or changes user's SCRAM credential for mechanism (as the
// super user). It is not deleted afterwards: a throwaway user in a
// throwaway broker costs nothing, and once (Kafka 4.4, after tests had
// deleted such users and the broker was restarted) the SCRAM-SHA-512
// credentials of admin and bridge were gone from the broker; a create,
// delete and restart alone did not reproduce it, so the cause is unknown.
func (k *SecureKafka) SetSCRAM(t testing.TB, user string, mech kadm.ScramMechanism, password string) {
	t.Helper()
	adm := k.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: mech, Iterations: 4096, Password: password}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("secure kafka: set SCRAM credential of %s: %v", user, err)
	}
}

// BridgeTopicACLs is the least-privilege set of a bridge with topic prefix
// prefix, for principal (e.g. "User:bridge"): WRITE and DESCRIBE on the data,
// events, dead-letter and control-results topics, READ and DESCRIBE on the
// control topic, and CREATE on all of them when the bridge creates its
// topics. Every ACL names one topic (LITERAL pattern); nothing on the cluster.
// It returns one builder per operation group.
func BridgeTopicACLs(t testing.TB, principal, prefix string, create bool) []*kadm.ACLBuilder {
	t.Helper()
	r := Router(t, prefix)
	written := append(r.Topics(), r.DeadLetterTopic(), r.ControlResultsTopic())
	out := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow(principal).Topics(written...).Operations(kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow(principal).Topics(r.ControlTopic()).Operations(kadm.OpRead, kadm.OpDescribe),
	}
	if create {
		out = append(out, kadm.NewACLs().Allow(principal).Topics(append(written, r.ControlTopic())...).Operations(kadm.OpCreate))
	}
	return out
}

// OperatorACLs is what `rtm2kafka ctl` and `rtm2kafka tail` need for
// prefix: WRITE and DESCRIBE on the control topic, READ and DESCRIBE on
// every topic of the prefix (PREFIXED pattern "<prefix>.").
func OperatorACLs(t testing.TB, principal, prefix string) []*kadm.ACLBuilder {
	t.Helper()
	r := Router(t, prefix)
	return []*kadm.ACLBuilder{
		kadm.NewACLs().Allow(principal).Topics(r.ControlTopic()).Operations(kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow(principal).Topics(prefix+".").ResourcePatternType(kadm.ACLPatternPrefixed).
			Operations(kadm.OpRead, kadm.OpDescribe),
	}
}

// NewSecureEnv is [NewEnv] for the secured broker: a simulator feeding a
// ledger, a unique topic prefix whose topics the super user deletes when the
// test ends, and a daemon environment with KAFKA_BROKERS=brokers (one of
// k's listeners) and no security settings yet: add them to DaemonEnv.
func (k *SecureKafka) NewSecureEnv(t testing.TB, bin string, cfg rtmsim.Config, brokers string) *Env {
	t.Helper()
	e := newLedgerEnv(t, bin, cfg, []string{brokers})
	e.Prefix = strings.TrimSuffix(kafkatest.UniquePrefix(t), "-")
	if os.Getenv(kafkatest.EnvKeepTopics) != "1" {
		adm := k.Admin(t)
		r := Router(t, e.Prefix)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			names := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
			_, _ = adm.DeleteTopics(ctx, names...) // best effort: unknown topics are fine
		})
	}
	e.DaemonEnv = DaemonEnv(e.Sim.Addr(), e.Brokers, e.Prefix)
	return e
}

// ReadTopicsSecure reads every record of topics (as the super user) from the
// first offset of each partition up to its end as of the call, and decodes
// each with [DecodeValue]. Topics that do not exist read as empty.
func (k *SecureKafka) ReadTopicsSecure(t testing.TB, topics []string) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := k.Admin(t)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("secure kafka: list start offsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("secure kafka: list end offsets: %v", err)
	}
	from := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{} // partitions still to read: the end offset
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return // unknown topic: empty
		}
		end, ok := ends.Lookup(o.Topic, o.Partition)
		if !ok || end.Err != nil || end.Offset <= o.Offset {
			return
		}
		if from[o.Topic] == nil {
			from[o.Topic], left[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		from[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
		left[o.Topic][o.Partition] = end.Offset
	})
	if len(from) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(k.AdminOpts(t), kgo.ConsumePartitions(from), kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		t.Fatalf("secure kafka: consumer: %v", err)
	}
	defer cl.Close()
	var out []Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("secure kafka: reading %v: %v (partitions left: %v)", topics, err, left)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("secure kafka: fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			rec, err := DecodeValue(r.Topic, int(r.Partition), r.Offset, r.Key, r.Value, headers(r.Headers))
			if err != nil {
				t.Fatalf("secure kafka: %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			out = append(out, rec)
			if r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
		})
	}
	return out
}

func headers(hs []kgo.RecordHeader) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

// DecodeValue is [DecodeRecord] for a record given by its parts: it decodes
// the JSON value (unknown fields are errors) and keeps each header's last
// value.
func DecodeValue(topic string, partition int, offset int64, key, value []byte, hdrs map[string]string) (Record, error) {
	r := Record{Topic: topic, Partition: partition, Offset: offset, Key: string(key), Headers: hdrs, Raw: value}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.Value); err != nil {
		return r, fmt.Errorf("decode value %q: %w", value, err)
	}
	return r, nil
}

// CheckSecure is [Env.Check] on the secured broker: it reads every data
// topic back as the super user and fails the test for any push answered OK
// that is not in Kafka.
func (k *SecureKafka) CheckSecure(e *Env) (Exactness, []Record) {
	e.T.Helper()
	recs := k.ReadTopicsSecure(e.T, DataTopics(e.T, e.Prefix))
	ex, err := e.Ledger.Check(recs)
	if err != nil {
		e.T.Fatalf("check: %v", err)
	}
	if ex.Lost > 0 {
		e.T.Errorf("%d pushes answered OK are not in Kafka, e.g. %v", ex.Lost, ex.LostSample)
	}
	return ex, recs
}

// Readyz returns /readyz's status code and body.
func (d *Daemon) Readyz(ctx context.Context) (int, string, error) {
	code, body, err := d.get(ctx, "/readyz")
	return code, string(body), err
}

// Fetch returns the status code and body of path on the ops server
// (/status, /metrics, ...).
func (d *Daemon) Fetch(ctx context.Context, path string) (int, string, error) {
	code, body, err := d.get(ctx, path)
	if err == nil && code != http.StatusOK && path != "/readyz" {
		err = fmt.Errorf("integration: %s: HTTP %d", path, code)
	}
	return code, string(body), err
}

// Exec runs the binary with args (e.g. "ctl", ..., or "tail", ...) and
// the environment env (the test's own environment without rtm2kafka's
// variables, plus env), and returns its stdout, stderr and exit code; it
// is killed after timeout.
func (e *Env) Exec(env map[string]string, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Env = daemonEnviron(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.T.Fatalf("rtm2kafka %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// RecordCount returns how many records topic holds (end minus start
// offsets, summed over its partitions), read as the super user.
func (k *SecureKafka) RecordCount(t testing.TB, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := k.Admin(t)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	ends, err2 := adm.ListEndOffsets(ctx, topic)
	if err2 == nil {
		err2 = ends.Error()
	}
	if err = errors.Join(err, err2); err != nil {
		t.Fatalf("secure kafka: offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			n += o.Offset - s.Offset
		}
	})
	return n
}

// ProduceIdempotent produces one record with value to topic with franz-go's
// default (idempotent) producer as user over SCRAM-SHA-512 on the SASL_SSL
// listener.
func ProduceIdempotent(ctx context.Context, k *SecureKafka, user, password, topic string, value []byte) error {
	pem, err := os.ReadFile(k.CAFile)
	if err != nil {
		return fmt.Errorf("integration: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.SASLSSL),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(3))
	if err != nil {
		return fmt.Errorf("integration: producer: %w", err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("integration: produce to %s as %s: %w", topic, user, err)
	}
	return nil
}
