package integration_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// Tests against the secured broker of scripts/kafka.sh (KAFKA_SECURITY=secure,
// started by scripts/test.sh; see integration.SecureStartHint). Each starts a
// real bridge process with the simulator and connects the way users do:
// KAFKA_TLS_*, KAFKA_SASL_*. The principals have no rights but the ACLs a
// test grants them; the super user only prepares and reads back.

// secureMode is one way of reaching the secured broker.
type secureMode struct {
	name      string
	addr      string            // KAFKA_BROKERS
	principal string            // what the broker's authorizer sees
	env       map[string]string // KAFKA_TLS_* / KAFKA_SASL_*
	secret    string            // the password or client key in use, if any: must never be shown
}

// secureModes returns the five connection modes, all as user bridge except
// TLS without a client certificate (ANONYMOUS).
func secureModes(t *testing.T, k *integration.SecureKafka) []secureMode {
	t.Helper()
	pw := k.Password(t, "bridge")
	cert, key := k.CertFiles("bridge")
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(string(keyPEM), "\n")[1] // private key material: must never be shown either
	tlsEnv := func(extra map[string]string) map[string]string {
		m := map[string]string{"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile}
		for key, v := range extra {
			m[key] = v
		}
		return m
	}
	return []secureMode{
		{name: "TLS", addr: k.TLS, principal: "User:ANONYMOUS", env: tlsEnv(nil)},
		{name: "mTLS", addr: k.MTLS, principal: "User:bridge", secret: keyLine,
			env: tlsEnv(map[string]string{"KAFKA_TLS_CERT_FILE": cert, "KAFKA_TLS_KEY_FILE": key})},
		{name: "PLAIN", addr: k.SASLSSL, principal: "User:bridge", secret: pw, env: tlsEnv(map[string]string{
			"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "bridge", "KAFKA_SASL_PASSWORD": pw})},
		{name: "SCRAM-SHA-256", addr: k.SASLSSL, principal: "User:bridge", secret: pw, env: tlsEnv(map[string]string{
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "bridge", "KAFKA_SASL_PASSWORD_FILE": k.PasswordFile("bridge")})},
		{name: "SCRAM-SHA-512", addr: k.SCRAM512, principal: "User:bridge", secret: pw, env: tlsEnv(map[string]string{
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "bridge", "KAFKA_SASL_PASSWORD": pw})},
	}
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func grantAll(t *testing.T, k *integration.SecureKafka, acls []*kadm.ACLBuilder) {
	t.Helper()
	for _, b := range acls {
		k.Grant(t, b)
	}
}

// TestSecureConnect: for TLS, mTLS, SASL PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 a bridge on a principal with the least-privilege ACLs
// (topic creation included) gets ready, every push answered is in Kafka,
// `ctl` and `tail` work with the same settings, and the password shows up
// nowhere.
func TestSecureConnect(t *testing.T) {
	k := integration.SecureBroker(t)
	for _, m := range secureModes(t, k) {
		t.Run(m.name, func(t *testing.T) {
			e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, m.addr)
			grantAll(t, k, integration.BridgeTopicACLs(t, m.principal, e.Prefix, true))
			grantAll(t, k, integration.OperatorACLs(t, m.principal, e.Prefix))
			d := e.Start(m.env)

			const total = 300
			res := waitGen(t, generate(t, e.Sim, rtmsim.LoadConfig{Total: total, Keys: 20, Seed: 7}), 90*time.Second)
			if res.Answered != total {
				t.Fatalf("want %d pushes answered in time: %+v", total, res)
			}
			ex, _ := k.CheckSecure(e)
			if ex.Found != total {
				t.Errorf("want all %d answered pushes in Kafka: %s", total, ex)
			}

			// ctl with the same settings: the bridge applies it and answers.
			cliEnv := merge(m.env, map[string]string{"KAFKA_BROKERS": m.addr, "KAFKA_TOPIC_PREFIX": e.Prefix})
			out, errOut, code := e.Exec(cliEnv, 60*time.Second, "ctl", "--timeout", "45s", "--p2p=false", "set_all")
			if code != 0 || !strings.Contains(out, `"ok": true`) {
				t.Fatalf("ctl: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			want := integration.AllFlags()
			want.P2P = false
			integration.WaitListenState(t, e.Sim, want)

			// tail with the same settings reads what the bridge wrote (and
			// the ctl result).
			out, errOut, code = e.Exec(cliEnv, 60*time.Second, "tail", "--from-beginning", "-n", "301")
			if code != 0 {
				t.Fatalf("tail: exit %d\nstderr: %s", code, errOut)
			}
			if n := strings.Count(out, "\n"); n != total+1 {
				t.Errorf("tail printed %d lines, want %d\nstderr: %s", n, total+1, errOut)
			}
			noSecret(t, d, m.secret)
		})
	}
}

// noSecret fails the test if secret appears in d's log, /status or
// /metrics.
func noSecret(t *testing.T, d *integration.Daemon, secret string) {
	t.Helper()
	if secret == "" {
		return
	}
	if strings.Contains(d.Log(), secret) {
		t.Errorf("the secret is in the daemon's log")
	}
	for _, path := range []string{"/status", "/metrics", "/readyz"} {
		_, body, err := d.Fetch(ctxFor(t, 5*time.Second), path)
		if err != nil && path != "/readyz" {
			t.Errorf("%s: %v", path, err)
		}
		if strings.Contains(body, secret) {
			t.Errorf("the secret is in %s", path)
		}
	}
}

// waitNotReady waits (up to 30 s) until /readyz fails with a body that
// contains every one of want and the log mentions each of them as well,
// while the daemon keeps running; it fails the test otherwise, showing the
// last answer. A word without lower-case letters (a mechanism such as
// SCRAM-SHA-512, an ACL operation such as READ, a variable name) must
// appear as it is; other words match case-insensitively.
func waitNotReady(t *testing.T, d *integration.Daemon, want ...string) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second) // the first retries come within seconds
	var last string
	has := func(s string) bool {
		lower := strings.ToLower(s)
		for _, w := range want {
			if w == strings.ToUpper(w) {
				if !strings.Contains(s, w) {
					return false
				}
			} else if !strings.Contains(lower, strings.ToLower(w)) {
				return false
			}
		}
		return true
	}
	err := integration.WaitFor(ctx, "/readyz naming the cause", func() bool {
		code, body, err := d.Readyz(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = body
		if code == http.StatusOK {
			t.Fatalf("ready although the broker must refuse the bridge: %s", body)
		}
		return has(body) && has(d.Log())
	})
	select {
	case <-d.Done():
		t.Fatalf("the daemon exited; it must keep running and report the cause")
	default:
	}
	if err != nil {
		// Not fatal: what follows (recovery, no secret shown) is still worth checking.
		t.Errorf("%v: want /readyz and the log to name %q; /readyz names them: %v, the log: %v; last /readyz: %s",
			err, want, has(last), has(d.Log()), last)
	}
	if !d.Healthy(ctxFor(t, 5*time.Second)) {
		t.Errorf("/healthz not OK: the process should stay healthy while Kafka refuses it")
	}
}

func randomWord(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestSecureFailures: each way the broker can refuse the bridge leaves it
// running, with /readyz and the log naming the cause — the brokers
// (KAFKA_BROKERS) and the mechanism — and never the password; where the
// fix is on the broker side, the bridge recovers on its own.
func TestSecureFailures(t *testing.T) {
	k := integration.SecureBroker(t)

	// wrong password / unknown user: the credential is fixed on the broker
	// (set to what the bridge uses) and the bridge recovers.
	for _, c := range []struct {
		name   string
		mech   string
		kmech  kadm.ScramMechanism
		before bool // the user exists (with another password) before the bridge starts
	}{
		{"WrongPassword", "SCRAM-SHA-512", kadm.ScramSha512, true},
		{"UnknownUser", "SCRAM-SHA-256", kadm.ScramSha256, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			user := "u" + randomWord(t)
			used, other := "pw-"+randomWord(t), "pw-"+randomWord(t)
			if c.before {
				k.SetSCRAM(t, user, c.kmech, other)
			}
			e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
			grantAll(t, k, integration.BridgeTopicACLs(t, "User:"+user, e.Prefix, true))
			d := integration.StartDaemon(t, binPath, merge(e.DaemonEnv, map[string]string{
				"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile,
				"KAFKA_SASL_MECHANISM": c.mech, "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": used}))
			waitNotReady(t, d, k.SASLSSL, c.mech, "authentication")
			noSecret(t, d, used)
			noSecret(t, d, other)

			k.SetSCRAM(t, user, c.kmech, used) // fixed on the broker side
			if err := d.WaitReady(ctxFor(t, 90*time.Second)); err != nil {
				t.Fatalf("no recovery after the credential was fixed: %v", err)
			}
			res := waitGen(t, generate(t, e.Sim, rtmsim.LoadConfig{Total: 50, Keys: 5, Seed: 3}), 60*time.Second)
			if res.Answered != 50 {
				t.Fatalf("after recovery: %+v", res)
			}
			if ex, _ := k.CheckSecure(e); ex.Found != 50 {
				t.Errorf("after recovery: %s", ex)
			}
			noSecret(t, d, used)
		})
	}

	t.Run("CANotSigningBroker", func(t *testing.T) {
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.TLS)
		d := integration.StartDaemon(t, binPath, merge(e.DaemonEnv, map[string]string{
			"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.OtherCAFile}))
		waitNotReady(t, d, k.TLS, "certificate")
	})

	t.Run("ClientCertRefused", func(t *testing.T) {
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.MTLS)
		grantAll(t, k, integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, true))
		cert, key := k.CertFiles("rogue")
		d := integration.StartDaemon(t, binPath, merge(e.DaemonEnv, map[string]string{
			"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile, "KAFKA_TLS_CERT_FILE": cert, "KAFKA_TLS_KEY_FILE": key}))
		waitNotReady(t, d, k.MTLS, "certificate")
	})

	t.Run("MechanismNotEnabled", func(t *testing.T) {
		pw := k.Password(t, "bridge")
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SCRAM512)
		grantAll(t, k, integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, true))
		d := integration.StartDaemon(t, binPath, merge(e.DaemonEnv, map[string]string{
			"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile,
			"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "bridge", "KAFKA_SASL_PASSWORD": pw}))
		waitNotReady(t, d, k.SCRAM512, "PLAIN", "mechanism")
		noSecret(t, d, pw)
	})
}

// scramBridge is the environment of a bridge that is user bridge with
// SCRAM-SHA-512 over TLS on the SASL_SSL listener.
func scramBridge(t *testing.T, k *integration.SecureKafka) map[string]string {
	return map[string]string{"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile,
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "bridge",
		"KAFKA_SASL_PASSWORD_FILE": k.PasswordFile("bridge")}
}

// TestSecureLeastPrivilege: a bridge whose principal has exactly the ACLs
// of integration.BridgeTopicACLs — topic WRITE+DESCRIBE on what it
// writes, READ+DESCRIBE on the control topic, CREATE only when it creates
// the topics, nothing on the cluster — writes every push, dead-letters a
// malformed one and applies a control command. Without one of them the
// cause names the resource, the operation and the principal.
func TestSecureLeastPrivilege(t *testing.T) {
	k := integration.SecureBroker(t)
	run := func(t *testing.T, e *integration.Env, extra map[string]string) {
		t.Helper()
		e.Start(merge(scramBridge(t, k), extra))
		if extra["BRIDGE_HA"] == "true" {
			// Ready as a standby first; active once the group assigns it.
			integration.WaitListenState(t, e.Sim, integration.AllFlags())
		}
		const total = 200
		res := waitGen(t, generate(t, e.Sim, rtmsim.LoadConfig{Total: total, Keys: 10, Seed: 5}), 90*time.Second)
		if res.Answered != total {
			t.Fatalf("want %d answered in time: %+v", total, res)
		}
		if ex, _ := k.CheckSecure(e); ex.Found != total {
			t.Errorf("want all %d in Kafka: %s", total, ex)
		}
		// A malformed push goes to the dead-letter topic (WRITE on it).
		before := e.Sim.Stats().MalformedErrored
		if n, err := e.Sim.SendMalformed(rtmsim.MalformedGarbagePayload); err != nil || n != 1 {
			t.Fatalf("SendMalformed: %d, %v", n, err)
		}
		if err := integration.WaitFor(ctxFor(t, 30*time.Second), "the malformed push answered with an error",
			func() bool { return e.Sim.Stats().MalformedErrored > before }); err != nil {
			t.Fatal(err)
		}
		if n := k.RecordCount(t, integration.Router(t, e.Prefix).DeadLetterTopic()); n != 1 {
			t.Errorf("dead-letter topic holds %d records, want 1", n)
		}
		// A control command from the operator (the super user here): READ on
		// the control topic, WRITE on the results topic.
		adminEnv := map[string]string{"KAFKA_BROKERS": k.SASLSSL, "KAFKA_TOPIC_PREFIX": e.Prefix,
			"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": k.CAFile, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"KAFKA_SASL_USERNAME": k.SuperUser, "KAFKA_SASL_PASSWORD_FILE": k.PasswordFile(k.SuperUser)}
		out, errOut, code := e.Exec(adminEnv, 60*time.Second, "ctl", "--timeout", "45s", "--gids", "42", "add")
		if code != 0 || !strings.Contains(out, `"ok": true`) {
			t.Fatalf("ctl: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		want := integration.AllFlags()
		want.GIDs = []int64{42}
		integration.WaitListenState(t, e.Sim, want)
	}

	t.Run("CreatesTopics", func(t *testing.T) {
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
		grantAll(t, k, integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, true))
		run(t, e, nil)
	})

	t.Run("TopicsCreatedByPlatform", func(t *testing.T) {
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
		createTopics(t, k, e.Prefix, "")
		grantAll(t, k, integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, false))
		run(t, e, map[string]string{"KAFKA_CREATE_TOPICS": "false"})
	})

	t.Run("HAGroup", func(t *testing.T) {
		// BRIDGE_HA adds exactly READ and DESCRIBE on its group.
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
		createTopics(t, k, e.Prefix, "")
		grantAll(t, k, integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, false))
		k.Grant(t, kadm.NewACLs().Allow("User:bridge").Groups(e.Prefix+".bridge").Operations(kadm.OpRead, kadm.OpDescribe))
		run(t, e, map[string]string{"KAFKA_CREATE_TOPICS": "false", "BRIDGE_HA": "true", "BRIDGE_SESSION_TIMEOUT": "6s"})
	})

	t.Run("MissingTopicNamed", func(t *testing.T) {
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
		missing := integration.Router(t, e.Prefix).DeadLetterTopic()
		createTopics(t, k, e.Prefix, missing)
		grantAll(t, k, integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, false))
		d := integration.StartDaemon(t, binPath, merge(e.DaemonEnv, scramBridge(t, k),
			map[string]string{"KAFKA_CREATE_TOPICS": "false"}))
		waitNotReady(t, d, missing, "KAFKA_CREATE_TOPICS")
	})

	t.Run("MissingReadOnControl", func(t *testing.T) {
		e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
		createTopics(t, k, e.Prefix, "")
		acls := integration.BridgeTopicACLs(t, "User:bridge", e.Prefix, false)
		r := integration.Router(t, e.Prefix)
		grantAll(t, k, acls[:1]) // WRITE+DESCRIBE on what it writes, nothing on the control topic
		k.Grant(t, kadm.NewACLs().Allow("User:bridge").Topics(r.ControlTopic()).Operations(kadm.OpDescribe))
		// A command is waiting in the control topic: restoring the listen
		// state at start has to read it.
		if err := integration.ProduceIdempotent(ctxFor(t, 30*time.Second), k, k.SuperUser, k.Password(t, k.SuperUser),
			r.ControlTopic(), []byte(`{"id":"lp-1","op":"add","gids":[7]}`)); err != nil {
			t.Fatal(err)
		}
		d := integration.StartDaemon(t, binPath, merge(e.DaemonEnv, scramBridge(t, k),
			map[string]string{"KAFKA_CREATE_TOPICS": "false"}))
		waitNotReady(t, d, r.ControlTopic(), "READ", "User:bridge")
	})
}

// createTopics creates every topic of prefix as the super user (the
// platform team's job when KAFKA_CREATE_TOPICS=false), except skip.
func createTopics(t *testing.T, k *integration.SecureKafka, prefix, skip string) {
	t.Helper()
	r := integration.Router(t, prefix)
	adm := k.Admin(t)
	ctx := ctxFor(t, 30*time.Second)
	create := func(partitions int32, configs map[string]*string, names ...string) {
		for _, n := range names {
			if n == skip {
				continue
			}
			res, err := adm.CreateTopics(ctx, partitions, -1, configs, n)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				t.Fatalf("create topic %s: %v", n, err)
			}
		}
	}
	minusOne := "-1"
	create(3, nil, append(r.Topics(), r.DeadLetterTopic())...)
	create(1, map[string]*string{"retention.ms": &minusOne, "retention.bytes": &minusOne}, r.ControlTopic())
	create(1, nil, r.ControlResultsTopic())
}

// TestSecureIdempotentWriteNeedsOnlyTopicWrite: on Kafka 4.x an idempotent
// producer (franz-go's default) needs no IDEMPOTENT_WRITE on the cluster:
// WRITE on the topic is enough (KIP-679). The bridge relies on this for
// its least-privilege set.
func TestSecureIdempotentWriteNeedsOnlyTopicWrite(t *testing.T) {
	k := integration.SecureBroker(t)
	e := k.NewSecureEnv(t, binPath, rtmsim.Config{}, k.SASLSSL)
	topic := integration.Router(t, e.Prefix).Topics()[0]
	createTopics(t, k, e.Prefix, "")
	k.Grant(t, kadm.NewACLs().Allow("User:bridge").Topics(topic).Operations(kadm.OpWrite, kadm.OpDescribe))
	if err := integration.ProduceIdempotent(ctxFor(t, 30*time.Second), k, "bridge", k.Password(t, "bridge"), topic, []byte("x")); err != nil {
		t.Fatalf("idempotent produce with topic WRITE only: %v", err)
	}
}
