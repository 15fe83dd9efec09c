package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// syncBuffer is a log sink written by many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func statusSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../../docs/status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("status.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// The schema catches what it is for: Go field names and null lists.
func TestStatusSchemaRejects(t *testing.T) {
	sch := statusSchema(t)
	base := `{"version":"v","started_at":"2026-01-01T00:00:00Z","stopping":false,"link":{"state":"listening","reason":""},
		"bridge":{"pushes":0,"acked":0,"produced_by_topic":{},"dead_letters":0,"refused":0,"dropped":0,"answers_lost":0,"produce_errors":{},
		"inflight_records":0,"inflight_bytes":0,"last_ack_age_ms":-1,"control_applied":0,"control_rejected":0},
		"kafka":{"brokers":[],"last_ack_age_ms":-1,"buffer_records":0,"buffer_bytes":0,"buffer_max_records":1,"buffer_max_bytes":1,"idempotent":true,"acks":"all"},
		"ha":{"enabled":false,"role":"single"},"spool":{"enabled":false,"spilling":false}%s}`
	check := func(extra string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(strings.Replace(base, "%s", extra, 1)))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(v)
	}
	if err := check(""); err != nil {
		t.Fatalf("a minimal valid document is refused: %v", err)
	}
	for _, bad := range []string{
		`,"session":{"Reconnects":0}`,
		`,"listen":{"p2p":true,"group":true,"room":true,"ev":true,"gids":null,"rids":[],"uids":[],"events":[]}`,
		`,"SomethingNew":1`,
		`,"extra":{"inner":null}`,
	} {
		if check(bad) == nil {
			t.Errorf("the schema accepts %s", bad)
		}
	}
}

// A real bridge (the simulator, the real broker) serves a /status that
// matches docs/status.schema.json before and after a control command, and
// a normal start and stop log no warning and no Go struct.
func TestStatusSchema(t *testing.T) {
	brokers := testkit.Brokers(t)
	prefix := testkit.UniqueName(t)
	sim := rtmsim.New(rtmsim.Config{PID: 1000001, Secret: "status-secret"})
	if err := sim.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := &RunConfig{}
	env := map[string]string{
		"RTM_ENDPOINT": sim.Addr(), "RTM_PID": "1000001", "RTM_SECRET": "status-secret", "HTTP_ADDR": "127.0.0.1:0",
		"KAFKA_BROKERS": strings.Join(brokers, ","), "KAFKA_TOPIC_PREFIX": prefix, "KAFKA_PARTITIONS": "1",
	}
	if err := loadRunConfig(cfg, env, newCLI(runSpec, cfg)); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	c := &RunCommand{Stdout: io.Discard, Stderr: logs, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	router := &topics.Router{Prefix: prefix}
	if err := router.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = testkit.DeleteTopics(dctx, brokers, append(router.Topics(), router.DeadLetterTopic(), router.ControlTopic(), router.ControlResultsTopic())...) // best effort
	})
	if err := testkit.Wait(ctx, "the bridge listening", func() bool {
		s := c.Session()
		return s != nil && s.State().State == rtm.Listening
	}); err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	sch := statusSchema(t)
	get := func() map[string]any {
		t.Helper()
		resp, err := http.Get("http://" + c.HTTPAddr() + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("/status is not JSON: %v\n%s", err, body)
		}
		if err := sch.Validate(v); err != nil {
			t.Fatalf("/status does not match docs/status.schema.json: %v\n%s", err, body)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m) // it just validated
		return m
	}
	st := get()
	if o := st["listen_origin"].(map[string]any); o["source"] != "defaults" {
		t.Errorf("listen_origin before any command: %v", o)
	}

	// ctl show before any command, then a command, then ctl show again.
	_, out, errOut := run(t, map[string]string{"KAFKA_BROKERS": env["KAFKA_BROKERS"], "KAFKA_TOPIC_PREFIX": prefix}, "ctl", "show")
	if !strings.Contains(out, `"listen": null`) {
		t.Errorf("ctl show without a result: %s %s", out, errOut)
	}
	code, out, errOut := run(t, map[string]string{"KAFKA_BROKERS": env["KAFKA_BROKERS"], "KAFKA_TOPIC_PREFIX": prefix}, "ctl", "add", "--gids", "5", "--events", "login") // flags after OP
	if code != 0 {
		t.Fatalf("ctl add: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = run(t, map[string]string{"KAFKA_BROKERS": env["KAFKA_BROKERS"], "KAFKA_TOPIC_PREFIX": prefix}, "ctl", "show")
	var shown struct {
		Listen rtm.ListenState `json:"listen"`
		AsOf   string          `json:"as_of"`
	}
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil || len(shown.Listen.GIDs) != 1 || shown.AsOf == "" {
		t.Errorf("ctl show after add: exit %d, %q %q", code, out, errOut)
	}
	st = get()
	if o := st["listen_origin"].(map[string]any); o["source"] != "control" || o["applied_since_start"] != 1.0 {
		t.Errorf("listen_origin after a command: %v", o)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	if err := c.Shutdown(dctx); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("a normal start and stop logged: %s", line)
		}
		if strings.Contains(line, ":true ") || strings.Contains(line, "{P2P") {
			t.Errorf("a Go struct in the log: %s", line)
		}
	}
}

// Without a bridge, ctl says where its command waits and exits 3.
func TestCtlQueued(t *testing.T) {
	brokers := testkit.Brokers(t)
	prefix := testkit.UniqueName(t)
	testkit.CreateTopic(t, brokers, prefix+".control", 1, nil)
	testkit.CreateTopic(t, brokers, prefix+".control.results", 1, nil)
	env := map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "KAFKA_TOPIC_PREFIX": prefix}
	code, out, errOut := run(t, env, "ctl", "--timeout", "1s", "--uids", "7", "add")
	want := "queued at " + prefix + ".control offset 0; no bridge applied it within 1s: it will be applied when a bridge reads it"
	if code != exitQueued || !strings.Contains(errOut, want) || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, exitQueued, want)
	}
}
