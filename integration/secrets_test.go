package integration_test

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// Recognisable secrets: none of them may appear in anything the daemon
// shows, in plain or in any casing.
const (
	secretRTM      = "rtmSECRET-7c1f0e9a-never-shown"
	secretRTMWrong = "rtmWRONG-3b88d2c4-never-shown"
	secretSASL     = "saslPASS-e41a9f06-never-shown"
)

// TestSecretsNeverShown runs the real daemon with recognisable secrets and
// scans its whole log (debug level, JSON), /status, /metrics, /readyz and
// /healthz for them: (1) a working daemon with the RTM secret, under
// traffic and through a SIGTERM drain; (2) a daemon whose RTM secret the
// gateway refuses (200002: the config-error path logs and reports the
// failure); (3) a daemon configured with SASL PLAIN and a password against
// a broker that does not speak SASL (the failing Kafka path; a working
// SASL broker is not available to these tests).
func TestSecretsNeverShown(t *testing.T) {
	e := setup(t, rtmsim.Config{Secret: secretRTM}, nil)
	e.DaemonEnv["RTM_SECRET"] = secretRTM
	d := e.Start(nil)
	integration.WaitListenState(t, e.Sim, integration.AllFlags())
	for mid := int64(1); mid <= 20; mid++ {
		if _, err := e.Sim.Publish(&rtm.Push{Scope: rtm.ScopeP2P, MType: 30, From: 1, To: 2, MID: mid, Msg: []byte("hi")}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return e.Sim.Stats().Answered >= 20 }, "20 answers")
	shown := scrapeAll(t, d)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := d.Wait(ctxFor(t, 30*time.Second)); err != nil || code != 0 {
		t.Fatalf("daemon: exit %d, %v", code, err)
	}
	assertNoSecret(t, "working daemon", shown+d.Log(), secretRTM)

	// (2) An RTM secret the gateway refuses: the config-error path.
	d2 := startWith(t, e, map[string]string{"RTM_SECRET": secretRTMWrong})
	testkit.Eventually(t, 60*time.Second, func() bool {
		st, err := d2.Status(context.Background())
		return err == nil && strings.Contains(st.Link.Reason, "200002") && e.Sim.Stats().ErrorCodes[rtm.CodeInvalidSign] >= 2
	}, "the gateway to refuse the wrong secret twice, and /status to say so")
	shown = scrapeAll(t, d2)
	log := stop(t, d2)
	if !strings.Contains(log, "200002") {
		t.Errorf("the log does not mention the refused signature; the scan would prove little:\n%s", tail(log, 40))
	}
	assertNoSecret(t, "daemon with a refused RTM secret", shown+log, secretRTMWrong)

	// (3) A SASL password on a broker that does not speak SASL: the Kafka
	// side fails and retries (and the daemon never gets to dial RTM), or,
	// should a version give up at start, exits: either way its log, and its
	// endpoints while they answer, must not show the password.
	d3 := startWith(t, e, map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN",
		"KAFKA_SASL_USERNAME": "rtm2kafka", "KAFKA_SASL_PASSWORD": secretSASL})
	exited := func() bool {
		select {
		case <-d3.Done():
			return true
		default:
			return false
		}
	}
	testkit.Eventually(t, 60*time.Second, func() bool {
		if exited() {
			return true
		}
		_, err := d3.Status(context.Background())
		log := d3.Log()
		return err == nil && strings.Count(log, `"level":"WARN"`)+strings.Count(log, `"level":"ERROR"`) >= 2
	}, "two Kafka failures logged (or an exit)")
	if exited() {
		t.Logf("the daemon with SASL on a plaintext broker exited at start")
		assertNoSecret(t, "daemon with SASL on a plaintext broker", d3.Log(), secretSASL)
		return
	}
	shown = scrapeAll(t, d3)
	log = stop(t, d3)
	assertNoSecret(t, "daemon with SASL on a plaintext broker", shown+log, secretSASL)
}

// startWith starts a daemon with e.DaemonEnv plus extra without waiting
// for it to be ready (it will not be).
func startWith(t *testing.T, e *integration.Env, extra map[string]string) *integration.Daemon {
	t.Helper()
	env := map[string]string{}
	for k, v := range e.DaemonEnv {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return integration.StartDaemon(t, binPath, env)
}

// stop kills d and returns its whole log.
func stop(t *testing.T, d *integration.Daemon) string {
	t.Helper()
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Wait(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return d.Log()
}

// scrapeAll returns every ops endpoint's answer, labelled.
func scrapeAll(t *testing.T, d *integration.Daemon) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/status", "/metrics", "/readyz", "/healthz"} {
		code, body, err := d.Get(ctxFor(t, 5*time.Second), path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if path == "/status" || path == "/metrics" {
			if code != http.StatusOK || len(body) == 0 {
				t.Fatalf("GET %s: HTTP %d, %d bytes", path, code, len(body))
			}
		}
		b.WriteString("== " + path + "\n")
		b.Write(body)
		b.WriteByte('\n')
	}
	return b.String()
}

// assertNoSecret fails if any secret appears in text, whatever the case.
func assertNoSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	low := strings.ToLower(text)
	for _, s := range secrets {
		if i := strings.Index(low, strings.ToLower(s)); i >= 0 {
			t.Errorf("%s: secret %q appears in its output: …%s…", what, s, text[max(0, i-200):min(len(text), i+len(s)+50)])
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
